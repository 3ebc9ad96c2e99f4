r"""The two-parameter logistic (2PL) model in numpy float64, independent of every estimator.

.. math::
    P(Y_{ij} = 1) = \sigma\big(a_j(\theta_i - b_j)\big)

with discrimination :math:`a_j > 0` and difficulty :math:`b_j` of question *j*. The likelihood
is unchanged by :math:`\theta \to s\theta + t,\ b \to sb + t,\ a \to a/s`, so the scale must be
fixed from outside: by the skill distribution, :math:`\theta \sim N(0, 1)`, in marginal maximum
likelihood (and in :func:`irtbench.simulate` with ``model="2pl"``), by a penalty in the joint
fits. Estimates are compared with the truth after the best affine alignment
(:func:`affine_alignment`).

**Marginal Fisher information** (for the Cramér–Rao bound of the item parameters). With the
skills integrated out under :math:`N(0, 1)` by quadrature (:func:`quadrature`: nodes
:math:`z_q`, weights :math:`w_q`), a response pattern :math:`y` has the marginal log-likelihood
:math:`\log\sum_q w_q\prod_j p_j(z_q)^{y_j}(1 - p_j(z_q))^{1-y_j}` and, in the slope-intercept
form :math:`\text{logit } p_j(\theta) = a_j\theta + d_j`, the score (Fisher's identity)

.. math::
    s_{a_j}(y) = \sum_q \pi_q(y)\,(y_j - p_j(z_q))\,z_q,\qquad
    s_{d_j}(y) = \sum_q \pi_q(y)\,(y_j - p_j(z_q))

with :math:`\pi_q(y)` the pattern's posterior weight of node *q*. The information of one student
is :math:`I_1 = E[s s^\top]`, the expectation over patterns: exact by enumerating the
:math:`2^J` patterns for short tests, and over a fixed-seed Monte Carlo sample of simulated
patterns otherwise (:func:`marginal_information`). *N* students carry :math:`N I_1`; the bound is
the diagonal of its inverse (all items together, so the skills' uncertainty and the items'
coupling through them are accounted for), carried from :math:`(a, d)` to :math:`(a, b)`,
:math:`b = -d/a`, by the delta method, and (:func:`item_bounds`) projected as the affine
alignment projects the errors. A test checks the information against the numerical Hessian of
the expected marginal log-likelihood on a tiny case.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from irtbench.model import find_extremes, sigmoid
from irtbench.responses import Responses, is_sparse, observed_of, row_blocks

__all__ = [
    "MODELS",
    "Alignment",
    "affine_alignment",
    "default_nodes",
    "item_bounds",
    "known_skill_covariance",
    "marginal_information",
    "pattern_scores",
    "quadrature",
    "past_limits",
    "runaway_items",
]

#: the models irtbench fits
MODELS = ("rasch", "2pl")

#: up to this many questions :func:`marginal_information` enumerates every response pattern
ENUMERATE_UP_TO = 12
#: up to this many questions :func:`item_bounds` inverts the marginal information of all the
#: items together; above, each item's bound with the skills known
DENSE_UP_TO = 1000


def quadrature(nodes: int = 61, limit: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    r"""Nodes :math:`z_q` equally spaced on :math:`[-6, 6]` and weights :math:`w_q \propto
    \phi(z_q)` summing to 1, so :math:`E[g(\theta)] \approx \sum_q w_q g(z_q)` for
    :math:`\theta \sim N(0, 1)`: mirt's default rule (61 nodes, spacing 0.2). For the smooth,
    peaked integrands of a likelihood it is far more accurate than Gauss–Hermite with as many
    nodes (whose nodes spread to +/-10 and sit 0.4 apart near 0), as long as a student's
    posterior SD stays above about half the spacing."""
    z = np.linspace(-limit, limit, nodes)
    w = np.exp(-0.5 * z**2)
    return z, w / w.sum()


def default_nodes(n_questions: int) -> int:
    """Nodes on [-6, 6] for a test of ``n_questions``: spacing min(0.2, 3/sqrt(J)), so that
    it stays below twice the narrowest posterior SD a 2PL test of that length gives
    (about 1.9/sqrt(J) for discriminations around 1): 61 nodes up to 225 questions, 128 at
    1000."""
    spacing = min(0.2, 3.0 / np.sqrt(n_questions))
    return int(np.ceil(12.0 / spacing)) + 1


def node_logits(discrimination: np.ndarray, difficulty: np.ndarray, z: np.ndarray) -> np.ndarray:
    r""":math:`a_j(z_q - b_j)`, shape ``(n_questions, n_nodes)``."""
    return np.asarray(discrimination)[:, None] * (z[None, :] - np.asarray(difficulty)[:, None])


def pattern_scores(answers: np.ndarray, discrimination: np.ndarray, difficulty: np.ndarray,
                   nodes: int = 61) -> np.ndarray:
    r"""Scores :math:`s(y_i)` of each row's marginal log-likelihood with respect to
    :math:`(a_1, d_1, \dots, a_J, d_J)` (slope-intercept form), shape ``(n, 2J)``; complete
    0/1 rows. See the module docstring."""
    z, w = quadrature(nodes)
    p = sigmoid(node_logits(discrimination, difficulty, z))  # (J, Q)
    y = np.asarray(answers, dtype=np.float64)
    log_joint = y @ np.log(p) + (1.0 - y) @ np.log1p(-p) + np.log(w)[None, :]  # (n, Q)
    posterior = np.exp(log_joint - log_joint.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    # residual (y_j - p_j(z_q)) averaged over the posterior, with and without z_q
    expected_p = posterior @ p.T  # (n, J)
    expected_zp = (posterior * z[None, :]) @ p.T
    mean_z = posterior @ z  # (n,)
    scores = np.empty((y.shape[0], 2 * y.shape[1]))
    scores[:, 0::2] = y * mean_z[:, None] - expected_zp
    scores[:, 1::2] = y - expected_p
    return scores


def _all_patterns(n_questions: int) -> np.ndarray:
    codes = np.arange(2**n_questions)[:, None]
    return ((codes >> np.arange(n_questions)[None, :]) & 1).astype(np.float64)


def marginal_information(discrimination: np.ndarray, difficulty: np.ndarray, *,
                         nodes: int | None = None, samples: int = 20000, seed: int = 0
                         ) -> np.ndarray:
    r"""One student's marginal Fisher information about :math:`(a_1, d_1, \dots, a_J, d_J)`,
    :math:`E[s s^\top]` over response patterns (module docstring): exact over all
    :math:`2^J` patterns up to ``ENUMERATE_UP_TO`` questions, else the mean over ``samples``
    patterns simulated (skills :math:`N(0, 1)`, generator ``seed``), accumulated a block of
    patterns at a time. ``nodes``: the quadrature (default :func:`default_nodes`, fine
    enough for the test's posteriors). ``(2J, 2J)``."""
    discrimination = np.asarray(discrimination, dtype=np.float64)
    difficulty = np.asarray(difficulty, dtype=np.float64)
    n_questions = len(difficulty)
    nodes = nodes or default_nodes(n_questions)
    if n_questions <= ENUMERATE_UP_TO:
        patterns = _all_patterns(n_questions)
        z, w = quadrature(nodes)
        p = sigmoid(node_logits(discrimination, difficulty, z))
        log_prob = patterns @ np.log(p) + (1.0 - patterns) @ np.log1p(-p) + np.log(w)
        weight = np.exp(log_prob).sum(axis=1)  # marginal probability of each pattern
        scores = pattern_scores(patterns, discrimination, difficulty, nodes)
        return (scores * weight[:, None]).T @ scores
    rng = np.random.default_rng(seed)
    skill = rng.standard_normal(samples)
    information = np.zeros((2 * n_questions, 2 * n_questions))
    for rows in row_blocks((samples, 2 * n_questions)):
        probs = sigmoid(discrimination[None, :] * (skill[rows, None] - difficulty[None, :]))
        patterns = (rng.random(probs.shape) < probs).astype(np.float64)
        scores = pattern_scores(patterns, discrimination, difficulty, nodes)
        information += scores.T @ scores
    return information / samples


def item_covariance(discrimination: np.ndarray, difficulty: np.ndarray, n_students: int, *,
                    nodes: int | None = None, samples: int = 20000, seed: int = 0) -> np.ndarray:
    r"""The Cramér–Rao bound on the covariance of :math:`(a_1, b_1, \dots, a_J, b_J)` for
    ``n_students`` students: :math:`(N I_1)^{-1}` from :func:`marginal_information`, carried
    from :math:`(a, d)` to :math:`b = -d/a` by the delta method. ``(2J, 2J)``.

    Where :math:`I_1` is a Monte Carlo mean of :math:`n` outer products of :math:`p = 2J`
    scores, its inverse is biased up by about :math:`n/(n - p - 1)` (exactly so for Gaussian
    scores: the mean of an inverse Wishart matrix), which would inflate the bound (by 5% in
    SD at 1000 items and 20000 patterns, by 2.2x at 8000 items): the inverse is multiplied by
    :math:`(n - p - 1)/n`, which removes that bias to first order."""
    a = np.asarray(discrimination, dtype=np.float64)
    b = np.asarray(difficulty, dtype=np.float64)
    covariance = np.linalg.inv(n_students * marginal_information(
        a, b, nodes=nodes, samples=samples, seed=seed))
    if len(a) > ENUMERATE_UP_TO:
        covariance *= (samples - 2 * len(a) - 1) / samples
    # (a, d) -> (a, b = -d/a): db/da = d/a^2 = -b/a, db/dd = -1/a
    jacobian = np.zeros_like(covariance)
    index = np.arange(len(a))
    jacobian[2 * index, 2 * index] = 1.0
    jacobian[2 * index + 1, 2 * index] = -b / a
    jacobian[2 * index + 1, 2 * index + 1] = -1.0 / a
    return jacobian @ covariance @ jacobian.T


def known_skill_covariance(discrimination: np.ndarray, difficulty: np.ndarray,
                           n_students: int, *, nodes: int = 121) -> np.ndarray:
    r"""Each item's Cramér–Rao bound with the skills *known*, ``(J, 2, 2)`` in :math:`(a_j,
    b_j)`: the inverse of :math:`N\,E_\theta[p_j(1 - p_j)(\theta - b_j, -a_j)(\theta - b_j,
    -a_j)^\top]` under :math:`\theta \sim N(0, 1)` (quadrature). Knowing the skills can only
    help, so this is a lower bound of the marginal one (:func:`item_covariance`), and a close
    one when the test is long: each student's skill is then pinned to within
    :math:`1/\sqrt{\sum_j a_j^2 p_j(1 - p_j)}` and little information about an item is lost
    to its uncertainty (``benchmarks/twopl_bounds.py`` measures how close)."""
    a = np.asarray(discrimination, dtype=np.float64)[:, None]
    b = np.asarray(difficulty, dtype=np.float64)[:, None]
    z, w = quadrature(nodes)
    p = sigmoid(a * (z[None, :] - b))
    weight = n_students * w[None, :] * p * (1 - p)  # (J, Q)
    d_a, d_b = z[None, :] - b, -a  # the logit's derivatives
    info = np.empty((len(a), 2, 2))
    info[:, 0, 0] = (weight * d_a * d_a).sum(1)
    info[:, 0, 1] = info[:, 1, 0] = (weight * d_a * d_b).sum(1)
    info[:, 1, 1] = (weight * d_b * d_b).sum(1)
    return np.linalg.inv(info)


def item_bounds(discrimination: np.ndarray, difficulty: np.ndarray, n_students: int, *,
                aligned: np.ndarray | None = None, nodes: int | None = None,
                samples: int = 20000, seed: int = 0, known_skills: bool | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    r"""Cramér–Rao bounds (standard deviations) of each :math:`a_j` and :math:`b_j`: up to
    ``DENSE_UP_TO`` questions the marginal bound of all items together
    (:func:`item_covariance`); above, each item's bound with the skills known
    (:func:`known_skill_covariance`, a lower bound of the marginal one and close to it for such
    long tests), which costs :math:`O(J)` instead of a :math:`2J \times 2J` inverse;
    ``known_skills`` True or False chooses one of the two whatever the length.

    With ``aligned`` (a mask of questions), the bounds of those questions' errors *after*
    :func:`affine_alignment` onto the truth: to first order the alignment removes the errors'
    projection on the two directions a change of scale and origin moves them along
    (:math:`\delta b_j = \delta s\, b_j + \delta t`, :math:`\delta\log a_j = -\delta s`),
    among them the common shift and stretch that the sample of skills induces, so the
    covariance becomes :math:`(I - H)\Sigma(I - H)^\top` with :math:`H` that least-squares
    projection in :math:`(b, \log a)`; ``None`` for questions outside the mask. These are the
    bounds aligned errors are compared with."""
    a = np.asarray(discrimination, dtype=np.float64)
    b = np.asarray(difficulty, dtype=np.float64)
    dense = len(a) <= DENSE_UP_TO if known_skills is None else not known_skills
    if dense:
        full = item_covariance(a, b, n_students, nodes=nodes, samples=samples, seed=seed)
        blocks = np.stack([full[0::2, 0::2].diagonal(), full[0::2, 1::2].diagonal(),
                           full[1::2, 1::2].diagonal()], axis=1)
    else:
        covariance = known_skill_covariance(a, b, n_students)
        blocks = np.stack([covariance[:, 0, 0], covariance[:, 0, 1], covariance[:, 1, 1]], 1)
    if aligned is None:
        return np.sqrt(blocks[:, 0]), np.sqrt(blocks[:, 2])
    index = np.flatnonzero(aligned)
    # the errors in (b, log a), d log a = da / a; the design of the two directions
    design = np.zeros((2 * len(index), 2))
    design[: len(index), 0], design[: len(index), 1] = b[index], 1.0
    design[len(index):, 0] = -1.0
    if dense:
        rows = np.concatenate([2 * index + 1, 2 * index])  # b's, then a's
        scale = np.concatenate([np.ones(len(index)), 1.0 / a[index]])
        sigma = full[np.ix_(rows, rows)] * np.outer(scale, scale)
        residual = np.eye(2 * len(index)) - design @ np.linalg.pinv(design)
        diagonal = np.diag(residual @ sigma @ residual.T)
    else:
        diagonal = _projected_block_diagonal(blocks[index], a[index], design)
    bound_a, bound_b = np.full(len(a), np.nan), np.full(len(a), np.nan)
    bound_b[index] = np.sqrt(np.maximum(diagonal[: len(index)], 0.0))
    bound_a[index] = np.sqrt(np.maximum(diagonal[len(index):], 0.0)) * a[index]
    return bound_a, bound_b


def _projected_block_diagonal(blocks: np.ndarray, a: np.ndarray, design: np.ndarray
                              ) -> np.ndarray:
    r"""The diagonal of :math:`(I - P)\Sigma(I - P)^\top`, :math:`P = X(X^\top X)^{-1}X^\top`
    (``design`` :math:`X`, ``(2K, 2)``), for a :math:`\Sigma` in :math:`(b, \log a)` whose
    only non-zero entries are each item's 2x2 block (``blocks``: var a, cov(a, b), var b in
    :math:`(a, b)`), in :math:`O(K)`:
    :math:`\operatorname{diag}\Sigma - 2\operatorname{diag}(P\Sigma) + \operatorname{diag}(P\Sigma P)`."""
    k = len(a)
    var_b, cov_ba, var_la = blocks[:, 2], blocks[:, 1] / a, blocks[:, 0] / a**2
    x_b, x_la = design[:k], design[k:]
    sigma_x = np.concatenate([var_b[:, None] * x_b + cov_ba[:, None] * x_la,
                              cov_ba[:, None] * x_b + var_la[:, None] * x_la])  # Sigma X
    gram_inverse = np.linalg.inv(design.T @ design)
    xg = design @ gram_inverse
    middle = gram_inverse @ (design.T @ sigma_x) @ gram_inverse
    diagonal_sigma = np.concatenate([var_b, var_la])
    return (diagonal_sigma - 2 * np.sum(xg * sigma_x, axis=1)
            + np.sum((design @ middle) * design, axis=1))


def joint_standard_errors(responses: Responses, skill: np.ndarray, difficulty: np.ndarray,
                          discrimination: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Asymptotic SEs :math:`1/\sqrt{I}` of a joint (JML) 2PL estimate, each parameter with
    the others known: with :math:`w = p(1-p)` over observed responses,
    :math:`I(\theta_i) = \sum_j a_j^2 w_{ij}`, :math:`I(b_j) = a_j^2\sum_i w_{ij}`,
    :math:`I(a_j) = \sum_i (\theta_i - b_j)^2 w_{ij}`. ``inf`` for the students and questions
    with all responses right or all wrong (no finite estimate). Dense responses, a block of
    rows at a time, or sparse triples. Returns ``(skill_se, difficulty_se, discrimination_se)``."""
    a = np.asarray(discrimination, np.float64)
    b = np.asarray(difficulty, np.float64)
    theta = np.asarray(skill, np.float64)
    info_skill = np.zeros(len(theta))
    sum_w, sum_w_dev2 = np.zeros(len(b)), np.zeros(len(b))
    if is_sparse(responses):  # the same sums over the observed triples
        student, question = responses.student, responses.question
        deviation = theta[student] - b[question]
        with np.errstate(invalid="ignore"):
            p = sigmoid(a[question] * deviation)
            w = np.where(np.isfinite(deviation), p * (1 - p), 0.0)
        info_skill = np.bincount(student, w * a[question] ** 2, len(theta))
        sum_w = np.bincount(question, w, len(b))
        sum_w_dev2 = np.bincount(question, np.where(w > 0, w * deviation**2, 0.0), len(b))
    for rows in [] if is_sparse(responses) else row_blocks(responses.shape):
        observed = observed_of(responses[rows])
        deviation = theta[rows, None] - b[None, :]
        with np.errstate(invalid="ignore"):
            p = sigmoid(a * deviation)
            w = np.where(observed & np.isfinite(deviation), p * (1 - p), 0.0)
        info_skill[rows] = w @ (a * a)
        sum_w += w.sum(axis=0)
        sum_w_dev2 += np.where(w > 0, w * deviation**2, 0.0).sum(axis=0)
    found = find_extremes(responses)
    with np.errstate(divide="ignore"):
        skill_se = 1.0 / np.sqrt(info_skill)
        difficulty_se = 1.0 / np.sqrt(a * a * sum_w)
        discrimination_se = 1.0 / np.sqrt(sum_w_dev2)
    skill_se[found.students] = np.inf
    difficulty_se[found.questions] = np.inf
    discrimination_se[found.questions] = np.inf
    return skill_se, difficulty_se, discrimination_se


def log_a_prior(log_discrimination, sd: float | None, n_observed: int):  # noqa: ANN001, ANN201
    r"""The prior :math:`\log a_j \sim N(0, \sigma^2)` as a term of the Adam estimators' mean
    objective: :math:`\sum_j (\log a_j)^2 / (2\sigma^2 |O|)` (constants left out; divided by
    the number of observed responses like the log-likelihood it is added to), 0 when ``sd`` is
    None. Operators only, so torch and JAX arrays alike."""
    if sd is None:
        return 0.0
    return (log_discrimination**2).sum() / (2.0 * float(sd) ** 2 * n_observed)


def check_item_priors(options: dict, keys: tuple[str, ...]) -> None:
    """Refuse a prior SD that is not a positive number or None, or one given to the Rasch model
    (whose items these priors are not)."""
    for key in keys:
        value = options[key]
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"option {key}={value!r} must be a positive number or None")
        if options["model"] != "2pl":
            raise ValueError(f"option {key} is a prior of the 2PL's items; the Rasch model "
                             "has none")


#: a 2PL item estimate past these limits has run away (the data do not identify it): a
#: discrimination above RUNAWAY_DISCRIMINATION, a difficulty beyond +/-RUNAWAY_DIFFICULTY (on
#: a scale where the skills have SD about 1: past every student), or an SE of either above
#: RUNAWAY_SE
RUNAWAY_DISCRIMINATION = 8.0
RUNAWAY_DIFFICULTY = 8.0
RUNAWAY_SE = 4.0


def past_limits(discrimination, difficulty):  # noqa: ANN001, ANN201 - numpy or torch alike
    """Where an estimate is past :data:`RUNAWAY_DISCRIMINATION` or beyond
    +/-:data:`RUNAWAY_DIFFICULTY`, or not finite: written with operators only, so that numpy
    arrays (the fits' results) and torch tensors (mml-em's EM while it runs) share one rule."""
    inside = (discrimination <= RUNAWAY_DISCRIMINATION) & (abs(discrimination) < np.inf)
    return ~(inside & (abs(difficulty) <= RUNAWAY_DIFFICULTY))


def runaway_items(discrimination: np.ndarray, difficulty: np.ndarray,
                  discrimination_se: np.ndarray | None, difficulty_se: np.ndarray | None,
                  extreme: np.ndarray) -> np.ndarray:
    """The questions (outside ``extreme``, whose ML estimate is infinite anyway) whose 2PL
    estimates ran away: past :data:`RUNAWAY_DISCRIMINATION`, :data:`RUNAWAY_DIFFICULTY` or
    :data:`RUNAWAY_SE`, or not finite."""
    a, b = np.asarray(discrimination, np.float64), np.asarray(difficulty, np.float64)
    with np.errstate(invalid="ignore"):
        bad = past_limits(a, b)
        for se in (discrimination_se, difficulty_se):
            if se is not None:
                bad |= ~(np.asarray(se, np.float64) <= RUNAWAY_SE)
    return bad & ~np.asarray(extreme, bool)


class Alignment(NamedTuple):
    r"""An affine map of the latent scale, :math:`\theta \to s\theta + t`
    (:math:`b \to sb + t`, :math:`a \to a/s`)."""

    scale: float
    shift: float

    def skill(self, skill: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(skill, dtype=np.float64) + self.shift

    def difficulty(self, difficulty: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(difficulty, dtype=np.float64) + self.shift

    def discrimination(self, discrimination: np.ndarray) -> np.ndarray:
        return np.asarray(discrimination, dtype=np.float64) / self.scale


def affine_alignment(difficulty: np.ndarray, true_difficulty: np.ndarray,
                     discrimination: np.ndarray, true_discrimination: np.ndarray) -> Alignment:
    r"""The map of the estimate's scale onto the truth's that best matches the item parameters:
    :math:`(s, t)` minimising
    :math:`\sum_j (s\hat b_j + t - b_j)^2 + (\log\hat a_j - \log s - \log a_j)^2`, i.e. the
    least-squares fit of the difficulties and of the log-discriminations at once (a small
    linear least-squares problem in :math:`(s, t)` once :math:`\log s` is linearised; solved by
    a few Gauss–Newton steps from mean/sigma linking)."""
    b_hat, b = np.asarray(difficulty, np.float64), np.asarray(true_difficulty, np.float64)
    log_a_hat = np.log(np.asarray(discrimination, np.float64))
    log_a = np.log(np.asarray(true_discrimination, np.float64))
    scale = float(np.std(b) / np.std(b_hat)) if np.std(b_hat) > 0 else 1.0
    shift = float(np.mean(b) - scale * np.mean(b_hat))
    for _ in range(20):
        residual = np.concatenate([scale * b_hat + shift - b, log_a_hat - np.log(scale) - log_a])
        jacobian = np.zeros((residual.size, 2))
        jacobian[: b.size, 0], jacobian[: b.size, 1] = b_hat, 1.0
        jacobian[b.size:, 0] = -1.0 / scale
        step = np.linalg.lstsq(jacobian, -residual, rcond=None)[0]
        scale, shift = max(scale + step[0], 1e-3 * scale), shift + step[1]
        if np.abs(step).max() < 1e-12:
            break
    return Alignment(float(scale), float(shift))
