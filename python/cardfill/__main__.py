"""`python -m cardfill ARGS`: runs the `cardfill` binary with ARGS."""

from __future__ import annotations

import os
import subprocess
import sys

from cardfill._find_bin import find_cardfill_bin


def main() -> None:
    try:
        cardfill = find_cardfill_bin()
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if sys.platform == "win32":
        sys.exit(subprocess.run([cardfill, *sys.argv[1:]]).returncode)
    os.execvp(cardfill, [cardfill, *sys.argv[1:]])


if __name__ == "__main__":
    main()
