"""The cells of a sweep and its results folder: what a cell is, the cells of a sweep in
order, the data a cell simulates, the options each estimator of a cell gets, and the folder's
rows (written as they finish, read back on resume)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from irtbench import devices
from irtbench.estimators import Estimator, estimators, get_estimator
from irtbench.harness.memory import MEMORY_HEADROOM, _gb
from irtbench.models import get_model, model_suffix
from irtbench.responses import COMPACT_ABOVE, observed_count, size_label
from irtbench.results import (
    COLUMNS,
    ENVIRONMENT_FILE,
    KEY_COLUMNS,
    RESULTS_FILE,
    append_rows,
    check_compatible,
    read_environment,
    read_results,
    write_environment,
)
from irtbench.simulate import Dataset, simulate

if TYPE_CHECKING:
    from irtbench.like import Design

DEFAULT_SIZES = ((100, 100), (1000, 100), (1000, 1000))
#: the models a sweep simulates and fits unless told (the 3PL on demand)
DEFAULT_MODELS = ("rasch", "2pl")
#: the CLI's --quick: one size, one seed, the default estimators that declare
#: ``in_quick_sweep`` (all but NumPyro's NUTS and VI, the two slowest cells: compilation and
#: warm-up twice over, 18 s and 11-13 s of a cell here);
#: measured on an idle machine pinned to 2 cores, whole command: 45 s (the old 100x20 and
#: 200x50 with every default estimator: 104 s, 85 s in issue 25; 200x50 with all: 66-74 s;
#: without NUTS only: 55-60 s)
QUICK_SIZES = ((200, 50),)
#: seconds after which a fit is stopped and recorded as a timeout, unless told
DEFAULT_TIME_BUDGET = 600.0
#: seeds per cell unless told (the CLI's --quick: 1)
DEFAULT_SEEDS = 3


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
        model = model_suffix(self.model)
        return (f"{self.estimator}{model} {size_label(self.n_students, self.n_questions)}"
                f"{missing} seed={self.seed}")


def result_columns() -> list[str]:
    """The columns of results.csv: :data:`irtbench.results.COLUMNS` then one ``opt_*`` per option
    of any registered estimator (fixed for a version, so every row has the same columns)."""
    options = sorted({key for name in estimators() for key in get_estimator(name).defaults})
    return [*COLUMNS, *(f"opt_{key}" for key in options)]


def simulation_settings(model: str, estimator: Estimator | None) -> dict[str, Any]:
    """The estimator's options that shape the model's simulated data
    (:attr:`~irtbench.models.base.Model.simulation_options`: the M2PL's ``dims``), so that
    the data have the dimensions the fit assumes."""
    if estimator is None:
        return {}
    names = get_model(model).simulation_options
    return {name: estimator.config[name] for name in names if name in estimator.config}


def _simulate_cell(cell: Cell, like: Design | None = None,
                   estimator: Estimator | None = None) -> Dataset:
    """The cell's data (compact int8 above ``COMPACT_ABOVE`` cells); its seed fixes them, so
    every estimator of a (model, size, missing, seed) sees the same ones wherever it runs
    (with the same :func:`simulation_settings`). With ``like`` (``irtbench run --like``), a
    draw like the user's data (:func:`irtbench.like.simulate_like`) instead."""
    if like is not None:
        from irtbench.like import simulate_like

        return simulate_like(like, cell.seed)
    compact = cell.n_students * cell.n_questions > COMPACT_ABOVE
    return simulate(cell.n_students, cell.n_questions, seed=cell.seed, missing=cell.missing,
                    compact=compact, model=cell.model,
                    **simulation_settings(cell.model, estimator))


def _data_problem(cell: Cell) -> str:
    """Why the cell's simulated responses alone would not fit in memory here ('' when they do)."""
    cells = cell.n_students * cell.n_questions
    need = cells * (1 if cells > COMPACT_ABOVE else 4) * 1.5  # the matrix, the simulation's blocks
    available = devices.free_memory("cpu")
    if need > MEMORY_HEADROOM * available:
        return (f"the simulated responses alone need about {_gb(need)}; "
                f"{_gb(available)} available")
    return ""


# -- the cells of a sweep and their folder ---------------------------------------------------
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


def check_sweep_options(names: Sequence[str], options: Mapping[str, Any]) -> None:
    """``ValueError`` for a sweep option no estimator of the run takes (a plain ``key``) or
    that its estimator does not take (``name:key``), with the nearest valid names: a
    misspelled option is refused, never dropped."""
    known = {name: set(get_estimator(name).all_options()) for name in names}
    for key in options:
        target, sep, option = key.rpartition(":")
        if sep and target not in known:
            near = difflib.get_close_matches(target, known, n=1)
            raise ValueError(f"option {key!r}: {target!r} is not an estimator of this run"
                             + (f"; did you mean {near[0]!r}?" if near else ""))
        valid = known[target] if sep else set().union(*known.values())
        if option not in valid:
            near = difflib.get_close_matches(option, valid, n=2)
            hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
            whose = f"estimator {target!r}" if sep else "any estimator of this run"
            raise ValueError(f"unknown option {option!r} for {whose}{hint}")


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


def _cell_row(cell: Cell, estimator: Estimator, data: Dataset | None = None) -> dict[str, Any]:
    """The identity columns of a cell's row: key, backend, options, device, and the observed
    count of its data (when they are at hand)."""
    cls = type(estimator)
    try:  # the fit's frozen configuration; a refused one (an unmet device) as given
        options = dict(estimator.config)
    except ValueError:
        options = dict(estimator.options)
    counted = {} if data is None else {"n_observed": observed_count(data.responses)}
    return {**cell._asdict(), "backend": cls.backend, **counted,
            **{f"opt_{key}": value for key, value in options.items()},
            "device": str(options.get("device", "cpu"))}
