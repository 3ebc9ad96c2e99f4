"""Each cell in a worker process of its own, pinned to its cores under the thread policy, with
the time limits: a worker past its budget is killed (``timeout``); in-process runs use SIGALRM.

Workers come from :mod:`multiprocessing` (a fork server), except inside a *daemonic* process
(a dask worker started the usual way, ``dask worker ADDRESS``), which multiprocessing forbids
to have children: there the worker is a plain child interpreter
(:func:`run_cell_in_subprocess`, ``python -m irtbench.harness.isolation``), with the same
thread policy, stages and time limits, the cell and its rows passed through pickle files."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from collections.abc import Sequence
from multiprocessing.connection import Connection

from typing import TYPE_CHECKING

from irtbench.estimators import Estimator
from irtbench.harness.cells import Cell, _cell_row, _simulate_cell
from irtbench.harness.limits import first_line
from irtbench.harness.runner import CellRows, check_cell, run_cell
from irtbench.threads import (
    allowed_cores,
    held_to,
)

if TYPE_CHECKING:
    from irtbench.like import Design


def _worker_context() -> multiprocessing.context.BaseContext:
    """Fresh worker processes: from a fork server that has imported irtbench and the backends
    once (cheap to start, no threads inherited: importing JAX starts no backend; also
    ``torch._dynamo``, which torch's optimizers import on their first step, 0.9 s here), or
    spawned where there is no fork server. Backends that are not installed are passed over."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["irtbench.harness", "torch", "torch._dynamo", "jax",
                                        "optax", "numpyro", "numpyro.infer"])
        return context
    return multiprocessing.get_context("spawn")


def _cell_worker(connection: Connection, cell: Cell, estimator: Estimator,
                 cores: list[int], threads: int | None, repeat: int,
                 like: Design | None = None, folder: Path | None = None,
                 items: tuple[int, ...] = ()) -> None:
    """In the worker: choose its cores, pin itself to them and hold every backend to their
    number (:func:`~irtbench.threads.held_to`, before JAX starts its backend, which sizes XLA's
    pool from the affinity), simulate the cell's data, run the cell, send its rows back."""
    try:
        with held_to(threads, cores) as chosen:
            rows = run_cell(cell, _simulate_cell(cell, like, estimator), estimator,
                            notify=connection.send,
                            repeat=repeat, cores=chosen, folder=folder, items=items)
    except Exception as error:  # noqa: BLE001 - a failure outside the fit (metrics) is a row too
        rows = ({**_cell_row(cell, estimator), "status": "error",
                 "reason": first_line(error)}, [], [])
    connection.send(rows)
    connection.close()


#: the stages no time budget limits: the worker's start, and the reference maximum of the
#: cell's data that the log-likelihood gap is measured against (not the fit's time)
UNLIMITED = frozenset({"start", "reference"})

#: the worker processes running now (killed all at once on an interrupt)
_LIVE_WORKERS: set[multiprocessing.process.BaseProcess] = set()
_LIVE_LOCK = threading.Lock()


def _kill_live_workers() -> None:
    with _LIVE_LOCK:
        for worker in list(_LIVE_WORKERS):
            if worker.is_alive():
                worker.kill()


def run_cell_isolated(cell: Cell, estimator: Estimator, *, time_budget: float | None = None,
                      cores: Sequence[int] | None = None, threads: int | None = None,
                      repeat: int = 1, like: Design | None = None,
                      folder: Path | None = None, items: tuple[int, ...] = ()) -> CellRows:
    """:func:`run_cell` in a worker process of its own, which simulates the cell's data itself
    (nothing of the matrix's size crosses a pipe), runs on ``threads`` of ``cores`` (default:
    this process's; ``threads`` None: those other processes leave idle) and sends the rows back
    (``like``: its data drawn like a user's, :func:`irtbench.like.simulate_like`).

    The worker is killed when its warm-up, or one of its fits with the evaluation that follows,
    runs past ``time_budget`` seconds (its start is not limited), which becomes a ``timeout``
    row; a worker that dies (a crash, the kernel's out-of-memory killer) becomes an ``oom`` or
    ``error`` row; either way the sweep goes on in a process that no fit has touched. Peak
    memory is the worker's own. An interrupt (Ctrl-C) kills the worker and reaches the caller."""
    row, refusal = check_cell(cell, estimator)  # no worker for a cell that cannot run
    if refusal is not None:
        return refusal, [], []
    cores = list(cores) if cores is not None else allowed_cores()
    context = _worker_context()
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=_cell_worker, daemon=True,
                             args=(sender, cell, estimator, cores, threads, repeat, like,
                                   folder, items))
    with _LIVE_LOCK:
        _LIVE_WORKERS.add(worker)
    worker.start()
    sender.close()
    rows, timed_out, stage = None, False, "start"
    try:
        while rows is None:  # the start is not limited; the warm-up and each fit are
            if not receiver.poll(None if stage in UNLIMITED else time_budget or None):
                timed_out = True
                break
            message = receiver.recv()
            if isinstance(message, str):
                stage = message
            else:
                rows = message
    except EOFError:  # the worker died before it could answer
        pass
    finally:
        if worker.is_alive() and rows is None:
            worker.kill()
        worker.join(timeout=30)
        receiver.close()
        with _LIVE_LOCK:
            _LIVE_WORKERS.discard(worker)
    if rows is not None:
        return rows
    if timed_out:
        return {**row, "status": "timeout",
                "reason": f"the fit ran past the time budget of {time_budget:g} s"}, [], []
    if worker.exitcode == -signal.SIGKILL:
        return {**row, "status": "oom",
                "reason": "the worker was killed (SIGKILL: the system ran out of memory)"}, [], []
    return {**row, "status": "error",
            "reason": f"the worker died with exit code {worker.exitcode}"}, [], []


def _limited_rows(row: dict, stage_messages: queue.Queue, time_budget: float | None
                  ) -> CellRows | None:
    """Read stages and the final rows from ``stage_messages`` (None: the worker ended) with the
    time limits of :func:`run_cell_isolated`; a timeout row, or None when the worker ended."""
    stage = "start"
    while True:
        try:
            message = stage_messages.get(
                timeout=None if stage in UNLIMITED else time_budget or None)
        except queue.Empty:
            return {**row, "status": "timeout",
                    "reason": f"the fit ran past the time budget of {time_budget:g} s"}, [], []
        if message is None:
            return None
        stage = message


def run_cell_in_subprocess(cell: Cell, estimator: Estimator, *,
                           time_budget: float | None = None, threads: int | None = None,
                           repeat: int = 1, like: Design | None = None,
                           folder: Path | None = None, items: tuple[int, ...] = ()
                           ) -> CellRows:
    """:func:`run_cell_isolated` for a daemonic process: the worker is a child interpreter
    started by :mod:`subprocess` (``python -m irtbench.harness.isolation IN OUT``), which
    reports each stage as a line on its standard output and writes its rows to ``OUT``; the
    same time limits (its start not limited, its warm-up and each fit limited) and the same
    rows for a timeout or a death."""
    row, refusal = check_cell(cell, estimator)
    if refusal is not None:
        return refusal, [], []
    with tempfile.TemporaryDirectory(prefix="irtbench-cell-") as folder:
        task, result = Path(folder) / "cell.pickle", Path(folder) / "rows.pickle"
        task.write_bytes(pickle.dumps((cell, estimator, allowed_cores(), threads, repeat, like,
                                       folder, items)))
        child = subprocess.Popen([sys.executable, "-m", "irtbench.harness.isolation",
                                  str(task), str(result)], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        stages: queue.Queue = queue.Queue()

        def read() -> None:
            for line in child.stdout:
                if line.startswith("stage "):
                    stages.put(line[6:].strip())
            stages.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            limited = _limited_rows(row, stages, time_budget)
        finally:
            if child.poll() is None and not result.exists():
                child.kill()
            child.wait(timeout=30)
        if limited is not None:
            return limited
        if result.exists():
            return pickle.loads(result.read_bytes())
    if child.returncode == -signal.SIGKILL:
        return {**row, "status": "oom",
                "reason": "the worker was killed (SIGKILL: the system ran out of memory)"}, [], []
    return {**row, "status": "error",
            "reason": f"the worker died with exit code {child.returncode}"}, [], []


def _subprocess_worker(task: Path, result: Path) -> None:
    """The child of :func:`run_cell_in_subprocess`: its stages as lines, its rows pickled."""
    cell, estimator, cores, threads, repeat, like, folder, items = pickle.loads(
        task.read_bytes())

    def notify(stage: str) -> None:
        print(f"stage {stage}", flush=True)

    try:
        with held_to(threads, cores) as chosen:
            rows = run_cell(cell, _simulate_cell(cell, like, estimator), estimator, notify=notify,
                            repeat=repeat, cores=chosen, folder=folder, items=items)
    except Exception as error:  # noqa: BLE001 - a failure outside the fit is a row too
        rows = ({**_cell_row(cell, estimator), "status": "error",
                 "reason": first_line(error)}, [], [])
    partial = result.with_suffix(".partial")
    partial.write_bytes(pickle.dumps(rows))
    os.replace(partial, result)  # whole or absent


if __name__ == "__main__":
    _subprocess_worker(Path(sys.argv[1]), Path(sys.argv[2]))
