"""Sweeps: sizes x missing fractions x seeds x estimators -> one tidy row per cell.

For each cell, in a worker process of its own (:func:`run_cell_isolated`) pinned to its cores
under the thread policy of :mod:`irtbench.threads`: simulate (untimed; the seed fixes the data,
so every estimator of a size x missing x seed sees the same), warm the estimator up on the
cell's data (a short, untimed fit: same shapes, same code paths), fit once through the one clock
of :meth:`irtbench.Estimator.fit` (``seconds`` end to end, ``compute_seconds`` of the iterative
part, ``compile_seconds`` apart) and evaluate recovery (untimed). This module knows estimators
only through the registry and the interface: it imports no concrete estimator. Each finished
row is appended to ``results.csv`` at once, so an interrupted sweep keeps every row it
finished; ``resume=True`` skips the cells already there.

Peak memory (``peak_memory_bytes``; ``memory_method`` says which measure a row used), measured
inside the cell's worker:

* ``cuda_max_allocated``: ``torch.cuda.max_memory_allocated`` over the fit (torch on CUDA);
* ``jax_peak_bytes_in_use``: the JAX device's ``peak_bytes_in_use`` (JAX on GPU; the worker's
  high-water mark, its warm-up included);
* ``rss_peak_growth``: on the CPU, the growth of the worker's peak resident set size over the
  fit (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` after the heap's free memory is
  handed back with ``malloc_trim``). It includes the data copied for the fit.

A worker whose warm-up or fit runs past ``time_budget`` seconds is killed and its cell recorded
with status ``timeout``; with ``isolate=False`` (``irtbench run --in-process``) the cells run in
this process and the limit is a SIGALRM raised in the main thread instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from irtbench import devices
from irtbench.threads import (
    CONTENDED,
    Usage,
    allowed_cores,
    choose_cores,
    held_to,
    split_cores,
    thread_limits,
)
from irtbench.estimators import Estimator, Fit, estimators, get_estimator, reference_optimum
from irtbench.metrics import (
    aligned_errors_by_part,
    optimum_gap,
    recovery,
    reference_gradient,
    trace_rmse,
)
from irtbench.models import ITEM_PARAMETERS, MODELS, extremes, get_model
from irtbench.responses import COMPACT_ABOVE, observed_count, size_label
from irtbench.results import (
    COLUMNS,
    CURVE_COLUMNS,
    CURVES_FILE,
    DIAGNOSTIC_COLUMNS,
    ENVIRONMENT_FILE,
    ERROR_COLUMNS,
    ERRORS_FILE,
    KEY_COLUMNS,
    RESULTS_FILE,
    append_rows,
    check_compatible,
    environment,
    read_environment,
    read_results,
    with_model,
    write_environment,
)
from irtbench.simulate import Dataset, simulate

__all__ = ["Cell", "sweep", "summarize", "result_columns", "DEFAULT_SIZES", "QUICK_SIZES"]

DEFAULT_SIZES = ((100, 100), (1000, 100), (1000, 1000))
#: the models a sweep simulates and fits unless told (the 3PL on demand)
DEFAULT_MODELS = ("rasch", "2pl")
QUICK_SIZES = ((100, 20), (200, 50))
MAX_CURVE_POINTS = 200
#: a cell is skipped when its estimated peak exceeds this share of the free memory
MEMORY_HEADROOM = 0.9


class Cell(NamedTuple):
    """One fit of a sweep."""

    estimator: str
    model: str
    n_students: int
    n_questions: int
    missing: float
    seed: int

    def label(self) -> str:
        missing = f" missing={self.missing:g}" if self.missing else ""
        model = "" if self.model == MODELS[0] else f" {self.model}"
        return (f"{self.estimator}{model} {size_label(self.n_students, self.n_questions)}"
                f"{missing} seed={self.seed}")


class FitTimeout(Exception):
    """A fit ran past the sweep's time budget."""


def result_columns() -> list[str]:
    """The columns of results.csv: :data:`irtbench.results.COLUMNS` then one ``opt_*`` per option
    of any registered estimator (fixed for a version, so every row has the same columns)."""
    options = sorted({key for name in estimators() for key in get_estimator(name).defaults})
    return [*COLUMNS, *(f"opt_{key}" for key in options)]


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`FitTimeout` in the main thread after ``seconds`` (no limit if None/0)."""
    usable = (
        seconds
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise FitTimeout(f"the fit ran past the time budget of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


# -- peak memory --------------------------------------------------------------------------
def _proc_status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _trim_heap() -> None:
    """Hand the heap's freed memory back to the OS (glibc's ``malloc_trim``), so that a fit
    reusing memory an earlier one freed shows as growth of the resident set, not as 0."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Measures the peak memory of one fit; see the module docstring for the three methods."""

    def __enter__(self) -> PeakMemory:
        import torch

        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        _trim_heap()
        try:  # "5" resets the peak RSS (VmHWM) to the current RSS
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        self.rss_before = _proc_status_bytes("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.rss_peak = _proc_status_bytes("VmHWM")

    def measure(self, device: str, backend: str) -> tuple[float, str]:
        if devices.is_cuda(device) and backend == "torch" and self.cuda:
            import torch

            return float(torch.cuda.max_memory_allocated()), "cuda_max_allocated"
        if devices.is_cuda(device):
            import jax

            stats = jax.devices("gpu")[devices.cuda_index(device)].memory_stats() or {}
            return float(stats.get("peak_bytes_in_use", math.nan)), "jax_peak_bytes_in_use"
        if self.rss_before is None or self.rss_peak is None:
            return math.nan, "unavailable"
        return float(max(self.rss_peak - self.rss_before, 0)), "rss_peak_growth"


def _gb(value: float) -> str:
    return f"{value / 1e9:.2f} GB"


def _is_out_of_memory(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}".lower()
    return isinstance(error, MemoryError) or "out of memory" in text or "resource_exhausted" in text


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


# -- one cell -------------------------------------------------------------------------------
#: what a cell gives: its result row, its curve rows, its error rows
CellRows = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]


def _curve(cell: Cell, fit: Fit, data: Dataset, masks: tuple[np.ndarray, np.ndarray],
           optimum: Fit | None) -> list[dict[str, Any]]:
    """The loss at up to MAX_CURVE_POINTS iterations plus every snapshot of ``fit.trace`` with
    its aligned RMSE against the truth and (``optimum`` given) its RMS gap to the exact optimum
    of the reference objective; seconds assume equal time per iteration."""
    n = len(fit.losses)
    if n == 0:
        return []
    errors = {k: trace_rmse(skill, {"difficulty": difficulty, **(extra[0] if extra else {})},
                            data, masks)
              for k, skill, difficulty, *extra in fit.trace}
    gaps = {} if optimum is None else {
        k: optimum_gap(skill, difficulty, optimum.skill, optimum.difficulty, masks)[1]
        for k, skill, difficulty, *_ in fit.trace}
    thinned = np.linspace(1, n, min(n, MAX_CURVE_POINTS)).round().astype(int)
    iterations = sorted(set(thinned.tolist()) | set(errors))
    return [
        {**cell._asdict(), "iteration": k, "seconds": fit.seconds * k / n,
         "loss": float(fit.losses[k - 1]),
         "rmse_skill": errors.get(k, (math.nan, math.nan))[0],
         "rmse_difficulty": errors.get(k, (math.nan, math.nan))[1],
         "gap_rms": gaps.get(k, math.nan)}
        for k in iterations if 1 <= k <= n
    ]


def convergence(fit: Fit, data: Dataset, masks: tuple[np.ndarray, np.ndarray],
                optimum: Fit | None, alpha: float) -> dict[str, float]:
    """``grad_norm`` (L2 norm of the reference objective's gradient at the fit, :func:`~irtbench.
    metrics.reference_gradient`), ``gap_max`` and ``gap_rms`` (to the exact optimum): for the
    estimators whose objective is the reference's (``optimum`` given); otherwise the fit's own
    ``grad_norm`` diagnostic, if any, and NaN gaps."""
    if optimum is None:
        return {"grad_norm": fit.diagnostics.get("grad_norm", math.nan),
                "gap_max": math.nan, "gap_rms": math.nan}
    grad_skill, grad_difficulty = reference_gradient(data.responses, fit.skill, fit.difficulty,
                                                     alpha)
    gap_max, gap_rms = optimum_gap(fit.skill, fit.difficulty, optimum.skill,
                                   optimum.difficulty, masks)
    return {"grad_norm": float(np.sqrt(grad_skill @ grad_skill + grad_difficulty @ grad_difficulty)),
            "gap_max": gap_max, "gap_rms": gap_rms}


def _errors(cell: Cell, fit: Fit, data: Dataset, masks: tuple[np.ndarray, np.ndarray]
            ) -> list[dict[str, Any]]:
    """Aligned errors of every skill and every item parameter of the model (extreme ones
    flagged)."""
    key = cell._asdict()
    return [
        {**key, "kind": kind, "index": i, "error": f"{e:.6g}", "extreme": bool(x)}
        for kind, values in aligned_errors_by_part(fit, data, masks).items()
        for i, (e, x) in enumerate(zip(values, masks[0] if kind == "skill" else masks[1]))
    ]


def _cell_row(cell: Cell, estimator: Estimator, data: Dataset | None = None) -> dict[str, Any]:
    """The identity columns of a cell's row: key, backend, options, device, and the observed
    count of its data (when they are at hand)."""
    cls = type(estimator)
    options = {**cls.defaults, **estimator.options}
    counted = {} if data is None else {"n_observed": observed_count(data.responses)}
    return {**cell._asdict(), "backend": cls.backend, **counted,
            **{f"opt_{key}": value for key, value in options.items()},
            "device": str(options.get("device", "cpu"))}


def check_cell(cell: Cell, estimator: Estimator, data: Dataset | None = None
               ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Whether a cell can run here: ``(row, None)``, or ``(row, refusal)`` with the row of a
    backend not installed, a device that cannot be had, the estimator's own ``skip``, a memory
    model that needs more than ``MEMORY_HEADROOM`` of the device's free memory, or simulated
    responses that alone would not fit."""
    cls = type(estimator)
    row = _cell_row(cell, estimator, data)

    def refuse(status: str, reason: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return row, {**row, "status": status, "reason": reason}

    if not cls.available():
        return refuse("skipped", f"not installed: {cls.install_command()}")
    problem = _data_problem(cell)
    if problem:
        return refuse("skipped", problem)
    try:
        row["device"] = device = estimator.resolve_device()
    except ValueError as error:
        return refuse("error", _first_line(error))
    skip, why = estimator.skip(cell.n_students, cell.n_questions, device)
    if skip:
        return refuse("skipped", why)
    estimate = estimator.memory_estimate(cell.n_students, cell.n_questions, cell.missing)
    row["memory_estimate_bytes"] = estimate
    available = devices.free_memory(device)
    if estimate > MEMORY_HEADROOM * available:
        return refuse("skipped", f"its memory model needs about {_gb(estimate)}; "
                                 f"{_gb(available)} available on {device}")
    return row, None


def run_cell(
    cell: Cell,
    data: Dataset,
    estimator: Estimator,
    *,
    time_budget: float | None = None,
    optimum: Callable[[], Fit] | None = None,
    notify: Callable[[str], None] | None = None,
    repeat: int = 1,
    cores: Sequence[int] | None = None,
) -> CellRows:
    """Fit one cell; return its result row, its curve rows and its error rows.

    After an untimed warm-up on the cell's data, the fit runs ``repeat`` times; the row keeps
    the median fit (the lower middle one for an even count) with ``seconds_min`` and
    ``seconds_max`` of all, the practice of pyperf and pytest-benchmark. Each fit is measured
    by :class:`~irtbench.threads.Usage` on ``cores`` (the cores it may use; default: this
    process's): ``cpu_seconds`` (the median fit's), ``threads`` (their number, which the caller
    holds every backend to) and ``contention``, over the warm-up and every fit together (the
    kernel's counters tick 100 times a second: a longer window than one short fit).

    ``optimum`` returns the exact optimum of the reference objective for ``data`` (default:
    :func:`~irtbench.estimators.jml_newton.reference_optimum`, computed here), used for the
    estimators whose objective is the reference's (``minimises_reference_objective()``).
    ``notify("warm-up")`` and ``notify("fit")`` are called as those stages begin (``"fit"``
    before every repeat)."""
    notify = notify or (lambda stage: None)
    cores = list(cores) if cores is not None else allowed_cores()
    cls = type(estimator)
    options = {**cls.defaults, **estimator.options}
    row, refusal = check_cell(cell, estimator, data)
    if refusal is not None:
        return refusal, [], []

    def not_fitted(status: str, reason: str) -> CellRows:
        return {**row, "status": status, "reason": reason}, [], []

    timed: list[tuple[Fit, Usage]] = []
    try:
        with Usage(cores) as whole:  # contention over the warm-up and every fit (see Usage)
            notify("warm-up")
            with time_limit(time_budget):
                estimator.warm_up(data.responses)  # the cell's shapes: its first fit is warm
            with PeakMemory() as memory:
                for _ in range(repeat):
                    notify("fit")
                    with Usage(cores) as usage, time_limit(time_budget):
                        fit = estimator.fit(data.responses)
                    timed.append((fit, usage))
    except FitTimeout as error:
        return not_fitted("timeout", str(error))
    except Exception as error:  # noqa: BLE001 - any failure becomes a row, the sweep goes on
        return not_fitted("oom" if _is_out_of_memory(error) else "error", _first_line(error))
    timed.sort(key=lambda pair: pair[0].seconds)
    fit, usage = timed[(len(timed) - 1) // 2]
    peak, method = memory.measure(fit.device, cls.backend)
    row.update(
        device=fit.device,
        status="ok",
        reason="",
        seconds=fit.seconds,
        seconds_min=timed[0][0].seconds,
        seconds_max=timed[-1][0].seconds,
        repeats=len(timed),
        compute_seconds=fit.compute_seconds,
        compile_seconds=fit.compile_seconds,
        threads=len(cores),
        cores=" ".join(map(str, cores)),
        cpu_seconds=usage.cpu_seconds,
        contention=whole.contention,
        n_iter=fit.n_iter,
        # n_iter 0: a peer package that does not report its iterations
        responses_per_second=(row["n_observed"] * fit.n_iter / fit.compute_seconds
                              if fit.n_iter else float("nan")),
        peak_memory_bytes=peak,
        memory_method=method,
        final_loss=fit.final_loss,
        **recovery(fit, data),
        **{key: fit.diagnostics.get(key) for key in DIAGNOSTIC_COLUMNS},
    )
    masks = extremes(data.responses)
    exact = None
    if estimator.minimises_reference_objective():
        exact = optimum() if optimum is not None else reference_optimum(data.responses)
    alpha = options.get("alpha", get_estimator("torch-adam").defaults["alpha"])
    row.update(convergence(fit, data, masks, exact, float(alpha)))
    return row, _curve(cell, fit, data, masks, exact), _errors(cell, fit, data, masks)


# -- one cell in a worker process of its own ------------------------------------------------


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


def _simulate_cell(cell: Cell) -> Dataset:
    """The cell's data (compact int8 above ``COMPACT_ABOVE`` cells); its seed fixes them, so
    every estimator of a (model, size, missing, seed) sees the same ones wherever it runs."""
    compact = cell.n_students * cell.n_questions > COMPACT_ABOVE
    return simulate(cell.n_students, cell.n_questions, seed=cell.seed, missing=cell.missing,
                    compact=compact, model=cell.model)


def _data_problem(cell: Cell) -> str:
    """Why the cell's simulated responses alone would not fit in memory here ('' when they do)."""
    cells = cell.n_students * cell.n_questions
    need = cells * (1 if cells > COMPACT_ABOVE else 4) * 1.5  # the matrix, the simulation's blocks
    available = devices.free_memory("cpu")
    if need > MEMORY_HEADROOM * available:
        return (f"the simulated responses alone need about {_gb(need)}; "
                f"{_gb(available)} available")
    return ""


def _cell_worker(connection: Connection, cell: Cell, estimator: Estimator,
                 cores: list[int], threads: int | None, repeat: int) -> None:
    """In the worker: choose its cores, pin itself to them and hold every backend to their
    number (:func:`~irtbench.threads.held_to`, before JAX starts its backend, which sizes XLA's
    pool from the affinity), simulate the cell's data, run the cell, send its rows back."""
    try:
        with held_to(threads, cores) as chosen:
            rows = run_cell(cell, _simulate_cell(cell), estimator, notify=connection.send,
                            repeat=repeat, cores=chosen)
    except Exception as error:  # noqa: BLE001 - a failure outside the fit (metrics) is a row too
        rows = ({**_cell_row(cell, estimator), "status": "error",
                 "reason": _first_line(error)}, [], [])
    connection.send(rows)
    connection.close()


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
                      repeat: int = 1) -> CellRows:
    """:func:`run_cell` in a worker process of its own, which simulates the cell's data itself
    (nothing of the matrix's size crosses a pipe), runs on ``threads`` of ``cores`` (default:
    this process's; ``threads`` None: those other processes leave idle) and sends the rows back.

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
                             args=(sender, cell, estimator, cores, threads, repeat))
    with _LIVE_LOCK:
        _LIVE_WORKERS.add(worker)
    worker.start()
    sender.close()
    rows, timed_out, stage = None, False, "start"
    try:
        while rows is None:  # the start is not limited; the warm-up and each fit are
            if not receiver.poll(None if stage == "start" else time_budget or None):
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


# -- running many cells: cores of its own for each, or a dask cluster ----------------------------
class CellTask(NamedTuple):
    """A cell to run and how: the estimator (its options set) and the run's settings."""

    cell: Cell
    estimator: Estimator
    time_budget: float | None
    threads: int | None
    repeat: int


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
                                                threads=task.threads, repeat=task.repeat)
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
    process of its own (:func:`run_cell_isolated`) on the dask worker's cores."""
    if multiprocessing.current_process().daemon:
        return {**_cell_row(task.cell, task.estimator), "status": "error", "reason": (
            "this dask worker is a daemonic process, which cannot start irtbench's worker "
            "processes: start the dask workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")}, [], []
    with _ONE_CELL_AT_A_TIME:
        return run_cell_isolated(task.cell, task.estimator, time_budget=task.time_budget,
                                 threads=task.threads, repeat=task.repeat)


def _run_dask(tasks: Iterable[CellTask], address: str) -> Iterator[tuple[Cell, CellRows]]:
    """Send the tasks to the ``dask.distributed`` scheduler at ``address``; yield them as they
    finish. Closing the generator cancels what has not finished."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise ValueError("--scheduler needs dask.distributed: pip install 'irtbench[dask]'") from None
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError) as error:
        raise ValueError(f"no dask scheduler at {address}: {_first_line(error)}") from None
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
                                   "reason": _first_line(error)}, [], [])
    finally:
        client.cancel(list(futures))
        client.close()


# -- the sweep ------------------------------------------------------------------------------
def _cells(
    sizes: Sequence[tuple[int, int]], names: Sequence[str], seeds: Sequence[int],
    missing: Sequence[float], models: Sequence[str] = ("rasch",), *, by_default: bool = False,
) -> list[Cell]:
    """Small sizes first; all estimators of a (model, size, missing, seed) share one
    simulation; each model with the estimators that fit it (``by_default``: that a sweep
    with no estimator named fits it to, ``Estimator.default_sweep_models``)."""
    def fits(name: str, model: str) -> bool:
        cls = get_estimator(name)
        chosen = cls.default_sweep_models if by_default else None
        return model in (cls.models if chosen is None else chosen)

    return [
        Cell(name, model, n, m, float(fraction), int(seed))
        for n, m in sizes for model in models for fraction in missing for seed in seeds
        for name in names if fits(name, model)
    ]


def _done_cells(folder: Path) -> set[Cell]:
    path = folder / RESULTS_FILE
    if not path.is_file() or path.stat().st_size == 0:
        return set()
    table = read_results(folder)
    return {
        Cell(str(r.estimator), str(r.model), int(r.n_students), int(r.n_questions),
             float(r.missing), int(r.seed))
        for r in table[list(KEY_COLUMNS)].itertuples(index=False)
    }


#: estimated peaks from this size up are printed before their cell
LOUD_ESTIMATE = 1e9


def _write(folder: Path | None, columns: list[str], row: dict[str, Any],
           after_row: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    """Append ``row`` to the folder's results (flushed at once) and call ``after_row``."""
    if folder is not None:
        append_rows(folder / RESULTS_FILE, columns, [row])
    if after_row is not None:
        after_row(row)
    return row


def estimator_options(name: str, options: Mapping[str, Any], device: str) -> dict[str, Any]:
    """Per-estimator options: ``"name:key"`` entries for one, plain ``"key"`` entries for all
    that have the option; the sweep's device for every estimator with a device option."""
    defaults = get_estimator(name).defaults
    chosen = {"device": device} if "device" in defaults else {}
    chosen.update({"progress": False} if "progress" in defaults else {})
    for key, value in options.items():
        target, sep, option = key.rpartition(":")
        if sep and target == name:
            chosen[option] = value
        elif not sep and key in defaults:
            chosen[key] = value
    return chosen


def prepare_folder(folder: Path, env: dict[str, Any], *, resume: bool, force: bool) -> set[Cell]:
    """Create or reopen a results folder; return the cells it already holds."""
    folder.mkdir(parents=True, exist_ok=True)
    has_results = (folder / RESULTS_FILE).is_file() and (folder / RESULTS_FILE).stat().st_size > 0
    if has_results and not resume:
        raise FileExistsError(
            f"{folder} already holds results; use --resume to complete it or another --out"
        )
    if has_results and not force:
        check_compatible(read_environment(folder), env, folder)
    if not (folder / ENVIRONMENT_FILE).is_file() or not has_results:
        write_environment(folder, env)
    return _done_cells(folder) if has_results else set()


def sweep(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    estimator_names: Sequence[str] | None = None,
    *,
    seeds: int | Sequence[int] = 3,
    missing: Sequence[float] = (0.0,),
    models: Sequence[str] = DEFAULT_MODELS,
    device: str = "auto",
    out: Path | str | None = None,
    resume: bool = False,
    force: bool = False,
    time_budget: float | None = None,
    options: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    after_row: Callable[[dict[str, Any]], None] | None = None,
    isolate: bool = True,
    threads: int | None = None,
    jobs: int = 1,
    repeat: int = 1,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Run every estimator on every size x missing fraction x seed and return the tidy table.

    Args:
        sizes: ``(n_students, n_questions)`` pairs.
        estimator_names: registry names (default: every estimator whose backend is installed and
            that is ``in_default_sweep``).
        seeds: a count N (seeds 0..N-1) or explicit seeds; a seed fixes the simulated data.
        missing: fractions of responses missing at random.
        models: names of :data:`irtbench.models.MODELS` (default ``DEFAULT_MODELS``, the
            Rasch model and the 2PL): data simulated from each, fitted by the estimators that
            fit it (``Estimator.models``).
        device: ``auto``, ``cpu`` or ``cuda``, passed to every estimator.
        out: results folder; rows are appended to ``out/results.csv`` as they finish.
        resume: complete an existing folder, skipping its cells (refused if it was made in
            another environment, unless ``force``).
        time_budget: seconds after which a fit is stopped and recorded as ``timeout``.
        options: estimator options, ``{"epochs": 200}`` for all that have it or
            ``{"torch-adam:epochs": 200}`` for one.
        progress: tqdm bar over cells (None: when stderr is a terminal).
        after_row: called with each finished row (after it is on disk).
        isolate: each cell in a worker process of its own (:func:`run_cell_isolated`); False
            runs them in this process (for debugging: one traceback, one debugger).
        threads: the threads (and cores) of every fit (None: the cores of its share that other
            processes leave idle; :mod:`irtbench.threads`).
        jobs: cells run at once, each in its own worker on its own share of the cores
            (``os.sched_getaffinity`` split into ``jobs`` groups).
        repeat: timed fits per cell after the warm-up; the row keeps the median and the range.
        scheduler: the address of a ``dask.distributed`` scheduler to send the cells to (one
            cell per dask worker process at a time, each in a worker process of its own).

    Returns:
        The rows of this call in cell order (plus, with ``resume``, those already in the
        folder); ``results.csv`` holds them in the order they finished.
    """
    names = list(estimator_names) if estimator_names is not None else [
        name for name in estimators(available_only=True) if get_estimator(name).in_default_sweep]
    for model in models:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    for name in names:  # unknown names, and estimators of none of the models, fail before work
        if not set(get_estimator(name).models) & set(models):
            raise ValueError(f"estimator {name!r} fits the {' and '.join(get_estimator(name).models)}"
                             f" model(s), none of {', '.join(models)}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise ValueError(f"seeds={seeds!r}: at least one seed is needed")
    for fraction in missing:
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"missing fraction {fraction!r} must be in [0, 1)")
    if time_budget is not None and time_budget < 0:
        raise ValueError(f"time_budget={time_budget!r} must be >= 0 (0 or None: no limit)")
    slots = check_parallelism(threads=threads, jobs=jobs, repeat=repeat, scheduler=scheduler,
                              isolate=isolate)
    folder = Path(out) if out is not None else None
    done: set[Cell] = set()
    if folder is not None:
        env = environment(device, threads=threads, jobs=jobs, scheduler=scheduler)
        done = prepare_folder(folder, env, resume=resume, force=force)
    columns = result_columns()
    cells = [cell for cell in _cells(sizes, names, seed_list, missing, models,
                                     by_default=estimator_names is None) if cell not in done]
    tasks = []
    for cell in cells:
        estimator = get_estimator(cell.estimator)(
            **estimator_options(cell.estimator, options or {}, device), model=cell.model)
        estimate = estimator.memory_estimate(cell.n_students, cell.n_questions, cell.missing)
        if estimate >= LOUD_ESTIMATE:
            tqdm.write(f"{cell.label()}: estimated peak memory {_gb(estimate)}")
        tasks.append(CellTask(cell, estimator, time_budget, threads, repeat))
    if not isolate:
        finished = _run_in_process(tasks)
    elif scheduler is not None:
        finished = _run_dask(tasks, scheduler)
    else:
        finished = _run_local(tasks, slots)
    rows: dict[Cell, dict[str, Any]] = {}
    bar = tqdm(total=len(tasks), desc="irtbench", unit="fit", disable=progress is False,
               leave=progress is True)
    try:
        for cell, (row, curve, errors) in finished:
            if folder is not None:
                append_rows(folder / CURVES_FILE, CURVE_COLUMNS, curve)
                append_rows(folder / ERRORS_FILE, ERROR_COLUMNS, errors)
            rows[cell] = _write(folder, columns, row, after_row)
            bar.set_postfix_str(cell.label())
            bar.update()
    finally:
        finished.close()  # an interrupt: the running workers are killed, the rest cancelled
        bar.close()
    table = pd.DataFrame([rows[cell] for cell in cells if cell in rows], columns=columns)
    if folder is not None and done:
        table = read_results(folder)
    return table


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
        key = (cell.model, cell.n_students, cell.n_questions, cell.missing, cell.seed)
        if key != data_key:
            data_key, data = key, _simulate_cell(cell)
            optimum.clear()
        cores = choose_cores(task.threads)
        with thread_limits(len(cores)):
            yield cell, run_cell(cell, data, task.estimator, time_budget=task.time_budget,
                                 optimum=exact_optimum, repeat=task.repeat, cores=cores)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per estimator x device x size x missing: median times, mean recovery, fits ok / run."""
    table = table.assign(size=[size_label(n, m) for n, m in zip(table.n_students, table.n_questions)])
    table = with_model(table)
    # the item parameters besides the difficulty of the models in the table, each summarised
    extra = [name for name in ITEM_PARAMETERS[1:]
             if any(name in get_model(model).item_parameters for model in table.model.unique())]
    for column in ("compute_seconds", "threads", "contention",
                   *(f"{metric}_{name}" for name in extra for metric in ("rmse", "crb_ratio"))):
        if column not in table:  # a folder from before the one clock / a model / the policy
            table = table.assign(**{column: math.nan})
    ok = table[table.status == "ok"]
    keys = ["model", "estimator", "device", "n_students", "n_questions", "size", "missing"]
    summary = ok.groupby(keys, sort=True).agg(
        seconds=("seconds", "median"),
        compute_s=("compute_seconds", "median"),
        compile_s=("compile_seconds", "median"),
        resp_per_s=("responses_per_second", "median"),
        rmse_diff=("rmse_difficulty", "mean"),
        rmse_skill=("rmse_skill", "mean"),
        crb_diff=("crb_ratio_difficulty", "mean"),
        crb_skill=("crb_ratio_skill", "mean"),
        **{f"{metric}_{name[:5]}": (f"{column}_{name}", "mean") for name in extra
           for metric, column in (("rmse", "rmse"), ("crb", "crb_ratio"))},
        coverage_diff=("coverage_difficulty", "mean"),
        n_extreme=("n_extreme", "mean"),
        threads=("threads", "median"),
        contention=("contention", "max"),
    )
    identity = [key for key in keys if key != "device"]
    counts = table.groupby(identity, sort=True).agg(
        fits=("status", lambda s: f"{(s == 'ok').sum()}/{len(s)}"),
        requested_device=("device", "first"),
    )
    summary = summary.reset_index().merge(counts.reset_index(), how="outer", on=identity)
    summary["device"] = summary.device.fillna(summary.requested_device)
    summary = summary.drop(columns="requested_device")
    summary = summary.sort_values(["model", "n_students", "n_questions", "missing", "estimator"])
    summary["contention"] = [  # the largest over the seeds; * marks a contended cell
        "" if np.isnan(c) else f"{c:.0%}{'*' if c >= CONTENDED else ''}"
        for c in summary.contention]
    if summary.model.nunique() == 1 and summary.model.iloc[0] == MODELS[0]:
        summary = summary.drop(columns="model")  # the Rasch model alone: nothing to tell apart
    return summary.drop(columns=["n_students", "n_questions"]).reset_index(drop=True)

