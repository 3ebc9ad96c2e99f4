"""The sweep harness: tidy rows, nothing lost on interruption, statuses for failures."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest

import irtbench
from irtbench import harness
from irtbench.cli import main
from irtbench.estimators import base
from irtbench.estimators.base import Estimator, Result, State
from irtbench.results import IncompatibleResults

DESIGN_COLUMNS = (
    "estimator, backend, device, n_students, n_questions, missing, seed, seconds, "
    "compile_seconds, n_iter, responses_per_second, peak_memory_bytes, rmse_skill, "
    "rmse_difficulty, bias_skill, bias_difficulty, corr_skill, corr_difficulty, crb_ratio_skill, "
    "crb_ratio_difficulty, n_extreme, coverage_skill, coverage_difficulty, final_loss"
).split(", ")


ALLOCATED = 200 * 2**20


class Oracle(Estimator):
    """Returns the column means' logits: a quick, deterministic stand-in estimator."""

    name, backend = "test-oracle", "numpy"
    objective, colour = "joint", 99
    defaults = {"seed": 0, "behaviour": "ok"}

    def setup(self, responses, options, n_observed):
        return State(responses, options, n_observed, "cpu")

    def run(self, state):
        responses, options = state.responses, state.options
        if options["behaviour"] == "fail":
            raise RuntimeError("boom\nsecond line")
        if options["behaviour"] == "oom":
            raise MemoryError("cannot allocate")
        if options["behaviour"] == "sleep":
            time.sleep(5)
        if options["behaviour"] == "allocate":  # a known amount, touched: 200 MB
            block = np.ones(ALLOCATED // 8)
            assert block.sum() == ALLOCATED // 8
        if options["behaviour"] == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        p = np.clip(np.nanmean(responses, axis=0), 0.02, 0.98)
        q = np.clip(np.nanmean(responses, axis=1), 0.02, 0.98)
        return Result(np.log(q / (1 - q)), -np.log(p / (1 - p)), None, None,
                      np.array([1.0, 0.5]), 2, 1e-3)

    def warm_up(self, responses=None):
        pass

    def skip(self, n_students, n_questions, device):
        if self.options.get("behaviour") == "skip" and n_students > 50:
            return True, "too large for this test"
        return False, ""


@pytest.fixture
def oracle(monkeypatch):
    monkeypatch.setitem(base._REGISTRY, Oracle.name, Oracle)
    return Oracle.name


SIZES = [(40, 10), (60, 12)]


def tiny_sweep(out, oracle, **kwargs):
    options = {"torch-adam:epochs": 30, **kwargs.pop("options", {})}
    return harness.sweep(SIZES, ["torch-adam", oracle], seeds=2, device="cpu", out=out,
                         options=options, progress=False, models=("rasch",), **kwargs)


def test_tiny_sweep_writes_every_documented_column(tmp_path, oracle):
    table = tiny_sweep(tmp_path, oracle)
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert len(table) == len(on_disk) == 2 * 2 * 2
    assert set(DESIGN_COLUMNS) <= set(on_disk.columns)
    assert {"opt_epochs", "opt_lr", "opt_alpha", "status", "reason"} <= set(on_disk.columns)
    assert (on_disk.status == "ok").all()
    torch_rows = on_disk[on_disk.estimator == "torch-adam"]
    assert (torch_rows.n_iter == 30).all() and (torch_rows.opt_epochs == 30).all()
    np.testing.assert_allclose(
        on_disk.responses_per_second, on_disk.n_observed * on_disk.n_iter / on_disk.compute_seconds
    )
    assert (on_disk.seconds > 0).all() and (on_disk.peak_memory_bytes >= 0).all()
    assert on_disk.rmse_difficulty.between(0, 3).all() and on_disk.corr_difficulty.gt(0.5).all()
    assert set(on_disk.memory_method) == {"rss_peak_growth"}
    # both estimators saw the same simulated data in a cell
    assert on_disk.groupby(["n_students", "seed"]).crb_difficulty.nunique().eq(1).all()
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert len(curves[curves.estimator == "torch-adam"]) == 4 * 30
    env = json.loads((tmp_path / "environment.json").read_text())
    assert {"python", "numpy", "torch", "jax", "numpyro", "device_name", "cpu", "git_commit"} <= set(env)


def test_interrupted_sweep_keeps_its_rows_and_resume_completes(tmp_path, oracle):
    finished = []

    def interrupt_after_three(row):
        finished.append(row)
        if len(finished) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_sweep(tmp_path, oracle, after_row=interrupt_after_three)
    assert len(pd.read_csv(tmp_path / "results.csv")) == 3
    with pytest.raises(FileExistsError, match="--resume"):
        tiny_sweep(tmp_path, oracle)
    table = tiny_sweep(tmp_path, oracle, resume=True)
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert len(table) == len(on_disk) == 8
    assert not on_disk.duplicated(["estimator", "n_students", "n_questions", "missing", "seed"]).any()


def test_resume_refuses_a_folder_from_another_environment(tmp_path, oracle):
    tiny_sweep(tmp_path, oracle, after_row=None)
    env_path = tmp_path / "environment.json"
    env = json.loads(env_path.read_text())
    env["torch"], env["schema_version"] = "1.0.0", 0
    env_path.write_text(json.dumps(env))
    with pytest.raises(IncompatibleResults, match="torch: '1.0.0' there"):
        tiny_sweep(tmp_path, oracle, resume=True)
    assert len(tiny_sweep(tmp_path, oracle, resume=True, force=True)) == 8


@pytest.mark.parametrize(
    "behaviour, status, reason",
    [
        ("fail", "error", "RuntimeError: boom"),
        ("oom", "oom", "MemoryError: cannot allocate"),
        ("sleep", "timeout", "time budget of 0.5 s"),
        ("skip", "skipped", "too large for this test"),
    ],
)
def test_failures_become_rows_and_the_sweep_goes_on(tmp_path, oracle, behaviour, status, reason):
    table = harness.sweep([(60, 12)], [oracle, "torch-adam"], seeds=1, device="cpu",
                          out=tmp_path, options={f"{oracle}:behaviour": behaviour, "epochs": 20},
                          time_budget=0.5, progress=False, models=("rasch",))
    bad = table[table.estimator == oracle].iloc[0]
    assert bad.status == status
    assert reason in bad.reason
    assert "\n" not in bad.reason and np.isnan(bad.seconds)
    assert table[table.estimator == "torch-adam"].status.tolist() == ["ok"]


def test_unknown_estimator_fails_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown estimator 'nope'"):
        harness.sweep([(10, 5)], ["nope"], out=tmp_path, progress=False)
    assert not (tmp_path / "results.csv").exists()


def test_summary_has_one_line_per_estimator_and_size(tmp_path, oracle):
    summary = harness.summarize(tiny_sweep(tmp_path, oracle))
    assert len(summary) == 4 and set(summary.fits) == {"2/2"}
    assert {"seconds", "resp_per_s", "crb_diff", "size"} <= set(summary.columns)


def test_cli_run_quick(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--quick", "--estimators", "torch-adam", "--out", str(out),
                 "-o", "epochs=20", "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "torch-adam" in printed and "200x50" in printed and "results in" in printed
    table = pd.read_csv(out / "results.csv")  # one size, each of both models (the default)
    assert len(table) == 2 and set(table.model) == {"rasch", "2pl"}
    assert main(["run", "--quick", "--out", str(out)]) == 2  # exists: needs --resume
    assert "--resume" in capsys.readouterr().err


def test_quick_is_one_size_without_the_slowest_cells(tmp_path, capsys, monkeypatch):
    """--quick promised "under a minute" and took 85-104 s on an idle 2-core machine: now one
    size and the default estimators but NUTS and VI (45 s measured there, harness.cells)."""
    asked = {}

    def sweep(sizes, names, **options):
        asked.update(sizes=sizes, names=names, **options)
        raise KeyboardInterrupt  # nothing to run: what the sweep was asked is the point

    monkeypatch.setattr(harness, "sweep", sweep)
    assert main(["run", "--quick", "--out", str(tmp_path / "run")]) == 130
    assert asked["sizes"] == ((200, 50),) and asked["names"] is None and asked["seeds"] == 1
    assert asked["quick"] is True
    main(["run", "--sizes", "30x6", "--out", str(tmp_path / "other")])
    assert asked["quick"] is False  # only --quick leaves them out


def test_a_quick_sweep_keeps_the_estimators_that_declare_in_quick_sweep(monkeypatch):
    """The default choice of a quick sweep: the estimators of the default sweep that declare
    ``in_quick_sweep`` (here NUTS and VI do not), read from the classes, not a list of names."""
    chosen = {}

    def cells(sizes, names, *args, **kwargs):
        chosen["names"] = set(names)
        return []

    monkeypatch.setattr(harness, "_cells", cells)
    harness.sweep([(30, 6)], quick=True, progress=False)
    declared = {n for n in irtbench.estimators(available_only=True)
                if irtbench.get_estimator(n).in_default_sweep
                and irtbench.get_estimator(n).in_quick_sweep}
    assert chosen["names"] == declared and "torch-adam" in declared
    assert not declared & {"numpyro-nuts", "numpyro-vi"}


def test_cli_run_rejects_bad_sizes(tmp_path, capsys):
    assert main(["run", "--sizes", "100by3", "--out", str(tmp_path)]) == 2
    assert "STUDENTSxQUESTIONS" in capsys.readouterr().err


def test_registry_is_clean_after_the_oracle_tests():
    assert "test-oracle" not in irtbench.estimators()


def test_cli_run_on_cuda_without_cuda_fails_at_once(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here: the GPU script exercises --device cuda")
    assert main(["run", "--quick", "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_each_fit_in_a_worker_of_its_own_has_its_own_peak_memory(tmp_path, oracle):
    """Two fits that each allocate 200 MB, one after the other: each row shows about 200 MB (a
    process that an earlier fit had grown would show far less), the parent grows by none."""
    table = harness.sweep([(60, 12)], [oracle], seeds=2, device="cpu", out=tmp_path,
                          options={f"{oracle}:behaviour": "allocate"}, progress=False)
    assert (table.status == "ok").all() and (table.memory_method == "rss_peak_growth").all()
    np.testing.assert_allclose(table.peak_memory_bytes, ALLOCATED, rtol=0.15)


def test_a_crashing_or_hanging_fit_is_a_row_and_the_sweep_goes_on(tmp_path, oracle):
    crash = harness.sweep([(60, 12)], [oracle, "jml-newton"], seeds=1, device="cpu",
                          out=tmp_path / "crash", options={f"{oracle}:behaviour": "crash"},
                          progress=False)
    assert crash.status.tolist() == ["error", "ok"]
    assert "died with exit code -11" in crash.reason.iloc[0]
    start = time.perf_counter()
    hang = harness.sweep([(60, 12)], [oracle, "jml-newton"], seeds=1, device="cpu",
                         out=tmp_path / "hang", options={f"{oracle}:behaviour": "sleep"},
                         time_budget=1.0, progress=False)
    assert hang.status.tolist() == ["timeout", "ok"] and time.perf_counter() - start < 4.5
    assert "time budget of 1 s" in hang.reason.iloc[0]


def test_in_process_sweeps_give_the_same_rows(tmp_path, oracle):
    kept = ["estimator", "status", "rmse_difficulty", "crb_ratio_difficulty", "n_iter"]
    isolated = harness.sweep([(60, 12)], [oracle, "jml-newton"], seeds=1, device="cpu",
                             progress=False)
    inside = harness.sweep([(60, 12)], [oracle, "jml-newton"], seeds=1, device="cpu",
                           progress=False, isolate=False)
    pd.testing.assert_frame_equal(isolated[kept], inside[kept])


def test_errors_flag_the_item_parameters_of_runaway_questions():
    """errors.csv's ``runaway`` marks every item parameter of a question that ran away (the
    error histograms leave them out), and nothing else."""
    from irtbench.evaluation import error_rows
    from irtbench.models import extremes

    data = irtbench.simulate(60, 12, seed=3, model="2pl")  # an item the data do not pin down
    fit = irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl")
    assert fit.runaway_questions.any()
    rows = pd.DataFrame(error_rows({"estimator": "mml-em"}, fit, data, extremes(data.responses)))
    items = rows[rows.kind != "skill"]
    assert not rows[rows.kind == "skill"].runaway.any()
    for kind in ("difficulty", "discrimination"):
        flagged = items[items.kind == kind].sort_values("index").runaway.to_numpy()
        np.testing.assert_array_equal(flagged, fit.runaway_questions)


def test_every_fit_reports_its_gap_to_the_exact_marginal_optimum_computed_once_per_data(
        tmp_path):
    """``ll_gap`` (irtbench.gaps): mml-em's own fit stops at the reference's maximum (a gap
    of its tolerance's order), torch-adam's 2PL joint fit below it; the maximum is computed once
    per data and kept in references.csv, and the M2PL (no exact marginal optimum) gets NaN."""
    out = tmp_path / "run"
    table = harness.sweep([(300, 12)], ["mml-em", "torch-adam"], seeds=1, models=("2pl",),
                          device="cpu", out=out, progress=False,
                          options={"torch-adam:epochs": 300})
    gaps = table.set_index("estimator").ll_gap
    assert 0 <= gaps["mml-em"] < 1e-3 < gaps["torch-adam"]
    references = pd.read_csv(out / "references.csv")
    assert len(references) == 1 and references.model.tolist() == ["2pl"]
    m2pl = harness.sweep([(60, 8)], ["torch-adam"], seeds=1, models=("m2pl",), device="cpu",
                         out=tmp_path / "m2pl", progress=False,
                         options={"torch-adam:epochs": 20})
    assert np.isnan(m2pl.ll_gap.iloc[0])


def test_the_items_axis_measures_few_item_accuracy_after_each_fit(tmp_path):
    """``--items``: each fit's accuracy.csv rows (k x strategy x estimate), and the report's
    table; with every item shown p-IRT is the realised accuracy itself, and with more items
    every estimate errs less."""
    out = tmp_path / "run"
    harness.sweep([(300, 30)], ["mml-em"], seeds=1, models=("2pl",), device="cpu", out=out,
                  progress=False, items=(5, 30, 99))
    rows = pd.read_csv(out / "accuracy.csv")
    assert set(rows["items"]) == {5, 30} and (rows.status == "ok").all()
    assert set(rows.strategy) == {"random", "information"}
    assert set(rows.method) == {"mean", "pirt", "gpirt"}
    full = rows[(rows["items"] == 30) & (rows.method == "pirt")]
    assert (full.mae < 1e-12).all()
    few = rows[(rows["items"] == 5) & (rows.strategy == "random")].set_index("method").mae
    assert (few > 0.02).all() and few["pirt"] < few["mean"]
    from irtbench.plots import write_report

    assert "Few-item accuracy of new respondents" in write_report(out).read_text()
