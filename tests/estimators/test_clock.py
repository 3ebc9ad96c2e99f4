"""The one clock and the shape of the package: what ``Fit.seconds`` covers, for every registered
estimator, and which module may import which."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import NAMES, fast_options, require
from test_estimators import DATA

import irtbench

PACKAGE = Path(irtbench.__file__).parent


@pytest.mark.parametrize("name", NAMES)
def test_the_call_costs_no_more_than_seconds_plus_compile_seconds(name):
    """Rule of the clock: after a warm-up, the wall time of ``fit()`` is within 10% + 20 ms of
    ``seconds + compile_seconds``; what lies outside (option checks, validation, set-up, the
    trace's host copies) is small. Up to three calls, the first within the rule passes, so
    that a stall of this shared machine does not decide (the best of three, without the calls
    after a pass: the peers' take seconds each); ``compute_seconds`` is part of ``seconds``."""
    require(name)
    estimator = irtbench.get_estimator(name)(**fast_options(name))
    estimator.warm_up(DATA.responses)
    excess = []
    while len(excess) < 3 and not any(e <= 0 for e in excess):
        start = time.perf_counter()
        fit = estimator.fit(DATA.responses)
        wall = time.perf_counter() - start
        assert 0 < fit.compute_seconds <= fit.seconds
        excess.append(wall - (1.1 * (fit.seconds + fit.compile_seconds) + 0.02))
    assert min(excess) <= 0, f"{name}: the call took {min(excess) * 1000:.1f} ms too long"


def test_the_trace_is_materialised_after_the_clock_and_only_when_asked():
    """Snapshots are kept as device copies inside the fit and become host arrays afterwards,
    when the fit is asked for them: the fit's arrays and its last snapshot agree; a plain fit
    (``irtbench.fit``) has none."""
    estimator = irtbench.get_estimator("torch-adam")(device="cpu", epochs=50)
    fit = estimator.fit(DATA.responses, trace=True)
    iteration, skill, difficulty, *_ = fit.trace[-1]
    assert iteration == 50
    np.testing.assert_array_equal(skill, fit.skill)
    np.testing.assert_array_equal(difficulty, fit.difficulty)
    assert irtbench.fit(DATA.responses, "torch-adam", device="cpu", epochs=50).trace == []


#: in-process estimators that compile nothing: the call is the clock plus the options
IN_PROCESS = [name for name in NAMES if irtbench.get_estimator(name).backend == "torch"]


@pytest.mark.parametrize("name", IN_PROCESS)
def test_seconds_is_nearly_all_of_the_call(name):
    """Issue 30: cml's call took 0.84-0.95 s at 10000 x 1000 and its ``Fit.seconds`` said
    0.61-0.72 (the snapshots' host arrays, a Newton solve of every student's skill at each
    of them, were made after the clock for every fit). At 4000 x 400 (a fit of a tenth of a
    second or more, so that milliseconds do not decide) ``Fit.seconds`` is at least 90% of
    the wall time of ``irtbench.fit``: all that may lie outside is the options' resolution
    and the assembly of ``Fit``, microseconds; cml's snapshots made it 87% at 3000 x 300.
    Best of three calls, so that a stall of this shared machine outside the clock does not
    decide."""
    require(name)
    data = irtbench.simulate(4000, 400, seed=1)
    options = fast_options(name)
    irtbench.get_estimator(name)(**options).warm_up(data.responses)
    shares = []
    for _ in range(3):
        start = time.perf_counter()
        fit = irtbench.fit(data.responses, name, **options)
        shares.append(fit.seconds / (time.perf_counter() - start))
    assert max(shares) >= 0.9, f"{name}: Fit.seconds is {max(shares):.0%} of the call"


def imports_of(path: Path, *, eager_only: bool = False) -> set[str]:
    """The irtbench modules a file imports when it runs (at any depth, inside functions too;
    ``if TYPE_CHECKING:`` blocks, which never run, left out); ``eager_only``: those imported
    when the module itself is (outside functions)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if eager_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("irtbench"):
            names = {f"{node.module}.{alias.name}" for alias in node.names}
            found.update(names)
            if not names <= MODULES.keys():  # names from the module itself, not submodules
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("irtbench"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def with_packages(module: str) -> set[str]:
    """``module`` and the packages above it, which importing it runs first
    (``irtbench.compare.likelihood`` runs ``irtbench/compare/__init__.py``)."""
    parts = module.split(".")
    return {".".join(parts[:k]) for k in range(1, len(parts) + 1)}


def graph() -> dict[str, set[str]]:
    """module -> the irtbench modules it imports (names of modules only), and for the imports
    made as it is imported, the packages above them: those run half-initialised when a
    circle closes (``irtbench.gaps`` importing ``irtbench.compare.likelihood`` ran
    ``irtbench/compare/__init__.py``, which came back to ``irtbench.gaps``: an ImportError
    for whoever imported ``irtbench.gaps`` first)."""
    edges = {}
    for name, path in MODULES.items():
        eager = {m for imported in imports_of(path, eager_only=True)
                 for m in with_packages(imported)}
        edges[name] = {m for m in imports_of(path) | eager if m in MODULES and m != name}
    return edges


def test_the_package_has_no_import_circle():
    edges = graph()
    for package in [m for m in MODULES if MODULES[m].name == "__init__.py"]:
        for name in edges:  # a package imports its modules; that is not a circle
            edges[name].discard(package) if name.startswith(package + ".") else None
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for child in sorted(edges[node]):
            if state.get(child) == 1:
                pytest.fail("import circle: " + " -> ".join(path[path.index(child):] + [child]))
            if child not in state:
                visit(child, [*path, child])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


CONCRETE = {f"irtbench.estimators.{p.stem}" for p in (PACKAGE / "estimators").glob("*.py")
            if not p.stem.startswith("_") and p.stem not in ("base", "options")}


#: every module of the sweep machinery (each of irtbench/harness/), the results, figures,
#: baseline, comparison (each of irtbench/compare/), the subset benchmark (each of
#: irtbench/subset/), the estimates file and the CLI: they reach estimators through the
#: registry only
MACHINERY = sorted([m for m in MODULES if m.split(".")[:2] in (["irtbench", "harness"],
                                                                ["irtbench", "compare"],
                                                                ["irtbench", "subset"])]
                   + ["irtbench.results", "irtbench.plots", "irtbench.baseline", "irtbench.cli",
                      "irtbench.estimates", "irtbench.like", "irtbench.evaluation"])


@pytest.mark.parametrize("module", MACHINERY)
def test_the_sweep_machinery_and_the_cli_import_no_concrete_estimator(module):
    imported = imports_of(MODULES[module])
    assert not imported & CONCRETE, sorted(imported & CONCRETE)
    private = {m for m in imported & MODULES.keys()
               if any(part.startswith("_") for part in m.split("."))}
    assert not private, f"{module} uses private modules {sorted(private)}"


@pytest.mark.parametrize("module", sorted(
    [m for m in MODULES if m.startswith(("irtbench.models", "irtbench.kernels"))]
    + ["irtbench.responses", "irtbench.simulate", "irtbench.csvio", "irtbench.devices",
       "irtbench.metrics", "irtbench.results", "irtbench.scoring", "irtbench.version"]))
def test_low_layers_do_not_import_the_package_root_or_the_estimators(module):
    imported = imports_of(MODULES[module])
    assert "irtbench" not in imported
    assert not {m for m in imported if m.startswith("irtbench.estimators")}
    assert not {m for m in imported if m in ("irtbench.harness", "irtbench.cli")}


def test_responses_is_the_bottom_layer():
    assert imports_of(MODULES["irtbench.responses"]) == set()
