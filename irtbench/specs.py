"""An option's declaration, :class:`Spec` (default, constraint, one line of doc), and the
constructors of the constraints every option uses, as scikit-learn's ``_parameter_constraints``
declares its estimators'. The estimators' options (:mod:`irtbench.estimators.options`) and the
models' (:attr:`Model.options <irtbench.models.base.Model.options>`: the priors and settings a
model's fitted parameters read) are declared with them, each once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import numpy as np

__all__ = ["Option", "Spec", "choice", "flag", "fraction", "non_negative_int", "positive",
           "positive_int", "unchecked"]

#: an option's value
Option = Union[int, float, str, bool, None]


@dataclass(frozen=True)
class Spec:
    """One option: its default, one line of doc, and its constraint (a test on the value and
    the words an error uses for it; None: any value)."""

    default: Option
    doc: str
    check: Callable[[Option], bool] | None = None
    must_be: str = ""
    none_ok: bool = False

    def accepts(self, value: Option) -> bool:
        if value is None and self.none_ok:
            return True
        return self.check is None or bool(self.check(value))

    def constraint(self) -> str:
        return self.must_be + (" or None" if self.none_ok and self.must_be else "")


def _integer(value: Option) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _number(value: Option) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def positive_int(default: Option, doc: str, *, none_ok: bool = False, low: int = 1,
                 high: int | None = None) -> Spec:
    """An integer from ``low`` (1) up to ``high`` (no limit)."""
    words = "a positive integer" if low == 1 and high is None else (
        f"an integer from {low}" + (f" to {high}" if high is not None else " up"))
    return Spec(default, doc, lambda v: _integer(v) and v >= low and (high is None or v <= high),
                words, none_ok)


def positive(default: Option, doc: str, *, none_ok: bool = False, zero_ok: bool = False) -> Spec:
    """A number above 0 (``zero_ok``: from 0)."""
    if zero_ok:
        return Spec(default, doc, lambda v: _number(v) and v >= 0, "a non-negative number",
                    none_ok)
    return Spec(default, doc, lambda v: _number(v) and v > 0, "a positive number", none_ok)


def fraction(default: Option, doc: str) -> Spec:
    """A number strictly between 0 and 1."""
    return Spec(default, doc, lambda v: _number(v) and 0 < v < 1, "a number in (0, 1)")


def choice(default: Option, doc: str, *values: Option) -> Spec:
    """One of ``values``."""
    words = "one of " + ", ".join(repr(v) for v in values)
    return Spec(default, doc, lambda v: v in values and not isinstance(v, bool), words)


def flag(default: Option, doc: str, *, none_ok: bool = False) -> Spec:
    """True or False (or None: decided at run time)."""
    return Spec(default, doc, lambda v: isinstance(v, bool), "True or False", none_ok)


def unchecked(default: Option, doc: str) -> Spec:
    """Any value (the estimator checks it against others, or its package does)."""
    return Spec(default, doc)


def non_negative_int(default: Option, doc: str) -> Spec:
    """An integer from 0."""
    return Spec(default, doc, lambda v: _integer(v) and v >= 0, "a non-negative integer")
