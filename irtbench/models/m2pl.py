r"""The multidimensional two-parameter logistic model (M2PL) in numpy float64, independent of
every estimator.

.. math::
    P(Y_{ij} = 1) = \sigma(\theta_i\cdot a_j + d_j),\qquad \theta_i \in R^D

with skills :math:`\theta_i` (``(n, D)``), loadings :math:`a_j \in R^D` and an intercept
:math:`d_j` per question: the compensatory multidimensional 2PL that tinyBenchmarks fitted to
LLM evaluations with py-irt (``multidim_2pl``, D = 5 and 10). Its item parameters, by name:

* ``"difficulty"``: the multidimensional difficulty MDIFF :math:`= -d_j/\|a_j\|` (first, as
  every model's: the skill along :math:`a_j`'s direction at which the item is answered right
  half the time);
* ``"discrimination"``: the multidimensional discrimination MDISC :math:`= \|a_j\|`;
* ``"intercept"``: :math:`d_j`, ``(J,)``;
* ``"loadings"``: :math:`a_j`, ``(J, D)``.

With D = 1 it is the 2PL, :math:`a_j = ` discrimination, :math:`d_j = -a_jb_j`.

**Indeterminacy.** The likelihood is unchanged by any invertible affine map of the skills,
:math:`\theta \to M\theta + t`, with :math:`a \to M^{-\top}a` and :math:`d \to d - a'\cdot t`
(:math:`a'` the moved loadings): :math:`D^2 + D` free parameters, the 2PL's :math:`(s, t)` for
D = 1. Skills :math:`N(0, I_D)` fix the mean and the covariance of the skills, which leaves a
rotation :math:`\theta \to R\theta` free (:math:`D(D-1)/2` parameters): neither the loadings'
directions nor a skill's coordinates mean anything without one. So the kinds
(:mod:`irtbench.models.base`): the skills are :data:`~irtbench.models.base.VECTOR`, the
loadings :data:`~irtbench.models.base.COVECTOR`, and the intercept, MDISC and MDIFF
:data:`~irtbench.models.base.DERIVED` (recomputed from the moved loadings and intercepts). The
intercept is invariant under a linear map (:math:`t = 0`) and MDISC under a rotation, which is
why the runaway rule judges those (:meth:`M2PL.runaway`).

**Alignment** (:func:`rotation_alignment`). The estimate's skills are *whitened* (centred and
multiplied by the inverse symmetric square root of their covariance, the loadings and
intercepts moved so that every logit is unchanged), the truth's alike (its sample of skills is
not exactly :math:`N(0, I)`), and then the orthogonal Procrustes rotation of the whitened
estimated loadings onto the whitened true loadings is taken (over the usable questions); the
whole map is carried back into the truth's own frame, where the aligned skills, loadings,
intercepts, MDISC and MDIFF are compared with the truth. The whitening uses the estimator's own
skills' covariance (what an N(0, I) identification would impose), not a fit to the truth; only
the rotation is fitted to the truth. The rotation is fitted on the *loadings*, not on the
skills: the loadings are the item parameters the recovery reports, and there are as many
of them as questions (28659 at tinyBenchmarks' shape against 300 skills), so the rotation is
fitted where the estimates are most numerous. An estimate that is an exact affine transform of
the truth is aligned onto it exactly (``tests/models/test_m2pl.py``).

**Simulation** (:meth:`M2PL.draw_items`, ``irtbench.simulate(n, J, model="m2pl", dims=D)``):
skills :math:`N(0, I_D)`; MDIFF :math:`b_j \sim N(0, 1)` (the generic difficulty draw, before
the others, as every model's); MDISC :math:`\|a_j\| \sim \mathrm{LogNormal}(0, 0.3^2)` (the
2PL's discrimination, ``discrimination_sd``); each loading direction
:math:`a_j/\|a_j\| = |z_j|/\|z_j\|`, :math:`z_j \sim N(0, I_D)`: uniform on the positive
orthant of the sphere. Positive loadings are what LLM data show (a skill helps or is
irrelevant; py-irt's ``multidim_2pl`` even constrains them positive by its lognormal) and
what py-irt can fit; the spread of directions keeps every dimension identified (the second
moment of the directions has its smallest eigenvalue about 1/18 of its largest at D = 10).
Then :math:`d_j = -\|a_j\|b_j` (so the intercepts are about :math:`N(0, 1.1)`). For D = 1 the
direction is 1 and no draw is spent on it, so ``simulate(..., model="m2pl", dims=1)`` gives the
2PL's data for the same seed (tested).

**Standard errors** (:meth:`M2PL.joint_errors`): those of a joint (JML) estimate, each student's
skill vector with the items known and each item's :math:`(a_j, d_j)` with the skills known, from
the :math:`D \times D` (:math:`(D+1) \times (D+1)`) information blocks
:math:`\sum_j w_{ij} a_ja_j^\top` (:math:`\sum_i w_{ij} x_ix_i^\top`, :math:`x_i = (\theta_i, 1)`),
:math:`w = p(1 - p)`, the SE of each coordinate the square root of the inverse block's
diagonal, MDISC's and MDIFF's by the delta method. They are SEs *in the estimate's own frame*:
a loading's SE depends on the rotation the estimate happens to be in, and none survives the
alignment (a general map mixes the coordinates and the shift moves the intercepts), so the
alignment gives none (:meth:`RotationAlignment.se`) and the recovery's coverage is NaN for
this model.

**Bounds**: none here (:meth:`M2PL.bounds` returns ``{}``): a Cramér–Rao bound of
rotation-aligned loadings needs the marginal information of all :math:`J(D + 1)` item
parameters with the rotation projected out, not attempted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from irtbench.models.base import COVECTOR, DERIVED, VECTOR, Items, Model, Truth, sigmoid
from irtbench.models.fitting import Ops, Parameter, location_prior, normal_prior
from irtbench.specs import positive, positive_int
from irtbench.models.twopl import RUNAWAY_LIMIT, diverged

if TYPE_CHECKING:
    from irtbench.extremes import Extremes
    from irtbench.responses import Responses

__all__ = ["DEFAULT_DIMS", "M2PL", "RotationAlignment", "derived_items", "joint_standard_errors",
           "orthogonal_procrustes", "rotation_alignment", "whitening"]

#: the skills' dimension :func:`irtbench.simulate` draws unless told (``dims``)
DEFAULT_DIMS = 2


def skill_matrix(skill: np.ndarray, dims: int | None = None) -> np.ndarray:
    """The skills as an ``(n, D)`` float64 matrix; a vector is one dimension."""
    skill = np.asarray(skill, np.float64)
    if skill.ndim == 1:
        skill = skill[:, None]
    if skill.ndim != 2 or (dims is not None and skill.shape[1] != dims):
        raise ValueError(f"the m2pl skills must be (n_students, {dims or 'D'}), got shape "
                         f"{skill.shape}")
    return skill


def derived_items(loadings: np.ndarray, intercept: np.ndarray) -> dict[str, np.ndarray]:
    r"""The four item parameters by name from the loadings ``(J, D)`` and intercepts ``(J,)``:
    MDIFF :math:`-d/\|a\|` (``"difficulty"``), MDISC :math:`\|a\|` (``"discrimination"``),
    ``"intercept"`` and ``"loadings"``. An item of zero loadings has MDIFF :math:`\mp\infty`
    (NaN for :math:`d = 0`). What the kernels return (the lead's) and the alignment computes."""
    a = np.asarray(loadings, np.float64)
    d = np.asarray(intercept, np.float64)
    norm = np.sqrt(np.sum(a * a, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        difficulty = -d / norm
    return {"difficulty": difficulty, "discrimination": norm, "intercept": d, "loadings": a}


def whitening(skill: np.ndarray, rows: np.ndarray | None = None,
              floor: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    r"""``(mean, W)`` of the skills (over ``rows``, default the finite ones): the mean
    :math:`\mu` and the inverse symmetric square root :math:`W = \Sigma^{-1/2}` of their
    covariance (``ddof=0``; eigenvalues floored at ``floor`` times the largest), so that
    :math:`(\theta_i - \mu)W` has mean 0 and covariance :math:`I`."""
    theta = skill_matrix(skill)
    finite = np.isfinite(theta).all(axis=1)
    rows = finite if rows is None else np.asarray(rows, bool) & finite
    chosen = theta[rows]
    if len(chosen) < 2:
        raise ValueError("whitening the skills needs at least two students with finite "
                         f"skills, got {len(chosen)}")
    mean = chosen.mean(axis=0)
    covariance = np.atleast_2d(np.cov(chosen, rowvar=False, ddof=0))
    values, vectors = np.linalg.eigh(covariance)
    values = np.maximum(values, floor * max(values.max(), floor))
    return mean, (vectors / np.sqrt(values)) @ vectors.T


def orthogonal_procrustes(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    r"""The orthogonal :math:`R` minimising :math:`\|AR - B\|_F` (``source`` :math:`A`,
    ``target`` :math:`B`, both ``(m, D)``): :math:`R = UV^\top` from the SVD
    :math:`A^\top B = USV^\top` (Schönemann 1966; ``scipy.linalg.orthogonal_procrustes``'s,
    without the dependency)."""
    u, _, vt = np.linalg.svd(np.asarray(source, np.float64).T @ np.asarray(target, np.float64))
    return u @ vt


class RotationAlignment(NamedTuple):
    r"""An invertible affine map of the skills, rows :math:`\theta \to \theta B + t`
    (``matrix`` :math:`B = M^\top`, ``offset`` :math:`t`), with the loadings
    :math:`a \to aB^{-\top}` and the intercepts :math:`d \to d - a'\cdot t`, so that every
    logit :math:`\theta\cdot a + d` is unchanged; MDISC and MDIFF recomputed from those
    (:func:`derived_items`). The :class:`~irtbench.models.base.Aligner` of the M2PL."""

    matrix: np.ndarray
    offset: np.ndarray

    @property
    def scale(self) -> float:
        """The map's mean stretch, :math:`|\\det B|^{1/D}` (a scalar map's scale)."""
        return float(abs(np.linalg.det(self.matrix)) ** (1.0 / len(self.matrix)))

    @property
    def shift(self) -> float:
        """The length of the map's shift, :math:`\\|t\\|`."""
        return float(np.linalg.norm(self.offset))

    def skill(self, skill: np.ndarray) -> np.ndarray:
        return skill_matrix(skill) @ self.matrix + self.offset

    def loadings(self, loadings: np.ndarray) -> np.ndarray:
        return np.linalg.solve(self.matrix, np.asarray(loadings, np.float64).T).T

    def move(self, kind: str, values: np.ndarray) -> np.ndarray:
        """Skills (:data:`~irtbench.models.base.VECTOR`) and loadings
        (:data:`~irtbench.models.base.COVECTOR`) alone; the derived parameters move with the
        loadings (:meth:`items`)."""
        if kind == VECTOR:
            return self.skill(values)
        if kind == COVECTOR:
            return self.loadings(values)
        raise ValueError(f"a parameter of kind {kind!r} moves with the loadings: use "
                         "RotationAlignment.items on all the item parameters")

    def items(self, items: Items, kinds: Mapping[str, str] | None = None
              ) -> dict[str, np.ndarray]:
        """All four item parameters moved, from ``items``' loadings and intercepts."""
        loadings = self.loadings(items["loadings"])
        with np.errstate(invalid="ignore"):
            intercept = np.asarray(items["intercept"], np.float64) - loadings @ self.offset
        return derived_items(loadings, intercept)

    def se(self, kind: str, se: np.ndarray | None) -> None:
        """None: no SE survives a general map (module docstring)."""
        return None


def rotation_alignment(estimate: Items, truth: Items, keep: np.ndarray, skill: np.ndarray,
                       true_skill: np.ndarray, students: np.ndarray | None = None
                       ) -> RotationAlignment:
    r"""The M2PL's alignment of an estimate onto the truth (module docstring): both whitened
    (:func:`whitening` over the ``students`` with finite skills in both), then the orthogonal
    Procrustes rotation (:func:`orthogonal_procrustes`) of the estimate's whitened loadings onto
    the truth's over the ``keep`` questions with finite loadings (none: no rotation), carried
    back to the truth's frame. With :math:`\hat W, \mû` and :math:`W, \mu` the estimate's
    and the truth's whitening, the map of the skill rows is
    :math:`\theta \to (\theta - \hat\mu)\hat W R W^{-1} + \mu`."""
    theta_hat, theta = skill_matrix(skill), skill_matrix(true_skill)
    if theta_hat.shape != theta.shape:
        raise ValueError(f"estimated skills {theta_hat.shape} and true skills {theta.shape} "
                         "differ in shape")
    rows = np.isfinite(theta_hat).all(axis=1) & np.isfinite(theta).all(axis=1)
    if students is not None:
        rows &= np.asarray(students, bool)
    mean_hat, white_hat = whitening(theta_hat, rows)
    mean, white = whitening(theta, rows)
    loadings_hat = np.asarray(estimate["loadings"], np.float64)
    loadings = np.asarray(truth["loadings"], np.float64)
    fitted = (np.asarray(keep, bool) & np.isfinite(loadings_hat).all(axis=1)
              & np.isfinite(loadings).all(axis=1))
    # covectors are whitened by the inverse of the skills' map: a -> a W^-1
    source = np.linalg.solve(white_hat, loadings_hat[fitted].T).T
    target = np.linalg.solve(white, loadings[fitted].T).T
    rotation = orthogonal_procrustes(source, target) if fitted.any() else np.eye(len(white))
    matrix = white_hat @ rotation @ np.linalg.inv(white)
    return RotationAlignment(matrix, mean - mean_hat @ matrix)


def joint_standard_errors(responses: Responses, skill: np.ndarray, loadings: np.ndarray,
                          intercept: np.ndarray, found: Extremes | None = None
                          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    r"""Asymptotic SEs of a joint (JML) M2PL estimate in its own frame, each student's skill
    vector with the items known and each item's :math:`(a_j, d_j)` with the skills known
    (module docstring): ``(skill_se (n, D), {"difficulty", "discrimination", "intercept",
    "loadings" (J, D)})``; ``inf`` for extreme students and questions and where a block is
    singular. Dense responses, a block of rows at a time."""
    from irtbench.extremes import find_extremes
    from irtbench.responses import is_sparse, observed_of, row_blocks

    if is_sparse(responses):
        raise ValueError("the m2pl SEs take dense responses (irtbench.responses.to_dense)")
    theta = skill_matrix(skill)
    a = np.asarray(loadings, np.float64)
    d = np.asarray(intercept, np.float64)
    n, dims = theta.shape
    J = len(d)
    info_skill = np.zeros((n, dims, dims))
    info_items = np.zeros((J, dims + 1, dims + 1))
    for rows in row_blocks(responses.shape):
        x = np.concatenate([theta[rows], np.ones((len(theta[rows]), 1))], axis=1)
        with np.errstate(invalid="ignore", over="ignore"):
            p = sigmoid(theta[rows] @ a.T + d)
        finite = np.isfinite(p)
        w = np.where(observed_of(responses[rows]) & finite, p * (1 - p), 0.0)
        x = np.where(np.isfinite(x), x, 0.0)
        for k in range(dims):
            info_skill[rows, k, :] = (w * a[:, k]) @ a
        for k in range(dims + 1):
            info_items[:, k, :] += (w * x[:, k:k + 1]).T @ x
    found = find_extremes(responses) if found is None else found

    def inverse_diagonal(blocks: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The inverses of the blocks (NaN where ``bad`` or singular) and their diagonals."""
        size = blocks.shape[-1]
        usable = ~bad & np.isfinite(blocks).all(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            usable &= np.linalg.cond(np.where(usable[:, None, None], blocks, np.eye(size))) < 1e12
        safe = np.where(usable[:, None, None], blocks, np.eye(size))
        inverse = np.where(usable[:, None, None], np.linalg.inv(safe), np.nan)
        return inverse, np.diagonal(inverse, axis1=1, axis2=2)

    _, skill_var = inverse_diagonal(info_skill, found.students)
    covariance, item_var = inverse_diagonal(info_items, found.questions)
    with np.errstate(invalid="ignore", divide="ignore"):
        skill_se = np.sqrt(skill_var)
        loadings_se = np.sqrt(item_var[:, :dims])
        intercept_se = np.sqrt(item_var[:, dims])
        norm = np.sqrt(np.sum(a * a, axis=1))
        unit = a / norm[:, None]
        cov_a = covariance[:, :dims, :dims]
        discrimination_se = np.sqrt(np.einsum("jk,jkl,jl->j", unit, cov_a, unit))
        gradient = np.concatenate([(d / norm**3)[:, None] * a, (-1.0 / norm)[:, None]], axis=1)
        difficulty_se = np.sqrt(np.einsum("jk,jkl,jl->j", gradient, covariance, gradient))
    item_se = {"difficulty": difficulty_se, "discrimination": discrimination_se,
               "intercept": intercept_se, "loadings": loadings_se}
    skill_se = np.where(np.isnan(skill_se), np.inf, skill_se)
    for name, values in item_se.items():
        item_se[name] = np.where(np.isnan(values), np.inf, values)
    return skill_se, item_se


class M2PL(Model):
    r"""The multidimensional 2PL, :math:`P(Y_{ij} = 1) = \sigma(\theta_i\cdot a_j + d_j)`
    (module docstring): skills ``(n, D)``; loadings ``(J, D)``, intercepts, MDISC and MDIFF per
    question; free up to any invertible affine map of the skills (:func:`rotation_alignment`
    removes it)."""

    name = "m2pl"
    title = "M2PL"
    item_parameters = ("difficulty", "discrimination", "intercept", "loadings")
    kinds = {"skill": VECTOR, "difficulty": DERIVED, "discrimination": DERIVED,
             "intercept": DERIVED, "loadings": COVECTOR}
    units = {"skill": "logits", "difficulty": "logits", "discrimination": "",
             "intercept": "logits", "loadings": ""}
    formula = "P = sigmoid(skill . loadings + intercept)"

    # -- fitting ------------------------------------------------------------------------------
    random_skill_start = True
    fast_paths = frozenset({"logit"})
    options = {
        "dims": positive_int(DEFAULT_DIMS, "M2PL: the skills' dimensions D (tinyBenchmarks: 5 "
                             "and 10)"),
        "prior_loading_sd": positive(None, "M2PL: prior SD of each loading (None: none)",
                                     none_ok=True),
    }
    simulation_options = ("dims",)

    def skill_dims(self, options: Mapping[str, Any]) -> int:
        """The option ``dims``."""
        return int(options["dims"])

    def fit_parameters(self, options: Mapping[str, Any]) -> tuple[Parameter, ...]:
        r"""The intercepts from 0 and the loadings ``(J, D)`` from small random draws (with the
        skills drawn N(0, I): zeros are a saddle of the likelihood); priors, in the Bayesian
        fits, :math:`d_j \sim N(0, s_d^2)` (``difficulty_scale``) and each loading
        :math:`N(0, s^2)` (``prior_loading_sd``: py-irt's is 1)."""
        return (Parameter("intercept", "intercept", prior=location_prior(options)),
                Parameter("loadings", "loadings", start="random", per_dimension=True,
                          prior=normal_prior(options.get("prior_loading_sd"))))

    def logits(self, ops: Ops, skill: Any, at: Mapping[str, Any], question: Any | None
               ) -> Any:
        r""":math:`\theta_i \cdot a_j + d_j`: a product of the block's skills with the
        loadings' transpose, or a row-wise dot product of gathered pairs."""
        if question is None:
            return ops.matmul(skill, at["loadings"][0].T) + at["intercept"]
        return ops.sum(skill * at["loadings"], axis=-1) + at["intercept"]

    def gauge_penalty(self, ops: Ops, skill: Any, raw: Mapping[str, Any], alpha: float) -> Any:
        r""":math:`\alpha(\|\bar\theta\|^2 + \|\theta^\top\theta/n - \bar\theta\bar\theta^\top
        - I\|_F^2)`: zero where the skills have mean 0 and covariance I. Any fit of full rank
        maps onto that set by an affine map of the skills the likelihood does not see
        (:math:`\theta \to W(\theta - \mu)`, :math:`a \to W^{-\top}a`,
        :math:`d \to d + a\cdot\mu`), so the penalty moves no optimum of the likelihood; it
        keeps the Adam fits off the ridge's far ends (skills blown up, loadings shrunk)."""
        mean = ops.mean(skill, axis=0)
        centred = skill - mean
        covariance = ops.matmul(centred.T, centred) / skill.shape[0]
        # ||C - I||_F^2 = ||C||_F^2 - 2 tr C + D: no identity to place on the skills' device
        off_identity = (ops.sum(covariance * covariance) - 2 * ops.sum(ops.diagonal(covariance))
                        + skill.shape[1])
        return alpha * (ops.sum(mean * mean) + off_identity)

    def report(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """MDIFF, MDISC, intercepts and loadings (:func:`derived_items`)."""
        return derived_items(values["loadings"], values["intercept"])

    # -- simulation ---------------------------------------------------------------------------
    def skill_shape(self, n_students: int, *, dims: int = DEFAULT_DIMS, **settings: float
                    ) -> tuple[int, ...]:
        if isinstance(dims, bool) or int(dims) != dims or dims < 1:
            raise ValueError(f"dims must be a positive integer, got {dims!r}")
        return (n_students, int(dims))

    def draw_items(self, rng: np.random.Generator, n_questions: int, *,
                   dims: int = DEFAULT_DIMS, discrimination_sd: float = 0.3,
                   **settings: float) -> dict[str, np.ndarray]:
        r"""MDISC :math:`\sim \mathrm{LogNormal}(0, \sigma_a^2)` (``discrimination_sd``, the
        2PL's draw), then, for D > 1, each direction :math:`|z_j|/\|z_j\|` with
        :math:`z_j \sim N(0, I_D)` (module docstring); the intercepts follow from the
        difficulties (:meth:`complete_items`)."""
        dims = self.skill_shape(1, dims=dims)[1]
        discrimination = rng.lognormal(0.0, discrimination_sd, n_questions)
        if dims == 1:
            direction = np.ones((n_questions, 1))
        else:
            z = np.abs(rng.standard_normal((n_questions, dims)))
            direction = z / np.linalg.norm(z, axis=1, keepdims=True)
        return {"discrimination": discrimination, "loadings": discrimination[:, None] * direction}

    def complete_items(self, items: Items) -> dict[str, np.ndarray]:
        """The intercepts :math:`d_j = -\\|a_j\\| b_j` of the drawn MDIFF and loadings."""
        loadings = np.asarray(items["loadings"], np.float64)
        intercept = -np.linalg.norm(loadings, axis=1) * np.asarray(items["difficulty"])
        return derived_items(loadings, intercept)

    def probabilities(self, skill: np.ndarray, items: Items) -> np.ndarray:
        a = np.asarray(items["loadings"], np.float64)
        theta = skill_matrix(skill, a.shape[1])
        return sigmoid(theta @ a.T + np.asarray(items["intercept"], np.float64)[None, :])

    def linear_logits(self, items: Items) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`\theta_i\cdot a_j + d_j`: the loadings and the intercepts."""
        return (np.asarray(items["loadings"], np.float64),
                np.asarray(items["intercept"], np.float64))

    def joint_errors(self, responses: Responses, skill: np.ndarray, items: Items,
                     found: Extremes | None = None
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:func:`joint_standard_errors` (in the estimate's own frame)."""
        return joint_standard_errors(responses, skill, items["loadings"], items["intercept"],
                                     found)

    # -- evaluation ---------------------------------------------------------------------------
    def usable(self, items: Items) -> np.ndarray:
        """The questions whose four parameters are finite (every loading) with MDISC > 0."""
        with np.errstate(invalid="ignore"):
            keep = np.isfinite(np.asarray(items["loadings"], np.float64)).all(axis=1)
            for name in ("difficulty", "discrimination", "intercept"):
                keep &= np.isfinite(np.asarray(items[name], np.float64))
            return keep & (np.asarray(items["discrimination"], np.float64) > 0)

    def align(self, estimate: Items, truth: Items, keep: np.ndarray, *,
              skill: np.ndarray | None = None, true_skill: np.ndarray | None = None,
              students: np.ndarray | None = None) -> RotationAlignment:
        """:func:`rotation_alignment`: it whitens the skills, so it needs them (``skill``,
        ``true_skill``); ``ValueError`` without."""
        if skill is None or true_skill is None:
            raise ValueError("the m2pl alignment whitens the skills: pass skill= and "
                             "true_skill= (Model.alignment)")
        return rotation_alignment(estimate, truth, keep, skill, true_skill, students)

    def alignment(self, estimate: Items, truth: Items, keep: np.ndarray, *,
                  skill: np.ndarray | None = None, true_skill: np.ndarray | None = None,
                  students: np.ndarray | None = None) -> RotationAlignment:
        return self.align(estimate, truth, keep, skill=skill, true_skill=true_skill,
                          students=students)

    common_frame = ("each fit's skills whitened (mean 0, covariance I), the first's loadings "
                    "rotated onto the second's (orthogonal Procrustes)")

    def common_frames(self, first: Items, second: Items, keep: np.ndarray,
                      first_skill: np.ndarray, second_skill: np.ndarray
                      ) -> tuple[RotationAlignment, RotationAlignment]:
        r"""Each fit's skills whitened (:func:`whitening`: mean 0, covariance :math:`I`, the
        loadings and intercepts moved so that every logit is kept), then the first's whitened
        loadings rotated onto the second's over the ``keep`` items
        (:func:`orthogonal_procrustes`, :math:`R`). A rotation keeps every distance:
        :math:`\|A R - B\| = \|A - B R^\top\|`, so the comparison is symmetric."""
        frames = []
        for skill in (first_skill, second_skill):
            mean, white = whitening(skill)
            frames.append(RotationAlignment(white, -mean @ white))
        moved = [frame.loadings(fit["loadings"]) for frame, fit in zip(frames, (first, second))]
        rows = np.asarray(keep, bool) & np.isfinite(moved[0]).all(axis=1) \
            & np.isfinite(moved[1]).all(axis=1)
        rotation = (orthogonal_procrustes(moved[0][rows], moved[1][rows]) if rows.any()
                    else np.eye(len(frames[0].matrix)))
        first_frame = RotationAlignment(frames[0].matrix @ rotation,
                                        frames[0].offset @ rotation)
        return first_frame, frames[1]

    def bounds(self, data: Truth, keep: np.ndarray) -> dict[str, float]:
        """None (module docstring): ``{}``."""
        return {}

    def runaway(self, items: Items, item_se: Mapping[str, np.ndarray | None],
                extreme: np.ndarray) -> np.ndarray:
        r"""The 2PL's rule (:func:`~irtbench.models.twopl.runaway_items`) on what the
        likelihood's free rotation leaves unchanged: MDISC :math:`\|a_j\|` (from the loadings)
        and the intercept :math:`d_j` past :data:`~irtbench.models.twopl.RUNAWAY_LIMIT` or not
        finite, or the SE of MDISC past it; never a loading for its direction, which any
        rotation moves."""
        a = np.asarray(items["loadings"], np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            norm = np.sqrt(np.sum(a * a, axis=1))
            bad = diverged(norm, np.asarray(items["intercept"], np.float64))
            se = item_se.get("discrimination")
            if se is not None:
                bad |= ~(np.asarray(se, np.float64) <= RUNAWAY_LIMIT)
        return bad & ~np.asarray(extreme, bool)
