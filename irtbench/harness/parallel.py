"""Running many cells: one after another in this process, several at once each in a worker on
its own share of the cores, or on a dask.distributed cluster (one cell per dask worker process
at a time)."""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from irtbench.estimators import Estimator, Fit, reference_optimum
from irtbench.harness.cells import Cell, _cell_row, _simulate_cell, simulation_settings
from irtbench.harness.isolation import (
    _kill_live_workers,
    run_cell_in_subprocess,
    run_cell_isolated,
)
from irtbench.harness.limits import first_line
from irtbench.harness.runner import CellRows, check_cell, run_cell
from irtbench.threads import (
    choose_cores,
    split_cores,
    thread_limits,
)

if TYPE_CHECKING:
    from irtbench.like import Design


# -- running many cells: cores of its own for each, or a dask cluster ----------------------------
class CellTask(NamedTuple):
    """A cell to run and how: the estimator (its options set) and the run's settings."""

    cell: Cell
    estimator: Estimator
    time_budget: float | None
    threads: int | None
    repeat: int
    #: the design of data like a user's (``irtbench run --like``), None: simulated as usual
    like: Design | None = None
    #: the results folder, whose ``references.csv`` keeps each data's reference maximum
    #: (:mod:`irtbench.harness.references`); None: computed for every cell
    folder: Path | None = None
    #: the sweep's ``--items``: the few-item accuracy measured after each fit (none: empty)
    items: tuple[int, ...] = ()


def _run_local(tasks: Iterable[CellTask], slots: list[list[int]]
               ) -> Iterator[tuple[Cell, CellRows]]:
    """Run the tasks ``len(slots)`` at a time, each in a worker of its own on one free slot of
    cores (so that parallel cells do not share a core); yield them as they finish. Closing
    the generator (an interrupt) kills every running worker and cancels the rest."""
    free: queue.Queue[list[int]] = queue.Queue()
    for slot in slots:
        free.put(slot)

    stopping = threading.Event()

    def run(task: CellTask) -> tuple[Cell, CellRows]:
        cores = free.get()
        if stopping.is_set():
            free.put(cores)
            return task.cell, ({**_cell_row(task.cell, task.estimator), "status": "error",
                                "reason": "interrupted"}, [], [])
        try:
            return task.cell, run_cell_isolated(task.cell, task.estimator,
                                                time_budget=task.time_budget, cores=cores,
                                                threads=task.threads, repeat=task.repeat,
                                                like=task.like, folder=task.folder,
                                                items=task.items)
        finally:
            free.put(cores)

    with ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="irtbench-cell") as pool:
        futures = [pool.submit(run, task) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            stopping.set()
            for future in futures:
                future.cancel()
            _kill_live_workers()


#: one cell at a time in a dask worker process, whatever its number of threads
_ONE_CELL_AT_A_TIME = threading.Lock()


def run_dask_task(task: CellTask) -> CellRows:
    """A task as a dask worker runs it: one at a time per worker process, each in a worker
    process of its own on the dask worker's cores: from multiprocessing
    (:func:`run_cell_isolated`), or, in a daemonic dask worker (``dask worker ADDRESS``'s
    default), a child interpreter (:func:`run_cell_in_subprocess`)."""
    isolated = (run_cell_in_subprocess if multiprocessing.current_process().daemon
                else run_cell_isolated)
    with _ONE_CELL_AT_A_TIME:
        return isolated(task.cell, task.estimator, time_budget=task.time_budget,
                        threads=task.threads, repeat=task.repeat, like=task.like,
                        folder=task.folder, items=task.items)


#: how long a sweep waits for a dask scheduler to answer before the one-line error
CONNECT_SECONDS = 30


def _run_dask(tasks: Iterable[CellTask], address: str) -> Iterator[tuple[Cell, CellRows]]:
    """Send the tasks to the ``dask.distributed`` scheduler at ``address``; yield them as they
    finish. Closing the generator cancels what has not finished."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise ValueError("--scheduler needs dask.distributed: pip install 'irtbench[dask]'") from None
    try:
        client = Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as error:
        raise ValueError(f"no dask scheduler at {address}: {first_line(error)}") from None
    futures = {}
    try:
        for task in tasks:
            futures[client.submit(run_dask_task, task, pure=False)] = task
        for future in dask_completed(list(futures)):
            task = futures[future]
            try:
                yield task.cell, future.result()
            except Exception as error:  # noqa: BLE001 - a lost dask worker is a row too
                yield task.cell, ({**_cell_row(task.cell, task.estimator), "status": "error",
                                   "reason": first_line(error)}, [], [])
    finally:
        client.cancel(list(futures))
        client.close()


def check_parallelism(*, threads: int | None, jobs: int, repeat: int, scheduler: str | None,
                      isolate: bool) -> list[list[int]]:
    """The core groups of ``jobs`` parallel cells (:func:`~irtbench.threads.split_cores`), after
    checking that ``threads`` fits in each and that the settings go together."""
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat={repeat!r} must be a positive integer")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be a positive integer")
    if scheduler is not None and (jobs != 1 or not isolate):
        raise ValueError("a dask scheduler runs the cells itself: it takes neither jobs > 1 "
                         "nor an in-process sweep")
    if not isolate and jobs != 1:
        raise ValueError("an in-process sweep runs one cell at a time (jobs=1)")
    slots = split_cores(jobs)
    smallest = min(len(slot) for slot in slots)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or not 1 <= threads <= smallest):
        raise ValueError(f"threads={threads!r} must be between 1 and the {smallest} core(s) "
                         f"of each of the {jobs} parallel cell(s)")
    return slots


def _run_in_process(tasks: Iterable[CellTask]) -> Iterator[tuple[Cell, CellRows]]:
    """The tasks one after the other in this process (``isolate=False``): every estimator of a
    (model, size, missing, seed) on one simulation, the exact optimum computed once for it, each
    fit held to its threads (not pinned: this process's affinity stays the caller's)."""
    data_key, data = None, None
    optimum: dict[str, Fit] = {}  # the exact optimum of the reference objective for ``data``

    def exact_optimum() -> Fit:
        if "fit" not in optimum:
            optimum["fit"] = reference_optimum(data.responses)
        return optimum["fit"]

    for task in tasks:
        cell = task.cell
        row, refusal = check_cell(cell, task.estimator)
        if refusal is not None:
            yield cell, (refusal, [], [])
            continue
        settings = simulation_settings(cell.model, task.estimator)
        key = (cell.model, cell.n_students, cell.n_questions, cell.missing, cell.seed,
               tuple(sorted(settings.items())))
        if key != data_key:
            data_key, data = key, _simulate_cell(cell, task.like, task.estimator)
            optimum.clear()
        cores = choose_cores(task.threads)
        with thread_limits(len(cores)):
            yield cell, run_cell(cell, data, task.estimator, time_budget=task.time_budget,
                                 optimum=exact_optimum, repeat=task.repeat, cores=cores,
                                 folder=task.folder, items=task.items)
