"""The irtbench command line."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
import sys

import numpy as np
import pandas as pd
import pytest

import irtbench
from irtbench.cli import main
from irtbench.estimators import Fit


def test_fit_real_data_writes_estimates(verbagg_path, tmp_path, capsys):
    out = tmp_path / "estimates.csv"
    assert main(["fit", str(verbagg_path), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "316 students x 24 questions" in printed
    assert "9 student(s)" in printed  # VerbAgg: 4 all-no and 5 all-yes persons
    table = pd.read_csv(out)
    assert list(table.columns) == ["kind", "label", "estimate", "se", "extreme", "origin"]
    assert (table.kind == "student").sum() == 316 and (table.kind == "question").sum() == 24
    assert table.loc[table.kind == "question", "label"].iloc[0] == "S1WantCurse"
    assert table.extreme.sum() == 9
    students = table[table.kind == "student"]
    assert students.loc[~students.extreme, "se"].between(0.1, 5).all()
    assert (students.loc[students.extreme, "se"] == float("inf")).all()


def test_fit_passes_estimator_options(verbagg_path, tmp_path, capsys):
    out = tmp_path / "e.csv"
    assert main(["fit", str(verbagg_path), "--out", str(out), "-o", "epochs=7"]) == 0
    assert "7 iterations" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "missing.csv"], "no such file: missing.csv"),
        (["fit", "{data}", "--estimator", "nope"], "unknown estimator 'nope'"),
        (["fit", "{data}", "-o", "epochs"], "KEY=VALUE"),
        (["fit", "{data}", "-o", "speed=3"], "unknown option 'speed'"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(verbagg_path, tmp_path, capsys, args, message):
    args = [a.format(data=verbagg_path) for a in args] + ["--out", str(tmp_path / "o.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_values_in_a_csv(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n0,1\n")
    assert main(["fit", str(path), "--out", str(tmp_path / "o.csv")]) == 2
    assert "line 2, column 'b': '2' is not 0, 1 or blank" in capsys.readouterr().err


def test_list_shows_every_estimator(capsys):
    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    assert "torch-adam" in printed and "cpu" in printed


def test_console_script_help_and_exit_codes():
    run = [sys.executable, "-m", "irtbench.cli"]
    done = subprocess.run(run + ["fit", "--help"], capture_output=True, text=True)
    words = " ".join(done.stdout.split())
    assert done.returncode == 0 and "--estimator" in words and "a Parquet file" in words
    assert "long (one row per answer" in words and "resp/correct/score" in words
    done = subprocess.run(run, capture_output=True, text=True)
    assert done.returncode == 2 and "COMMAND" in done.stderr


def test_list_shows_the_models_each_estimator_fits(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split()[1] for line in lines[1:] if not line.startswith(" ")}
    assert rows["mml-em"] == "rasch,2pl,3pl,4pl" and rows["cml"] == "rasch"


def test_list_fits_100_columns(capsys, monkeypatch):
    """It was about 230 characters wide (install commands and descriptions in one row): now
    the descriptions wrap under themselves and a missing backend's install command goes below
    the table, marked."""
    from irtbench.estimators.torch_adam import TorchAdam

    monkeypatch.setattr(TorchAdam, "available", classmethod(lambda cls: False))
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    assert any(line.startswith("torch-adam") and " no* " in line for line in lines)
    notes = " ".join(line.strip() for line in lines if line.startswith(("*", "  ")))
    assert "torch-adam is not installed; install it with: pip install 'torch>=2.4'" in notes


def test_fit_the_2pl_from_the_command_line(tmp_path, capsys):
    from irtbench.simulate import simulate

    data = simulate(400, 8, seed=3, model="2pl")
    path = tmp_path / "answers.csv"
    pd.DataFrame(data.responses, columns=[f"Q{j}" for j in range(8)]).to_csv(
        path, index=False, float_format="%.0f")
    out = tmp_path / "estimates.csv"
    assert main(["fit", str(path), "--model", "2pl", "--estimator", "mml-em",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2pl model" in printed and "discrimination: min" in printed
    table = pd.read_csv(out)
    questions = table[table.kind == "question"]
    assert list(table.columns) == ["kind", "label", "estimate", "se", "extreme",
                                   "discrimination", "discrimination_se", "runaway", "flat",
                                   "origin"]
    assert not questions.runaway.any() and not questions.flat.any()
    assert questions.discrimination.between(0.2, 5).all()
    assert questions.discrimination_se.between(0.01, 2).all()
    assert table[table.kind == "student"].discrimination.isna().all()
    with pytest.raises(SystemExit) as refused:  # argparse's choices: usage line, exit 2
        main(["fit", str(path), "--model", "5pl", "--out", str(tmp_path / "x.csv")])
    assert refused.value.code == 2 and "invalid choice: '5pl'" in capsys.readouterr().err


def test_the_readme_option_tables_are_the_declared_options():
    """The option tables (``docs/options.md``) are what ``irtbench list --options`` prints from
    the declarations, for every estimator the page lists; an estimator added since (a file of
    its own and its test, nothing else) is named in a warning until the page is regenerated
    (``python benchmarks/option_tables.py``), not a failure."""
    import re
    import warnings

    from irtbench.cli import option_tables

    readme = (Path(__file__).parents[2] / "docs" / "options.md").read_text()
    start, end = readme.index("<!-- options:start -->"), readme.index("<!-- options:end -->")
    written = readme[start + len("<!-- options:start -->"):end].strip()
    listed = re.findall(r"^`([a-z0-9-]+)`:$", written, flags=re.MULTILINE)
    assert listed == sorted(listed) and set(listed) <= set(irtbench.estimators())
    assert written == option_tables(listed).strip(), (
        "docs/options.md's tables are stale: regenerate them with "
        "`python benchmarks/option_tables.py`")
    missing = sorted(set(irtbench.estimators()) - set(listed))
    if missing:
        warnings.warn(f"docs/options.md does not list {', '.join(missing)} yet: regenerate it "
                      "with `python benchmarks/option_tables.py`", stacklevel=1)


def test_a_misspelled_option_is_refused_with_the_nearest_name(tmp_path, capsys):
    data = irtbench.simulate(30, 5, seed=0)
    path = tmp_path / "answers.csv"
    np.savetxt(path, data.responses, fmt="%d", delimiter=",",
               header=",".join(f"q{j}" for j in range(5)), comments="")
    assert main(["fit", str(path), "-o", "epoch=3", "--out", str(tmp_path / "e.csv")]) == 2
    assert "did you mean 'epochs'?" in capsys.readouterr().err
    assert main(["run", "--sizes", "20x5", "--estimators", "torch-adam", "-o", "lr_=0.1",
                 "--out", str(tmp_path / "run")]) == 2
    assert "unknown option 'lr_' for any estimator of this run; did you mean 'lr'?" in (
        capsys.readouterr().err)


def test_a_run_in_which_no_fit_succeeded_exits_3(tmp_path, capsys):
    """Every cell past its time budget: the rows are kept, and the exit code says no fit
    succeeded (documented in ``irtbench --help``)."""
    from irtbench.cli import EXIT_NO_FIT, main

    code = main(["run", "--sizes", "200x20", "--estimators", "torch-adam", "--model", "rasch",
                 "--seeds", "1", "--time-budget", "1e-6", "--out", str(tmp_path / "run")])
    assert code == EXIT_NO_FIT == 3
    assert "no fit succeeded" in capsys.readouterr().err
    assert (tmp_path / "run" / "results.csv").exists()


def test_fit_writes_lsat7s_2pl_as_the_fields_packages_report_it(tmp_path, capsys):
    """LSAT7's 2PL by mml-em: the written difficulties are R mirt's and ltm's (-1.879, -0.748,
    -1.057, -0.635, -2.521; skills N(0, 1)), not moved by 1.37 to a mean of 0 as before. The
    tolerance: mirt's three printed decimals plus mml-em's convergence (its a and d match
    mirt's to 1.5e-3, tests/models/test_2pl.py); measured, the largest difference is 5e-4."""
    out = tmp_path / "e.csv"
    assert main(["fit", str(Path(__file__).parents[1] / "data" / "lsat7.csv"), "--estimator",
                 "mml-em", "--model", "2PL", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "origin: mml-em's own identification" in printed and "2pl model" in printed
    table = pd.read_csv(out)
    questions = table[table.kind == "question"]
    np.testing.assert_allclose(questions.estimate, [-1.879, -0.748, -1.057, -0.635, -2.521],
                               atol=2e-3)


@pytest.mark.parametrize("spelling", ["2PL", "Rasch", "RASCH"])
def test_model_names_are_taken_in_any_case(tmp_path, capsys, spelling):
    data = irtbench.simulate(60, 6, seed=1)
    path = tmp_path / "answers.csv"
    np.savetxt(path, data.responses, fmt="%d", delimiter=",",
               header=",".join(f"q{j}" for j in range(6)), comments="")
    assert main(["fit", str(path), "--estimator", "mml-em", "--model", spelling,
                 "--out", str(tmp_path / "e.csv")]) == 0
    assert f"{spelling.lower()} model" in capsys.readouterr().out
    if spelling == "Rasch":
        assert main(["run", "--sizes", "30x6", "--estimators", "jml-newton", "--seeds", "1",
                     "--model", "Rasch", "--in-process", "--out", str(tmp_path / "run")]) == 0


def _advice(estimator: str, model: str, *given: str) -> str | None:
    """The runaway warning's advice for a fit of ``estimator`` with the options ``given``."""
    import argparse

    from irtbench.cli import parse_options, prior_advice

    options = {"model": model, **parse_options(given)}
    fitted = Fit(
        np.zeros(2), np.zeros(2), None, None, np.zeros(1), 0.0, 0.0, 0.0, "cpu", estimator,
        dict(irtbench.get_estimator(estimator)(**options).resolved_options()), 0, model=model)
    args = argparse.Namespace(file="data.csv", option=list(given), device=None,
                              out="estimates.csv")
    return prior_advice(args, fitted)


def test_the_runaway_advice_is_a_command_that_runs_and_only_where_it_applies(tmp_path, capsys):
    """Issue 25: the advice was ``mml-em -o prior_log_a_sd=0.5 -o prior_d_sd=3`` (no
    --estimator, no file) and printed after the priors were given."""
    data = irtbench.simulate(60, 12, seed=3, model="2pl")
    path = tmp_path / "small.csv"
    np.savetxt(path, data.responses, fmt="%d", delimiter=",",
               header=",".join(f"q{j}" for j in range(12)), comments="")
    out = tmp_path / "e.csv"
    assert main(["fit", str(path), "--estimator", "mml-em", "--model", "2pl", "--out",
                 str(out)]) == 0
    warning = capsys.readouterr().err
    assert "ran away" in warning  # 60 students: an item the data do not pin down
    advice = warning.split("Priors help: ")[1].strip()
    assert advice == (f"irtbench fit {path} --estimator mml-em --model 2pl -o "
                      f"prior_a_lognormal_sd=0.5 -o prior_d_sd=3 --out "
                      f"{tmp_path / 'e-prior.csv'}")
    assert main(shlex.split(advice)[1:]) == 0  # it runs, and the priors hold the items
    assert "ran away" not in capsys.readouterr().err
    # the estimator's own priors, with the user's options kept
    assert _advice("torch-adam", "3pl", "epochs=300") == (
        "irtbench fit data.csv --estimator torch-adam --model 3pl -o epochs=300 "
        "-o prior_log_a_sd=0.5 --out estimates-prior.csv")
    assert _advice("mml-em", "3pl") == (  # the logistic family's priors, the 3PL's too
        "irtbench fit data.csv --estimator mml-em --model 3pl -o prior_a_lognormal_sd=0.5 "
        "-o prior_d_sd=3 --out estimates-prior.csv")
    assert _advice("mml-em", "2pl", "prior_a_lognormal_sd=0.5", "prior_d_sd=3") is None  # given
    assert _advice("mml-em", "2pl", "prior_a_lognormal_sd=0.5") == (
        "irtbench fit data.csv --estimator mml-em --model 2pl -o prior_a_lognormal_sd=0.5 "
        "-o prior_d_sd=3 --out estimates-prior.csv")
    # numpyro-vi's slope prior (log a ~ N(0, 1)) is on by default: nothing more to give
    assert _advice("numpyro-vi", "2pl") is None


def test_fit_warns_of_flat_questions_and_flags_them_in_the_file(tmp_path, capsys):
    """Issue 30: the 3PL on SPISA (mml-em) returned Q39 with b = 13.5 (SE 20.9, a = 0.086) as
    neither a runaway nor a warning. Now one warning line names it and the file's flat column
    marks it alone; the fit stays converged (a finite optimum, not a runaway). Q20, steep
    with an uncertain slope (a = 3.06, SE 1.7) but a precise difficulty, is not flat."""
    out = tmp_path / "spisa-3pl.csv"
    assert main(["fit", str(Path(__file__).parents[1] / "data" / "spisa.csv"), "--estimator",
                 "mml-em", "--model", "3pl", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    warnings = [line for line in printed.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "1 question(s) are flat ('Q39':" in warnings[0]
    assert "converged True" in printed.out
    questions = pd.read_csv(out).query("kind == 'question'").set_index("label")
    assert questions.index[questions.flat].tolist() == ["Q39"]
    assert not questions.runaway.any()
    assert questions.loc["Q20", "discrimination"] > 2 and not questions.loc["Q20", "flat"]


def test_list_is_alphabetical(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split()[0] for line in lines[1:] if line and not line.startswith((" ", "*"))]
    assert listed == sorted(irtbench.estimators()) == irtbench.estimators()


@pytest.mark.parametrize("argv", [
    ["fit", "{data}", "--estimator", "mml-emm", "--out", "{out}/e.csv"],
    ["run", "--quick", "--estimators", "torch-adam,mml-emm", "--out", "{out}/run"],
    ["compare", "{data}", "--estimators", "mml-emm", "--out", "{out}/compare"],
    ["list", "--options", "mml-emm"],
])
def test_every_path_that_takes_estimator_names_suggests_the_nearest(argv, verbagg_path,
                                                                     tmp_path, capsys):
    """Issue 30: one line, exit 2, the nearest name and the valid ones in alphabetical order,
    from every command that takes estimator names; nothing written."""
    argv = [a.format(data=verbagg_path, out=tmp_path) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert "unknown estimator 'mml-emm'; did you mean 'mml-em'?" in captured.err
    assert f"(valid estimators: {', '.join(sorted(irtbench.estimators()))})" in captured.err
    assert list(tmp_path.iterdir()) == []


def test_the_help_names_every_model():
    """``fit --help`` said "Rasch, 2PL or 3PL" with five models registered: the model lists
    of the help texts come from MODELS."""
    from irtbench.cli import build_parser
    from irtbench.models import MODELS, get_model

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    fit_help = " ".join(commands.choices["fit"].format_help().split())
    summary = " ".join(parser.format_help().split())
    for name in MODELS:
        assert get_model(name).title in fit_help and get_model(name).title in summary


@pytest.mark.parametrize("command", ["fit", "run"])
def test_an_unmet_device_is_named_in_words(command, verbagg_path, tmp_path, capsys):
    """The CUDA message was Python (``device='cuda' was requested ...; use device='cpu'``):
    in words now, before the file is read or anything is written."""
    argv = (["fit", str(verbagg_path), "--out", str(tmp_path / "e.csv")] if command == "fit"
            else ["run", "--quick", "--out", str(tmp_path / "run")])
    assert main([*argv, "--device", "cuda:99"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"irtbench {command}: error: the device cuda:99 was asked for, "
                            "but torch sees "), error
    assert "device=" not in error and "'" not in error and error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_readme_examples_run_as_printed_on_a_fresh_clone(tmp_path, capsys):
    """Issue 30: the examples read ../shared/data/... (outside the repository) and called a
    bare irtbench that make installs only in .venv/bin/. Every command of the README's code
    blocks is make's or .venv/bin/'s, every file it reads is in the repository or written by
    an example before it, and the fit and score examples run (their files moved to a temporary
    folder)."""
    import re

    root = Path(__file__).parents[2]
    readme = (root / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    commands = [shlex.split(line) for line in lines if line]
    assert commands
    written: set[str] = set()
    for words in commands:
        assert words[0] == "make" or words[0].startswith(".venv/bin/"), words
        for before, word in zip(["", *words], words):
            if word.endswith(".csv") and before != "--out":
                assert (root / word).is_file() or word in written, word
        written |= {word for before, word in zip(["", *words], words) if before == "--out"}
    for command in ("fit", "score"):
        words = next(w for w in commands if w[:2] == [".venv/bin/irtbench", command])
        words = [str(tmp_path / w) if w in written else w for w in words]
        assert main(words[1:]) == 0
        assert Path(words[words.index("--out") + 1]).is_file()
