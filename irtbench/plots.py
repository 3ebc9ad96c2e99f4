"""Comparison figures and a Markdown report, drawn only from the files of a results folder.

Every figure reads ``results.csv`` / ``curves.csv`` / ``errors.csv`` (never live objects), so any
old run can be re-plotted with ``irtbench plot DIR``. Each estimator keeps one colour and one
marker across all figures and runs (the ``colour`` it declares: :func:`style`); bands and error
bars span the seeds (mean +/- one standard deviation). Legends sit outside the axes, to the
right of the figure; the lines of estimators at one size are spread a little along the size
axis, so that two with identical results (``torch-adam`` and ``jax-adam`` solve the same
objective) are both seen. One set of figures per model, each over that model's parameters
(:attr:`~irtbench.models.base.Model.item_parameters`); a figure with nothing to draw is not
written, and the report says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from irtbench.estimators import estimators, get_estimator  # noqa: E402
from irtbench.metrics import Z95  # noqa: E402
from irtbench.models import MODELS, Model, get_model, model_suffix  # noqa: E402
from irtbench.responses import size_label  # noqa: E402
from irtbench.results import ERRORS_FILE, read_curves, read_results, with_model  # noqa: E402
from irtbench.threads import CONTENDED  # noqa: E402

__all__ = ["FIGURES", "markdown_table", "new_figure", "plot_all", "plot_throughput",
           "save_figure", "style", "write_report"]

FIGURES = {
    "recovery": "Recovery vs size: RMSE and Cramér–Rao ratio",
    "speed": "Time and throughput vs size",
    "time_to_accuracy": "Time to accuracy: error against wall-clock seconds along each fit",
    "errors": "Estimation errors (estimate − truth, aligned)",
    "coverage": "Coverage of 95% intervals",
    "memory": "Peak memory vs size",
}

#: inches: the width of one panel of a row of panels, and the room for the legend beside them
#: (at 130 dpi a row of three panels is 13 in, 1690 px)
PANEL_WIDTH, LEGEND_WIDTH = 3.6, 2.2

_MARKERS = "osD^vP*Xhp<>d8H"
#: tab10, then the dark shades of tab20b/tab20c: 18 colours told apart on screen and in print
_COLORS = (*plt.get_cmap("tab10").colors,
           *(plt.get_cmap("tab20b").colors[i] for i in (0, 4, 8, 12, 16)),
           *(plt.get_cmap("tab20c").colors[i] for i in (0, 4, 8)))


def style(name: str) -> dict[str, object]:
    """A fixed colour and marker per estimator: the ``colour`` it declares (so a colour never
    changes between runs); a name outside the registry (a baseline) after every declared one."""
    known = estimators()
    index = (get_estimator(name).colour if name in known
             else max(get_estimator(n).colour for n in known) + 1 + sum(map(ord, name)) % 7)
    return {"color": _COLORS[index % len(_COLORS)], "marker": _MARKERS[index % len(_MARKERS)]}


def _legend(fig: plt.Figure, **options: object) -> None:
    """One legend for the whole figure, outside the axes on the right (each label once)."""
    entries: dict[str, object] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(entries.values(), entries.keys(), loc="outside right upper", fontsize=8,
                   **options)


def _model_of(table: pd.DataFrame) -> Model:
    """The model of a figure's rows (one model per figure; the Rasch model for a folder from
    before the model column)."""
    return get_model(table.model.iloc[0] if "model" in table and len(table) else MODELS[0])


def _parts(table: pd.DataFrame, prefix: str) -> list[str]:
    """The parts (the model's item parameters, then ``skill``) that have a ``prefix*`` value in
    ``table``, the difficulty first."""
    return [part for part in (*_model_of(table).item_parameters, "skill")
            if f"{prefix}{part}" in table and table[f"{prefix}{part}"].notna().any()]


def _unit(table: pd.DataFrame, part: str) -> str:
    unit = _model_of(table).units.get(part, "")
    return f" ({unit})" if unit else ""


def _plural(part: str) -> str:
    return {"difficulty": "difficulties"}.get(part, part + "s")


def _ok(table: pd.DataFrame) -> pd.DataFrame:
    ok = table[table.status == "ok"].copy()
    ok["responses"] = ok.n_students * ok.n_questions
    return ok


def new_figure(*grid: int, **options: object) -> tuple[plt.Figure, np.ndarray]:
    """A figure of a ``grid`` of panels, ``axes`` always 2-D, laid out with room on the right
    for the legend (constrained layout)."""
    fig, axes = plt.subplots(*grid, layout="constrained", squeeze=False, **options)
    return fig, axes


def save_figure(fig: plt.Figure, path: Path, formats: Iterable[str]) -> list[Path]:
    """``fig`` saved as ``path`` in each of ``formats`` (``"png"``, ``"svg"``) at 130 dpi, then
    closed: the files written."""
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        fig.savefig(target, dpi=130)
        written.append(target)
    plt.close(fig)
    return written


def _lines(ax: plt.Axes, table: pd.DataFrame, y: str, *, by_device: bool = False,
           spread: str = "sd") -> None:
    """One line per estimator (x device, x missing fraction) against responses: the mean over
    seeds with +/- one standard deviation (``spread="sd"``), or the median with the seeds'
    range (``spread="range"``, for quantities that cannot be negative)."""
    keys = ["estimator", "missing"] + (["device"] if by_device else [])
    groups = list(table.groupby(keys, sort=True))
    for rank, (key, group) in enumerate(groups):
        name, missing = key[0], key[1]
        stats = group.groupby("responses")[y].agg(["mean", "std", "median", "min", "max"])
        if spread == "range":
            centre = stats["median"]
            error = np.vstack([centre - stats["min"], stats["max"] - centre])
        else:
            centre, error = stats["mean"], stats["std"].fillna(0).to_numpy()
        label = name + (f", {missing:.0%} missing" if missing else "")
        label += f" ({key[2]})" if by_device else ""
        dashed = by_device and str(key[2]).startswith(("cuda", "gpu"))
        # spread the lines by up to +/-4% along the (log) size axis: identical ones stay visible
        dodge = 1.0 + 0.08 * ((rank + 0.5) / len(groups) - 0.5)
        ax.errorbar(stats.index * dodge, centre, yerr=error, label=label, capsize=3,
                    linestyle="--" if dashed or missing else "-", markersize=5, alpha=0.9,
                    **style(name))


def _size_axis(ax: plt.Axes, table: pd.DataFrame) -> None:
    """A log axis of sizes, ticked at each; one size (``--quick``) gets a factor of 2 of room
    on each side (a log axis cannot span a single value)."""
    sizes = table.drop_duplicates("responses").sort_values("responses")
    if len(sizes) == 1:
        ax.set_xlim(sizes.responses.iloc[0] / 2, sizes.responses.iloc[0] * 2)
    ax.set_xscale("log")
    ax.set_xlabel("responses (students × questions)")
    ax.set_xticks(sizes.responses, [size_label(n, m) for n, m in zip(sizes.n_students, sizes.n_questions)],
                  rotation=30, fontsize=8)
    ax.minorticks_off()
    ax.grid(alpha=0.3)


def plot_recovery(table: pd.DataFrame, path: Path, formats: Iterable[str]) -> list[Path]:
    """RMSE (top) and RMSE / Cramér–Rao bound (bottom) of every part with a bound."""
    parts = _parts(table, "crb_ratio_") or ["difficulty"]
    fig, axes = new_figure(2, len(parts), figsize=(4.6 * len(parts) + 2.5, 8), sharex=True)
    for column, part in enumerate(parts):
        for ax, metric in zip(axes[:, column], ("rmse", "crb_ratio")):
            _lines(ax, table, f"{metric}_{part}")
            _size_axis(ax, table)
            if metric == "rmse":
                ax.set_title(f"RMSE of {_plural(part)}")
                ax.set_yscale("log")
                ax.set_ylabel(f"RMSE{_unit(table, part)}")
            else:
                ax.set_title(f"{_plural(part)}: RMSE / Cramér–Rao bound")
                ax.axhline(1.0, color="black", linewidth=1, linestyle=":")
                ax.set_ylabel("ratio (1 = efficient)")
    _legend(fig)
    fig.suptitle(FIGURES["recovery"] + " (mean ± sd over seeds; aligned; extreme students "
                 "excluded)")
    return save_figure(fig, path, formats)


def plot_speed(table: pd.DataFrame, path: Path, formats: Iterable[str]) -> list[Path]:
    fig, axes = new_figure(1, 2, figsize=(14, 4.8))
    axes = axes[0]
    for ax, column, label in ((axes[0], "seconds", "fit time (s)"),
                              (axes[1], "responses_per_second", "responses × iterations / s")):
        _lines(ax, table, column, by_device=True, spread="range")
        _size_axis(ax, table)
        ax.set_yscale("log")
        ax.set_ylabel(label)
    axes[0].set_title("time of the whole fit, compilation excluded")
    axes[1].set_title("throughput")
    fig.suptitle(FIGURES["speed"] + " (median and range over seeds)", fontsize=10)
    _legend(fig)
    return save_figure(fig, path, formats)


def _trace_size(curves: pd.DataFrame) -> tuple[int, int] | None:
    traced = curves.dropna(subset=["rmse_difficulty"])
    return None if traced.empty else _busiest_size(traced)


def _same_curves(curves: pd.DataFrame, columns: list[str]) -> list[list[str]]:
    """The estimators of ``curves`` grouped where their curves are identical (every seed's
    seconds and ``columns`` alike), each group drawn once as ``a = b``, as the error
    histograms merge identical estimators."""
    groups: list[tuple[list[str], pd.DataFrame]] = []
    for name, group in curves.groupby("estimator", sort=True):
        points = group.sort_values(["seed", "iteration"])[["seed", "seconds", *columns]]
        points = points.reset_index(drop=True)
        for names, seen in groups:
            if seen.shape == points.shape and np.allclose(
                    seen.to_numpy(float), points.to_numpy(float), rtol=1e-9, atol=0,
                    equal_nan=True):
                names.append(str(name))
                break
        else:
            groups.append(([str(name)], points))
    return [names for names, _ in groups]


def plot_time_to_accuracy(table: pd.DataFrame, curves: pd.DataFrame, path: Path,
                          formats: Iterable[str]) -> list[Path]:
    """RMSE against the truth (difficulties, skills) and, for the estimators of the reference
    objective, the RMS gap to its exact optimum, against seconds into the fit; estimators
    with identical curves drawn once (``a = b``), and the Cramér–Rao bound one legend entry,
    its value written in each panel."""
    size = _trace_size(curves)
    if size is None:  # nothing to draw: no file (the report says why)
        return []
    n, m = size
    here = curves[(curves.n_students == n) & (curves.n_questions == m) & (curves.missing == 0)
                  ].dropna(subset=["rmse_difficulty"])
    rows = table[(table.n_students == n) & (table.n_questions == m) & (table.missing == 0)]
    panels = [("rmse_difficulty", f"difficulties, {size_label(n, m)}",
               "RMSE against the truth (logits)"),
              ("rmse_skill", f"skills, {size_label(n, m)}", "RMSE against the truth (logits)")]
    if "gap_rms" in here and here.gap_rms.notna().any():  # estimators of the reference objective
        panels.append(("gap_rms", "gap to the reference optimum",
                       "RMS gap to the reference objective's optimum (logits)"))
    fig, axes = new_figure(1, len(panels),
                           figsize=(PANEL_WIDTH * len(panels) + LEGEND_WIDTH, 4.4))
    groups = _same_curves(here, [column for column, *_ in panels])
    panels = [(ax, *panel) for ax, panel in zip(axes[0], panels)]
    for ax, column, title, ylabel in panels:
        data = here.dropna(subset=[column]) if column in here else here.iloc[:0]
        for names in groups:
            label = " = ".join(names)
            for number, (_seed, run) in enumerate(
                    data[data.estimator == names[0]].groupby("seed")):
                ax.plot(run.seconds, run[column].clip(lower=1e-9), linewidth=1.3, alpha=0.8,
                        markersize=3, label=label if number == 0 else None, **style(names[0]))
        bound = rows[column.replace("rmse", "crb")].mean() if column != "gap_rms" else np.nan
        if np.isfinite(bound):  # one legend entry; each panel's value in its title
            ax.axhline(bound, color="black", linestyle=":", linewidth=1,
                       label="Cramér–Rao bound")
            title += f" (bound {bound:.3f})"
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("seconds into the fit")
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    _legend(fig)
    fig.suptitle(FIGURES["time_to_accuracy"]
                 + "\n(one line per seed; seconds assume equal time per iteration)",
                 fontsize=10)
    return save_figure(fig, path, formats)


def _busiest_size(rows: pd.DataFrame) -> tuple[int, int]:
    """The largest size at which the most estimators have rows."""
    counts = rows.groupby(["n_students", "n_questions"]).estimator.nunique()
    best = counts[counts == counts.max()].index
    return max(best, key=lambda nm: nm[0] * nm[1])


#: the histograms' line styles, in turn, so that close ones stay apart where they overlap
_LINESTYLES = ("-", "--", "-.", ":")


def _same_histograms(densities: dict[str, list[np.ndarray]]
                     ) -> list[tuple[list[str], list[np.ndarray]]]:
    """The estimators' histograms, one list per estimator (a histogram per panel), with the
    estimators identical in every panel drawn once: ``torch-adam`` and ``jax-adam`` solve
    the same objective and their steps would hide each other, so they become one line
    labelled ``jax-adam = torch-adam`` in each panel, and one legend entry (two estimators
    identical in one panel and not in another are two lines in each: one legend entry per
    line drawn)."""
    groups: list[tuple[list[str], list[np.ndarray]]] = []
    for name, panels in densities.items():
        for names, seen in groups:
            if all(np.allclose(mine, theirs, rtol=1e-9, atol=1e-12)
                   for mine, theirs in zip(panels, seen)):
                names.append(name)
                break
        else:
            groups.append(([name], panels))
    return groups


def _bins(values: pd.DataFrame) -> np.ndarray:
    """41 bins over +/- the 99.5% quantile of the panel's absolute errors."""
    limit = float(np.quantile(np.abs(values.error), 0.995)) if len(values) else 1.0
    return np.linspace(-limit, limit, 41)


def plot_errors(table: pd.DataFrame, errors: pd.DataFrame, path: Path,
                formats: Iterable[str]) -> list[Path]:
    """Histograms of the aligned errors at the busiest size, one panel per part; the item
    parameters of the questions that ran away (``errors.csv``'s ``runaway``) are left out,
    counted in their panel's title: their errors have no bound and would set the axes."""
    if errors.empty:  # nothing to draw: no file (the report says why)
        return []
    n, m = _busiest_size(errors)
    here = errors[(errors.n_students == n) & (errors.n_questions == m) & (errors.missing == 0)
                  & ~errors.extreme]
    rows = table[(table.n_students == n) & (table.n_questions == m) & (table.missing == 0)]
    kinds = [kind for kind in _parts(rows, "rmse_") if kind in set(here.kind)]
    if not kinds:
        return []
    ran = (here.runaway.astype(bool) if "runaway" in here
           else pd.Series(False, index=here.index))
    panels = {kind: here[(here.kind == kind) & ~ran] for kind in kinds}
    left_out = {kind: int(((here.kind == kind) & ran).sum()) for kind in kinds}
    bins = {kind: _bins(values) for kind, values in panels.items()}
    names = sorted(here.estimator.unique())
    densities = {name: [np.histogram(panels[kind].error[panels[kind].estimator == name],
                                     bins=bins[kind], density=True)[0] for kind in kinds]
                 for name in names}
    groups = _same_histograms(densities)
    fig, axes = new_figure(1, len(kinds),
                           figsize=(PANEL_WIDTH * len(kinds) + LEGEND_WIDTH, 4.4))
    for column, (ax, kind) in enumerate(zip(axes[0], kinds)):
        for rank, (group, panel_densities) in enumerate(groups):
            ax.stairs(panel_densities[column], bins[kind], linewidth=1.6,
                      label=" = ".join(group), color=style(group[0])["color"],
                      linestyle=_LINESTYLES[rank % len(_LINESTYLES)])
        bound = rows[f"crb_{kind}"].mean() if f"crb_{kind}" in rows else np.nan
        if np.isfinite(bound):
            grid = np.linspace(bins[kind][0], bins[kind][-1], 200)
            ax.plot(grid, np.exp(-0.5 * (grid / bound) ** 2) / (bound * np.sqrt(2 * np.pi)),
                    color="black", linestyle=":", label="N(0, CRB²), CRB of each part")
        ax.set_xlabel(f"{kind} error{_unit(rows, kind)}")
        ax.set_ylabel("density")
        title = _plural(kind)
        if left_out[kind]:
            title += f"\n({left_out[kind]} estimate(s) of runaway items left out)"
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{FIGURES['errors']}: {size_label(n, m)}, all seeds\n(extreme students "
                 "excluded; identical histograms drawn once, a = b)", fontsize=10)
    _legend(fig)
    return save_figure(fig, path, formats)


def plot_coverage(table: pd.DataFrame, path: Path, formats: Iterable[str]) -> list[Path]:
    parts = _parts(table, "coverage_")
    if not parts:  # no estimator here gives SEs: no file (the report says why)
        return []
    fig, axes = new_figure(1, len(parts), figsize=(PANEL_WIDTH * len(parts) + LEGEND_WIDTH, 4.4),
                        sharey=True)
    for ax, kind in zip(axes[0], parts):
        column = f"coverage_{kind}"
        plural = _plural(kind)
        with_se = table.dropna(subset=[column])
        names = sorted(with_se.estimator.unique())
        sizes = with_se.drop_duplicates("responses").sort_values("responses")
        offsets = np.linspace(-0.25, 0.25, len(sizes)) if len(sizes) > 1 else [0.0]
        for offset, (_, size) in zip(offsets, sizes.iterrows()):
            cells = with_se[with_se.responses == size.responses]
            stats = cells.groupby("estimator")[column].agg(["mean", "std"]).reindex(names)
            ax.errorbar(np.arange(len(names)) + offset, stats["mean"], yerr=stats["std"].fillna(0),
                        fmt="o", capsize=3, label=size_label(size.n_students, size.n_questions))
        ax.axhline(0.95, color="black", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(plural)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{FIGURES['coverage']}: share of truths inside estimate ± {Z95:.2f} SE "
                 "(mean ± sd over seeds)", fontsize=10)
    axes[0, 0].set_ylabel("coverage (nominal 0.95)")
    _legend(fig, title="size")
    return save_figure(fig, path, formats)


def plot_memory(table: pd.DataFrame, path: Path, formats: Iterable[str]) -> list[Path]:
    fig, axes = new_figure(1, 1, figsize=(9.5, 4.8))
    ax = axes[0, 0]
    floor = 0.01  # MiB: an RSS growth below a page or two is drawn at the floor of the log axis
    measured = table.dropna(subset=["peak_memory_bytes"]).assign(
        peak_memory_mib=lambda t: np.maximum(t.peak_memory_bytes / 2**20, floor))
    _lines(ax, measured, "peak_memory_mib", by_device=True, spread="range")
    _size_axis(ax, measured)
    ax.set_yscale("log")
    ax.set_ylabel("peak memory of the fit (MiB; median, range over seeds)")
    methods = ", ".join(sorted(measured.memory_method.dropna().unique()))
    ax.set_title(f"Peak memory vs size ({methods})", fontsize=10)
    _legend(fig)
    return save_figure(fig, path, formats)


def plot_all(folder: Path | str, formats: Iterable[str] = ("png",)) -> list[Path]:
    """Draw every figure of :data:`FIGURES` into ``folder`` from its files; returns the paths."""
    folder = Path(folder)
    formats = tuple(formats)
    table = _ok(read_results(folder))
    if table.empty:
        raise ValueError(f"{folder}/results.csv has no successful fit to plot")
    curves = read_curves(folder)
    errors_path = folder / ERRORS_FILE
    errors = with_model(pd.read_csv(errors_path)) if errors_path.is_file() else pd.DataFrame(
        columns=["estimator", "model", "n_students", "n_questions", "missing", "kind", "error",
                 "extreme"])
    written = []
    models = table.model.unique() if "model" in table else [MODELS[0]]
    for model in sorted(models, key=MODELS.index):  # the Rasch set first, unsuffixed

        def of_model(frame: pd.DataFrame, model: str = model) -> pd.DataFrame:
            return frame[frame.model == model] if "model" in frame else frame

        suffix = figure_suffix(model)
        rows = of_model(table)
        written += plot_recovery(rows, folder / f"recovery{suffix}", formats)
        written += plot_speed(rows, folder / f"speed{suffix}", formats)
        written += plot_time_to_accuracy(rows, of_model(curves),
                                         folder / f"time_to_accuracy{suffix}", formats)
        written += plot_errors(rows, of_model(errors), folder / f"errors{suffix}", formats)
        written += plot_coverage(rows, folder / f"coverage{suffix}", formats)
        written += plot_memory(rows, folder / f"memory{suffix}", formats)
    return written


def figure_suffix(model: str) -> str:
    """File-name suffix of a model's figure set: none for the Rasch model, ``-2pl`` for the 2PL
    and so on."""
    return model_suffix(model, "-")


#: why a figure may be left out of a folder
MISSING_FIGURE = {
    "time_to_accuracy": "no fit of this model here recorded snapshots of its estimates along "
                        "the fit",
    "errors": "no errors.csv rows for this model",
    "coverage": "no estimator here gives standard errors",
}


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown table (floats to 3 significant digits, NaN blank)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.3g}"
        return str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _seconds_definition(env: dict[str, object]) -> str:
    """What the folder's ``seconds`` mean: the one clock from schema 4 on, before it the fit
    without transfers and post-processing."""
    if int(env.get("schema_version") or 0) >= 4:
        return ("Seconds: the whole fit, host matrix in to every estimate and SE back on the host, "
                "device synchronised, median over seeds; compute_s its iterative part; compile_s "
                "apart.")
    return ("Seconds (schema {}, before the one clock): the fit's iterations alone; transfers, "
            "standard errors and post-processing outside; median over seeds; compile_s apart; "
            "compute_s not recorded.".format(env.get("schema_version")))


def _policy_line(policy: object) -> str:
    """The thread policy and the machine's load at the start, as the folder recorded them."""
    if not isinstance(policy, dict):
        return "Thread policy: not recorded (a folder from before the policy)."
    load = policy.get("load_average")
    return (f"Thread policy: threads {policy.get('threads')}, {policy.get('jobs')} job(s) at once, "
            f"OMP_WAIT_POLICY {policy.get('wait_policy')}, cores {policy.get('affinity')}; "
            f"load average at the start {load}.")


def accuracy_lines(folder: Path) -> list[str]:
    """The report's table of ``accuracy.csv`` (``irtbench run --items``): the mean absolute
    error of new respondents' estimated accuracy, in points, per estimator x model x size x
    strategy x estimate (columns: the numbers of items), mean over seeds; none without it."""
    from irtbench.results import ACCURACY_FILE

    path = folder / ACCURACY_FILE
    if not path.is_file():
        return []
    rows = pd.read_csv(path)
    rows = rows[rows.status == "ok"].assign(
        size=lambda t: [size_label(n, m) for n, m in zip(t.n_students, t.n_questions)])
    if rows.empty:
        return []
    table = (100 * rows.pivot_table(index=["estimator", "model", "size", "strategy", "method"],
                                    columns="items", values="mae", aggfunc="mean")).round(2)
    table.columns = [f"k={k}" for k in table.columns]
    return ["## Few-item accuracy of new respondents", "",
            "Mean absolute error, in points of accuracy, of new respondents' whole-benchmark "
            "accuracy estimated from k items under each fit's items (`mean`: the weighted mean "
            "of the k answers; `pirt`: answered items counted, the rest predicted; `gpirt`: "
            "their mix; irtbench/subset/simulated.py), mean over seeds.", "",
            markdown_table(table.reset_index()), ""]


def write_report(folder: Path | str) -> Path:
    """``folder/report.md``: the summary table per estimator x size next to the figures."""
    from irtbench.harness import RUNAWAY_NOTE, mark_runaways, summarize
    from irtbench.results import read_environment

    folder = Path(folder)
    table = read_results(folder)
    env = read_environment(folder)
    summary = summarize(table)
    runaways = summary.n_runaway.fillna(0).gt(0).any()
    lines = [
        "# irtbench report",
        "",
        f"{len(table)} fits on {env.get('device_name')} ({env.get('cpu_count')} CPU cores), "
        f"irtbench {env.get('irtbench')}, torch {env.get('torch')}, jax {env.get('jax')}, "
        f"numpyro {env.get('numpyro')}, commit {str(env.get('git_commit'))[:10]}, {env.get('created')}.",
        _policy_line(env.get("thread_policy")),
        "",
        _seconds_definition(env),
        "Metrics: means over seeds, aligned, extreme students excluded; crb_* = RMSE / Cramér–Rao "
        "bound; coverage of 95% intervals.",
        "",
        markdown_table(mark_runaways(summary)),
        "",
        *([RUNAWAY_NOTE, ""] if runaways else []),
    ]
    if "contention" in table:
        contended = table[(table.status == "ok") & (table.contention >= CONTENDED)]
        if len(contended):
            lines += [f"Contended fits (other processes used at least {CONTENDED:.0%} of their "
                      "cores' time; their times say more about the machine than the "
                      "estimator; marked * in the contention column above):", ""]
            lines += [f"- {r.estimator} {r.model} {r.n_students}x{r.n_questions} seed {r.seed}: "
                      f"{r.contention:.0%}" for r in contended.itertuples()]
            lines.append("")
    lines += accuracy_lines(folder)
    problems = table[table.status != "ok"]
    if not problems.empty:
        lines += ["Fits that did not complete:", ""]
        lines += [f"- {r.status}: {r.estimator} {r.n_students}x{r.n_questions} seed {r.seed}: {r.reason}"
                  for r in problems.itertuples()]
        lines.append("")
    fitted = set(with_model(table).model)
    for model in (m for m in MODELS if m in fitted):
        for name, title in FIGURES.items():
            file = f"{name}{figure_suffix(model)}.png"
            title += model_suffix(model, " — ", title=True)
            if (folder / file).is_file():
                lines += [f"## {title}", "", f"![{title}]({file})", ""]
            else:
                lines += [f"## {title}", "", f"Not drawn: {MISSING_FIGURE.get(name, 'no data')}.",
                          ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path


def plot_throughput(rows: pd.DataFrame, path: Path, formats: Iterable[str] = ("png",)
                    ) -> list[Path]:
    """Responses per second (of the iterations: ``responses x iterations / compute``) against
    responses, one colour per estimator, filled markers on a GPU and hollow ones on a CPU, and
    each device's bandwidth bound as a dashed line (one read of the int8 codes per epoch at
    the copy bandwidth: ``bound_rate``). ``rows``: ``estimator``, ``device`` (``cpu``,
    ``cuda``), ``responses``, ``responses_per_second`` and ``bound_rate``."""
    fig, axes = new_figure(1, 1, figsize=(7.5, 4.5))
    ax = axes[0, 0]
    for (name, device), group in rows.sort_values("responses").groupby(["estimator", "device"]):
        look = style(str(name))
        gpu = str(device).startswith("cuda")
        ax.plot(group.responses, group.responses_per_second, linestyle="-" if gpu else ":",
                color=look["color"], marker=look["marker"],
                markerfacecolor=look["color"] if gpu else "none",
                label=f"{name} ({'GPU' if gpu else 'CPU'})")
    for device, group in rows.groupby("device"):
        bound = float(group.bound_rate.median())
        ax.axhline(bound, color="0.3", linestyle="--", linewidth=1)
        ax.annotate(f"{'GPU' if str(device).startswith('cuda') else 'CPU'} bandwidth bound",
                    (rows.responses.min(), bound), textcoords="offset points", xytext=(2, 3),
                    fontsize=8, color="0.3")
    ax.set(xscale="log", yscale="log", xlabel="responses (students x questions)",
           ylabel="responses per second (iterations)", title="Throughput of the iterations against the bandwidth bound")
    ax.grid(True, which="major", alpha=0.3)
    _legend(fig)
    return save_figure(fig, path, formats)
