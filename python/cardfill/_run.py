"""One training run as cardfill records it: the training record on each node, the card at the end.

Every call of the binary is bounded in time and never raises: the first problem of a run is
logged as one warning line, later ones at debug level, and training goes on.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Sequence
from typing import Any

from cardfill._find_bin import find_cardfill_bin

logger = logging.getLogger("cardfill")

#: Seconds one call of the binary may take, unless `timeout=` or `$CARDFILL_TIMEOUT` says.
DEFAULT_TIMEOUT = 120.0


def _env_int(name: str) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


def global_rank() -> int:
    """This process's rank in the whole run (`RANK`, set by torchrun and accelerate), else 0."""
    rank = _env_int("RANK")
    return rank if rank is not None else 0


def local_rank() -> int:
    """This process's rank on its node (`LOCAL_RANK`), else 0."""
    rank = _env_int("LOCAL_RANK")
    return rank if rank is not None else 0


def world_size() -> int:
    """Processes in the run (`WORLD_SIZE`), else 1."""
    size = _env_int("WORLD_SIZE")
    return size if size is not None and size > 0 else 1


def flags_to_args(flags: dict) -> list:
    """`region="FR", no_backup=True` → `["--region", "FR", "--no-backup"]`."""
    args = []
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                args.extend([flag, str(item)])
        else:
            args.extend([flag, str(value)])
    return args


class Caller:
    """Runs the binary; logs the first failure as a warning and the rest at debug level."""

    def __init__(self, timeout: float | None = None, executable: str | None = None):
        if timeout is None:
            try:
                timeout = float(os.environ.get("CARDFILL_TIMEOUT", DEFAULT_TIMEOUT))
            except ValueError:
                timeout = DEFAULT_TIMEOUT
        self.timeout = timeout
        self.executable = executable
        self.warned = False

    def problem(self, message: str) -> None:
        """Logs `message`: a warning the first time, at debug level after."""
        if self.warned:
            logger.debug("cardfill: %s", message)
        else:
            self.warned = True
            logger.warning("cardfill: %s; training goes on", message)

    def binary(self) -> str | None:
        if self.executable is not None:
            return self.executable
        try:
            return find_cardfill_bin()
        except FileNotFoundError as err:
            self.problem(str(err))
            return None

    def __call__(
        self, args: Sequence[str], stdin: str | None = None, env: dict | None = None
    ) -> str | None:
        """Runs `cardfill ARGS`; returns its stdout on exit 0 (or 1: done, with warnings)."""
        binary = self.binary()
        if binary is None:
            return None
        command = [binary, *args]
        shown = "cardfill " + " ".join(args)
        try:
            result = subprocess.run(
                command,
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.problem(f"`{shown}` took more than {self.timeout:g} s and was stopped")
            return None
        except OSError as err:
            self.problem(f"cannot run `{binary}`: {err}")
            return None
        if result.returncode not in (0, 1):
            lines = result.stderr.strip().splitlines()
            why = lines[-1] if lines else "no message"
            self.problem(f"`{shown}` exited with {result.returncode}: {why}")
            return None
        return result.stdout


class Run:
    """A training run writing into `output_dir`: `begin()`, `end(info)`, `fill()`.

    Local rank 0 of each node opens and closes its node's training record; only the main
    process (global rank 0) adds what it knows and fills the card.
    """

    def __init__(
        self,
        output_dir: os.PathLike[str] | str,
        timeout: float | None = None,
        executable: str | None = None,
        fill_args: Sequence[str] = (),
    ):
        self.output_dir = os.fspath(output_dir)
        self.call = Caller(timeout=timeout, executable=executable)
        self.fill_args = list(fill_args)
        self.run_key: str | None = None
        self.begun = False
        self.ended = False

    @property
    def is_main(self) -> bool:
        return global_rank() == 0

    @property
    def records_node(self) -> bool:
        return local_rank() == 0

    def _env(self) -> dict:
        env = dict(os.environ)
        if self.run_key and "CARDFILL_RUN_KEY" not in env:
            env["CARDFILL_RUN_KEY"] = self.run_key
        return env

    def begin(self) -> None:
        """Train begin: opens this node's training record (local rank 0 only)."""
        if (self.begun and not self.ended) or not self.records_node:
            return
        # A second training in the same process is a run of its own.
        self.begun, self.ended, self.run_key = True, False, None
        out = self.call(["probe", "--record", self.output_dir, "--begin", "--format", "json"])
        if out:
            try:
                self.run_key = json.loads(out).get("run_key")
            except ValueError:
                self.run_key = None

    def end(self, info: dict | None = None) -> None:
        """Train end: closes this node's record, with `info` from the main process."""
        if self.ended or not self.records_node:
            return
        self.ended = True
        args = ["probe", "--record", self.output_dir, "--end"]
        stdin = None
        if info is not None and self.is_main:
            args += ["--training", "-"]
            stdin = json.dumps(info, default=str)
        self.call(args, stdin=stdin, env=self._env())

    def update(self, info: dict) -> None:
        """After train end: replaces the training facts of this node's record (main process)."""
        if not self.ended or not self.records_node or not self.is_main:
            return
        args = ["probe", "--record", self.output_dir, "--training", "-"]
        self.call(args, stdin=json.dumps(info, default=str), env=self._env())

    def fill(self, *extra: str) -> bool:
        """Runs `cardfill fill OUTPUT_DIR` on the main process; True when the card was written."""
        if not self.is_main:
            return False
        return self.call(["fill", self.output_dir, *self.fill_args, *extra]) is not None


def jsonable(value: Any) -> Any:
    """A value as JSON can carry it: enums by value, other objects as text."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    inner = getattr(value, "value", None)
    if isinstance(inner, (str, int, float, bool)):
        return inner
    return str(value)
