"""Count, in ``irtbench/estimators/``, the comparisons with a model's name and the branches on
which item parameters a model has (issue 26's targets: at most 2, and none); and the estimator
names written outside the registry (issue 30's target: none kept as facts about estimators).

A *model-name comparison* is a ``==``, ``!=``, ``in`` or ``not in`` with a string literal that
names a model (``"rasch"``, ``"2pl"``, ...) on either side, or a tuple of such literals.
A *parameter-presence branch* is an ``if``, a conditional expression or a comprehension's
``if`` whose test names an item parameter (``discrimination``, ``log_discrimination``,
``guessing``, ``logit_floor``, ``ceiling``, ``loadings`` ...; a prior's setting, such as
``log_a_sd``, is not one), or calls ``isinstance`` with a model class.

An *estimator name outside the registry* is a string literal that names a registered estimator
(``"torch-adam"``, ``"mml-em"`` ...): in the package outside ``irtbench/estimators/`` (each one
listed: a default choice, such as ``irtbench fit``'s ``--estimator``, is one), and in the tests
where they are kept as facts (a module-level tuple, list, set or dict of names, or a variable
compared with names: ``n != "numpyro-map"``), not where a test fits or selects the estimator it
names.

    python benchmarks/model_branches.py [irtbench/estimators]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MODEL_NAMES = {"rasch", "2pl", "3pl", "4pl", "m2pl"}
PARAMETER_WORDS = ("discrimination", "guessing", "floor", "ceiling", "loading", "intercept",
                   "two_pl", "log_a")
MODEL_CLASSES = {"Rasch", "TwoPL", "ThreePL", "FourPL", "M2PL"}


def _names_model(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value in MODEL_NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_model(element) for element in node.elts)
    return False


def is_setting(name: str) -> bool:
    """A prior's setting (``log_a_sd``, ``prior_guessing_mean``): a branch on whether a prior is
    set is not one on which parameters a model has."""
    return name.endswith(("_sd", "_mean", "_weight")) or "prior" in name


def _mentions_parameter(test: ast.AST) -> bool:
    for node in ast.walk(test):
        name = (node.id if isinstance(node, ast.Name) else node.attr if isinstance(
            node, ast.Attribute) else node.value if isinstance(node, ast.Constant)
            and isinstance(node.value, str) else None)
        if name and any(word in name for word in PARAMETER_WORDS) and not is_setting(name):
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance"
                and any(isinstance(a, ast.Name) and a.id in MODEL_CLASSES for a in ast.walk(node))):
            return True
    return False


def count(path: Path) -> tuple[list[str], list[str]]:
    """``(model-name comparisons, parameter-presence branches)`` as ``file:line`` strings."""
    comparisons, branches = [], []
    for file in sorted(path.rglob("*.py")):
        tree = ast.parse(file.read_text(), str(file))
        for node in ast.walk(tree):
            where = f"{file}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops) \
                        and any(_names_model(side) for side in sides):
                    comparisons.append(where)
            tests = ([node.test] if isinstance(node, (ast.If, ast.IfExp, ast.While)) else
                     node.ifs if isinstance(node, ast.comprehension) else [])
            if any(_mentions_parameter(test) for test in tests):
                branches.append(where)
    return comparisons, branches


def estimator_names() -> set[str]:
    """The registered estimators' names, read from the registry's files without importing
    them (a ``name = "..."`` class attribute in a public module of ``irtbench/estimators``)."""
    names = set()
    for file in Path("irtbench/estimators").glob("[!_]*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "name"
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                names.add(node.value.value)
    return names


def _names_estimator(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Constant) and n.value in names for n in ast.walk(node))


def names_in_package(path: Path, names: set[str]) -> list[str]:
    """Every string literal naming an estimator in ``path`` outside ``irtbench/estimators``
    (docstrings and f-string text aside), as ``file:line name``."""
    found = []
    for file in sorted(path.rglob("*.py")):
        if "estimators" in file.relative_to(path).parts:
            continue
        tree = ast.parse(file.read_text(), str(file))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
                      and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and node.value in names
                    and id(node) not in docstrings):
                found.append(f"{file}:{node.lineno} {node.value}")
    return found


def facts_in_tests(path: Path, names: set[str]) -> list[str]:
    """Estimator names kept as facts in the tests: module-level tuples, lists, sets and dicts
    of them, and comparisons with one, as ``file:line``."""
    found = []
    containers = (ast.Tuple, ast.List, ast.Set, ast.Dict)
    for file in sorted(path.rglob("*.py")):
        tree = ast.parse(file.read_text(), str(file))
        for node in tree.body:
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, containers) and _names_estimator(value, names):
                found.append(f"{file}:{node.lineno}")
        for node in ast.walk(tree):  # a variable holding an estimator's name against names
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and any(
                    isinstance(side, (ast.Constant, *containers))
                    and _names_estimator(side, names) for side in node.comparators):
                found.append(f"{file}:{node.lineno}")
    return found


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "irtbench/estimators")
    comparisons, branches = count(path)
    print(f"{len(comparisons)} comparisons with a model's name in {path}")
    print("".join(f"  {c}\n" for c in comparisons), end="")
    print(f"{len(branches)} branches on which item parameters a model has in {path}")
    print("".join(f"  {b}\n" for b in branches), end="")
    names = estimator_names()
    package = names_in_package(Path("irtbench"), names)
    print(f"{len(package)} estimator names in irtbench/ outside irtbench/estimators")
    print("".join(f"  {p}\n" for p in package), end="")
    tests = facts_in_tests(Path("tests"), names)
    print(f"{len(tests)} tables of estimator facts (or comparisons with a name) in tests/")
    print("".join(f"  {t}\n" for t in tests), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
