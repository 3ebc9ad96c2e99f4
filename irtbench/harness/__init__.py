"""Sweeps: sizes x missing fractions x seeds x estimators -> one tidy row per cell.

The package is split by job: :mod:`~irtbench.harness.cells` (what a cell is, the cells of a
sweep, its data, the options each estimator gets, the results folder),
:mod:`~irtbench.harness.runner` (one cell: checks, warm-up, fit, evaluation into rows),
:mod:`~irtbench.harness.isolation` (each cell in a worker process of its own) and
:mod:`~irtbench.harness.limits` (time limits), :mod:`~irtbench.harness.memory` (peak memory),
:mod:`~irtbench.harness.parallel` (many cells: in turn, at once on disjoint cores, or on dask),
:mod:`~irtbench.harness.summary` (the summary table); what is measured of a fit beside its
recovery lives in :mod:`irtbench.evaluation`, beside :mod:`irtbench.metrics`. This module holds
:func:`sweep`, which ties them together.

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

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from tqdm.auto import tqdm

from irtbench import devices  # noqa: F401 - tests patch harness.devices.free_memory
from irtbench.estimators import estimators, get_estimator
from irtbench.harness.cells import (
    DEFAULT_MODELS,
    DEFAULT_SEEDS,
    DEFAULT_SIZES,
    DEFAULT_TIME_BUDGET,
    LOUD_ESTIMATE,
    QUICK_SIZES,
    Cell,
    _cells,
    _write,
    check_sweep_options,
    estimator_options,
    prepare_folder,
    result_columns,
)
from irtbench.harness.isolation import run_cell_isolated
from irtbench.harness.limits import FitTimeout, time_limit
from irtbench.harness.memory import PeakMemory, _gb
from irtbench.harness.parallel import (
    CellTask,
    _run_dask,
    _run_in_process,
    _run_local,
    check_parallelism,
    run_dask_task,
)
from irtbench.harness.runner import check_cell, run_cell
from irtbench.harness.summary import (
    RUNAWAY_NOTE,
    item_metric_columns,
    mark_runaways,
    summarize,
)
from irtbench.models import get_model
from irtbench.results import (
    CURVE_COLUMNS,
    ACCURACY_COLUMNS,
    ACCURACY_FILE,
    CURVES_FILE,
    ERROR_COLUMNS,
    ERRORS_FILE,
    append_rows,
    environment,
    read_results,
)

if TYPE_CHECKING:
    from irtbench.like import Design

__all__ = ["DEFAULT_MODELS", "DEFAULT_SEEDS", "DEFAULT_SIZES", "DEFAULT_TIME_BUDGET",
           "QUICK_SIZES", "Cell", "FitTimeout", "PeakMemory", "check_cell", "check_parallelism",
           "estimator_options", "result_columns", "run_cell", "run_cell_isolated",
           "run_dask_task", "item_metric_columns", "mark_runaways", "RUNAWAY_NOTE", "summarize",
           "sweep", "time_limit"]


def sweep(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    estimator_names: Sequence[str] | None = None,
    *,
    seeds: int | Sequence[int] = DEFAULT_SEEDS,
    missing: Sequence[float] = (0.0,),
    models: Sequence[str] = DEFAULT_MODELS,
    device: str = "auto",
    out: Path | str | None = None,
    resume: bool = False,
    force: bool = False,
    time_budget: float | None = DEFAULT_TIME_BUDGET,
    options: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    after_row: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[], None] | None = None,
    isolate: bool = True,
    threads: int | None = None,
    jobs: int = 1,
    repeat: int = 1,
    scheduler: str | None = None,
    quick: bool = False,
    items: Sequence[int] = (),
    like: Mapping[str, Design] | None = None,
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
        time_budget: seconds after which a fit is stopped and recorded as ``timeout``
            (``DEFAULT_TIME_BUDGET``, 600; 0 or None: no limit).
        options: estimator options, ``{"epochs": 200}`` for all that have it or
            ``{"torch-adam:epochs": 200}`` for one.
        progress: tqdm bar over cells (None: when stderr is a terminal).
        after_row: called with each finished row (after it is on disk).
        on_start: called once every argument is checked and the folder is ready, before the
            first cell.
        isolate: each cell in a worker process of its own (:func:`run_cell_isolated`); False
            runs them in this process (for debugging: one traceback, one debugger).
        threads: the threads (and cores) of every fit (None: the cores of its share that other
            processes leave idle; :mod:`irtbench.threads`).
        jobs: cells run at once, each in its own worker on its own share of the cores
            (``os.sched_getaffinity`` split into ``jobs`` groups).
        repeat: timed fits per cell after the warm-up; the row keeps the median and the range.
        scheduler: the address of a ``dask.distributed`` scheduler to send the cells to (one
            cell per dask worker process at a time, each in a worker process of its own).
        quick: the default choice keeps only the estimators that declare ``in_quick_sweep``
            (the CLI's ``--quick``); ignored when ``estimator_names`` are given.
        items: numbers of items k (the CLI's ``--items``): after each fit, new respondents of
            the cell's population are scored from k items under the fit's items and their
            whole-benchmark accuracy estimated (:mod:`irtbench.subset.simulated`), into
            ``accuracy.csv``.
        like: per model, the design of data like a user's (:mod:`irtbench.like`, ``irtbench
            run --like``): each cell of that model is drawn from it (its shape, its missing
            cells, its items and skill SD) instead of simulated; ``sizes``, ``missing`` and
            ``models`` are then the designs' own.

    Returns:
        The rows of this call in cell order (plus, with ``resume``, those already in the
        folder); ``results.csv`` holds them in the order they finished.
    """
    if like:
        sizes = list(dict.fromkeys(design.shape for design in like.values()))
        missing = list(dict.fromkeys(design.missing for design in like.values()))
        models = list(like)
    names = list(estimator_names) if estimator_names is not None else [
        name for name in estimators(available_only=True)
        if get_estimator(name).in_default_sweep
        and (get_estimator(name).in_quick_sweep or not quick)]
    for model in models:
        get_model(model)  # an unknown name: ValueError naming the models
    for name in names:  # unknown names, and estimators of none of the models, fail before work
        if not set(get_estimator(name).models) & set(models):
            raise ValueError(f"estimator {name!r} fits the {' and '.join(get_estimator(name).models)}"
                             f" model(s), none of {', '.join(models)}")
    check_sweep_options(names, options or {})
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
    if on_start is not None:  # everything checked, the folder ready: the work begins
        on_start()
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
        tasks.append(CellTask(cell, estimator, time_budget, threads, repeat,
                              (like or {}).get(cell.model), folder, tuple(items)))
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
        for cell, (row, curve, errors, *accuracy) in finished:
            if folder is not None:
                append_rows(folder / CURVES_FILE, CURVE_COLUMNS, curve)
                append_rows(folder / ERRORS_FILE, ERROR_COLUMNS, errors)
                if accuracy and accuracy[0]:
                    append_rows(folder / ACCURACY_FILE, ACCURACY_COLUMNS, accuracy[0])
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
