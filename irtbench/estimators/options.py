"""Every estimator's options, each declared once: name, default, constraint and one line of doc
(:class:`Spec`), as scikit-learn's ``_parameter_constraints`` declares its estimators'.

An estimator lists its own in ``spec`` (a dict of name -> :class:`Spec`), after the
:data:`COMMON` ones every estimator takes. :func:`resolve` merges what a user gave with the
defaults, refuses an unknown name with the nearest valid ones and a value outside its
constraint with the constraint in words, and returns an immutable mapping. The same
declarations give each estimator's docstring its "Options" section, ``irtbench list
--options`` and docs/options.md's tables (a test holds them equal).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Union

import numpy as np

from irtbench.metrics import REFERENCE_ALPHA

__all__ = ["COMMON", "Option", "Spec", "choice", "docstring_section", "flag", "fraction",
           "markdown", "positive", "positive_int", "resolve", "unchecked"]

#: an estimator option's value
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


#: the options every estimator takes (an estimator's own ``spec`` may override the default)
COMMON: dict[str, Spec] = {
    "model": unchecked("rasch", "the model to fit (irtbench.models.MODELS)"),
    "device": unchecked("cpu", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
}


def resolve(estimator: str, spec: Mapping[str, Spec], given: Mapping[str, Option]
            ) -> MappingProxyType:
    """The options of a fit: ``given`` over the defaults, every name known and every value
    inside its constraint, as an immutable mapping; ``ValueError`` naming each problem (an
    unknown name with the nearest valid ones)."""
    problems = []
    for name in sorted(set(given) - set(spec)):
        near = difflib.get_close_matches(name, spec, n=2)
        hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
        problems.append(f"unknown option {name!r} for estimator {estimator!r}{hint}")
    for name, value in given.items():
        if name in spec and not spec[name].accepts(value):
            problems.append(f"option {name}={value!r} must be {spec[name].constraint()}")
    if problems:
        unknown = any(problem.startswith("unknown") for problem in problems)
        valid = f" (valid options: {', '.join(sorted(spec))})" if unknown else ""
        raise ValueError("; ".join(problems) + valid)
    return MappingProxyType({**{name: s.default for name, s in spec.items()}, **given})


def docstring_section(spec: Mapping[str, Spec]) -> str:
    """The "Options" section of an estimator's docstring, from its declarations."""
    lines = ["", "    Options (declared once, in ``spec``):"]
    for name, s in spec.items():
        constraint = f"; {s.constraint()}" if s.constraint() else ""
        lines.append(f"        {name} ({s.default!r}{constraint}): {s.doc}")
    return "\n".join(lines) + "\n"


def markdown(estimator: str, spec: Mapping[str, Spec]) -> str:
    """An estimator's option table in Markdown (docs/options.md's tables)."""
    rows = [f"| `{name}` | `{s.default!r}` | {s.constraint() or 'any'} | {s.doc} |"
            for name, s in spec.items() if name not in COMMON]
    return "\n".join([f"`{estimator}`:", "", "| option | default | constraint | meaning |",
                      "| --- | --- | --- | --- |", *rows])


def non_negative_int(default: Option, doc: str) -> Spec:
    """An integer from 0."""
    return Spec(default, doc, lambda v: _integer(v) and v >= 0, "a non-negative integer")


# -- options several estimators share, declared here once -------------------------------------
DEVICE = unchecked("auto", "'auto' (a GPU when present, else the CPU), 'cpu', 'cuda' or "
                   "'cuda:N'")
SEED = non_negative_int(0, "the seed of the estimator's random numbers (initialisation, draws)")
PROGRESS = flag(None, "a tqdm bar over the iterations; None: only when stderr is a terminal",
                none_ok=True)
DIFFICULTY_SCALE = positive(10.0, "prior SD of the difficulties")
SIGMA_PRIOR_SCALE = positive(5.0, "scale of the HalfNormal prior on the skills' SD")
#: the 3PL's floor prior (irtbench.models.threepl): Beta(w m + 1, w (1 - m) + 1)
GUESSING_PRIOR = {
    "prior_guessing_mean": fraction(0.25, "3PL, 4PL: mode m of the floors' Beta prior "
                                    "(1/options)"),
    "prior_guessing_weight": positive(20.0, "3PL, 4PL: weight w of the floors' Beta prior "
                                      "(BILOG-MG's 20; 0: none)", zero_ok=True),
}
#: the 4PL's ceiling prior (irtbench.models.fourpl): Beta(w m + 1, w (1 - m) + 1), mode m
CEILING_PRIOR = {
    "prior_ceiling_mean": fraction(0.95, "4PL: mode m of the ceilings' Beta prior"),
    "prior_ceiling_weight": positive(20.0, "4PL: weight w of the ceilings' Beta prior "
                                     "(20: Beta(20, 2); 0: none)", zero_ok=True),
}
PRIOR_LOG_A_SD = positive(None, "2PL/3PL: prior SD of log a (BILOG-MG's slope prior is 0.5); "
                          "None: none", none_ok=True)
#: the Bayesian fits' slope prior, log a ~ N(0, 1) (a prior on every parameter is needed there)
BAYES_PRIOR_LOG_A_SD = positive(1.0, "2PL/3PL/4PL: prior SD of log a (over log a)")
#: the M2PL's latent dimensions and (Bayesian fits) its loadings' prior
DIMS = positive_int(2, "M2PL: the skills' dimensions D (tinyBenchmarks: 5 and 10)")
PRIOR_LOADING_SD = positive(None, "M2PL: prior SD of each loading (None: none)", none_ok=True)
BAYES_PRIOR_LOADING_SD = positive(1.0, "M2PL: prior SD of each loading (py-irt's N(0, 1))")
#: the reference's joint ML by Adam (torch-adam, jax-adam): the seed notebook's defaults
ADAM = {
    "epochs": positive_int(1000, "full-batch Adam steps"),
    "lr": positive(0.01, "Adam's learning rate"),
    "alpha": positive(REFERENCE_ALPHA, "weight of the penalty alpha * mean(difficulty)^2 (and, 2PL/3PL, "
                      "alpha * mean(log a)^2)", zero_ok=True),
    "device": DEVICE,
    "seed": SEED,
    "prior_log_a_sd": PRIOR_LOG_A_SD,
    **GUESSING_PRIOR,
    **CEILING_PRIOR,
    "dims": DIMS,
    "prior_loading_sd": PRIOR_LOADING_SD,
}
