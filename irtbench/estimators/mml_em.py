r"""``mml-em``: marginal maximum likelihood by Bock–Aitkin EM with Gauss–Hermite quadrature.

The skills are integrated out under a normal population distribution,
:math:`\theta \sim N(0, \sigma^2)`, whose standard deviation is estimated with the difficulties:

.. math::
    \ell_m(b, \sigma) = \sum_i \log \int \prod_{j\ \mathrm{obs}}
        \sigma(\theta - b_j)^{y_{ij}}\,(1 - \sigma(\theta - b_j))^{1 - y_{ij}}
        \,\phi(\theta; 0, \sigma^2)\,d\theta
    \approx \sum_i \log \sum_q w_q L_i(\sigma z_q)

with Gauss–Hermite quadrature. A fixed grid of nodes cannot integrate the likelihood of a long
test (at 1000 questions a student's posterior SD is about 0.07, far below the spacing of any
usable fixed grid; 41 fixed nodes estimate sigma = 1.03 instead of 1.73 there), so the
quadrature is *adaptive*, as in lme4's ``nAGQ > 1``: group *g* uses
:math:`\theta_{gq} = \hat\theta_g + s_g z_q` centred on its posterior mode with the Laplace
scale :math:`s_g = (\sum_j p_{gj}(1-p_{gj}) + \sigma^{-2})^{-1/2}` there (a few Newton steps per
iteration, warm-started; ``nodes``, 11 by default). This is the model of
``lme4::glmer(resp ~ 0 + item + (1 | id), binomial)`` (item effects :math:`-b_j`) and of mirt's
and TAM's Rasch fits.

**E-step.** Posterior node probabilities :math:`P_{gq}`, and from them, for every question,
:math:`\sum_i E_i[p_{ij}]` and :math:`\sum_i E_i[p_{ij}(1-p_{ij})]`. With no missing responses,
students with the same score share their posterior and are handled once.
**M-step.** One Newton step per difficulty on the expected complete-data log-likelihood,
:math:`b_j \leftarrow b_j + (\sum_i E_i[p_{ij}] - s_j) / \sum_i E_i[p_{ij}(1-p_{ij})]`, and
:math:`\mu = \operatorname{mean}_i E_i[\theta_i]`, :math:`\sigma^2 = \operatorname{mean}_i
E_i[\theta_i^2] - \mu^2`, after which difficulties and posteriors are shifted by :math:`-\mu` to
restore the zero mean (parameter-expanded EM: the likelihood does not fix the origin, so plain
EM creeps along it for hundreds of iterations). Because the posteriors of a long test are narrow,
little other information is missing and EM converges in tens of iterations. It stops when the
largest change of a difficulty or of sigma is below ``tol``, or after ``max_iter`` iterations
(``diagnostics["converged"]`` says which).

**Outputs.** Difficulties on the scale fixed by the zero population mean; skills are EAP
(posterior means) with posterior SDs as their SEs (finite for every student, extreme ones
included: the prior shrinks them). Difficulty SEs are :math:`1/\sqrt{I_{jj}}` from the diagonal
of the observed information (Louis: expected complete-data information minus the posterior
variance of the complete-data score), which ignores the small correlations between
difficulties. Questions everybody got right or wrong have no finite estimate: they are left
out and get :math:`\mp\infty`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from irtbench.estimators import options as option
from irtbench.estimators import _torch
from irtbench.estimators.base import Option, Result, Snapshot, Stopwatch, checkpoints, register
from irtbench.estimators.classical import design as _design
from irtbench.estimators.classical import em2pl, em3pl
from irtbench.estimators.classical.newton import log_odds_start, skill_newton
from irtbench.models import twopl
from irtbench.models.asymptotic import ASYMPTOTES
from irtbench.models import Extremes, find_extremes
from irtbench.responses import Responses, is_sparse, most_answers

if TYPE_CHECKING:
    import torch


def gauss_hermite(nodes: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Nodes :math:`z_q` and log-weights of the probabilists' Gauss–Hermite rule,
    :math:`\int g(z) e^{-z^2/2} dz \approx \sum_q w_q g(z_q)`."""
    import torch

    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    return (torch.as_tensor(z, dtype=like.dtype, device=like.device),
            torch.as_tensor(np.log(w), dtype=like.dtype, device=like.device))


class Posterior(NamedTuple):
    """What one E-step gives: posterior moments per group, the sums the M-step needs (over
    groups, weighted by counts, for each question), and the marginal log-likelihood."""

    mean: torch.Tensor  # (G,) posterior mean of theta (EAP)
    sd: torch.Tensor  # (G,) posterior SD
    expected_p: torch.Tensor  # (J,) sum_i E_i[p_ij]
    expected_w: torch.Tensor  # (J,) sum_i E_i[p_ij (1 - p_ij)]  (complete-data information)
    variance_p: torch.Tensor  # (J,) sum_i Var_i[p_ij]  (missing information, for Louis)
    mean_square: float  # sum_i E_i[theta^2]
    log_likelihood: float


def posterior_modes(design: _design.Design, difficulty: torch.Tensor, sigma: torch.Tensor,
                    start: torch.Tensor, *, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mode :math:`\hat\theta_g` of each group's posterior under :math:`N(0, \sigma^2)` (at
    most ``steps`` Newton steps from ``start``) and the Laplace scale
    :math:`(\sum_j p(1-p) + \sigma^{-2})^{-1/2}` there: the centres and spreads of the adaptive
    quadrature, as lme4 places them."""
    theta, info, _ = skill_newton(design, difficulty, precision=1.0 / float(sigma) ** 2,
                                  start=start, max_iter=steps)
    return theta, info.rsqrt()


def e_step(design: _design.Design, z: torch.Tensor, log_w: torch.Tensor, centre: torch.Tensor,
           scale: torch.Tensor, sigma: torch.Tensor, difficulty: torch.Tensor, *,
           with_variance: bool = False) -> Posterior:
    r"""Adaptive quadrature: group *g* integrates over :math:`\theta_{gq} = \mu_g + s_g z_q`
    (:math:`\mu_g, s_g` its posterior mode and Laplace scale) with log-weights
    :math:`\log w_q + z_q^2/2 + \log s_g + \log\phi(\theta_{gq}; 0, \sigma^2)`.
    ``variance_p`` (for the SEs) only ``with_variance``, NaN otherwise."""
    import torch
    import torch.nn.functional as F

    mean, sd = torch.empty_like(centre), torch.empty_like(centre)
    expected_p = torch.zeros_like(difficulty)
    expected_w, variance_p = torch.zeros_like(difficulty), torch.zeros_like(difficulty)
    mean_square, total = 0.0, 0.0
    log_norm = 0.5 * np.log(2 * np.pi)
    for rows in design.chunks(per_row=len(z)):
        theta = centre[rows, None] + scale[rows, None] * z[None, :]  # (g, Q)
        x = theta[:, :, None] - difficulty[None, None, :]  # (g, Q, J)
        softplus, p = F.softplus(x), torch.sigmoid(x)
        observed = None if design.observed is None else design.observed[rows, None, :]
        if observed is not None:
            softplus = softplus * observed
        # the likelihood's sum_j y_ij b_j does not depend on theta: it is added once, below
        log_lik = design.scores[rows, None] * theta - softplus.sum(2)
        log_prior = -0.5 * (theta / sigma) ** 2 - torch.log(sigma) - log_norm
        joint = log_lik + log_prior + log_w + 0.5 * z**2 + torch.log(scale[rows, None])
        marginal = torch.logsumexp(joint, dim=1)
        weights = torch.exp(joint - marginal[:, None])  # (g, Q)
        mean[rows] = (weights * theta).sum(1)
        second = (weights * theta**2).sum(1)
        sd[rows] = (second - mean[rows] ** 2).clamp(min=1e-12).sqrt()
        counts = design.counts[rows]
        e_p = torch.einsum("gq,gqj->gj", weights, p)
        e_w = torch.einsum("gq,gqj->gj", weights, p - p * p)
        if observed is not None:
            e_p, e_w = e_p * observed[:, 0], e_w * observed[:, 0]
        expected_p += counts @ e_p
        expected_w += counts @ e_w
        if with_variance:  # Var[p] = E[p] - E[p(1-p)] - E[p]^2
            variance_p += counts @ (e_p - e_w - e_p**2)
        mean_square += float(counts @ second)
        total += float(counts @ marginal)
    if not with_variance:
        variance_p.fill_(float("nan"))
    total -= float(design.item_totals @ difficulty)
    return Posterior(mean, sd, expected_p, expected_w, variance_p, mean_square, total)


#: the Rasch model's adaptive Gauss-Hermite nodes per student when ``nodes`` is None
RASCH_NODES = 11
#: the models with asymptotes and their EM's items (:mod:`irtbench.estimators.classical.em3pl`)
BOUNDED: dict[str, type[em3pl.ItemsB]] = {"3pl": em3pl.Items3, "4pl": em3pl.Items4}


@register
class MarginalEM(_torch.TorchEstimator):
    r"""Marginal maximum likelihood (normal skills, estimated SD) by Bock–Aitkin EM; with
    ``model="2pl"`` the 2PL under N(0, 1) skills (:mod:`irtbench.estimators.classical.em2pl`),
    with ``"3pl"`` and ``"4pl"`` the 3PL and 4PL with Beta priors on their asymptotes
    (:mod:`irtbench.estimators.classical.em3pl`).

    Examples:
        >>> import irtbench
        >>> data = irtbench.simulate(500, 20, seed=0, skill_distribution="normal", skill_scale=1.5)
        >>> fit = irtbench.fit(data.responses, "mml-em", device="cpu")
        >>> fit.diagnostics["converged"], round(fit.diagnostics["sigma"], 1)
        (True, 1.5)
    """

    name = "mml-em"
    colour = 7
    objective = "marginal"
    exact_optimum = True
    memory_model = (1.0, 2.0, 450e6)  # the extremes' pass; (g, Q, J) float64 blocks
    summary = "marginal ML, normal skills with estimated SD: Bock-Aitkin EM, EAP skills"
    spec = {
        "nodes": option.positive_int(None, "quadrature nodes; None: 11 adaptive Gauss-Hermite "
                                      "nodes per student (Rasch), or default_nodes of the most "
                                      "answers a student gave on [-6, 6] (2PL, 3PL, 4PL)",
                                      none_ok=True, low=5, high=201),
        "tol": option.positive(1e-6, "stop when no item parameter (or sigma) moves more"),
        "max_iter": option.positive_int(1000, "cap on EM iterations"),
        "device": option.DEVICE,
        **option.model_options("prior_a_lognormal_sd", "prior_d_sd", "prior_guessing_mean",
                               "prior_guessing_weight", "prior_ceiling_mean",
                               "prior_ceiling_weight"),
    }
    warm_up_options = {"max_iter": 2}
    models = ("rasch", "2pl", "3pl", "4pl")
    accepts_sparse = True

    def memory_estimate(self, n_students: int, n_questions: int, missing: float) -> float:
        """The Rasch model: ``memory_model``. The 2PL, 3PL and 4PL: the int8 codes (1 byte per
        response), about six float64 (questions x nodes) arrays of the E- and M-steps, the
        students' posteriors and their scores (16 bytes per student and node) and 250 MB of
        row blocks; nodes as :func:`~irtbench.models.twopl.default_nodes` of the test length
        (measured, process peak: 0.99 GB at 300 x 28659 against 1.2 GB estimated, 1.9 GB at
        11785 x 36259 against 2.2 GB)."""
        chosen = self.config
        if chosen["model"] not in self.kernels:  # the Rasch model's EM
            return super().memory_estimate(n_students, n_questions, missing)
        nodes = chosen["nodes"] or twopl.default_nodes(n_questions)
        return (1.0 * n_students * n_questions + 6 * 8.0 * n_questions * nodes
                + 16.0 * n_students * nodes + 250e6)

    def setup(self, responses: Responses, options: dict[str, Option],
              n_observed: int) -> _torch.TorchState:
        kind = BOUNDED.get(options["model"])
        if kind is not None and is_sparse(responses):
            raise ValueError(f"mml-em fits the {kind.TITLE} to a dense matrix; convert sparse "
                             "triples with irtbench.responses.to_dense")
        return super().setup(responses, options, n_observed)

    def run(self, state: _torch.TorchState) -> Result:
        """The Rasch model's EM (module docstring), or the model's kernel (``kernels``)."""
        kernel = self.kernels.get(state.options["model"])
        if kernel is not None:
            return kernel(self, state)
        import torch

        options = state.options
        found = find_extremes(state.responses, judge_students=False, scan=state.scan)
        design = _design.build_design(state.responses, found, state.torch_device,
                                      triples=False)  # the quadrature takes whole rows
        clock = Stopwatch()
        z, log_w = gauss_hermite(int(options["nodes"] or RASCH_NODES), design.scores)
        difficulty = torch.log((design.item_counts - design.item_totals) / design.item_totals)
        sigma = torch.tensor(1.0, dtype=torch.float64, device=design.scores.device)
        centre, _ = log_odds_start(design)
        centre = centre.nan_to_num(0.0, posinf=3.0, neginf=-3.0)  # scores 0 and J: the prior
        n_students = float(design.counts.sum())
        losses: list[float] = []
        trace: list[Snapshot] = []
        max_iter = int(options["max_iter"])
        snapshots = checkpoints(max_iter, 40)
        converged, iteration = False, 0
        for iteration in range(1, max_iter + 1):
            centre, scale = posterior_modes(design, difficulty, sigma, centre,
                                            steps=50 if iteration == 1 else 3)
            post = e_step(design, z, log_w, centre, scale, sigma, difficulty)
            losses.append(-post.log_likelihood)
            # M-step: one Newton step per difficulty; the population mean and SD in closed
            # form, then everything shifted back to mean 0 (parameter expansion, PX-EM: the
            # likelihood alone does not fix the origin, and plain EM creeps along it)
            step = (post.expected_p - design.item_totals) / post.expected_w
            mu = float(design.counts @ post.mean) / n_students
            new_sigma = sigma.new_tensor(max(post.mean_square / n_students - mu * mu, 1e-12)).sqrt()
            step = step - mu
            change = max(float(step.abs().max()), abs(float(new_sigma - sigma)))
            difficulty, sigma = difficulty + step, new_sigma
            centre = centre - mu
            converged = change < float(options["tol"])
            if iteration in snapshots or converged:
                trace.append(_snapshot(iteration, found, design, post.mean - mu, difficulty))
            if converged:
                break
        centre, scale = posterior_modes(design, difficulty, sigma, centre, steps=50)
        post = e_step(design, z, log_w, centre, scale, sigma, difficulty, with_variance=True)
        information = post.expected_w - post.variance_p  # Louis, diagonal
        _torch.synchronize(state.torch_device)
        compute_seconds = clock.stop()
        skill, difficulty_host = _design.expand(found, design, post.mean, difficulty,
                                                everyone=True)
        skill_se, difficulty_se = _design.expand(found, design, post.sd, information.rsqrt(),
                                                 everyone=True)
        difficulty_se[found.questions] = np.inf
        return Result(
            skill, difficulty_host, skill_se, difficulty_se, np.asarray(losses), iteration,
            compute_seconds,
            {"converged": converged, "sigma": float(sigma),
             "grad_norm": float((post.expected_p - design.item_totals).norm()),
             "log_likelihood": post.log_likelihood},
            trace,
        )

    def run_2pl(self, state: _torch.TorchState) -> Result:
        """The 2PL by Bock–Aitkin EM (:func:`~irtbench.estimators.classical.em2pl.fit_2pl`)."""
        options = state.options
        found = find_extremes(state.responses, judge_students=False, scan=state.scan)
        clock = Stopwatch()
        nodes = options["nodes"] or em2pl.default_nodes(most_answers(state.responses))
        priors = em2pl.Priors(options["prior_a_lognormal_sd"], options["prior_d_sd"])
        em = em2pl.fit_2pl(state.responses, found, state.torch_device,
                           nodes=int(nodes), tol=float(options["tol"]),
                           max_iter=int(options["max_iter"]), priors=priors)
        _torch.synchronize(state.torch_device)
        diagnostics = {"converged": em.converged, "log_likelihood": em.log_likelihood,
                       "median_posterior_sd": em.median_posterior_sd, "nodes": int(nodes)}
        if priors != em2pl.Priors():  # Bayes modal: the objective maximised
            diagnostics["log_posterior"] = em.log_likelihood + em.log_prior
        return Result(em.skill, em.difficulty, em.skill_se, em.difficulty_se, em.losses,
                      em.n_iter, clock.stop(), diagnostics,
                      items={"discrimination": em.discrimination},
                      item_se={"discrimination": em.discrimination_se})


    def run_bounded(self, state: _torch.TorchState) -> Result:
        """The 3PL or the 4PL by Bock–Aitkin EM
        (:func:`~irtbench.estimators.classical.em3pl.fit_bounded`), each asymptote with its
        Beta prior (``BOUNDED`` names the kernel's items of each model)."""
        options = state.options
        found = find_extremes(state.responses, judge_students=False, scan=state.scan)
        clock = Stopwatch()
        nodes = options["nodes"] or em2pl.default_nodes(most_answers(state.responses))
        kind = BOUNDED[options["model"]]
        priors = tuple(em3pl.Prior(*ASYMPTOTES[name].prior_of(options)) for name in kind.ASYMPTOTES)
        fitted = em3pl.fit_bounded(state.responses, found, state.torch_device, nodes=int(nodes),
                                   tol=float(options["tol"]), max_iter=int(options["max_iter"]),
                                   priors=priors, kind=kind,
                                   slope=em2pl.Priors(options["prior_a_lognormal_sd"],
                                                      options["prior_d_sd"]))
        _torch.synchronize(state.torch_device)
        em = fitted.em
        return Result(em.skill, em.difficulty, em.skill_se, em.difficulty_se, em.losses,
                      em.n_iter, clock.stop(),
                      {"converged": em.converged, "log_posterior": -float(em.losses[-1]),
                       "median_posterior_sd": em.median_posterior_sd, "nodes": int(nodes)},
                      items={"discrimination": em.discrimination, **fitted.asymptotes},
                      item_se={"discrimination": em.discrimination_se, **fitted.asymptote_se})

    #: the kernel of each model beyond the Rasch model's
    kernels = {"2pl": run_2pl, **dict.fromkeys(BOUNDED, run_bounded)}


def _snapshot(iteration: int, found: Extremes, design: _design.Design, skill: torch.Tensor,
              difficulty: torch.Tensor) -> Snapshot:
    """EAP skills and difficulties at an iteration (per student on the host after the clock)."""
    skill, difficulty = skill.clone(), difficulty.clone()
    return Snapshot(iteration, lambda: _design.expand(found, design, skill, difficulty,
                                                      everyone=True))
