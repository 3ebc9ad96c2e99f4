r"""The data as the classical estimators see them, in torch float64 on the fit's device.

**Score groups.** With no missing responses, everything the Rasch likelihood says about a
student goes through their raw score :math:`r_i = \sum_j y_{ij}` (it is sufficient for
:math:`\theta_i`), so students with the same score share every estimate (JML, ML, WLE, EAP).
:func:`build_design` then collapses them into at most ``n_questions + 1`` groups, weighted by
their counts, from the counts that :func:`irtbench.models.find_extremes` already took: no further
pass over the matrix, nothing of its size on the device. With missing responses only the
pattern of observed entries matters besides the scores: every student is a group of one and the
boolean mask goes to the device. Sparse triples keep their indices (:class:`SparseDesign`).

**Passes.** :meth:`Design.moments` evaluates, in row blocks, the per-row and per-column sums of

.. math:: p_{ij} = \sigma(\theta_i - b_j), \qquad w_{ij} = p_{ij}(1 - p_{ij})

over observed entries: the expected scores and the Fisher information of every parameter (and,
for Warm's WLE, the per-row sums of the third and fourth cumulants).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Union

import numpy as np

from irtbench.models import Extremes
from irtbench.responses import Responses, is_sparse, observed_of, row_blocks

if TYPE_CHECKING:
    import torch

__all__ = ["Moments", "Design", "SparseDesign", "build_design", "expand", "expand_se"]


class Moments(NamedTuple):
    r"""Row and column sums of p and p(1-p) over the observed entries (columns weighted by the
    group counts); :math:`\sum_{ij} \log(1 + e^{x_{ij}})` when asked for; per-row sums of
    :math:`w(1-2p)` and :math:`w(1-6p+6p^2)` when asked for (WLE)."""

    row_p: torch.Tensor
    row_w: torch.Tensor
    col_p: torch.Tensor
    col_w: torch.Tensor
    softplus: float = float("nan")
    row_third: torch.Tensor | None = None
    row_fourth: torch.Tensor | None = None


class _Common:
    """What both designs share: sizes, the log-likelihood, expansion back to students."""

    scores: torch.Tensor
    counts: torch.Tensor
    item_totals: torch.Tensor
    group_of: np.ndarray

    @property
    def n_groups(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_questions(self) -> int:
        return int(self.item_totals.shape[0])

    def negative_log_likelihood(self, skill: torch.Tensor, moments: Moments) -> float:
        r""":math:`-\ell = \sum_{ij\ \mathrm{obs}} \log(1 + e^{x_{ij}}) - \sum_g n_g r_g \theta_g
        + \sum_j s_j b_j` with :math:`x_{ij} = \theta_i - b_j`, from a pass that summed the
        softplus terms (the difficulties enter through :math:`\sum_j s_j b_j`, added by callers
        as ``item_totals @ difficulty``)."""
        return moments.softplus - float(self.counts @ (self.scores * skill))

    def expand(self, per_group: torch.Tensor) -> np.ndarray:
        """Per-group values as one value per student of the design (numpy float64)."""
        return per_group.detach().cpu().numpy().astype(np.float64)[self.group_of]


def _accumulate(p: torch.Tensor, with_wle: bool) -> tuple[torch.Tensor, ...]:
    """``w = p(1-p)`` and, for WLE, ``w(1-2p)`` and ``w(1-6p+6p^2)`` of masked probabilities
    (0 where missing, so every term is 0 there too)."""
    w = p - p * p
    if not with_wle:
        return (w,)
    return w, w * (1 - 2 * p), w * (1 - 6 * p + 6 * p * p)


@dataclass
class Design(_Common):
    """Students collapsed into groups that share every estimate, on a torch device.

    Attributes:
        scores: raw score of each group, float64 ``(G,)``.
        counts: students per group, float64 ``(G,)``.
        observed: ``(G, J)`` bool of observed entries, or None when nothing is missing.
        item_totals: right answers per question, float64 ``(J,)``.
        item_counts: observed responses per question, float64 ``(J,)``.
        group_of: group of each student, numpy int ``(n,)``.
    """

    scores: torch.Tensor
    counts: torch.Tensor
    observed: torch.Tensor | None
    item_totals: torch.Tensor
    item_counts: torch.Tensor
    group_of: np.ndarray

    def row_counts(self) -> torch.Tensor:
        """Observed responses per group."""
        if self.observed is None:
            return self.scores.new_full((self.n_groups,), float(self.n_questions))
        return self.observed.sum(dim=1, dtype=self.scores.dtype)

    def chunks(self, per_row: int = 1) -> list[slice]:
        """Row blocks of the groups, ``per_row`` values per entry (e.g. quadrature nodes)."""
        return row_blocks((self.n_groups, per_row * self.n_questions),
                          gpu=self.scores.is_cuda)

    def moments(self, skill: torch.Tensor, difficulty: torch.Tensor, *,
                with_softplus: bool = False, with_wle: bool = False) -> Moments:
        r"""One pass over the groups: sums of p and p(1-p) per group and per question (and of
        :math:`\log(1 + e^x) = -\log(1 - p)` if asked, for the log-likelihood)."""
        import torch

        row_p, row_w = torch.empty_like(skill), torch.empty_like(skill)
        third = torch.empty_like(skill) if with_wle else None
        fourth = torch.empty_like(skill) if with_wle else None
        col_p, col_w = torch.zeros_like(difficulty), torch.zeros_like(difficulty)
        softplus = 0.0
        for rows in self.chunks():
            p = torch.sigmoid(skill[rows, None] - difficulty[None, :])
            if self.observed is not None:
                p = p * self.observed[rows]
            w, *wle = _accumulate(p, with_wle)
            row_p[rows], row_w[rows] = p.sum(dim=1), w.sum(dim=1)
            if with_wle:
                third[rows], fourth[rows] = wle[0].sum(dim=1), wle[1].sum(dim=1)
            counts = self.counts[rows]
            col_p += counts @ p
            col_w += counts @ w
            if with_softplus:
                softplus -= float(counts @ torch.log1p(-p).sum(dim=1))
        return Moments(row_p, row_w, col_p, col_w, softplus, third, fourth)


@dataclass
class SparseDesign(_Common):
    r"""Sparse triples on a torch device, with the interface of :class:`Design` (one group per
    student): passes gather :math:`\theta_i - b_j` per observed response and scatter-add."""

    student: torch.Tensor  # long
    question: torch.Tensor  # long
    scores: torch.Tensor
    counts: torch.Tensor
    item_totals: torch.Tensor
    item_counts: torch.Tensor
    group_of: np.ndarray
    observed: None = None

    def row_counts(self) -> torch.Tensor:
        import torch

        return torch.bincount(self.student, minlength=self.n_groups).to(self.scores.dtype)

    def moments(self, skill: torch.Tensor, difficulty: torch.Tensor, *,
                with_softplus: bool = False, with_wle: bool = False) -> Moments:
        import torch

        row_p, row_w = torch.zeros_like(skill), torch.zeros_like(skill)
        third = torch.zeros_like(skill) if with_wle else None
        fourth = torch.zeros_like(skill) if with_wle else None
        col_p, col_w = torch.zeros_like(difficulty), torch.zeros_like(difficulty)
        softplus = 0.0
        for block in row_blocks((len(self.student), 1), gpu=self.student.is_cuda):
            s, q = self.student[block], self.question[block]
            p = torch.sigmoid(skill[s] - difficulty[q])
            w, *wle = _accumulate(p, with_wle)
            row_p.index_add_(0, s, p)
            row_w.index_add_(0, s, w)
            col_p.index_add_(0, q, p)
            col_w.index_add_(0, q, w)
            if with_wle:
                third.index_add_(0, s, wle[0])
                fourth.index_add_(0, s, wle[1])
            if with_softplus:
                softplus -= float(torch.log1p(-p).sum())
        return Moments(row_p, row_w, col_p, col_w, softplus, third, fourth)


AnyDesign = Union[Design, SparseDesign]


def build_design(responses: Responses, found: Extremes, device: torch.device, *,
                 students: np.ndarray | None = None, by_score: bool = True,
                 triples: bool = True) -> AnyDesign:
    """The design of the students ``students`` (default: the non-extreme ones) on the
    non-extreme questions, on ``device``. Item totals are always those of the non-extreme
    students: a design of other students serves to estimate skills given difficulties.

    Score groups when nothing is missing among them (from ``found``'s counts alone), one group
    per student with the boolean mask of observed entries otherwise, or the kept triples of
    sparse responses renumbered 0.. (``by_score=False``: one group per student in any case;
    ``triples=False``: sparse responses as the boolean mask of their observed entries, for a
    pass that needs whole rows, as the quadrature of :mod:`irtbench.estimators.mml_em`)."""
    import torch

    f64 = torch.float64
    keep_students = ~found.students if students is None else students
    keep_questions = ~found.questions
    scores = found.scores[keep_students]
    if is_sparse(responses) and triples:
        return _sparse_design(responses, found, keep_students, device)
    item_totals = torch.as_tensor(found.item_totals[keep_questions], dtype=f64, device=device)
    complete = bool((found.seen[keep_students] == keep_questions.sum()).all())
    if complete and by_score:
        distinct, group_of, counts = np.unique(scores, return_inverse=True, return_counts=True)
        return Design(
            scores=torch.as_tensor(distinct, dtype=f64, device=device),
            counts=torch.as_tensor(counts, dtype=f64, device=device), observed=None,
            item_totals=item_totals,
            item_counts=torch.full_like(item_totals, float(keep_students.sum())),
            group_of=group_of.reshape(-1),
        )
    observed = _observed_mask(responses, keep_students, keep_questions, device)
    return Design(
        scores=torch.as_tensor(scores, dtype=f64, device=device),
        counts=torch.ones(len(scores), dtype=f64, device=device), observed=observed,
        item_totals=item_totals, item_counts=observed.sum(dim=0, dtype=f64),
        group_of=np.arange(len(scores)),
    )


def _observed_mask(responses: Responses, keep_students: np.ndarray, keep_questions: np.ndarray,
                   device: torch.device) -> torch.Tensor:
    """``(kept students, kept questions)`` bool of the observed entries, on ``device``."""
    import torch

    observed = torch.zeros((int(keep_students.sum()), int(keep_questions.sum())),
                           dtype=torch.bool, device=device)
    if is_sparse(responses):
        kept = keep_students[responses.student] & keep_questions[responses.question]
        rows = (np.cumsum(keep_students) - 1)[responses.student[kept]]
        columns = (np.cumsum(keep_questions) - 1)[responses.question[kept]]
        observed[torch.as_tensor(rows, device=device),
                 torch.as_tensor(columns, device=device)] = True
        return observed
    done = 0
    for rows in row_blocks(responses.shape):
        block = observed_of(responses[rows])[keep_students[rows]][:, keep_questions]
        observed[done:done + len(block)] = torch.from_numpy(block).to(device)
        done += len(block)
    return observed


def _sparse_design(responses: Responses, found: Extremes, keep_students: np.ndarray,
                   device: torch.device) -> SparseDesign:
    """The kept triples, students and questions renumbered 0.., on ``device``."""
    import torch

    f64 = torch.float64
    keep_questions = ~found.questions
    kept = keep_students[responses.student] & keep_questions[responses.question]
    new_student = np.cumsum(keep_students) - 1
    new_question = np.cumsum(keep_questions) - 1
    n_students, n_questions = int(keep_students.sum()), int(keep_questions.sum())
    student = torch.as_tensor(new_student[responses.student[kept]], device=device)
    question = torch.as_tensor(new_question[responses.question[kept]], device=device)
    return SparseDesign(
        student, question,
        scores=torch.as_tensor(found.scores[keep_students], dtype=f64, device=device),
        counts=torch.ones(n_students, dtype=f64, device=device),
        item_totals=torch.as_tensor(found.item_totals[keep_questions], dtype=f64, device=device),
        item_counts=torch.bincount(question, minlength=n_questions).to(f64),
        group_of=np.arange(n_students),
    )


def expand(found: Extremes, design: AnyDesign, skill: torch.Tensor, difficulty: torch.Tensor,
           *, everyone: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-group skills and kept difficulties as per-student and per-question host arrays, the
    extreme ones at their +/-inf limits (``everyone``: the design holds every student)."""
    full_skill = design.expand(skill) if everyone else found.skill_limit.copy()
    if not everyone:
        full_skill[~found.students] = design.expand(skill)
    full_difficulty = found.difficulty_limit.copy()
    full_difficulty[~found.questions] = difficulty.detach().cpu().numpy()
    return full_skill, full_difficulty


def expand_se(found: Extremes, design: AnyDesign, skill_info: torch.Tensor,
              difficulty_se: torch.Tensor, *, everyone: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """Skill SEs ``1/sqrt(info)`` and difficulty SEs per student and question, ``inf`` for the
    extreme ones (``everyone``: the design holds every student)."""
    skill_se, se = expand(found, design, skill_info.rsqrt(), difficulty_se, everyone=everyone)
    return np.abs(skill_se), np.abs(se)  # the extremes' limits -inf/+inf become SE inf
