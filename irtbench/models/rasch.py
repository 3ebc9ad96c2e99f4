r"""The Rasch model in numpy float64, independent of every estimator.

.. math::
    P(Y_{ij} = 1) = p_{ij} = \sigma(\theta_i - b_j) = \frac{1}{1 + e^{-(\theta_i - b_j)}}

with skill :math:`\theta_i` of student *i* and difficulty :math:`b_j` of question *j*.
Missing responses (NaN, or -1 in the compact int8 form) are left out of every sum. Every function
walks the matrix a block of rows at a time, so memory stays a few blocks beyond the data.
"""

from __future__ import annotations

import numpy as np


from irtbench.extremes import Extremes, find_extremes
from irtbench.models.base import LOCATION, Alignment, Items, Model, Truth, sigmoid
from irtbench.responses import Responses, answers_of, is_sparse, observed_of, row_blocks

__all__ = ["Rasch", "asymptotic_se", "information", "log_likelihood", "probabilities",
           "root_mean_bounds"]


def probabilities(skill: np.ndarray, difficulty: np.ndarray) -> np.ndarray:
    r"""Matrix of :math:`p_{ij} = \sigma(\theta_i - b_j)`, shape ``(n_students, n_questions)``."""
    skill = np.asarray(skill, dtype=np.float64)
    difficulty = np.asarray(difficulty, dtype=np.float64)
    return sigmoid(skill[:, None] - difficulty[None, :])


def log_likelihood(responses: Responses, skill: np.ndarray, difficulty: np.ndarray) -> float:
    r"""Log-likelihood over the observed responses.

    .. math::
        \ell(\theta, b) = \sum_{(i,j)\ \mathrm{observed}} y_{ij} x_{ij} - \log(1 + e^{x_{ij}}),
        \qquad x_{ij} = \theta_i - b_j
    """
    skill, difficulty = np.asarray(skill, np.float64), np.asarray(difficulty, np.float64)
    if is_sparse(responses):
        logits = skill[responses.student] - difficulty[responses.question]
        return float((responses.response * logits - np.logaddexp(0.0, logits)).sum())
    total = 0.0
    for rows in row_blocks(responses.shape):
        logits = skill[rows, None] - difficulty[None, :]
        terms = answers_of(responses[rows], np.float64) * logits - np.logaddexp(0.0, logits)
        total += float(terms[observed_of(responses[rows])].sum())
    return total


def information(
    responses: Responses, skill: np.ndarray, difficulty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Fisher information of each skill and each difficulty (the others held known).

    .. math::
        I(\theta_i) = \sum_{j\ \mathrm{obs}} p_{ij}(1 - p_{ij}), \qquad
        I(b_j) = \sum_{i\ \mathrm{obs}} p_{ij}(1 - p_{ij})

    These are the diagonal of the joint information matrix, which is block-diagonal within
    skills and within difficulties.

    Args:
        responses: the response matrix; only its pattern of observed entries is used.
        skill, difficulty: the parameters at which to evaluate the information.

    Returns:
        ``(info_skill, info_difficulty)``.
    """
    skill, difficulty = np.asarray(skill, np.float64), np.asarray(difficulty, np.float64)
    if is_sparse(responses):
        p = sigmoid(skill[responses.student] - difficulty[responses.question])
        weight = p * (1.0 - p)
        return (np.bincount(responses.student, weight, len(skill)),
                np.bincount(responses.question, weight, len(difficulty)))
    info_skill, info_difficulty = np.empty(len(skill)), np.zeros(len(difficulty))
    for rows in row_blocks(responses.shape):
        p = probabilities(skill[rows], difficulty)
        weight = p * (1.0 - p)
        weight[~observed_of(responses[rows])] = 0.0
        info_skill[rows] = weight.sum(axis=1)
        info_difficulty += weight.sum(axis=0)
    return info_skill, info_difficulty


def asymptotic_se(
    responses: Responses, skill: np.ndarray, difficulty: np.ndarray,
    found: Extremes | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Asymptotic standard errors :math:`1/\sqrt{I}` evaluated at an estimate.

    A student (question) whose observed responses are all right or all wrong has no finite
    maximum-likelihood estimate and so no standard error: it gets ``inf``. ``found`` (the
    :func:`find_extremes` of ``responses``) saves the passes that find them.
    """
    info_skill, info_difficulty = information(responses, skill, difficulty)
    found = find_extremes(responses) if found is None else found
    with np.errstate(divide="ignore"):
        skill_se = 1.0 / np.sqrt(info_skill)
        difficulty_se = 1.0 / np.sqrt(info_difficulty)
    skill_se[found.students] = np.inf
    difficulty_se[found.questions] = np.inf
    return skill_se, difficulty_se


def root_mean_bounds(responses: Responses, skill: np.ndarray, difficulty: np.ndarray,
                     questions: np.ndarray | None = None) -> tuple[float, float]:
    r"""Root-mean Cramér–Rao bounds of the skills and difficulties at the true parameters,
    each with the others known:

    .. math::
        \mathrm{CRB}_\theta = \sqrt{\operatorname{mean}_i 1/I(\theta_i)},\qquad
        \mathrm{CRB}_b = \sqrt{\operatorname{mean}_j 1/I(b_j)}

    with :math:`I` from :func:`information` over the observed responses; the means run over
    the non-extreme students and over ``questions`` (default: the non-extreme ones)."""
    info_skill, info_difficulty = information(responses, skill, difficulty)
    found = find_extremes(responses)
    questions = ~found.questions if questions is None else questions
    return (float(np.sqrt(np.mean(1.0 / info_skill[~found.students]))),
            float(np.sqrt(np.mean(1.0 / info_difficulty[questions]))))


class Rasch(Model):
    r"""The Rasch model, :math:`P(Y_{ij} = 1) = \sigma(\theta_i - b_j)`: one difficulty per
    question; only the origin is free (:math:`s = 1`), fixed in alignment by the mean
    difficulty of the questions with finite estimates."""

    name = "rasch"
    title = "Rasch"
    item_parameters = ("difficulty",)
    kinds = {"skill": LOCATION, "difficulty": LOCATION}
    units = {"skill": "logits", "difficulty": "logits"}
    skill_distribution = ("uniform", 3.0)  # the seed notebook's
    formula = "P = sigmoid(skill - difficulty)"

    def probabilities(self, skill: np.ndarray, items: Items) -> np.ndarray:
        return probabilities(np.asarray(skill, np.float64), np.asarray(items["difficulty"]))

    def log_likelihood(self, responses: Responses, skill: np.ndarray, items: Items) -> float:
        return log_likelihood(responses, skill, items["difficulty"])

    def joint_errors(self, responses: Responses, skill: np.ndarray, items: Items
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        skill_se, difficulty_se = asymptotic_se(responses, skill, items["difficulty"])
        return skill_se, {"difficulty": difficulty_se}

    def align(self, estimate: Items, truth: Items, keep: np.ndarray) -> Alignment:
        """The shift that gives the estimate the truth's mean difficulty over ``keep``."""
        shift = float(np.mean(np.asarray(truth["difficulty"], np.float64)[keep])
                      - np.mean(np.asarray(estimate["difficulty"], np.float64)[keep]))
        return Alignment(1.0, shift)

    def bounds(self, data: Truth, keep: np.ndarray) -> dict[str, float]:
        """:func:`root_mean_bounds` of the skills and the ``keep`` questions' difficulties."""
        skill, difficulty = root_mean_bounds(data.responses, data.skill, data.difficulty, keep)
        return {"skill": skill, "difficulty": difficulty}
