"""What the peers run in an interpreter of their own share (``py-irt``, ``theta-irt``, the torch
family's ``irtorch-*`` and ``torch-measure-*``): where a package's own virtual environment is,
whether an interpreter can import a package, the caller's thread count, the system-wide clock
both sides read, and one run of a runner script with its data through temporary ``.npz``
files.

A runner script imports nothing of irtbench: it reads ``IN.npz``, writes ``OUT.npz`` and is
started as ``python -I RUNNER IN.npz OUT.npz SPAWNED`` (``SPAWNED`` the caller's
:func:`monotonic` just before the start, so the child can time its own start-up)."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["caller_threads", "importable_by", "monotonic", "run_runner", "venv_interpreter"]

#: the repository's root, where ``make`` builds the peers' virtual environments
REPOSITORY = Path(__file__).resolve().parents[2]


def monotonic() -> float:
    """The system-wide monotonic clock that the child reads too."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def caller_threads() -> int:
    """The caller's thread count: torch's where torch is loaded (the thread policy set it),
    else the cores this process may run on (the policy pinned it to as many)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def venv_interpreter(folder: str, variable: str, python: object = None) -> Path:
    """A peer's interpreter: ``python`` if given, else the environment variable ``variable``,
    else ``FOLDER/bin/python`` in the repository root if it exists, else in the current
    directory (which may not exist either: :func:`importable_by` then says so)."""
    if python:
        return Path(str(python))
    if os.environ.get(variable):
        return Path(os.environ[variable])
    local = Path(folder, "bin", "python")
    return REPOSITORY / local if (REPOSITORY / local).exists() else Path.cwd() / local


@functools.cache
def importable_by(python: Path, module: str) -> str | None:
    """Why ``python`` cannot import ``module`` (None when it can): absent, failing, or without
    it. Asked of the interpreter in a child process (``-I``: no user site, no current
    folder)."""
    if not python.exists():
        return f"the interpreter {python} (not found)"
    check = (f"import importlib.util, sys; "
             f"sys.exit(importlib.util.find_spec({module!r}) is None)")
    try:
        done = subprocess.run([str(python), "-I", "-c", check], check=False,
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the interpreter {python} ({error})"
    return None if done.returncode == 0 else f"{module} (not importable by {python})"


def run_runner(python: Path | str, runner: Path, payload: dict[str, Any], *, what: str
               ) -> tuple[dict[str, np.ndarray], float]:
    """Run ``runner`` with ``python`` on ``payload`` (written to ``IN.npz``) and return what it
    wrote to ``OUT.npz`` and the child's seconds from start to exit. ``RuntimeError`` with the
    child's error line when it fails (``what`` names it; :func:`error_line`)."""
    with tempfile.TemporaryDirectory(prefix="irtbench-child-") as folder:
        source, target = Path(folder, "in.npz"), Path(folder, "out.npz")
        np.savez(source, **payload)
        spawned = monotonic()
        done = subprocess.run([str(python), "-I", str(runner), str(source), str(target),
                               repr(spawned)], check=False, capture_output=True, text=True)
        seconds = monotonic() - spawned
        if done.returncode != 0:
            raise RuntimeError(f"{what}'s runner failed (exit {done.returncode}): "
                               f"{error_line(done.stderr)}")
        with np.load(target) as out:
            return {key: out[key] for key in out.files}, seconds


def error_line(stderr: str) -> str:
    """The line of a child's stderr that names its error: the last one that reads
    ``SomethingError: ...`` (a plain traceback's last line; a rich-formatted traceback, as
    py-irt's, ends in box borders and local variables instead), else the last line."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    named = [line for line in lines
             if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b.*:", line.strip("│| "))]
    chosen = named[-1] if named else (lines[-1] if lines else "(no output on stderr)")
    return chosen.strip("│| ")
