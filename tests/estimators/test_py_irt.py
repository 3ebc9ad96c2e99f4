"""The ``py-irt`` peer: py-irt's variational 2PL run by the interpreter of its own virtual
environment (``make py-irt-venv``). The tests that fit are skipped, with the reason, where that
interpreter is absent; those of the plumbing (an absent interpreter, a failing child, the
runner's imports) run everywhere."""

from __future__ import annotations

import ast
import stat
import sys

import numpy as np
import pytest

import irtbench
from irtbench.estimators import py_irt
from irtbench.estimators.base import BackendNotInstalled
from irtbench.threads import thread_limits

PyIrt = irtbench.get_estimator("py-irt")
needs_py_irt = pytest.mark.skipif(
    not PyIrt.available(),
    reason=f"py-irt's interpreter is not here ({', '.join(PyIrt.missing_requirements())}); "
           f"make it with: {PyIrt.install_command()} (or make py-irt-venv)")

#: enough epochs for the difficulties' order to settle at 300x40 (corr 0.87 at 200, 0.92 at
#: 300, 0.93 at 500, 0.95 at 2000, measured); a fit takes about 7 s on 2 cores
EPOCHS = 500


@pytest.fixture(scope="module")
def two_pl() -> tuple[irtbench.Dataset, irtbench.Fit]:
    data = irtbench.simulate(300, 40, seed=0, model="2pl")
    return data, irtbench.fit(data.responses, "py-irt", epochs=EPOCHS)


@needs_py_irt
def test_py_irt_orders_the_2pl_parameters_like_the_truth(two_pl):
    """With 300 students a difficulty's sampling SD is about 0.15 against a spread of 1, so an
    estimator that keeps the items' order correlates at 0.95-0.98 with the truth (mml-em: 0.976);
    py-irt's shrinkage toward its prior (module docstring) is nearly monotone and keeps 0.93."""
    data, fit = two_pl
    assert fit.model == "2pl" and fit.options["model"] == "2pl" and fit.estimator == "py-irt"
    assert fit.skill.shape == (300,) and fit.difficulty.shape == (40,)
    assert fit.discrimination.shape == (40,) and np.all(fit.discrimination > 0)
    assert fit.skill_se is None and fit.difficulty_se is None and fit.discrimination_se is None
    assert np.corrcoef(fit.difficulty, data.difficulty)[0, 1] > 0.9
    assert np.corrcoef(fit.skill, data.skill)[0, 1] > 0.9
    assert fit.n_iter == EPOCHS and fit.losses.shape == (EPOCHS,)
    assert fit.losses[-50:].mean() < 0.5 * fit.losses[:50].mean()  # the ELBO climbed


@needs_py_irt
def test_py_irt_reports_posterior_means_shrunk_by_its_priors_not_ml(two_pl):
    """py-irt's "vague" priors, b ~ N(0, 0.1^2) and a ~ LogNormal(0, 0.1^2), pull difficulties
    of SD 1 to about a third of their scale (measured 0.31-0.33 from 300 to 2000 epochs) and
    the log-discriminations' spread from 0.29 to about 0.1, where marginal ML (mml-em) keeps
    both near the truth's: the docstring's mapping (not an ML estimate) holds."""
    data, fit = two_pl
    ours = irtbench.fit(data.responses, "mml-em", device="cpu", model="2pl")

    def slope(estimate: np.ndarray) -> float:
        return float(np.polyfit(data.difficulty, estimate, 1)[0])

    assert slope(fit.difficulty) < 0.5 and slope(ours.difficulty) > 0.8
    assert np.std(np.log(fit.discrimination)) < 0.15 and np.std(np.log(ours.discrimination)) > 0.25


@needs_py_irt
def test_py_irt_takes_missing_cells_leaves_out_extremes_and_the_callers_threads():
    """NaN cells are not passed to py-irt; a question everybody got right is left out of its
    fit and reported at -inf (NaN discrimination), as for the other peers; the child runs with
    the caller's thread count; the clock's parts add up."""
    data = irtbench.simulate(300, 12, seed=6, model="2pl", missing=0.2)
    responses = data.responses.copy()
    responses[:, 2] = np.where(np.isnan(responses[:, 2]), np.nan, 1.0)
    with thread_limits(1):
        fit = irtbench.fit(responses, "py-irt", epochs=EPOCHS)
    assert fit.difficulty[2] == -np.inf and np.isnan(fit.discrimination[2])
    kept = np.delete(np.arange(12), 2)
    assert np.all(np.isfinite(fit.difficulty[kept])) and np.all(fit.discrimination[kept] > 0)
    assert fit.skill.shape == (300,) and np.all(np.isfinite(fit.skill))
    assert np.corrcoef(fit.difficulty[kept], data.difficulty[kept])[0, 1] > 0.8
    diagnostics = fit.diagnostics
    assert diagnostics["py_irt_threads"] == 1 and diagnostics["py_irt_version"]
    parts = [diagnostics[f"py_irt_{part}_seconds"] for part in ("startup", "setup", "train")]
    assert min(parts) > 0 and sum(parts) <= diagnostics["py_irt_process_seconds"] <= fit.seconds


def test_an_absent_interpreter_makes_py_irt_unavailable_with_the_install_command(monkeypatch,
                                                                                 tmp_path):
    missing = tmp_path / "nowhere" / "python"
    monkeypatch.setenv(py_irt.PYTHON_VARIABLE, str(missing))
    assert not PyIrt.available()
    assert "py-irt" not in irtbench.estimators(available_only=True)
    assert str(missing) in PyIrt.missing_requirements()[0]
    assert PyIrt.install_command() == (
        "python3 -m venv .venv-pyirt && .venv-pyirt/bin/pip install torch==2.13.0 py-irt==0.7.1")
    with pytest.raises(BackendNotInstalled, match=r"install it with: python3 -m venv \.venv-pyirt"):
        irtbench.fit([[0, 1], [1, 0], [1, 1]], "py-irt")


def test_an_interpreter_without_py_irt_is_named(monkeypatch):
    """irtbench's own interpreter has no py_irt (it cannot: pandas 3)."""
    monkeypatch.setenv(py_irt.PYTHON_VARIABLE, sys.executable)
    assert PyIrt.missing_requirements() == [f"py_irt (not importable by {sys.executable})"]


def test_a_failing_child_becomes_a_runtime_error_with_its_last_line(tmp_path):
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\n[ "$2" = "-c" ] && exit 0  # the check that py_irt is there\n'
                    'echo "Traceback (most recent call last):" >&2\n'
                    'echo "ValueError: something py-irt said" >&2\nexit 3\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    data = irtbench.simulate(50, 5, seed=0, model="2pl")
    with pytest.raises(RuntimeError, match=r"exit 3\): ValueError: something py-irt said"):
        irtbench.fit(data.responses, "py-irt", python=str(fake))


def test_the_runner_imports_nothing_of_irtbench():
    """It runs in py-irt's environment, where irtbench is not installed."""
    tree = ast.parse(py_irt.RUNNER.read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in modules if m.split(".")[0] == "irtbench"}
    assert {"torch", "pyro", "py_irt", "numpy"} <= {m.split(".")[0] for m in modules}


def test_py_irt_fits_the_2pl_and_the_m2pl_only():
    with pytest.raises(ValueError, match="estimator 'py-irt' fits the 2pl and m2pl model"):
        PyIrt(model="rasch").resolved_options()
    with pytest.raises(ValueError, match="priors='flat' must be one of 'vague', 'hierarchical'"):
        PyIrt(priors="flat").resolved_options()


def test_a_failed_runner_is_reported_by_its_error_line_not_a_box_border():
    """py-irt prints rich-formatted tracebacks, whose last line is a box border or a local
    variable: the one-line error names the exception instead."""
    from irtbench.estimators._child import error_line

    rich = ("╭── Traceback ──╮\n│ x.py:1 │\n╰───────────────╯\n"
            "ValueError: Expected parameter loc to satisfy the constraint Real()\n"
            "│               value    10  │\n")
    assert error_line(rich) == "ValueError: Expected parameter loc to satisfy the constraint Real()"
    assert error_line("plain\nlast words\n") == "last words"
    assert error_line("") == "(no output on stderr)"
