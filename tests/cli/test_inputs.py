"""Every input gets an answer: one clear line and exit 2 for what cannot be used, checked
before any work or any file is written; one rule for hopeless data."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import NAMES, fast_options, require

import irtbench
from irtbench.cli import main

HOPELESS = {
    "all right": np.ones((6, 4)),
    "1x1": [[1.0]],
    "one row": [[1.0, 0.0, 1.0, 0.0]],
    "two opposite students": [[1, 1, 1], [0, 0, 0]],
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", sorted(HOPELESS))
def test_hopeless_data_get_the_same_refusal_from_every_estimator(name, case):
    require(name)
    with pytest.raises(ValueError, match="no finite estimate: after removing the .*at least "
                                         "two of each are needed"):
        irtbench.fit(HOPELESS[case], estimator=name, **fast_options(name))


def one_line_exit_2(capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0], err


def test_fit_checks_out_before_fitting(verbagg_path, tmp_path, capsys):
    fit = ["fit", str(verbagg_path), "--estimator", "jml-newton", "--device", "cpu", "--out"]
    one_line_exit_2(capsys, fit + [str(tmp_path / "nodir" / "x.csv")], "does not exist")
    one_line_exit_2(capsys, fit + [str(tmp_path)], "is a folder")
    existing = tmp_path / "estimates.csv"
    existing.write_text("keep me\n")
    one_line_exit_2(capsys, fit + [str(existing)], "exists; choose another --out")
    assert existing.read_text() == "keep me\n"
    assert main(fit + [str(existing), "--force"]) == 0
    assert pd.read_csv(existing).shape == (316 + 24, 6)
    assert [p.name for p in tmp_path.iterdir()] == ["estimates.csv"]  # no temporary left


def test_a_failed_fit_leaves_no_file(tmp_path, capsys):
    path = tmp_path / "hopeless.csv"
    pd.DataFrame(np.ones((5, 3), dtype=int), columns=["a", "b", "c"]).to_csv(path, index=False)
    one_line_exit_2(capsys, ["fit", str(path), "--out", str(tmp_path / "e.csv")],
                    "no finite estimate")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hopeless.csv"]


@pytest.mark.parametrize("name", ["jml-newton", "cml", "torch-adam", "mml-em"])
def test_fit_summary_and_file_leave_the_extremes_out_on_one_origin(verbagg_path, tmp_path,
                                                                    capsys, name):
    out = tmp_path / "e.csv"
    quick = [f"{key}={value}" for key, value in fast_options(name).items() if key != "device"]
    with np.errstate(all="raise"):  # no RuntimeWarning on the way
        assert main(["fit", str(verbagg_path), "--estimator", name, "--device", "cpu",
                     "--out", str(out), "--origin", "mean-difficulty",
                     *(arg for pair in quick for arg in ("-o", pair))]) == 0
    printed = capsys.readouterr().out
    assert "nan" not in printed and "skill sd" in printed
    assert "origin: mean-difficulty, the same for every estimator" in printed
    table = pd.read_csv(out)
    questions = table[(table.kind == "question") & ~table.extreme]
    assert abs(questions.estimate.mean()) < 1e-9 and (table.origin == "mean-difficulty").all()


@pytest.mark.parametrize("name", ["cml", "mml-em"])
def test_fit_writes_the_estimators_own_identification_by_default(verbagg_path, tmp_path,
                                                                 capsys, name):
    """By default the file holds what ``irtbench.fit`` returns (issue 25: it used to re-centre
    every estimator's difficulties to mean 0), and says so in its ``origin`` column and the
    summary."""
    out = tmp_path / "e.csv"
    assert main(["fit", str(verbagg_path), "--estimator", name, "--out", str(out)]) == 0
    assert f"origin: {name}'s own identification" in capsys.readouterr().out
    table = pd.read_csv(out)
    fit = irtbench.fit(irtbench.load_responses(verbagg_path).responses, name)
    np.testing.assert_array_equal(table.loc[table.kind == "question", "estimate"],
                                  fit.difficulty)
    np.testing.assert_array_equal(table.loc[table.kind == "student", "estimate"], fit.skill)
    assert (table.origin == "estimator").all()


@pytest.mark.parametrize("argv, message", [
    (["--sizes", "infx100"], "finite numbers"),
    (["--sizes", "10.5x3"], "whole numbers"),
    (["--seeds", "0"], "at least one seed"),
    (["--seeds", "-1"], "at least one seed"),
    (["--device", "gpu"], "sees no CUDA GPU"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--time-budget", "-1"], "must be >= 0"),
    (["--missing", "1.5"], "must be in [0, 1)"),
    (["--estimators", "nope"], "unknown estimator 'nope'"),
    (["--threads", "many"], "neither auto nor a number"),
    (["--threads", "0"], "threads=0 must be between 1 and"),
    (["--jobs", "999"], "jobs=999 must be between 1 and the"),
    (["--repeat", "0"], "repeat=0 must be a positive integer"),
    (["--jobs", "2", "--in-process"], "one cell at a time"),
])
def test_run_refuses_bad_arguments_before_writing_anything(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    one_line_exit_2(capsys, ["run", "--quick", "--out", str(out), *argv], message)
    assert not out.exists()


def test_run_says_where_its_results_go_before_it_starts(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--sizes", "30x6", "--estimators", "jml-newton", "--seeds", "1",
                 "--device", "cpu", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"results go to {out}/" in err.splitlines()[0]
    assert (out / "results.csv").is_file()


def test_fit_prints_the_samplers_diagnostics(verbagg_path, tmp_path, capsys):
    pytest.importorskip("numpyro", reason="NumPyro is not installed")
    assert main(["fit", str(verbagg_path), "--estimator", "numpyro-nuts", "--device", "cpu",
                 "-o", "num_warmup=50", "-o", "num_samples=50",
                 "--out", str(tmp_path / "e.csv")]) == 0
    printed = capsys.readouterr().out
    assert "max_rhat" in printed and "divergences" in printed and "min_ess" in printed


def test_benchmark_machine_info_is_the_same_for_two_runs_on_one_machine():
    """What --benchmark-compare compares: nothing that changes from run to run."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "benchmarks" / "conftest.py"
    spec = importlib.util.spec_from_file_location("benchmarks_conftest", path)
    bench_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_conftest)

    class Config:
        @staticmethod
        def getoption(name):
            return "cpu"

    first, second = {}, {}
    bench_conftest.pytest_benchmark_update_machine_info(Config, first)
    bench_conftest.pytest_benchmark_update_machine_info(Config, second)
    assert first == second and "created" not in first["irtbench"]


@pytest.mark.parametrize("name", NAMES)
def test_every_estimator_flags_the_extremes_and_follows_one_se_rule(name):
    """Extreme students are flagged by every fit; maximum-likelihood estimators give them SE
    inf, posterior-based ones (EAP, MAP under a proper prior, VI, NUTS) finite posterior
    summaries."""
    require(name)
    data = irtbench.simulate(150, 8, seed=2)
    students, questions = irtbench.models.extremes(data.responses)
    assert students.any()
    fit = irtbench.fit(data.responses, estimator=name, **fast_options(name))
    np.testing.assert_array_equal(fit.extreme_students, students)
    np.testing.assert_array_equal(fit.extreme_questions, questions)
    cls = irtbench.get_estimator(name)
    assert (fit.skill_se is not None) == cls.gives_standard_errors
    if fit.skill_se is None:  # no SEs (girth, py-irt): the flags and the estimates only
        return
    if cls.infinite_extremes:
        assert np.isinf(fit.skill_se[students]).all()
    else:
        assert np.isfinite(fit.skill_se).all() and np.isfinite(fit.skill).all()
    assert np.isfinite(fit.skill_se[~students]).all()


def test_a_file_that_cannot_be_fitted_is_named(tmp_path, capsys):
    path = tmp_path / "one-column.csv"
    path.write_text("Q1\n1\n0\n1\n")
    one_line_exit_2(capsys, ["fit", str(path), "--out", str(tmp_path / "e.csv")],
                    f"{path}: no finite estimate")


def test_make_bench_runs_the_speed_suite_only():
    from pathlib import Path

    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    assert "BENCH ?= benchmarks/test_fit_speed.py" in makefile
    assert "pytest $(BENCH)" in makefile and "pytest benchmarks/ " not in makefile


def _make_plan(target: str, venv: Path) -> list[str]:
    """The commands ``make TARGET VENV=venv`` would run (``make -n``), in the repository."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("no make here")
    # inside another make (CI runs `make py-irt-venv test`) make prints the directories it
    # enters and leaves unless told not to
    done = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={venv}"],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2],
                          check=True)
    return done.stdout.splitlines()


def test_make_run_installs_what_the_commands_use_and_make_test_adds_the_rest(tmp_path):
    """Issue 30: .venv was 2.8 GB because make run installed .[all], the test extra with
    Triton (1 GB) included. make run installs torch first, then the extras the commands use;
    make test, after it, adds .[all] to the same environment without making it again; each
    has its stamp."""
    venv = tmp_path / "venv"
    run = _make_plan("run", venv)
    installs = [line for line in run if "pip install" in line]
    assert installs[0].endswith('install --quiet "torch==2.13.0"')
    assert installs[1].endswith('-e ".[jax,numpyro,peers,theta,dask,parquet]"')
    assert len(installs) == 2 and "test" not in installs[1].split('".[')[1]
    assert run[-1] == f"{venv}/bin/irtbench run"
    fresh = _make_plan("test", venv)  # a fresh clone: both steps, then the tests
    assert [line for line in fresh if "pip install" in line] == [*installs, (
        f'{venv}/bin/python -m pip install --quiet -e ".[all]"')]
    venv.mkdir()
    (venv / ".installed-run").touch()  # after make run: only the rest
    after_run = _make_plan("test", venv)
    assert after_run == [f'{venv}/bin/python -m pip install --quiet -e ".[all]"',
                         f"touch {venv}/.installed-test", f"{venv}/bin/python -m pytest -n auto"]
    (venv / ".installed-test").touch()
    assert _make_plan("run", venv) == [f"{venv}/bin/irtbench run"]


def test_the_parquet_extra_is_pyarrow_and_in_all():
    """Parquet files need pyarrow, an extra (irtbench[parquet]) that irtbench[all] and make
    run install; the package's own requirements are unchanged."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert [r.split(">=")[0] for r in extras["parquet"]] == ["pyarrow"]
    assert "parquet" in extras["all"][0].split("[")[1].rstrip("]").split(",")
    assert not [r for r in project["dependencies"] if "arrow" in r]


def test_a_first_column_of_answers_with_a_bad_cell_is_refused_not_taken_as_labels(tmp_path,
                                                                                  capsys):
    """A question whose column holds a stray ``yes`` must not become the student labels (a
    question silently dropped); one named id/student/person is labels whatever it holds."""
    path = tmp_path / "answers.csv"
    path.write_text("Q1,Q2,Q3\n1,0,1\nyes,1,0\n0,1,1\n1,1,0\n")
    one_line_exit_2(capsys, ["fit", str(path), "--out", str(tmp_path / "e.csv")],
                    "line 3, column 'Q1': 'yes' is not 0, 1 or blank, and the first column is "
                    "mostly answers")
    named = tmp_path / "named.csv"
    named.write_text("person,Q2,Q3\n1,0,1\nyes,1,0\n0,1,1\n1,1,0\n")
    table = irtbench.load_responses(named)
    assert table.label_column == "person" and table.students[1] == "yes"
    assert table.responses.shape == (4, 2)


def test_fit_says_which_column_it_took_as_labels(verbagg_path, tmp_path, capsys):
    numbered = tmp_path / "numbered.csv"
    numbered.write_text("Q1,Q2,Q3\n1,0,1\n0,1,0\n0,1,1\n1,1,0\n")
    assert main(["fit", str(numbered), "--out", str(tmp_path / "a.csv"), "--estimator",
                 "jml-newton"]) == 0
    assert "student labels: none in the file" in capsys.readouterr().out
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("id,Q1,Q2,Q3\na,1,0,1\nb,0,1,0\nc,0,1,1\nd,1,1,0\n")
    assert main(["fit", str(labelled), "--out", str(tmp_path / "b.csv"), "--estimator",
                 "jml-newton"]) == 0
    assert "student labels: column 'id'" in capsys.readouterr().out
    # issue 30: a long file's labels were written while "none in the file" was printed
    long = tmp_path / "long.csv"
    long.write_text("Student,question,response\n" + "".join(
        f"s{i},Q{j},{(i + j) % 2 if i != j else 1}\n" for i in range(4) for j in range(3)))
    assert main(["fit", str(long), "--out", str(tmp_path / "c.csv"), "--estimator",
                 "jml-newton"]) == 0
    assert "student labels: column 'Student'" in capsys.readouterr().out
    written = pd.read_csv(tmp_path / "c.csv")
    assert list(written.label[written.kind == "student"]) == ["s0", "s1", "s2", "s3"]


def test_written_estimates_follow_the_umask(verbagg_path, tmp_path, capsys):
    previous = os.umask(0o022)
    try:
        out = tmp_path / "e.csv"
        assert main(["fit", str(verbagg_path), "--out", str(out), "--estimator",
                     "jml-newton"]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_torch_estimators_name_a_real_install_command():
    command = irtbench.get_estimator("torch-adam").install_command()
    assert "irtbench[torch]" not in command and "torch>=2.4" in command
