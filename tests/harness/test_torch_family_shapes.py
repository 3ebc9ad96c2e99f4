"""benchmarks/torch_family_shapes.py: the time-to-accuracy table (the 5% rule, each package's
fastest method that reaches the best accuracy) on hand-made rows, --render reproducing it from
the CSV alone, the order of the fits and the skips, bad input in one line, and (heavy: pytest -m
heavy) one tiny run."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import benchmark_script

from irtbench.results import append_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shapes():
    return benchmark_script("torch_family_shapes")


def row(shapes, shape: str, method: str, package: str, seconds: float, rmse: float, *,
        status: str = "ok", turn: int = 0, estimator: str | None = None) -> dict:
    """A row as a run writes it (the RMSEs of a and b equal, so their root mean square is
    ``rmse``)."""
    n, j = map(int, shape.split("x"))
    ok = status == "ok"
    values = {"shape": shape, "n_students": n, "n_questions": j, "seed": 1, "round": turn,
              "method": method, "estimator": estimator or method, "package": package,
              "objective": "marginal", "device": "cpu", "status": status,
              "reason": "" if ok else "the fit ran past the time budget of 300 s",
              "seconds": seconds if ok else np.nan, "n_iter": 20 if ok else np.nan,
              "rmse_discrimination": rmse, "rmse_difficulty": rmse, "rmse": rmse,
              "ll_gap": 0.5 if ok else np.nan, "gap_at": "N(0,1)" if ok else "",
              "package_converged": "yes" if ok else "", "converged": "True" if ok else "",
              "n_runaway": 0, "peak_rss_gb": 0.4, "contention": 0.0, "load_average": 1.0,
              "startup_seconds": np.nan, "version": "0"}
    assert set(values) == set(shapes.COLUMNS)
    return values


def hand_made(shapes) -> list[dict]:
    """Two shapes. 1000x50: the best RMSE 0.100 (mml-em); jax-adam at 0.104 reaches it and is
    irtbench's fastest that does; irtorch-mml at 0.1049 just reaches it (two rounds: median
    seconds 6), irtorch-jml at 0.1051 just misses it though faster; torch-measure reaches it
    with none (its SVI timed out). 10000x100: irtbench's only finisher misses; irtorch-jml is
    the best."""
    r = functools.partial(row, shapes)
    return [
        r("1000x50", "mml-em", "irtbench", 0.5, 0.100),
        r("1000x50", "jax-adam", "irtbench", 0.3, 0.104),
        r("1000x50", "irtorch-mml", "irtorch", 5.0, 0.1049),
        r("1000x50", "irtorch-mml", "irtorch", 7.0, 0.1049, turn=1),
        r("1000x50", "irtorch-jml", "irtorch", 3.0, 0.1051),
        r("1000x50", "torch-measure-mle", "torch-measure", 1.0, 0.2),
        r("1000x50", "torch-measure-svi", "torch-measure", np.nan, np.nan, status="timeout"),
        r("10000x100", "jax-adam", "irtbench", 2.0, 0.08),
        r("10000x100", "irtorch-jml", "irtorch", 40.0, 0.03),
    ]


def test_the_5_percent_rule_and_each_package_s_fastest_method_that_reaches_it(shapes):
    methods = shapes.reaching(shapes.per_method(pd.DataFrame(hand_made(shapes))))
    first = methods[methods["shape"] == "1000x50"].set_index("method")
    assert (first["best_rmse"] == 0.100).all()
    assert first["reaches"].to_dict() == {
        "mml-em": True, "jax-adam": True, "irtorch-mml": True, "irtorch-jml": False,
        "torch-measure-mle": False, "torch-measure-svi": False}
    assert first.loc["irtorch-mml", "seconds"] == 6.0 and first.loc["irtorch-mml", "rounds"] == 2
    assert first.loc["torch-measure-svi", "status"] == "timeout"

    winners = shapes.fastest(methods).set_index(["shape", "package"])
    home, irtorch, measure = (winners.loc[("1000x50", p)]
                              for p in ("irtbench", "irtorch", "torch-measure"))
    assert (home["method"], home["seconds"], home["x_irtbench"]) == ("jax-adam", 0.3, 1.0)
    assert irtorch["method"] == "irtorch-mml" and irtorch["x_irtbench"] == pytest.approx(20.0)
    assert measure["method"] == "" and np.isnan(measure["seconds"])
    assert (measure["closest"], measure["closest_rmse"]) == ("torch-measure-mle", 0.2)
    late = winners.loc[("10000x100", "irtbench")]
    assert late["method"] == "" and late["closest"] == "jax-adam"
    assert winners.loc[("10000x100", "irtorch"), "method"] == "irtorch-jml"
    assert np.isnan(winners.loc[("10000x100", "irtorch"), "x_irtbench"])
    assert ("10000x100", "torch-measure") not in winners.index  # it ran nothing there

    said = shapes.verdicts(shapes.fastest(methods))
    assert said == [
        ("- 1000x50: irtbench's jax-adam reaches it in 0.3 s; irtorch-mml takes 20x as long "
         "(6 s); no method of torch-measure reaches it."),
        ("- 10000x100: no method of irtbench reaches the best accuracy (irtorch-jml does in "
         "40 s).")]


def test_a_package_faster_than_irtbench_is_said_to_be(shapes):
    rows = [row(shapes, "300x20", "mml-em", "irtbench", 2.0, 0.1),
            row(shapes, "300x20", "irtorch-mml", "irtorch", 0.5, 0.1)]
    said = shapes.verdicts(shapes.fastest(shapes.reaching(shapes.per_method(pd.DataFrame(rows)))))
    assert said == [("- 300x20: irtbench's mml-em reaches it in 2 s; not ahead: irtorch-mml "
                     "is 4x faster (0.5 s).")]


def test_render_reproduces_the_table_from_the_csv_alone(shapes, tmp_path, capsys):
    csv = tmp_path / shapes.CSV
    append_rows(csv, shapes.COLUMNS, hand_made(shapes))
    assert shapes.main(["--render", "--out", str(tmp_path)]) == 0
    written = (tmp_path / shapes.MARKDOWN).read_text()
    assert written == shapes.markdown_report(shapes.read_rows(csv)) + "\n"
    assert "| 1000x50 | 0.1 | irtorch | irtorch-mml | 6 | 20 |  |  |" in written
    assert "| 1000x50 | 0.1 | torch-measure |  |  |  | torch-measure-mle | 0.2 |" in written
    assert (tmp_path / f"{shapes.FIGURE}.png").stat().st_size > 0
    assert shapes.main(["--render", "--out", str(tmp_path)]) == 0
    assert (tmp_path / shapes.MARKDOWN).read_text() == written


def test_methods_take_turns_by_package_and_each_round_starts_one_later(shapes):
    methods = shapes.parse_methods("mml-em,jax-adam,torch-adam,irtorch-mml,irtorch-vae,"
                                   "torch-measure-mle")
    order = [m.label for m in shapes.interleaved(methods)]
    assert order == ["mml-em", "irtorch-mml", "torch-measure-mle", "jax-adam", "irtorch-vae",
                     "torch-adam"]
    assert [m.label for m in shapes.interleaved(methods, 1)] == order[1:] + order[:1]
    variant = shapes.parse_methods("torch-adam[epochs=50,lr=0.05]")[0]
    assert variant.variant and variant.options == (("epochs", 50), ("lr", 0.05))
    assert variant.build("cpu").config["epochs"] == 50 and variant.package == "irtbench"


def test_a_method_is_skipped_after_a_timeout_or_where_its_projection_passes_the_budget(shapes):
    mml, mle = shapes.parse_methods("mml-em,torch-measure-mle")
    rows = [row(shapes, "1000x50", "mml-em", "irtbench", 0.05, 0.1),
            row(shapes, "1000x50", "torch-measure-mle", "torch-measure", 20.0, 0.1),
            row(shapes, "10000x100", "torch-measure-mle", "torch-measure", 0, 0, status="timeout")]
    assert shapes.skip_reason(mml, (10000, 100), rows, 300.0) is None
    assert shapes.skip_reason(mle, (10000, 100), rows[:2], 300.0) == (
        "projected 400 s from 20.0 s at 1000x50")
    assert shapes.skip_reason(mle, (2000, 1000), rows, 300.0) == "it timed out at 10000x100"
    assert shapes.skip_reason(mle, (1000, 50), rows, 300.0) is None  # nothing smaller


def test_the_package_s_own_flag_is_its_stopping_rule_or_irtbench_s_converged(shapes):
    flag = shapes.package_flag
    assert flag({"stopping_rule": "epochs", "stopped_by_rule": True, "converged": False}) == "yes"
    assert flag({"stopping_rule": "epochs", "stopped_by_rule": False}) == "no"
    assert flag({"stopping_rule": "none: max_epochs SVI steps", "converged": True}) == "no rule"
    assert flag({"converged": True}) == "yes" and flag({"converged": False}) == "no"
    assert flag({"kernel": "logit"}) == "no rule"  # torch-adam: a fixed number of epochs


@pytest.mark.parametrize("arguments, says", [
    (["--sizes", "1000"], "--sizes"),
    (["--methods", "mml-em,no-such"], "unknown estimator 'no-such'"),
    (["--methods", "cml"], "does not fit the 2PL"),
    (["--methods", "mml-em[colour=1]"], "colour"),
    (["--rounds", "0"], "--rounds"),
    (["--render"], "no rows to render"),
])
def test_bad_input_is_one_line_and_exit_code_2(shapes, tmp_path, capsys, arguments, says):
    assert shapes.main([*arguments, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err
    assert not (tmp_path / shapes.CSV).exists()


def test_an_existing_csv_needs_resume_or_force(shapes, tmp_path, capsys):
    append_rows(tmp_path / shapes.CSV, shapes.COLUMNS, hand_made(shapes)[:1])
    assert shapes.main(["--methods", "mml-em", "--out", str(tmp_path)]) == 2
    assert "--resume to finish its run, --force" in capsys.readouterr().err


@pytest.mark.heavy  # two runs of the script: about 25 s on 2 busy cores
def test_a_tiny_run_in_worker_processes_with_a_timeout_and_a_resume(tmp_path):
    """Each fit in a worker of its own: mml-em finishes at its optimum (gap 0), a fit past the
    budget is a timeout row, and --resume adds nothing to a finished run."""
    command = [sys.executable, "benchmarks/torch_family_shapes.py", "--sizes", "300x20",
               "--methods", "mml-em,torch-adam[epochs=100000000]", "--time-budget", "4",
               "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = pd.read_csv(tmp_path / "shapes.csv").set_index("method")
    assert rows.loc["mml-em", "status"] == "ok" and 0 < rows.loc["mml-em", "rmse"] < 1
    assert abs(rows.loc["mml-em", "ll_gap"]) < 1e-4 and rows.loc["mml-em", "peak_rss_gb"] > 0
    assert rows.loc["torch-adam[epochs=100000000]", "status"] == "timeout"
    assert (tmp_path / "shapes.md").exists() and (tmp_path / "shapes.png").exists()
    again = subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300, check=False)
    assert again.returncode == 0 and len(pd.read_csv(tmp_path / "shapes.csv")) == 2
