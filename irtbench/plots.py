"""Comparison figures and a Markdown report, drawn only from the files of a results folder.

Every figure reads ``results.csv`` / ``curves.csv`` / ``errors.csv`` (never live objects), so any
old run can be re-plotted with ``irtbench plot DIR``. Each estimator keeps one colour and one
marker across all figures; bands and error bars span the seeds (mean +/- one standard deviation).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from irtbench.estimators import estimators  # noqa: E402
from irtbench.metrics import Z95  # noqa: E402
from irtbench.responses import size_label  # noqa: E402
from irtbench.results import ERRORS_FILE, read_curves, read_results, with_model  # noqa: E402
from irtbench.threads import CONTENDED  # noqa: E402

__all__ = ["plot_all", "write_report", "FIGURES"]

FIGURES = {
    "recovery": "Recovery vs size: RMSE and Cramér–Rao ratio",
    "speed": "Time and throughput vs size",
    "time_to_accuracy": "Time to accuracy: error against wall-clock seconds along each fit",
    "errors": "Estimation errors (estimate − truth, aligned)",
    "coverage": "Coverage of 95% intervals",
    "memory": "Peak memory vs size",
}

_MARKERS = "osD^vP*Xhp<>"
_COLORS = plt.get_cmap("tab10").colors


def style(name: str) -> dict[str, object]:
    """A fixed colour and marker per estimator (registry order; others after, by name)."""
    known = estimators()
    index = known.index(name) if name in known else len(known) + sum(map(ord, name)) % 7
    return {"color": _COLORS[index % len(_COLORS)], "marker": _MARKERS[index % len(_MARKERS)]}


def _ok(table: pd.DataFrame) -> pd.DataFrame:
    ok = table[table.status == "ok"].copy()
    ok["responses"] = ok.n_students * ok.n_questions
    return ok


def _finish(fig: plt.Figure, path: Path, formats: Iterable[str]) -> list[Path]:
    fig.tight_layout()
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
    for key, group in table.groupby(keys, sort=True):
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
        ax.errorbar(stats.index, centre, yerr=error, label=label, capsize=3,
                    linestyle="--" if dashed or missing else "-", **style(name))


def _size_axis(ax: plt.Axes, table: pd.DataFrame) -> None:
    ax.set_xscale("log")
    ax.set_xlabel("responses (students × questions)")
    sizes = table.drop_duplicates("responses").sort_values("responses")
    ax.set_xticks(sizes.responses, [size_label(n, m) for n, m in zip(sizes.n_students, sizes.n_questions)],
                  rotation=30, fontsize=8)
    ax.minorticks_off()
    ax.grid(alpha=0.3)


def _is_2pl(table: pd.DataFrame) -> bool:
    return "model" in table and (table.model == "2pl").any()


def plot_recovery(table: pd.DataFrame, path: Path, formats: Iterable[str]) -> list[Path]:
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    other = ("discrimination", "discriminations") if _is_2pl(table) else ("skill", "skills")
    panels = [("rmse_difficulty", "RMSE of difficulties (logits)"),
              (f"rmse_{other[0]}", f"RMSE of {other[1]}"),
              ("crb_ratio_difficulty", "difficulties: RMSE / Cramér–Rao bound"),
              (f"crb_ratio_{other[0]}", f"{other[1]}: RMSE / Cramér–Rao bound")]
    for ax, (column, title) in zip(axes.flat, panels):
        _lines(ax, table, column)
        _size_axis(ax, table)
        ax.set_title(title)
        if column.startswith("rmse"):
            ax.set_yscale("log")
            ax.set_ylabel("discrimination" if column.endswith("discrimination") else "logits")
        else:
            ax.axhline(1.0, color="black", linewidth=1, linestyle=":")
            ax.set_ylabel("ratio (1 = efficient)")
    axes[0, 0].legend(fontsize=8)
    aligned = "affine-aligned 2PL" if _is_2pl(table) else "aligned"
    fig.suptitle(FIGURES["recovery"] + f" (mean ± sd over seeds; {aligned}; extreme students "
                 "excluded)")
    return _finish(fig, path, formats)


def plot_speed(table: pd.DataFrame, path: Path, formats: Iterable[str]) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, column, label in ((axes[0], "seconds", "fit time (s)"),
                              (axes[1], "responses_per_second", "responses × iterations / s")):
        _lines(ax, table, column, by_device=True, spread="range")
        _size_axis(ax, table)
        ax.set_yscale("log")
        ax.set_ylabel(label)
    axes[0].set_title("time of the whole fit, compilation excluded (median, range over seeds)")
    axes[1].set_title("throughput (median and range over seeds)")
    axes[0].legend(fontsize=8)
    return _finish(fig, path, formats)


def _trace_size(curves: pd.DataFrame) -> tuple[int, int] | None:
    traced = curves.dropna(subset=["rmse_difficulty"])
    if traced.empty:
        return None
    counts = traced.groupby(["n_students", "n_questions"]).estimator.nunique()
    best = counts[counts == counts.max()].index
    return max(best, key=lambda nm: nm[0] * nm[1])


def plot_time_to_accuracy(table: pd.DataFrame, curves: pd.DataFrame, path: Path,
                          formats: Iterable[str]) -> list[Path]:
    """RMSE against the truth (difficulties, skills) and, for the estimators of the reference
    objective, the RMS gap to its exact optimum, against seconds into the fit."""
    size = _trace_size(curves)
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    if size is None:
        for ax in axes:
            ax.text(0.5, 0.5, "no fit in this folder recorded snapshots", ha="center")
        return _finish(fig, path, formats)
    n, m = size
    here = curves[(curves.n_students == n) & (curves.n_questions == m) & (curves.missing == 0)
                  ].dropna(subset=["rmse_difficulty"])
    rows = table[(table.n_students == n) & (table.n_questions == m) & (table.missing == 0)]
    panels = ((axes[0], "rmse_difficulty", f"difficulties, {size_label(n, m)}",
               "RMSE against the truth (logits)"),
              (axes[1], "rmse_skill", f"skills, {size_label(n, m)}",
               "RMSE against the truth (logits)"),
              (axes[2], "gap_rms", "distance to the exact optimum of the reference objective",
               "RMS gap (logits)"))
    for ax, column, title, ylabel in panels:
        data = here.dropna(subset=[column]) if column in here else here.iloc[:0]
        for name, group in data.groupby("estimator"):
            for number, (_seed, run) in enumerate(group.groupby("seed")):
                ax.plot(run.seconds, run[column].clip(lower=1e-9), linewidth=1.3, alpha=0.8,
                        markersize=3, label=name if number == 0 else None, **style(name))
        if column != "gap_rms":
            bound = rows[column.replace("rmse", "crb")].mean()
            ax.axhline(bound, color="black", linestyle=":", linewidth=1,
                       label=f"Cramér–Rao bound ({bound:.3f})")
        elif data.empty:
            ax.text(0.5, 0.5, "no estimator of the reference objective here", ha="center",
                    transform=ax.transAxes)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("seconds into the fit")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if "gap_rms" in here and here.gap_rms.notna().any():
        axes[2].legend(fontsize=8)
    fig.suptitle(FIGURES["time_to_accuracy"]
                 + " (one line per seed; seconds assume equal time per iteration)")
    return _finish(fig, path, formats)


def _error_size(errors: pd.DataFrame) -> tuple[int, int]:
    counts = errors.groupby(["n_students", "n_questions"]).estimator.nunique()
    best = counts[counts == counts.max()].index
    return max(best, key=lambda nm: nm[0] * nm[1])


def plot_errors(table: pd.DataFrame, errors: pd.DataFrame, path: Path,
                formats: Iterable[str]) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    if errors.empty:
        for ax in axes:
            ax.text(0.5, 0.5, "no errors.csv in this folder", ha="center")
        return _finish(fig, path, formats)
    n, m = _error_size(errors)
    here = errors[(errors.n_students == n) & (errors.n_questions == m) & (errors.missing == 0)
                  & ~errors.extreme]
    rows = table[(table.n_students == n) & (table.n_questions == m) & (table.missing == 0)]
    kinds = ("difficulty", "discrimination") if _is_2pl(table) else ("skill", "difficulty")
    for ax, kind in zip(axes, kinds):
        values = here[here.kind == kind]
        if values.empty:
            continue
        limit = np.quantile(np.abs(values.error), 0.995)
        bins = np.linspace(-limit, limit, 41)
        for name, group in values.groupby("estimator"):
            ax.hist(group.error, bins=bins, density=True, histtype="step", linewidth=1.6,
                    label=name, color=style(name)["color"])
        bound = rows[f"crb_{kind}"].mean()
        grid = np.linspace(-limit, limit, 200)
        ax.plot(grid, np.exp(-0.5 * (grid / bound) ** 2) / (bound * np.sqrt(2 * np.pi)),
                color="black", linestyle=":", label=f"N(0, CRB²), CRB = {bound:.3f}")
        ax.set_xlabel(f"{kind} error" + ("" if kind == "discrimination" else " (logits)"))
        ax.set_ylabel("density")
        ax.set_title(f"{kind}, {size_label(n, m)}, all seeds, extreme students excluded")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _finish(fig, path, formats)


def plot_coverage(table: pd.DataFrame, path: Path, formats: Iterable[str]) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    with_se = table.dropna(subset=["coverage_skill"])
    names = sorted(with_se.estimator.unique())
    sizes = with_se.drop_duplicates("responses").sort_values("responses")
    offsets = np.linspace(-0.25, 0.25, max(len(sizes), 1))
    for ax, kind in zip(axes, ("skill", "difficulty")):
        column = f"coverage_{kind}"
        plural = "skills" if kind == "skill" else "difficulties"
        for offset, (_, size) in zip(offsets, sizes.iterrows()):
            cells = with_se[with_se.responses == size.responses]
            stats = cells.groupby("estimator")[column].agg(["mean", "std"]).reindex(names)
            ax.errorbar(np.arange(len(names)) + offset, stats["mean"], yerr=stats["std"].fillna(0),
                        fmt="o", capsize=3, label=size_label(size.n_students, size.n_questions))
        ax.axhline(0.95, color="black", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(names)), names, rotation=20)
        ax.set_title(f"{plural}: share of truths inside estimate ± {Z95:.2f} SE (mean ± sd)")
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("coverage (nominal 0.95)")
    axes[0].legend(fontsize=8, title="size")
    return _finish(fig, path, formats)


def plot_memory(table: pd.DataFrame, path: Path, formats: Iterable[str]) -> list[Path]:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    floor = 0.01  # MiB: an RSS growth below a page or two is drawn at the floor of the log axis
    measured = table.dropna(subset=["peak_memory_bytes"]).assign(
        peak_memory_mib=lambda t: np.maximum(t.peak_memory_bytes / 2**20, floor))
    _lines(ax, measured, "peak_memory_mib", by_device=True, spread="range")
    _size_axis(ax, measured)
    ax.set_yscale("log")
    ax.set_ylabel("peak memory of the fit (MiB; median, range over seeds)")
    methods = ", ".join(sorted(measured.memory_method.dropna().unique()))
    ax.set_title(f"Peak memory vs size ({methods})", fontsize=10)
    ax.legend(fontsize=8)
    return _finish(fig, path, formats)


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
    models = table.model.unique() if "model" in table else ["rasch"]
    for model in sorted(models, key=lambda m: m != "rasch"):  # the Rasch set first, unsuffixed

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
    """File-name suffix of a model's figure set: none for the Rasch model, ``-2pl`` for the 2PL."""
    return "" if model == "rasch" else f"-{model}"


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


def write_report(folder: Path | str) -> Path:
    """``folder/report.md``: the summary table per estimator x size next to the figures."""
    from irtbench.harness import summarize
    from irtbench.results import read_environment

    folder = Path(folder)
    table = read_results(folder)
    env = read_environment(folder)
    summary = summarize(table)
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
        markdown_table(summary),
        "",
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
    problems = table[table.status != "ok"]
    if not problems.empty:
        lines += ["Fits that did not complete:", ""]
        lines += [f"- {r.status}: {r.estimator} {r.n_students}x{r.n_questions} seed {r.seed}: {r.reason}"
                  for r in problems.itertuples()]
        lines.append("")
    for model in ("rasch", "2pl"):
        for name, title in FIGURES.items():
            file = f"{name}{figure_suffix(model)}.png"
            if (folder / file).is_file():
                title = title if model == "rasch" else f"{title} — 2PL"
                lines += [f"## {title}", "", f"![{title}]({file})", ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
