"""Result folders: the tidy result table, loss curves, and the environment they were made in.

A results folder holds

* ``results.csv``: one row per estimator x size x missing fraction x seed (:data:`COLUMNS`);
* ``curves.csv``: the objective along each fit (:data:`CURVE_COLUMNS`);
* ``errors.csv``: each estimate's aligned error (:data:`ERROR_COLUMNS`);
* ``accuracy.csv`` (with ``--items``): new respondents' accuracy from a few items
  (:data:`ACCURACY_COLUMNS`);
* ``environment.json``: versions, device, CPU and git commit (:func:`environment`).

Rows are appended one at a time and flushed to disk, so an interrupted sweep keeps every row it
finished.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from irtbench import devices
from irtbench.metrics import RECOVERY_METRICS
from irtbench.threads import policy
from irtbench.version import __version__

__all__ = [
    "SCHEMA_VERSION",
    "KEY_COLUMNS",
    "COLUMNS",
    "CURVE_COLUMNS",
    "IncompatibleResults",
    "environment",
    "write_environment",
    "read_environment",
    "check_compatible",
    "read_results",
    "append_rows",
]

#: bumped whenever the columns or their meaning change; older folders are refused on resume.
SCHEMA_VERSION = 10  # 7: the 3PL (guessing columns), bounds of any model; 8: the 4PL (ceiling)
# and the M2PL's columns (intercept, loadings); 9: errors.csv's runaway column; 10: ll_gap

#: a cell of a sweep is identified by these columns.
KEY_COLUMNS = ("estimator", "model", "n_students", "n_questions", "missing", "seed")

#: diagnostics an estimator may put in ``Fit.diagnostics`` that become result columns.
DIAGNOSTIC_COLUMNS = ("converged", "grad_norm", "max_rhat", "min_ess", "divergences",
                      "ess_per_second", "n_runaway")

#: columns of results.csv, in order. ``opt_*`` columns (one per estimator option) follow them.
COLUMNS = (
    *KEY_COLUMNS,
    "backend",
    "device",
    "status",  # ok, skipped, timeout, oom, error
    "reason",
    "n_observed",
    "seconds",  # the whole fit: host matrix in -> every host array out, device synchronised
    "seconds_min",  # the fastest and slowest of the `repeats` timed fits (seconds: the median)
    "seconds_max",
    "repeats",
    "compute_seconds",  # its iterative part alone, data resident on the device
    "compile_seconds",  # one-time JIT compilation, kept out of seconds
    "threads",  # the threads every backend was held to, one per core the fit was pinned to
    "cores",  # those cores, space-separated
    "cpu_seconds",  # the fit's process CPU time, every thread
    "contention",  # the share of its cores' time that other processes used during the fit
    "n_iter",
    "responses_per_second",  # n_observed * n_iter / compute_seconds
    "peak_memory_bytes",
    "memory_method",  # cuda_max_allocated | jax_peak_bytes_in_use | rss_peak_growth
    "memory_estimate_bytes",  # the estimator's memory model (Estimator.memory_estimate)
    "final_loss",
    *RECOVERY_METRICS,
    *DIAGNOSTIC_COLUMNS,
    "gap_max",  # largest |estimate - exact optimum of the reference objective| (aligned)
    "gap_rms",  # its root mean square; both NaN for estimators with another objective
    "ll_gap",  # the marginal log-likelihood gap to the exact marginal optimum (irtbench.gaps)
)

#: curves.csv: the objective along each fit (seconds assume equal time per iteration) and,
#: at the estimator's snapshots, the aligned RMSE against the truth and (for estimators of the
#: reference objective) the RMS gap to its exact optimum (NaN elsewhere).
CURVE_COLUMNS = (*KEY_COLUMNS, "iteration", "seconds", "loss", "rmse_skill", "rmse_difficulty",
                 "gap_rms")

#: errors.csv: every aligned estimate's error (estimate - truth), for the error histograms;
#: ``runaway``: an item parameter of a question whose estimates ran away (the histograms leave
#: them out: their errors are unbounded)
ERROR_COLUMNS = (*KEY_COLUMNS, "kind", "index", "error", "extreme", "runaway")

RESULTS_FILE, CURVES_FILE, ENVIRONMENT_FILE = "results.csv", "curves.csv", "environment.json"
ERRORS_FILE = "errors.csv"
#: the few-item accuracy of new respondents after each fit (``irtbench run --items``:
#: :mod:`irtbench.subset.simulated`), one row per cell x items x strategy x estimate
ACCURACY_FILE = "accuracy.csv"
ACCURACY_COLUMNS = (*KEY_COLUMNS, "items", "strategy", "method", "status", "reason", "mae",
                    "kendall_tau", "n_respondents", "mixing_weight", "seconds_select",
                    "seconds_score")

#: environment entries that must match before new rows may join a folder's old ones.
_COMPATIBILITY_KEYS = ("schema_version", "irtbench", "python", "numpy", "torch", "jax",
                       "numpyro", "device_name")


class IncompatibleResults(ValueError):
    """A results folder was made by another version or in another environment."""


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def device_name(device: str) -> str:
    """A human name for a device request (``"cpu"``, ``"cuda:N"``, ``"auto"``): the GPU's model
    when it means a CUDA GPU here, else the CPU's."""
    try:
        name = devices.resolve(device, devices.cuda_device_count(), "torch")
    except (ValueError, ImportError):
        return _cpu_name()
    if devices.is_cuda(name):
        import torch

        return torch.cuda.get_device_name(devices.cuda_index(name))
    return _cpu_name()


def environment(device: str = "cpu", *, threads: int | None = None, jobs: int = 1,
                scheduler: str | None = None) -> dict[str, Any]:
    """Versions, platform, device name, CPU, git commit, and the thread policy with the cores,
    affinity and load average at the start (:func:`irtbench.threads.policy`), for
    ``environment.json``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "irtbench": __version__,
        "python": platform.python_version(),
        **{name: _version(name) for name in ("numpy", "pandas", "torch", "jax", "jaxlib",
                                             "optax", "numpyro", "mirt", "girth")},
        "device": device,
        "device_name": device_name(device),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "thread_policy": {**policy(threads, jobs), "scheduler": scheduler},
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "command": " ".join(sys.argv),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_environment(folder: Path, env: Mapping[str, Any]) -> None:
    (folder / ENVIRONMENT_FILE).write_text(json.dumps(env, indent=2) + "\n")


def read_environment(folder: Path) -> dict[str, Any]:
    path = Path(folder) / ENVIRONMENT_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise IncompatibleResults(f"{folder} has no {ENVIRONMENT_FILE}: not a results folder") from None
    except json.JSONDecodeError as error:
        raise IncompatibleResults(f"{path} is not valid JSON: {error}") from None


def check_compatible(old: Mapping[str, Any], new: Mapping[str, Any], folder: Path) -> None:
    """Raise :class:`IncompatibleResults` naming every difference that matters for resuming."""
    differences = [
        f"{key}: {old.get(key)!r} there, {new.get(key)!r} here"
        for key in _COMPATIBILITY_KEYS
        if old.get(key) != new.get(key)
    ]
    if differences:
        raise IncompatibleResults(
            f"{folder} was made in another environment ({'; '.join(differences)}); "
            "use another --out, or --force to mix the results anyway"
        )


def read_results(folder: Path | str) -> pd.DataFrame:
    """The result table of a folder (``results.csv``), checking that it has the key columns.
    A folder from before the 2PL (schema < 5) holds Rasch fits only: its rows get
    ``model = "rasch"``."""
    path = Path(folder) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {RESULTS_FILE} in {folder}")
    # consolidated (a copy): read_csv leaves a block per column, and a table of over 100
    # columns (every model's recovery metrics) would warn of fragmentation at every insert
    table = with_model(pd.read_csv(path)).copy()
    missing = [c for c in KEY_COLUMNS + ("status",) if c not in table.columns]
    if missing:
        raise IncompatibleResults(f"{path} lacks the column(s) {', '.join(missing)}")
    return table


def with_model(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a ``model`` column (``"rasch"`` where a folder from before the 2PL has
    none)."""
    return table if "model" in table else table.assign(model="rasch")


def read_curves(folder: Path | str) -> pd.DataFrame:
    path = Path(folder) / CURVES_FILE
    return with_model(pd.read_csv(path)) if path.is_file() else pd.DataFrame(
        columns=list(CURVE_COLUMNS))


def append_rows(path: Path, columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows to a CSV (header first if the file is new), flushed and synced to disk."""
    columns = list(columns)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        handle.flush()
        os.fsync(handle.fileno())
