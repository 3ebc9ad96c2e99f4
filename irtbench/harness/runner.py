"""One cell: whether it can run here (backend, device, memory model, data), then warm-up, the
one clock's fit and the evaluation (:mod:`irtbench.evaluation`) into its rows. A runner only
runs: what is measured of a fit lives beside the metrics."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from irtbench import devices
from irtbench.estimators import Estimator, Fit, reference_optimum
from irtbench.evaluation import convergence, curve_rows, error_rows
from irtbench.gaps import gap
from irtbench.harness.cells import Cell, _cell_row, _data_problem, simulation_settings
from irtbench.harness.limits import FitTimeout, first_line, time_limit
from irtbench.harness.memory import MEMORY_HEADROOM, PeakMemory, _gb, _is_out_of_memory
from irtbench.harness.references import reference_for
from irtbench.metrics import REFERENCE_ALPHA, recovery
from irtbench.models import extremes
from irtbench.results import (
    DIAGNOSTIC_COLUMNS,
)
from irtbench.simulate import Dataset
from irtbench.threads import (
    Usage,
    allowed_cores,
)

# -- one cell -------------------------------------------------------------------------------
#: what a cell gives: its result row, its curve rows, its error rows
CellRows = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]


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
        row["device"] = device = str(estimator.config["device"])
    except ValueError as error:
        return refuse("error", first_line(error))
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
    folder: Path | None = None,
    items: Sequence[int] = (),
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
    ``ll_gap`` is the fit's log-likelihood gap to the exact marginal optimum of its data
    (:mod:`irtbench.gaps`), whose maximum is kept in ``folder``'s ``references.csv``
    (:mod:`irtbench.harness.references`: computed once per data, not once per estimator).
    With ``items`` (the sweep's ``--items``), a fourth list: the rows of ``accuracy.csv``, the
    few-item accuracy of new respondents under the fit's items
    (:func:`irtbench.subset.simulated.accuracy_rows`).
    ``notify("warm-up")``, ``notify("fit")`` and ``notify("reference")`` (the gap's reference, which
    no time budget limits) are called as those stages begin (``"fit"``
    before every repeat)."""
    notify = notify or (lambda stage: None)
    cores = list(cores) if cores is not None else allowed_cores()
    cls = type(estimator)
    row, refusal = check_cell(cell, estimator, data)
    if refusal is not None:
        return refusal, [], []
    options = estimator.config

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
                        fit = estimator.fit(data.responses, trace=True)
                    timed.append((fit, usage))
    except FitTimeout as error:
        return not_fitted("timeout", str(error))
    except Exception as error:  # noqa: BLE001 - any failure becomes a row, the sweep goes on
        return not_fitted("oom" if _is_out_of_memory(error) else "error", first_line(error))
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
    alpha = options.get("alpha", REFERENCE_ALPHA)  # an estimator without one: the notebook's
    row.update(convergence(fit, data, masks, exact, float(alpha)))
    notify("reference")  # the exact marginal maximum: not the fit's time (no budget)
    reference = reference_for(cell, data.responses, simulation_settings(cell.model, estimator),
                              folder)
    found = (None if reference is None
             else gap(fit, data.responses, reference, objective=cls.objective))
    row["ll_gap"] = math.nan if found is None else found.gap
    key = cell._asdict()
    rows = (row, curve_rows(key, fit, data, masks, exact), error_rows(key, fit, data, masks))
    if not items:
        return rows
    from irtbench.subset.simulated import accuracy_rows  # subset reads the harness's cells

    return (*rows, accuracy_rows(key, fit, data, items))
