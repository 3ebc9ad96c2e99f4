r"""``numpyro-nuts``: full Bayesian inference by the No-U-Turn Sampler (``numpyro.infer.MCMC``).

Model: :func:`irtbench.estimators._numpyro.irt_model` of any model, hierarchical as in ``numpyro-vi``
(:math:`\sigma \sim \mathrm{HalfNormal}(5)`, :math:`\theta_i \sim N(0, \sigma^2)`,
:math:`b_j \sim N(0, 10^2)`). Estimates are posterior means, ``skill_se``/``difficulty_se``
posterior standard deviations. ``Fit.diagnostics`` carries NumPyro's own diagnostics
(``numpyro.diagnostics.summary``): the largest split r-hat and the smallest effective sample size
over skills, difficulties and sigma, the number of divergent transitions, and the smallest ESS per
second of sampling.

Models with slopes: skills N(0, 1) (fixing the scale), each item parameter under its prior in
its stated space (:math:`\log a_j \sim N(0, 1)`; the 3PL's floors
:math:`c_j \sim \mathrm{Beta}(6, 16)`, options ``prior_guessing_mean``,
``prior_guessing_weight`` as ``mml-em``'s; the 4PL's ceilings likewise); estimates are the
posterior means and SDs of each parameter itself (:math:`a = e^{\log a}`).

Timing: the sampler is compiled by a first, 2 + 2 step chain on placeholder data of the same
shapes (``compile_seconds``); the timed run reuses the compiled kernel (``jit_model_args=True``).
The diagnostics are computed inside the timed fit; ``ess_per_second`` divides by the sampling
time (``compute_seconds``).
Sizes beyond ``max_responses`` are skipped: NUTS costs minutes there on a CPU.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from irtbench.estimators import options as option
from irtbench.estimators import _jax, _numpyro
from irtbench.estimators.base import Option, Result, Stopwatch, host, register
from irtbench.models import MODELS, get_model
from irtbench.responses import Responses

if TYPE_CHECKING:
    from numpyro.infer import MCMC


@dataclass
class NutsState(_jax.JaxState):
    """The JAX state plus the sampler for the fit and a 2 + 2 step one that compiles it."""

    model_kwargs: dict | None = None
    mcmc: MCMC | None = None
    short_mcmc: MCMC | None = None


@register
class NumpyroNUTS(_numpyro.NumpyroEstimator):
    """Posterior means and SDs by NUTS, with r-hat, ESS and divergences.

    """

    name = "numpyro-nuts"
    colour = 9
    objective = "posterior"
    in_quick_sweep = False
    left_out_of_compare = (
        "six NUTS runs (the full fit and five folds) took 60% of a 4.5-minute comparison of "
        "spisa (1075 x 45) on two busy cores, and its held-out prediction from posterior means "
        "equals numpyro-map's and numpyro-vi's to 1e-4 there; name it with estimators= "
        "(--estimators) to include it")
    #: compare halves the draws: the posterior means that predict are stable with 250 draws,
    #: and its six fits would otherwise take most of a 3-minute comparison of 1000 x 45
    compare_options = {"num_warmup": 250, "num_samples": 250}
    models = tuple(m for m in MODELS if not get_model(m).random_skill_start)  # not the
    # M2PL: its posterior is a ring of rotations no chain mixes over
    test_options = {"num_warmup": 300, "num_samples": 300}
    default_sweep_models = ("rasch",)  # its 2PL fits on demand: they would push the default
    # sweep past 10 minutes on 2 cores
    summary = "full Bayes: NUTS posterior means and SDs, hierarchical skill scale"
    warm_up_options = {"num_warmup": 4, "num_samples": 4}  # split r-hat needs 4 draws
    spec = {
        "num_warmup": option.positive_int(500, "warm-up draws per chain (numpyro.infer.MCMC)"),
        "num_samples": option.positive_int(500, "kept draws per chain"),
        "num_chains": option.positive_int(1, "chains: in parallel when JAX has a device for "
                                           "each, else one after another"),
        "target_accept_prob": option.fraction(0.8, "NUTS's step-size adaptation target"),
        "difficulty_scale": option.DIFFICULTY_SCALE,
        "sigma_prior_scale": option.SIGMA_PRIOR_SCALE,
        **option.model_options("prior_log_a_sd", prior_log_a_sd=1.0),
        "max_responses": option.positive_int(200_000, "larger matrices are skipped by the "
                                              "sweep (minutes of NUTS on a CPU)"),
        "device": option.DEVICE,
        "seed": option.SEED,
        **option.model_options("prior_guessing_mean", "prior_guessing_weight",
                               "prior_ceiling_mean", "prior_ceiling_weight"),
    }

    def skip(self, n_students: int, n_questions: int, device: str) -> tuple[bool, str]:
        limit = self.config["max_responses"]
        if n_students * n_questions > limit:
            return True, (f"{n_students * n_questions} responses > max_responses={limit}: NUTS "
                          "would take minutes per fit here")
        return False, ""

    def setup(self, responses: Responses, options: dict[str, Option],
              n_observed: int) -> NutsState:
        import jax
        from numpyro.infer import MCMC, NUTS

        base = super().setup(responses, options, n_observed)
        kwargs = _numpyro.irt_model_arguments(self.model, options)
        model = partial(_numpyro.irt_model, skill_scale=_numpyro.skill_scale_of(self.model),
                        **kwargs)
        chains = int(options["num_chains"])
        platform = base.jax_device.platform
        method = "parallel" if chains <= jax.local_device_count(platform) else "sequential"
        kernel = NUTS(model, target_accept_prob=float(options["target_accept_prob"]))

        def mcmc(num_warmup: int, num_samples: int) -> MCMC:
            return MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=chains,
                        chain_method=method, progress_bar=False, jit_model_args=True)

        return NutsState(**vars(base), model_kwargs=kwargs, mcmc=mcmc(int(options["num_warmup"]),
                                                 int(options["num_samples"])),
                         short_mcmc=mcmc(2, 2))

    def compile(self, state: NutsState) -> None:
        """A 2 + 2 step chain on placeholder data of the same shapes compiles the sampler."""
        import jax

        state.short_mcmc.run(jax.random.PRNGKey(int(state.options["seed"])),
                             *_numpyro.placeholders(state),
                             extra_fields=("diverging", "potential_energy"))
        jax.block_until_ready(state.short_mcmc.get_samples())

    def run(self, state: NutsState) -> Result:
        """Samples, then posterior means and SDs, and NumPyro's diagnostics of the chains."""
        import jax
        import numpyro.diagnostics

        data = _numpyro.place(state)
        clock = Stopwatch()
        state.mcmc.run(jax.random.PRNGKey(int(state.options["seed"])), *data,
                       extra_fields=("diverging", "potential_energy"))
        samples = jax.block_until_ready(state.mcmc.get_samples(group_by_chain=True))
        compute_seconds = clock.stop()
        flat = {site: value.reshape(-1, *value.shape[2:]) for site, value in samples.items()}
        extra = state.mcmc.get_extra_fields()
        with warnings.catch_warnings():  # a chain too short to judge (a warm-up): NaN, quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            summary = numpyro.diagnostics.summary(samples, group_by_chain=True)
            ess = min(float(np.nanmin(s["n_eff"])) for s in summary.values())
            max_rhat = max(float(np.nanmax(s["r_hat"])) for s in summary.values())
        diagnostics = {
            "max_rhat": max_rhat,
            "min_ess": ess,
            "divergences": int(extra["diverging"].sum()),
            "ess_per_second": ess / compute_seconds,
        }
        if "sigma" in samples:
            diagnostics["sigma"] = float(np.mean(samples["sigma"]))
        model, parameters = state.model_kwargs["model"], state.model_kwargs["parameters"]
        draws = _numpyro.site_values(parameters, flat)  # each parameter's own draws
        items = model.report({name: values.mean(0) for name, values in draws.items()})
        item_se = model.report_errors({name: values.std(0) for name, values in draws.items()})
        skill = host(flat["skill"])
        return Result(skill.mean(0), items.pop("difficulty"), skill.std(0),
                      item_se.pop("difficulty"), host(extra["potential_energy"]),
                      int(skill.shape[0]), compute_seconds, diagnostics, items=items,
                      item_se=item_se)
