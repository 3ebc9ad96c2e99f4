r"""Helpers shared by the classical (Newton / EM) estimators, in torch float64.

**Score groups.** With no missing responses, everything the Rasch likelihood says about a
student goes through their raw score :math:`r_i = \sum_j y_{ij}` (it is sufficient for
:math:`\theta_i`), so students with the same score share every estimate (JML, ML, WLE, EAP).
:class:`Design` collapses them into at most ``n_questions + 1`` groups, weighted by their counts,
which turns an ``n x J`` pass into a ``(J + 1) x J`` one. With missing responses the set of
observed questions matters too, and every student is a group of one.

**Passes.** :meth:`Design.moments` evaluates, in row chunks (memory: a few float64 arrays of
``chunk x J``), the per-row and per-column sums of

.. math:: p_{ij} = \sigma(\theta_i - b_j), \qquad w_{ij} = p_{ij}(1 - p_{ij})

over observed entries: the expected scores and the Fisher information of every parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from irtbench.data import answers_of, is_sparse, observed_of, row_blocks
from irtbench.estimators import _torch
from irtbench.estimators.base import Estimator

if TYPE_CHECKING:
    import torch

#: elements per chunk of a pass (rows x questions), ~64 MB per float64 intermediate
CHUNK_ELEMENTS = 1 << 23


class Moments(NamedTuple):
    r"""Row and column sums of p and p(1-p) over the observed entries (columns weighted by the
    group counts), and :math:`\sum_{ij} \log(1 + e^{x_{ij}})` when asked for."""

    row_p: torch.Tensor
    row_w: torch.Tensor
    col_p: torch.Tensor
    col_w: torch.Tensor
    softplus: float = float("nan")


@dataclass
class Problem:
    """What the classical estimators' ``prepare`` hands to ``run``: the data on the device
    (float32 answers and mask, or sparse ``(student, question, y)`` triples with ``shape``)."""

    y: Any
    observed: Any
    device: Any
    options: dict[str, Any]
    shape: tuple[int, int] | None = None  # sparse only


class ClassicalEstimator(Estimator):
    """Base of the classical torch estimators (jml-newton, cml, mml-em): backend, devices, and
    the untimed transfer of the responses to the device."""

    backend = "torch"
    requirements = ("torch",)
    extra = "torch"

    @classmethod
    def devices(cls) -> list[str]:
        return ["cpu", "cuda"] if _torch.cuda_available() else ["cpu"]

    def prepare(self, responses: Any, options: dict[str, Any]) -> Problem:
        device = _torch.resolve_device(options["device"])
        if is_sparse(responses):
            return Problem(sparse_on_device(responses, device), None, device, options,
                           responses.shape)
        return Problem(*observed_on_device(responses, device), device, options)

    def device_of(self, problem: Problem) -> str:
        return _torch.device_name(problem.device)


class _Sizes:
    """``n_groups`` and ``n_questions`` of a design, from its score and item-total vectors."""

    scores: torch.Tensor
    item_totals: torch.Tensor

    @property
    def n_groups(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_questions(self) -> int:
        return int(self.item_totals.shape[0])


@dataclass
class Design(_Sizes):
    """Students collapsed into groups that share every estimate, on a torch device.

    Attributes:
        scores: raw score of each group, float64 ``(G,)``.
        counts: students per group, float64 ``(G,)``.
        observed: ``(G, J)`` bool of observed entries, or None when nothing is missing.
        responses: ``(G, J)`` float64 0/1 responses (missing = 0), or None when grouped by
            score (the estimators that need more than scores and item totals set it).
        item_totals: right answers per question, float64 ``(J,)``.
        item_counts: observed responses per question, float64 ``(J,)``.
        group_of: group of each student, numpy int ``(n,)``.
    """

    scores: torch.Tensor
    counts: torch.Tensor
    observed: torch.Tensor | None
    responses: torch.Tensor | None
    item_totals: torch.Tensor
    item_counts: torch.Tensor
    group_of: np.ndarray

    def row_counts(self) -> torch.Tensor:
        """Observed responses per group."""
        if self.observed is None:
            return self.scores.new_full((self.n_groups,), float(self.n_questions))
        return self.observed.sum(dim=1, dtype=self.scores.dtype)

    def chunks(self) -> list[slice]:
        step = max(1, CHUNK_ELEMENTS // max(1, self.n_questions))
        return [slice(i, min(i + step, self.n_groups)) for i in range(0, self.n_groups, step)]

    def moments(self, skill: torch.Tensor, difficulty: torch.Tensor, *,
                with_softplus: bool = False) -> Moments:
        r"""One pass over the data: sums of p and p(1-p) per group and per question (and of
        :math:`\log(1 + e^x) = -\log(1 - p)` if asked, for the log-likelihood)."""
        import torch

        row_p, row_w = torch.empty_like(skill), torch.empty_like(skill)
        col_p, col_w = torch.zeros_like(difficulty), torch.zeros_like(difficulty)
        softplus = 0.0
        for rows in self.chunks():
            p = torch.sigmoid(skill[rows, None] - difficulty[None, :])
            if self.observed is not None:
                p = p * self.observed[rows]
            w = p - p * p  # observed: p(1-p); missing: 0
            row_p[rows], row_w[rows] = p.sum(dim=1), w.sum(dim=1)
            counts = self.counts[rows]
            col_p += counts @ p
            col_w += counts @ w
            if with_softplus:
                softplus -= float(counts @ torch.log1p(-p).sum(dim=1))
        return Moments(row_p, row_w, col_p, col_w, softplus)

    def negative_log_likelihood(self, skill: torch.Tensor, moments: Moments) -> float:
        r""":math:`-\ell = \sum_{ij\ \mathrm{obs}} \log(1 + e^{x_{ij}}) - \sum_g n_g r_g \theta_g
        + \sum_j s_j b_j` with :math:`x_{ij} = \theta_i - b_j`, from a pass that summed the
        softplus terms (the difficulties enter through :math:`\sum_j s_j b_j`, added by callers
        as ``item_totals @ difficulty``)."""
        return moments.softplus - float(self.counts @ (self.scores * skill))

    def expand(self, per_group: torch.Tensor) -> np.ndarray:
        """Per-group values as one value per student (numpy float64)."""
        return per_group.detach().cpu().numpy().astype(np.float64)[self.group_of]


def build_design(y: torch.Tensor, observed: torch.Tensor | None, *,
                 keep_responses: bool = False) -> Design:
    """Collapse students into score groups (no missing responses) or keep one group per student.

    Args:
        y: ``(n, J)`` 0/1 responses on the device (missing entries 0), with no extreme student
            or question left in it (:func:`drop_extremes`).
        observed: ``(n, J)`` bool of observed entries, or None when nothing is missing.
        keep_responses: also keep the (group-mean) responses, for estimators that need more
            than the raw scores (the EM of :mod:`~irtbench.estimators.mml_em`).
    """
    import torch

    f64 = torch.float64
    scores = y.sum(dim=1).to(f64)  # float32 sums of 0/1 are exact below 2**24
    item_totals = y.sum(dim=0).to(f64)
    if observed is None:
        distinct, group_of, counts = torch.unique(scores, return_inverse=True, return_counts=True)
        grouped = None
        if keep_responses:
            grouped = torch.zeros(len(distinct), y.shape[1], dtype=f64, device=y.device)
            for rows in row_blocks(y.shape):  # float64 a block at a time
                grouped.index_add_(0, group_of[rows], y[rows].to(f64))
            grouped /= counts[:, None]
        return Design(
            scores=distinct, counts=counts.to(f64), observed=None, responses=grouped,
            item_totals=item_totals,
            item_counts=torch.full_like(item_totals, float(y.shape[0])),
            group_of=group_of.cpu().numpy(),
        )
    return Design(
        scores=scores, counts=torch.ones_like(scores), observed=observed,
        responses=y if keep_responses else None,
        item_totals=item_totals, item_counts=observed.sum(dim=0).to(f64),
        group_of=np.arange(len(scores)),
    )


@dataclass
class SparseDesign(_Sizes):
    """Sparse triples on a torch device, with the interface of :class:`Design` (one group per
    student): passes gather :math:`\theta_i - b_j` per observed response and scatter-add."""

    student: torch.Tensor  # long
    question: torch.Tensor  # long
    y: torch.Tensor  # float64 0/1
    scores: torch.Tensor
    counts: torch.Tensor
    item_totals: torch.Tensor
    item_counts: torch.Tensor
    observed: None = None

    @property
    def group_of(self) -> np.ndarray:
        return np.arange(self.n_groups)

    def row_counts(self) -> torch.Tensor:
        import torch

        return torch.bincount(self.student, minlength=self.n_groups).to(self.scores.dtype)

    def moments(self, skill: torch.Tensor, difficulty: torch.Tensor, *,
                with_softplus: bool = False) -> Moments:
        import torch

        row_p, row_w = torch.zeros_like(skill), torch.zeros_like(skill)
        col_p, col_w = torch.zeros_like(difficulty), torch.zeros_like(difficulty)
        softplus = 0.0
        for start in range(0, len(self.student), CHUNK_ELEMENTS):
            block = slice(start, start + CHUNK_ELEMENTS)
            s, q = self.student[block], self.question[block]
            p = torch.sigmoid(skill[s] - difficulty[q])
            w = p - p * p
            row_p.index_add_(0, s, p)
            row_w.index_add_(0, s, w)
            col_p.index_add_(0, q, p)
            col_w.index_add_(0, q, w)
            if with_softplus:
                softplus -= float(torch.log1p(-p).sum())
        return Moments(row_p, row_w, col_p, col_w, softplus)

    negative_log_likelihood = Design.negative_log_likelihood
    expand = Design.expand


def sparse_design(reduced: Reduced) -> SparseDesign:
    """The design of sparse triples without extremes (``reduced.y`` = the triples)."""
    import torch

    student, question, y = reduced.y
    n, m = int(reduced.students.sum()), int(reduced.questions.sum())
    f64 = y.dtype
    return SparseDesign(
        student, question, y,
        scores=torch.zeros(n, dtype=f64, device=y.device).index_add_(0, student, y),
        counts=torch.ones(n, dtype=f64, device=y.device),
        item_totals=torch.zeros(m, dtype=f64, device=y.device).index_add_(0, question, y),
        item_counts=torch.bincount(question, minlength=m).to(f64),
    )


def drop_sparse_extremes(student: torch.Tensor, question: torch.Tensor, y: torch.Tensor,
                         shape: tuple[int, int]) -> Reduced:
    """:func:`drop_extremes` for sparse triples: counts by ``bincount``, then the kept students
    and questions renumbered 0.. (``Reduced.y`` holds the kept triples)."""
    import torch

    n, m = shape
    students = torch.zeros(n, dtype=torch.bool, device=y.device)
    questions = torch.zeros(m, dtype=torch.bool, device=y.device)
    while True:
        kept = (~(students[student] | questions[question])).to(y.dtype)
        row_right = torch.bincount(student, y * kept, minlength=n)
        row_seen = torch.bincount(student, kept, minlength=n)
        col_right = torch.bincount(question, y * kept, minlength=m)
        col_seen = torch.bincount(question, kept, minlength=m)
        new_students = students | (row_right == 0) | (row_right == row_seen)
        new_questions = questions | (col_right == 0) | (col_right == col_seen)
        if torch.equal(new_students, students) and torch.equal(new_questions, questions):
            break
        students, questions = new_students, new_questions
    if n - int(students.sum()) < 2 or m - int(questions.sum()) < 2:
        raise ValueError("after removing the students and questions whose responses are all "
                         "right or all wrong, fewer than two of either remain")
    keep = ~(students[student] | questions[question])
    new_student = torch.cumsum(~students, 0) - 1
    new_question = torch.cumsum(~questions, 0) - 1
    triples = (new_student[student[keep]], new_question[question[keep]], y[keep])
    return Reduced(triples, None, (~students).cpu().numpy(), (~questions).cpu().numpy())


def sparse_on_device(responses: Any, device: torch.device) -> tuple[Any, Any, Any]:
    """``(student, question, y)`` of sparse triples on ``device`` (long, long, float64)."""
    import torch

    return (torch.as_tensor(responses.student, dtype=torch.long, device=device),
            torch.as_tensor(responses.question, dtype=torch.long, device=device),
            torch.as_tensor(responses.response, dtype=torch.float64, device=device))


class Reduced(NamedTuple):
    """Responses without their extreme students and questions (see
    :func:`irtbench.model.extremes`) and which were kept (numpy bool masks)."""

    y: torch.Tensor
    observed: torch.Tensor | None
    students: np.ndarray
    questions: np.ndarray


def extremes_on_device(y: torch.Tensor, observed: torch.Tensor | None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`irtbench.model.extremes` (applied repeatedly) with torch on the data's device."""
    import torch

    seen = None if observed is None else observed.to(y.dtype)  # None: everything seen
    students = torch.zeros(y.shape[0], dtype=torch.bool, device=y.device)
    questions = torch.zeros(y.shape[1], dtype=torch.bool, device=y.device)
    while True:
        keep_q, keep_s = (~questions).to(y.dtype), (~students).to(y.dtype)
        row_right, col_right = y @ keep_q, keep_s @ y
        if seen is None:
            row_seen = keep_q.sum().expand_as(row_right)
            col_seen = keep_s.sum().expand_as(col_right)
        else:
            row_seen, col_seen = seen @ keep_q, keep_s @ seen
        new_students = students | (row_right == 0) | (row_right == row_seen)
        new_questions = questions | (col_right == 0) | (col_right == col_seen)
        if torch.equal(new_students, students) and torch.equal(new_questions, questions):
            return students, questions
        students, questions = new_students, new_questions


def drop_extremes(y: torch.Tensor, observed: torch.Tensor | None) -> Reduced:
    """Remove the students and questions that have no finite ML estimate (copies the data only
    when there are some)."""
    extreme_students, extreme_questions = extremes_on_device(y, observed)
    n_students, n_questions = int(extreme_students.sum()), int(extreme_questions.sum())
    if y.shape[0] - n_students < 2 or y.shape[1] - n_questions < 2:
        raise ValueError(
            f"after removing the {n_students} students and {n_questions} questions whose "
            "responses are all right or all wrong, fewer than two of either remain: the Rasch "
            "model cannot be estimated from these responses"
        )
    if n_students:
        y = y[~extreme_students]
        observed = None if observed is None else observed[~extreme_students]
    if n_questions:
        y = y[:, ~extreme_questions]
        observed = None if observed is None else observed[:, ~extreme_questions]
    if observed is not None and bool(observed.all()):
        observed = None  # what was missing belonged to the removed students / questions
    return Reduced(y, observed, (~extreme_students).cpu().numpy(),
                   (~extreme_questions).cpu().numpy())


def extreme_values(responses: np.ndarray, reduced: Reduced, axis: int) -> np.ndarray:
    """+/-inf for the removed students (axis=1) or questions (axis=0), in the direction in which
    their likelihood grows, judged on the kept questions (students) or kept students (questions),
    where a removed one is all right or all wrong: all right -> skill +inf, difficulty -inf."""
    keep = reduced.students if axis == 1 else reduced.questions
    if is_sparse(responses):
        index, other = ((responses.student, responses.question) if axis == 1
                        else (responses.question, responses.student))
        kept = (reduced.questions if axis == 1 else reduced.students)[other]
        right = np.bincount(index, responses.response * kept, len(keep))
        seen = np.bincount(index, kept.astype(np.float64), len(keep))
    else:
        part = responses[:, reduced.questions] if axis == 1 else responses[reduced.students]
        right = answers_of(part).sum(axis=axis)
        seen = observed_of(part).sum(axis=axis)
    sign = np.where(right == seen, 1.0, np.where(right == 0, -1.0, np.nan))
    if axis == 0:
        sign = -sign
    return np.where(keep, np.nan, sign * np.inf)


def expand_parameters(reduced: Reduced, responses: np.ndarray, skill: np.ndarray,
                      difficulty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimates of the kept students / questions back in their places, +/-inf for the rest."""
    full_skill = extreme_values(responses, reduced, axis=1)
    full_difficulty = extreme_values(responses, reduced, axis=0)
    full_skill[reduced.students] = skill
    full_difficulty[reduced.questions] = difficulty
    return full_skill, full_difficulty


def observed_on_device(responses: np.ndarray, device: torch.device
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(y, observed)``: float32 0/1 responses (missing = 0) and a bool mask of the observed
    entries (None when nothing is missing), on ``device``: the untimed transfer."""
    y, weight, _ = _torch.responses_to_device(responses, device)
    return y, None if weight is None else weight.bool()


def log_odds_start(design: Design) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Starting values: :math:`b_j = \log\frac{n_j - s_j}{s_j}` centred and
    :math:`\theta_g = \log\frac{r_g}{J_g - r_g}` (finite: no extremes are left)."""
    import torch

    difficulty = torch.log((design.item_counts - design.item_totals) / design.item_totals)
    difficulty = difficulty - difficulty.mean()
    row_counts = design.row_counts()
    skill = torch.log(design.scores / (row_counts - design.scores))
    return skill, difficulty


def halve_failed(step: torch.Tensor, old_gradient: torch.Tensor, new_gradient: torch.Tensor,
                 tol: float) -> torch.Tensor:
    """Step-halving for separable Newton steps: the part of ``step`` to take back (half of it)
    where the gradient grew in size (an overshoot), zero elsewhere and for steps below ``tol``."""
    failed = (new_gradient.abs() > old_gradient.abs()) & (step.abs() > tol)
    return step * 0.5 * failed


def newton_block(value: torch.Tensor, gradient: torch.Tensor, step: torch.Tensor,
                 evaluate: Any, residual: Any, tol: float, tries: int = 20
                 ) -> tuple[torch.Tensor, torch.Tensor, Moments, int]:
    """Take the separable Newton ``step`` from ``value`` and halve it (up to ``tries`` times)
    for the parameters whose gradient grew. ``evaluate(value)`` gives the moments there and
    ``residual(moments)`` the gradient. Returns ``(value, step taken, moments, halvings)``."""
    value = value + step
    moments = evaluate(value)
    halvings = 0
    for _ in range(tries):
        back = halve_failed(step, gradient, residual(moments), tol)
        if not bool(back.any()):
            break
        halvings += 1
        value, step = value - back, step - back
        moments = evaluate(value)
    return value, step, moments, halvings


def person_estimates(design: Design, difficulty: torch.Tensor, *, method: str = "ml",
                     tol: float = 1e-8, max_iter: int = 100,
                     start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    r"""Skills of every group given the difficulties, by Newton's method.

    * ``"ml"``: maximum likelihood, :math:`r_g = \sum_j p_{gj}` (no finite solution for
      scores 0 and J: callers remove those first);
    * ``"wle"``: Warm's weighted likelihood estimate, the root of
      :math:`r_g - \sum_j p_{gj} + \frac{J_g}{2 I_g} = 0` with :math:`I = \sum p(1-p)` and
      :math:`J = \sum p(1-p)(1-2p)`; finite for every score and less biased than ML.

    Returns:
        ``(skill, information, iterations)`` per group; the SE is ``1/sqrt(information)``.
    """
    import torch

    if method not in ("ml", "wle"):
        raise ValueError(f"person method {method!r}: choose 'ml' or 'wle'")
    skill = torch.zeros_like(design.scores) if start is None else start.clone()
    observed = design.observed
    for iteration in range(1, max_iter + 1):  # noqa: B007 (returned)
        p = torch.sigmoid(skill[:, None] - difficulty[None, :])
        w = p * (1 - p)
        if observed is not None:
            p, w = p * observed, w * observed
        info = w.sum(dim=1)
        gradient = design.scores - p.sum(dim=1)
        slope = -info
        if method == "wle":
            third = (w * (1 - 2 * p)).sum(dim=1)  # w = 0 where missing
            fourth = (w * (1 - 6 * p + 6 * p * p)).sum(dim=1)
            gradient = gradient + third / (2 * info)
            slope = slope + (fourth * info - third * third) / (2 * info * info)
        step = (-gradient / slope).clamp(-2.0, 2.0)
        skill = skill + step
        if float(step.abs().max()) < tol:
            break
    p = torch.sigmoid(skill[:, None] - difficulty[None, :])
    w = p * (1 - p)
    info = (w if observed is None else w * observed).sum(dim=1)
    return skill, info, iteration
