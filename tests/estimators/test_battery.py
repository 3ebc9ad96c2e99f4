"""The generic battery over every (estimator, model) pair an estimator declares it fits: the
interface (shapes, dtypes, the model's item parameters by name, the model recorded), finite
estimates, metrics for every part, and skills that track the truth as well as the test's
reliability allows.

The default run keeps each model's share small: the Adam fits, which consume the model's
description, with every model; the other pairs are marked ``heavy`` (``pytest -m heavy`` runs
them; every estimator's Rasch fit has its generic checks in test_estimators.py by default).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import Z999, fast_options, require

import irtbench
from irtbench.models import MODELS, get_model


def light(name: str) -> bool:
    """Whether the estimator's pairs with every model run by default: the joint fits of every
    model, which consume the model's description (irtbench.models.fitting), so a new model is
    checked through them at once (the Adam fits)."""
    cls = irtbench.get_estimator(name)
    return cls.objective == "joint" and set(cls.models) == set(MODELS)


N_STUDENTS, N_QUESTIONS = 400, 20
def pairs() -> list:
    """Every (estimator, model) pair the registry declares, heavy ones marked."""
    out = []
    for name in sorted(irtbench.estimators()):
        for model in irtbench.get_estimator(name).models:
            marks = [] if light(name) else [pytest.mark.heavy]
            shortfall = irtbench.get_estimator(name).shortfalls.get(model)
            if shortfall:  # measured to fall short: a strict expected failure
                marks.append(pytest.mark.xfail(reason=shortfall, strict=True))
            out.append(pytest.param(name, model, id=f"{name}-{model}", marks=marks))
    return out


def simulated(model: str) -> irtbench.Dataset:
    return irtbench.simulate(N_STUDENTS, N_QUESTIONS, model=model, seed=11)


def skill_correlation_floor(data: irtbench.Dataset, students: np.ndarray) -> float:
    r"""The least correlation of estimated with true skills that a sound fit reaches with
    probability 0.999: with the test's reliability :math:`\rho = v/(v + \overline{SE^2})` (the
    skills' variance :math:`v` over it plus the mean squared SE of a skill at the true items,
    :meth:`~irtbench.models.base.Model.joint_errors`), an estimate with that error correlates
    :math:`\sqrt\rho` with the truth, and Fisher's :math:`z` of a correlation of *n* pairs has
    SD :math:`1/\sqrt{n - 3}`."""
    model = get_model(data.model)
    skill_se, _ = model.joint_errors(data.responses, data.skill, data.items)
    variance = float(np.var(data.skill[students]))
    rho = variance / (variance + float(np.mean(skill_se[students] ** 2)))
    n = int(students.sum())
    return math.tanh(math.atanh(math.sqrt(rho)) - Z999 / math.sqrt(n - 3))


@pytest.mark.parametrize("name, model", pairs())
def test_every_pair_fits_its_model_through_the_common_interface(name, model):
    require(name)
    data = simulated(model)
    fit = irtbench.fit(data.responses, estimator=name, model=model, **fast_options(name))
    description = get_model(model)
    assert fit.model == model and fit.options["model"] == model
    assert fit.skill.shape[0] == N_STUDENTS and fit.skill.dtype == np.float64
    assert list(fit.items) == list(description.item_parameters)
    for part, values in fit.items.items():
        assert values.shape[0] == N_QUESTIONS and values.dtype == np.float64, part
        usable = ~fit.extreme_questions
        assert np.isfinite(values[usable]).all(), part
    metrics = irtbench.recovery(fit, data)
    for part in description.item_parameters:
        assert np.isfinite(metrics[f"rmse_{part}"]), part
    students = ~fit.extreme_students
    assert metrics["corr_skill"] > skill_correlation_floor(data, students)
