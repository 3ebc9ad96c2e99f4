"""Regression checks of recovery accuracy against the committed CPU baseline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from irtbench import harness
from irtbench.baseline import CROSS_Z, check, regenerate_command
from irtbench.cli import main
from irtbench.results import IncompatibleResults, read_results

BASELINE = Path(__file__).resolve().parents[2] / "results" / "baseline"


def smallest_size() -> tuple[int, int]:
    table = read_results(BASELINE)
    row = table.loc[(table.n_students * table.n_questions).idxmin()]
    return int(row.n_students), int(row.n_questions)


@pytest.fixture(scope="module")
def rerun(tmp_path_factory) -> Path:
    """The baseline's default sweep (every default estimator of each model), refitted on its
    smallest size, first seed."""
    out = tmp_path_factory.mktemp("rerun")
    harness.sweep([smallest_size()], None, seeds=[0], models=("rasch", "2pl"), device="cpu",
                  out=out, progress=False)
    assert set(read_results(out).estimator) == set(read_results(BASELINE).estimator)
    return out


def copy_with(folder: Path, target: Path, change) -> Path:
    shutil.copytree(folder, target)
    table = pd.read_csv(target / "results.csv")
    change(table)
    table.to_csv(target / "results.csv", index=False)
    return target


def test_the_committed_baseline_is_a_cpu_run_of_the_default_sweep():
    table = read_results(BASELINE)
    sizes = set(zip(table.n_students, table.n_questions))
    assert sizes == set(harness.DEFAULT_SIZES)
    assert set(table.seed) == {0, 1, 2} and set(table.device.dropna()) == {"cpu"}
    assert set(table.model) == {"rasch", "2pl"}
    assert (table.status == "ok").sum() >= len(table) - 3  # NUTS skips 10^6 responses
    assert (BASELINE / "environment.json").is_file() and (BASELINE / "report.md").is_file()


def test_estimators_still_reproduce_the_baseline(rerun, capsys):
    result = check(rerun, BASELINE)
    assert result.cells == len(read_results(rerun))
    assert result.passed, result.regressions.to_string()
    assert main(["check", str(rerun), "--baseline", str(BASELINE)]) == 0
    assert "no recovery metric got worse" in capsys.readouterr().out


def test_a_perturbed_metric_fails_the_check(rerun, tmp_path, capsys):
    def worsen(table):
        table.loc[(table.estimator == "torch-adam") & (table.model == "rasch"),
                  "rmse_difficulty"] *= 1.10

    perturbed = copy_with(rerun, tmp_path / "perturbed", worsen)
    result = check(perturbed, BASELINE)
    assert list(result.regressions.metric) == ["rmse_difficulty"]
    assert list(result.regressions.estimator) == ["torch-adam"]
    assert main(["check", str(perturbed), "--baseline", str(BASELINE)]) == 1
    assert "rmse_difficulty" in capsys.readouterr().out


def test_a_worse_estimator_fails_the_check(tmp_path):
    """A mutation of the estimator itself: the reference stopped after 300 epochs."""
    harness.sweep([smallest_size()], ["torch-adam"], seeds=[0], device="cpu", out=tmp_path,
                  options={"epochs": 300}, progress=False, models=("rasch",))
    result = check(tmp_path, BASELINE)
    assert not result.passed
    assert {"rmse_difficulty", "rmse_skill"} <= set(result.regressions.metric)


def test_a_failed_fit_is_a_regression(rerun, tmp_path):
    def fail(table):
        table["reason"] = table["reason"].astype(object)
        failed = (table.estimator == "jax-adam") & (table.model == "rasch")
        table.loc[failed, ["status", "reason"]] = ["error", "boom"]

    result = check(copy_with(rerun, tmp_path / "failed", fail), BASELINE)
    assert list(result.regressions.metric) == ["status"]


def test_cross_platform_tolerance_is_half_the_seed_spread(rerun, tmp_path):
    base = read_results(BASELINE)
    n, m = smallest_size()
    cells = base[(base.estimator == "torch-adam") & (base.model == "rasch")
                 & (base.n_students == n) & (base.n_questions == m)]
    spread = cells.rmse_difficulty.std()

    def shift(by):
        def change(table):
            chosen = (table.estimator == "torch-adam") & (table.model == "rasch")
            table.loc[chosen, "rmse_difficulty"] += by
        return change

    inside = check(copy_with(rerun, tmp_path / "inside", shift(0.8 * CROSS_Z * spread)), BASELINE,
                   mode="cross")
    outside = check(copy_with(rerun, tmp_path / "outside", shift(1.2 * CROSS_Z * spread)),
                    BASELINE, mode="cross")
    assert inside.passed and not outside.passed


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.pop("rmse_skill"), "lacks the column"),
        (lambda t: t.__setitem__("n_questions", 7), "no cell in common"),
        (lambda t: t.__setitem__("n_observed", t.n_observed - 1), "different simulated data"),
    ],
)
def test_unusable_input_exits_2(rerun, tmp_path, capsys, change, message):
    broken = copy_with(rerun, tmp_path / "broken", change)
    with pytest.raises(IncompatibleResults, match=message):
        check(broken, BASELINE)
    assert main(["check", str(broken), "--baseline", str(BASELINE)]) == 2
    assert message in capsys.readouterr().err


def test_a_stale_baseline_is_named_with_its_cell_and_the_command_that_remakes_it(rerun, tmp_path,
                                                                                 capsys):
    """Issue 30: a fresh clone's check said "different simulated data: crb_difficulty is
    0.3625... in the baseline and 0.3631... in the run for mml-em 100x100 seed 1 (other
    simulation settings?)": no model, and no word of what to do (the baseline was stale)."""
    def rebound(table):
        chosen = (table.estimator == "mml-em") & (table.model == "2pl")
        table.loc[chosen, "crb_difficulty"] *= 1.002

    changed = copy_with(rerun, tmp_path / "changed", rebound)
    n, m = smallest_size()
    assert main(["check", str(changed), "--baseline", str(BASELINE)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"a different Cramér–Rao bound in 1 of the {len(read_results(rerun))} common" in error
    assert f"first mml-em 2pl {n}x{m}, missing 0, seed 0: crb_difficulty" in error
    assert "another version of irtbench" in error  # what may differ, besides the settings
    assert f"regenerate it with `{regenerate_command(BASELINE)}`" in error
    assert "otherwise run with the settings it used" in error


def test_the_baseline_is_remade_by_its_own_command_into_its_own_folder(tmp_path):
    """The command the advice gives: the recorded ``irtbench run`` with its settings, written
    into the baseline's folder, whole (no --resume or --force)."""
    (tmp_path / "environment.json").write_text(
        '{"command": ".venv/bin/irtbench run --device cpu --sizes 100x100 --out /tmp/new '
        '--resume --force"}')
    assert regenerate_command(tmp_path) == (
        f"irtbench run --device cpu --sizes 100x100 --out {tmp_path}")
    (tmp_path / "environment.json").write_text("{}")
    assert regenerate_command(tmp_path) == f"irtbench run --device cpu --out {tmp_path}"


def test_a_fresh_quick_sweep_checks_clean_against_the_committed_baseline(tmp_path, capsys):
    """What a new user does after ``make run``, small: ``irtbench run --quick`` (the quick
    estimators of every default model) at the baseline's smallest size with its three seeds,
    then ``irtbench check`` against ``results/baseline``: every cell they share compares, and
    nothing got worse (exit 0). Until the baseline is regenerated its mml-em 2PL seed 1 row
    differs (exit 2)."""
    n, m = smallest_size()
    out = tmp_path / "quick"
    assert main(["run", "--quick", "--sizes", f"{n}x{m}", "--seeds", "3", "--device", "cpu",
                 "--in-process", "--out", str(out)]) == 0
    capsys.readouterr()
    code = main(["check", str(out), "--baseline", str(BASELINE)])
    printed = capsys.readouterr()
    assert code == 0, printed.err + printed.out
    fitted = read_results(out)
    assert f"compared {(fitted.status == 'ok').sum()} cell(s)" in printed.out
