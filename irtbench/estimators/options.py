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
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from irtbench.models import MODELS, get_model
from irtbench.metrics import REFERENCE_ALPHA
from irtbench.specs import (  # noqa: F401 - the constructors, for the estimators' spec
    Option,
    Spec,
    choice,
    flag,
    fraction,
    non_negative_int,
    positive,
    positive_int,
    unchecked,
)

__all__ = ["COMMON", "Option", "Spec", "choice", "docstring_section", "flag", "fraction",
           "markdown", "model_options", "positive", "positive_int", "resolve", "unchecked"]

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


def model_options(*names: str, **defaults: Option) -> dict[str, Spec]:
    """The options of the models' parameters (:attr:`Model.options
    <irtbench.models.base.Model.options>`: priors, dimensions) that an estimator implements,
    by name, each the one declaration of the models that read it; ``defaults`` give an option
    another default for this estimator (a Bayesian fit needs a prior on every parameter: then
    None is no longer allowed)."""
    declared: dict[str, Spec] = {}
    for model in MODELS:
        declared.update(get_model(model).options)
    unknown = sorted(set(names) - set(declared))
    if unknown:
        raise ValueError(f"no model reads the option(s) {', '.join(unknown)}")
    chosen = {name: declared[name] for name in names}
    for name, value in defaults.items():
        chosen[name] = replace(chosen[name], default=value,
                               none_ok=chosen[name].none_ok and value is None)
    return chosen


# -- options several estimators share, declared here once -------------------------------------
DEVICE = unchecked("auto", "'auto' (a GPU when present, else the CPU), 'cpu', 'cuda' or "
                   "'cuda:N'")
SEED = non_negative_int(0, "the seed of the estimator's random numbers (initialisation, draws)")
PROGRESS = flag(None, "a tqdm bar over the iterations; None: only when stderr is a terminal",
                none_ok=True)
DIFFICULTY_SCALE = positive(10.0, "prior SD of the difficulties")
SIGMA_PRIOR_SCALE = positive(5.0, "scale of the HalfNormal prior on the skills' SD")
#: the reference's joint ML by Adam (torch-adam, jax-adam): the seed notebook's defaults
ADAM = {
    "epochs": positive_int(1000, "full-batch Adam steps"),
    "lr": positive(0.01, "Adam's learning rate"),
    "alpha": positive(REFERENCE_ALPHA, "weight of the penalty alpha * mean(difficulty)^2 (and, 2PL/3PL/4PL, "
                      "alpha * mean(log a)^2)", zero_ok=True),
    "device": DEVICE,
    "seed": SEED,
    **model_options("prior_log_a_sd", "prior_guessing_mean", "prior_guessing_weight",
                    "prior_ceiling_mean", "prior_ceiling_weight", "dims", "prior_loading_sd"),
}
