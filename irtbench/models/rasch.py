r"""The Rasch model in numpy float64, independent of every estimator.

.. math::
    P(Y_{ij} = 1) = p_{ij} = \sigma(\theta_i - b_j) = \frac{1}{1 + e^{-(\theta_i - b_j)}}

with skill :math:`\theta_i` of student *i* and difficulty :math:`b_j` of question *j*.
Missing responses (NaN, or -1 in the compact int8 form) are left out of every sum. Every function
walks the matrix a block of rows at a time, so memory stays a few blocks beyond the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from irtbench.extremes import Extremes, find_extremes
from irtbench.responses import Scan
from irtbench.models.base import LOCATION, Alignment, Items, Model, Truth, sigmoid
from irtbench.models.fitting import Ops, Parameter, location_prior
from irtbench.responses import Responses, answers_of, is_sparse, observed_of, row_blocks

__all__ = ["Rasch", "asymptotic_se", "complete_information", "information",
           "information_sums", "log_likelihood", "probabilities", "root_mean_bounds",
           "standard_errors"]


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


def information_sums(xp: Any, skill: Any, difficulty: Any, observed: Any | None = None
                     ) -> tuple[Any, Any]:
    r"""The Fisher information of a block of students and of every question over that block:
    :math:`\sum_j o_{ij} w_{ij}` per row and :math:`\sum_i o_{ij} w_{ij}` per column, with
    :math:`w_{ij} = p_{ij}(1 - p_{ij})`, :math:`p_{ij} = \sigma(\theta_i - b_j)` and
    :math:`o_{ij}` the 0/1 observed indicator (``observed``, None: all observed).

    Written once for every backend: ``xp`` is the array module of the arrays (``numpy``,
    ``torch`` or ``jax.numpy``), so the estimators evaluate it where their data and estimates
    are (the device), a block of rows at a time or inside a compiled function."""
    p = 1.0 / (1.0 + xp.exp(difficulty[None, :] - skill[:, None]))
    w = p - p * p
    if observed is not None:
        w = w * observed
    return xp.sum(w, axis=1), xp.sum(w, axis=0)


#: a student whose estimate lies within this of their score group's mean gets the group's
#: information to first order (:func:`complete_information`): the error is below
#: ``TAYLOR_RADIUS**2 * n_questions / 20``, 1e-9 of an information of at least 0.05 per question
TAYLOR_RADIUS = 1e-4


def complete_information(skill: np.ndarray, difficulty: np.ndarray, scores: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    r""":func:`information` of a matrix with no missing response, from the estimates and the
    raw scores alone (the information does not depend on the answers, and every estimate here
    depends on them through the raw score, up to rounding).

    Students are grouped by raw score; with :math:`\bar\theta_g` the mean skill of group
    :math:`g` and :math:`\delta_i = \theta_i - \bar\theta_g`,

    .. math::
        I(\theta_i) = I(\bar\theta_g) + \delta_i I'(\bar\theta_g) + O(\delta_i^2),\qquad
        I(b_j) = \sum_g n_g w(\bar\theta_g - b_j) + O(\textstyle\sum_i \delta_i^2)

    (the first-order term of :math:`I(b_j)` is :math:`\sum_i \delta_i = 0`), with
    :math:`I'(\theta) = \sum_j w_j (1 - 2p_j)`. Students farther than :data:`TAYLOR_RADIUS`
    from their group's mean, or not finite, are computed exactly. Cost: (score groups + those
    students) x questions, instead of students x questions."""
    skill, difficulty = np.asarray(skill, np.float64), np.asarray(difficulty, np.float64)
    scores = np.asarray(scores, dtype=np.int64)  # raw scores: small integers, counted
    present = np.bincount(scores) > 0
    groups, inverse = np.flatnonzero(present), (np.cumsum(present) - 1)[scores]
    finite = np.isfinite(skill)
    counts = np.bincount(inverse[finite], minlength=len(groups)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.bincount(inverse[finite], skill[finite], len(groups)) / counts
    near = finite & (np.abs(skill - centre[inverse]) <= TAYLOR_RADIUS)
    near_counts = np.bincount(inverse[near], minlength=len(groups)).astype(np.float64)
    used = near_counts > 0
    centre[used] = np.bincount(inverse[near], skill[near], len(groups))[used] / near_counts[used]
    delta = skill - centre[inverse]  # sums to 0 over each group's near students
    info_skill = np.empty(len(skill))
    info_difficulty = np.zeros(len(difficulty))
    p = sigmoid(centre[used, None] - difficulty[None, :])
    w = p * (1.0 - p)
    group_info = np.zeros(len(groups))
    group_slope = np.zeros(len(groups))
    group_info[used], group_slope[used] = w.sum(axis=1), (w * (1.0 - 2.0 * p)).sum(axis=1)
    info_skill[near] = group_info[inverse[near]] + delta[near] * group_slope[inverse[near]]
    info_difficulty += near_counts[used] @ w
    for rows in row_blocks((int((~near).sum()), len(difficulty))):
        far = np.flatnonzero(~near)[rows]
        row_sums, column_sums = information_sums(np, skill[far], difficulty)
        info_skill[far] = row_sums
        info_difficulty += column_sums
    return info_skill, info_difficulty


def information(
    responses: Responses, skill: np.ndarray, difficulty: np.ndarray, scan: Scan | None = None
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
        scan: the responses' :class:`~irtbench.responses.Scan`; when it says nothing is missing
            the information comes from the raw scores (:func:`complete_information`) with no
            pass over the matrix.

    Returns:
        ``(info_skill, info_difficulty)``.
    """
    skill, difficulty = np.asarray(skill, np.float64), np.asarray(difficulty, np.float64)
    if scan is not None and scan.complete:
        return complete_information(skill, difficulty, scan.row_right)
    if is_sparse(responses):
        p = sigmoid(skill[responses.student] - difficulty[responses.question])
        weight = p * (1.0 - p)
        return (np.bincount(responses.student, weight, len(skill)),
                np.bincount(responses.question, weight, len(difficulty)))
    info_skill, info_difficulty = np.empty(len(skill)), np.zeros(len(difficulty))
    for rows in row_blocks(responses.shape):
        info_skill[rows], column_sums = information_sums(
            np, skill[rows], difficulty, observed_of(responses[rows]))
        info_difficulty += column_sums
    return info_skill, info_difficulty


def standard_errors(info_skill: np.ndarray, info_difficulty: np.ndarray, found: Extremes
                    ) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`1/\sqrt{I}`, ``inf`` for the extreme students and questions (no finite ML
    estimate, so no standard error)."""
    with np.errstate(divide="ignore"):
        skill_se = 1.0 / np.sqrt(np.asarray(info_skill, np.float64))
        difficulty_se = 1.0 / np.sqrt(np.asarray(info_difficulty, np.float64))
    skill_se[found.students] = np.inf
    difficulty_se[found.questions] = np.inf
    return skill_se, difficulty_se


def asymptotic_se(
    responses: Responses, skill: np.ndarray, difficulty: np.ndarray,
    found: Extremes | None = None, scan: Scan | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Asymptotic standard errors :math:`1/\sqrt{I}` evaluated at an estimate, on the host.

    A student (question) whose observed responses are all right or all wrong has no finite
    maximum-likelihood estimate and so no standard error: it gets ``inf``. ``found`` (the
    :func:`find_extremes` of ``responses``) and ``scan`` (their
    :class:`~irtbench.responses.Scan`) save the passes that find them; with a complete matrix's
    scan no pass is made at all.
    """
    if found is None:
        found = find_extremes(responses, scan=scan)
    return standard_errors(*information(responses, skill, difficulty, scan), found)


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

    learns_skill_scale = True
    fast_paths = frozenset({"closed", "fused", "logit"})
    information_sums = staticmethod(information_sums)
    sums_parameters = ("difficulty",)

    def probabilities(self, skill: np.ndarray, items: Items) -> np.ndarray:
        return probabilities(np.asarray(skill, np.float64), np.asarray(items["difficulty"]))

    def linear_logits(self, items: Items) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`\theta_i - b_j`: slopes 1, intercepts :math:`-b_j`."""
        difficulty = np.asarray(items["difficulty"], np.float64)
        return np.ones_like(difficulty), -difficulty

    # -- fitting ----------------------------------------------------------------------------
    def fit_parameters(self, options: Mapping[str, Any]) -> tuple[Parameter, ...]:
        """The difficulty, from 0 (the notebook's start), on the line."""
        return (Parameter("difficulty", "difficulty", prior=location_prior(options)),)

    def logits(self, ops: Ops, skill: Any, at: Mapping[str, Any], question: Any | None
               ) -> Any:
        r""":math:`\theta_i - b_j`."""
        return self.skill_column(skill, question) - at["difficulty"]

    def gauge_penalty(self, ops: Ops, skill: Any, raw: Mapping[str, Any], alpha: float) -> Any:
        r"""The notebook's :math:`\alpha\bar b^2`, which pins the origin."""
        return alpha * ops.mean(raw["difficulty"]) ** 2

    def fit_errors(self, responses: Responses, skill: np.ndarray, items: Items, *,
                   scan: Scan | None, found: Extremes | None, sums: tuple | None = None
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        r""":math:`1/\sqrt{I}` from ``sums``, or from the raw scores when nothing is missing
        (:func:`complete_information`), or in one pass on the host."""
        found = find_extremes(responses, scan=scan) if found is None else found
        info = sums if sums is not None else information(responses, skill,
                                                         items["difficulty"], scan)
        skill_se, difficulty_se = standard_errors(*info, found)
        return skill_se, {"difficulty": difficulty_se}

    def needs_sums(self, scan: Scan | None) -> bool:
        """Not where nothing is missing: the raw scores give the information then."""
        return not (scan is not None and scan.complete)

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
