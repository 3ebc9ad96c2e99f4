"""What the torch family's peers share (:mod:`irtbench.estimators._torch_family`): finding each
package's interpreter, the runner that imports nothing of irtbench and dies with its caller, a
failing child reported in one line. None of these needs the packages' environments; the tests
that fit are in test_irtorch.py and test_torch_measure.py."""

from __future__ import annotations

import ast
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import irtbench
from irtbench.estimators import _torch_family as family
from irtbench.estimators._child import venv_interpreter
from irtbench.estimators._peers import PackageFailure
from irtbench.estimators.base import BackendNotInstalled

#: every estimator of the family, by package
FAMILY = {family.IRTORCH: ("irtorch-jml", "irtorch-mml", "irtorch-vae"),
          family.TORCH_MEASURE: ("torch-measure-em", "torch-measure-jml", "torch-measure-mle",
                                 "torch-measure-svi")}


def test_the_family_is_registered_as_peers_left_out_of_the_default_sweep():
    for package, names in FAMILY.items():
        for name in names:
            cls = irtbench.get_estimator(name)
            assert cls.package is package and not cls.in_default_sweep
            assert cls.summary.startswith("peer:")
            assert cls.devices() == irtbench.get_estimator("torch-adam").devices()
            assert cls.install_command() == package.install_command


def test_the_runner_imports_nothing_of_irtbench():
    """It runs in the packages' environments, where irtbench is not installed."""
    tree = ast.parse(family.RUNNER.read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    roots = {m.split(".")[0] for m in modules}
    assert "irtbench" not in roots
    assert {"numpy", "torch", "irtorch", "torch_measure"} <= roots


@pytest.mark.parametrize("package", list(FAMILY))
def test_an_absent_interpreter_makes_the_package_unavailable_with_the_make_command(
        package, monkeypatch, tmp_path):
    missing = tmp_path / "nowhere" / "python"
    monkeypatch.setenv(package.variable, str(missing))
    for name in FAMILY[package]:
        cls = irtbench.get_estimator(name)
        assert not cls.available() and name not in irtbench.estimators(available_only=True)
        assert str(missing) in cls.missing_requirements()[0]
        with pytest.raises(BackendNotInstalled, match=rf"install it with: make {package.target}"):
            irtbench.fit([[0, 1], [1, 0], [1, 1]], name, model=cls.models[0])
    assert package.install_command == (
        f"make {package.target} (python3 -m venv {package.venv} && {package.venv}/bin/python -m "
        f"pip install torch==2.13.0 && {package.venv}/bin/python -m pip install torch==2.13.0 "
        f"{package.distribution}=={package.version})")


def test_an_interpreter_without_the_package_is_named(monkeypatch):
    """irtbench's own interpreter has neither package."""
    monkeypatch.setenv(family.IRTORCH.variable, sys.executable)
    assert irtbench.get_estimator("irtorch-mml").missing_requirements() == [
        f"irtorch (not importable by {sys.executable})"]


def test_the_interpreter_is_the_option_then_the_variable_then_the_repository_venv(monkeypatch,
                                                                                tmp_path):
    monkeypatch.delenv("IRTBENCH_SOME_PYTHON", raising=False)
    assert venv_interpreter(".venv-x", "IRTBENCH_SOME_PYTHON", "/given/python") == Path(
        "/given/python")
    monkeypatch.setenv("IRTBENCH_SOME_PYTHON", "/from/variable")
    assert venv_interpreter(".venv-x", "IRTBENCH_SOME_PYTHON") == Path("/from/variable")
    monkeypatch.delenv("IRTBENCH_SOME_PYTHON")
    monkeypatch.chdir(tmp_path)  # no .venv-x in the repository: the current directory's
    assert venv_interpreter(".venv-x", "IRTBENCH_SOME_PYTHON") == tmp_path / ".venv-x/bin/python"


def failing_python(tmp_path: Path, module: str) -> Path:
    """An 'interpreter' that says it has ``module`` and fails every run with a traceback."""
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\n[ "$2" = "-c" ] && exit 0  # the check that the package is there\n'
                    'echo "Traceback (most recent call last):" >&2\n'
                    f'echo "ValueError: something {module} said" >&2\nexit 3\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return fake


@pytest.mark.parametrize("name", ["irtorch-mml", "torch-measure-mle"])
def test_a_failing_child_is_one_line_naming_the_estimator(name, tmp_path):
    cls = irtbench.get_estimator(name)
    fake = failing_python(tmp_path, cls.package.module)
    data = irtbench.simulate(50, 5, seed=0, model="2pl")
    with pytest.raises(PackageFailure, match=rf"estimator '{name}': .*exit 3\): ValueError: "
                                             rf"something {cls.package.module} said$"):
        irtbench.fit(data.responses, name, model="2pl", python=str(fake))


def test_a_failing_child_is_one_line_on_the_command_line(tmp_path, capsys, monkeypatch):
    from irtbench.cli import main

    path = tmp_path / "exam.csv"
    data = irtbench.simulate(60, 5, seed=1, model="2pl")
    path.write_text("Q1,Q2,Q3,Q4,Q5\n" + "\n".join(",".join(str(int(v)) for v in row)
                                                  for row in data.responses) + "\n")
    monkeypatch.setenv(family.IRTORCH.variable, str(failing_python(tmp_path, "irtorch")))
    code = main(["fit", str(path), "--estimator", "irtorch-mml", "--model", "2pl",
                 "--out", str(tmp_path / "fit.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "ValueError: something irtorch" in err
    assert not (tmp_path / "fit.csv").exists()


#: a parent that starts a child which asks to die with it, prints the child's id, then waits
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
child.wait()
"""
CHILD = """
import runpy, sys, time
runpy.run_path({runner!r})["die_with_parent"]()
time.sleep(60)
"""


def gone(pid: int) -> bool:
    """Whether the process has ended (absent, or a zombie awaiting its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_the_runner_dies_with_a_caller_killed_outright():
    """A sweep's worker past its budget is SIGKILLed; its peer child must not run on."""
    child_code = CHILD.format(runner=str(family.RUNNER))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, child_code], stdout=subprocess.PIPE,
                              text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # the child has asked for PR_SET_PDEATHSIG
    assert not gone(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not gone(child):
        os.kill(child, signal.SIGKILL)
        pytest.fail("the runner outlived its caller")


def test_the_mappings_of_each_package_cover_the_models_its_estimators_fit():
    for package, names in FAMILY.items():
        classes = {family.IRTORCH: family.IRTORCH_CLASSES,
                   family.TORCH_MEASURE: family.TORCH_MEASURE_CLASSES}[package]
        for name in names:
            assert set(irtbench.get_estimator(name).models) <= set(classes), name


def test_svi_scales_become_ses_by_the_delta_method():
    items = {"difficulty": np.array([0.0, 1.0]), "discrimination": np.array([2.0, 0.5]),
             "guessing": np.array([0.2, 0.5])}
    result = {"ability_scale": np.array([0.3]), "difficulty_scale": np.array([0.1, 0.2]),
              "discrimination_scale": np.array([0.1, 0.1]), "guessing_scale": np.array([1.0, 2.0])}
    errors = family.torch_measure_errors(items, result)
    np.testing.assert_allclose(errors["skill"], [0.3])
    np.testing.assert_allclose(errors["difficulty"], [0.1, 0.2])
    np.testing.assert_allclose(errors["discrimination"], [0.2, 0.05])
    np.testing.assert_allclose(errors["guessing"], [0.16, 0.5])


def test_the_family_is_read_from_the_registry_package_by_package():
    assert family.members() == [*FAMILY[family.IRTORCH], *FAMILY[family.TORCH_MEASURE]]
    assert family.members("rasch") == [name for names in FAMILY.values() for name in names
                                       if "rasch" in irtbench.get_estimator(name).models]


def test_the_fit_s_device_reaches_the_runner_which_defaults_to_the_cpu():
    """The device is the fit's (resolved on the estimator, "auto" as the CPU); the runner's
    tasks without one (the probabilities of the mapping tests) stay on the CPU."""
    import runpy

    for device in ("cpu", "auto"):  # auto: the environments make builds hold a CPU torch
        estimator = irtbench.get_estimator("torch-measure-mle")(model="2pl", device=device)
        payload = estimator.payload(np.zeros((3, 2)), dict(estimator.config))
        assert payload["device"] == "cpu"
    runner = runpy.run_path(str(family.RUNNER))
    assert runner["device_of"]({}) == "cpu"
    assert runner["device_of"]({"device": np.array("cuda:1")}) == "cuda:1"
    assert runner["irtorch_device"]("cpu") == "cpu"
