"""Finds the `cardfill` binary that this package's wheel installed."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig


def find_cardfill_bin() -> str:
    """Returns the path of the `cardfill` binary.

    Looked for, in order: `$CARDFILL` (a path or a name on PATH), the scripts directory of
    this environment, the user scheme's scripts directory, the `bin` beside this package's
    install prefix, then PATH. Raises `FileNotFoundError` when there is none.
    """
    named = os.environ.get("CARDFILL")
    if named:
        found = shutil.which(named)
        if found is None:
            raise FileNotFoundError(f"`{named}` (from $CARDFILL) is not an executable")
        return found

    exe = "cardfill" + (sysconfig.get_config_var("EXE") or "")
    candidates = [sysconfig.get_path("scripts")]
    if sys.version_info >= (3, 10):
        user_scheme = sysconfig.get_preferred_scheme("user")
    elif os.name == "nt":
        user_scheme = "nt_user"
    elif sys.platform == "darwin" and getattr(sys, "_framework", None):
        user_scheme = "osx_framework_user"
    else:
        user_scheme = "posix_user"
    candidates.append(sysconfig.get_path("scripts", scheme=user_scheme))
    # `pip install --target DIR`: DIR/bin beside DIR/cardfill.
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates.append(os.path.join(package_root, "bin"))
    for directory in candidates:
        path = os.path.join(directory, exe)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which(exe)
    if found:
        return found
    raise FileNotFoundError(
        "the `cardfill` binary is not installed in this environment nor on PATH "
        "(`pip install .` from a clone installs it; $CARDFILL names another)"
    )
