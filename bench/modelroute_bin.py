"""The ``modelroute`` command the benchmarks start as a gateway.

By default the checkout's own ``.venv/bin/modelroute``. ``MODELROUTE_BIN`` replaces it with any
shell words that end in the program, e.g. a venv installed from another tree run on this one:
``MODELROUTE_BIN="env PYTHONPATH=$PWD/src /path/to/.venv/bin/modelroute"``. The scripts put it
after ``exec``, so the gateway stays the leader of the process group the harness measures.
Standard library only: the harness's python3 imports it.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modelroute_bin() -> str:
    """The shell words that run ``modelroute`` (``MODELROUTE_BIN`` or the checkout's venv)."""
    return os.environ.get("MODELROUTE_BIN") or str(ROOT / ".venv" / "bin" / "modelroute")


def missing() -> str | None:
    """None when the command's program is there, else why not (the harness then skips it)."""
    words = shlex.split(modelroute_bin())
    # ``env NAME=value ... program``: the program is the first word that is neither.
    program = next((w for w in words if w != "env" and "=" not in w), "")
    if program and (Path(program).exists() or shutil.which(program)):
        return None
    return f"no modelroute at {program!r} (set MODELROUTE_BIN)"
