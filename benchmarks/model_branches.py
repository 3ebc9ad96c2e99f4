"""Count, in ``irtbench/estimators/``, the comparisons with a model's name and the branches on
which item parameters a model has (issue 26's targets: at most 2, and none).

A *model-name comparison* is a ``==``, ``!=``, ``in`` or ``not in`` with a string literal that
names a model (``"rasch"``, ``"2pl"``, ...) on either side, or a tuple of such literals.
A *parameter-presence branch* is an ``if``, a conditional expression or a comprehension's
``if`` whose test names an item parameter (``discrimination``, ``log_discrimination``,
``guessing``, ``logit_floor``, ``ceiling``, ``loadings`` ...; a prior's setting, such as
``log_a_sd``, is not one), or calls ``isinstance`` with a model class.

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


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "irtbench/estimators")
    comparisons, branches = count(path)
    print(f"{len(comparisons)} comparisons with a model's name in {path}")
    print("".join(f"  {c}\n" for c in comparisons), end="")
    print(f"{len(branches)} branches on which item parameters a model has in {path}")
    print("".join(f"  {b}\n" for b in branches), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
