r"""``numpyro-nuts``: full Bayesian inference by the No-U-Turn Sampler (``numpyro.infer.MCMC``).

Model: :func:`irtbench.estimators._numpyro.rasch_model`, hierarchical as in ``numpyro-vi``
(:math:`\sigma \sim \mathrm{HalfNormal}(5)`, :math:`\theta_i \sim N(0, \sigma^2)`,
:math:`b_j \sim N(0, 10^2)`). Estimates are posterior means, ``skill_se``/``difficulty_se``
posterior standard deviations. ``Fit.diagnostics`` carries NumPyro's own diagnostics
(``numpyro.diagnostics.summary``): the largest split r-hat and the smallest effective sample size
over skills, difficulties and sigma, the number of divergent transitions, and the smallest ESS per
second of sampling.

Timing: the sampler is compiled by a first, 2 + 2 step chain on the same data and shapes
(``compile_seconds``); the timed run reuses the compiled kernel (``jit_model_args=True``;
measured here: a second compile-free run takes about as long as the first timed one).
Sizes beyond ``max_responses`` are skipped: NUTS costs minutes there on a CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from irtbench.estimators import _jax, _numpyro
from irtbench.estimators.base import Fit, RunResult, register


@dataclass
class _Problem:
    y: Any
    weight: Any
    device: Any
    options: dict[str, Any]
    mcmc: Any
    short_mcmc: Any


@register
class NumpyroNUTS(_numpyro.NumpyroEstimator):
    """Posterior means and SDs by NUTS, with r-hat, ESS and divergences.

    Options:
        num_warmup (500), num_samples (500), num_chains (1): as ``numpyro.infer.MCMC``; chains
            run in parallel when JAX has a device for each, else sequentially.
        target_accept_prob: NUTS's step-size adaptation target (0.8).
        difficulty_scale (10), sigma_prior_scale (5): the priors, as ``numpyro-vi``.
        max_responses: larger matrices are skipped by the harness (200000).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``/``"gpu"``.
        seed: the PRNG key of the chains.
    """

    name = "numpyro-nuts"
    summary = "full Bayes: NUTS posterior means and SDs, hierarchical skill scale"
    defaults = {
        "num_warmup": 500,
        "num_samples": 500,
        "num_chains": 1,
        "target_accept_prob": 0.8,
        "difficulty_scale": _numpyro.DIFFICULTY_SCALE,
        "sigma_prior_scale": _numpyro.SIGMA_PRIOR_SCALE,
        "max_responses": 200_000,
        "device": "auto",
        "seed": 0,
    }

    def skip(self, n_students: int, n_questions: int, device: str) -> tuple[bool, str]:
        limit = self.options.get("max_responses", self.defaults["max_responses"])
        if n_students * n_questions > limit:
            return True, (f"{n_students * n_questions} responses > max_responses={limit}: NUTS "
                          "would take minutes per fit here")
        return False, ""

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        if not 0 < options["target_accept_prob"] < 1:
            raise ValueError(f"option target_accept_prob={options['target_accept_prob']!r} "
                             "must be in (0, 1)")

    def prepare(self, responses: np.ndarray, options: dict[str, Any]) -> _Problem:
        import jax
        from numpyro.infer import MCMC, NUTS

        device = _jax.resolve_device(options["device"])
        y, weight, _ = _jax.responses_to_device(responses, device)
        model = partial(_numpyro.rasch_model, skill_scale=None,
                        difficulty_scale=float(options["difficulty_scale"]),
                        sigma_prior_scale=float(options["sigma_prior_scale"]))
        chains = options["num_chains"]
        method = "parallel" if chains <= jax.local_device_count(device.platform) else "sequential"
        kernel = NUTS(model, target_accept_prob=options["target_accept_prob"])

        def mcmc(num_warmup: int, num_samples: int) -> Any:
            return MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=chains,
                        chain_method=method, progress_bar=False, jit_model_args=True)

        return _Problem(y, weight, device, options,
                        mcmc(options["num_warmup"], options["num_samples"]), mcmc(2, 2))

    def compile(self, problem: _Problem) -> float:
        """A 2 + 2 step chain on the same data compiles the sampler for the timed run."""
        import jax

        start = time.perf_counter()
        problem.short_mcmc.run(jax.random.PRNGKey(problem.options["seed"]), problem.y,
                               problem.weight, extra_fields=("diverging", "potential_energy"))
        jax.block_until_ready(problem.short_mcmc.get_samples())
        return time.perf_counter() - start

    def run(self, problem: _Problem) -> RunResult:
        import jax

        problem.mcmc.run(jax.random.PRNGKey(problem.options["seed"]), problem.y, problem.weight,
                         extra_fields=("diverging", "potential_energy"))
        samples = jax.block_until_ready(problem.mcmc.get_samples(group_by_chain=True))
        flat = {site: value.reshape(-1, *value.shape[2:]) for site, value in samples.items()}
        return RunResult(
            flat["skill"].mean(0), flat["difficulty"].mean(0),
            losses=problem.mcmc.get_extra_fields()["potential_energy"],
            n_iter=int(flat["skill"].shape[0]),
            skill_se=flat["skill"].std(0), difficulty_se=flat["difficulty"].std(0),
            diagnostics={"samples": samples},
        )

    def finish(self, responses: np.ndarray, options: dict[str, Any], problem: _Problem,
               result: RunResult, seconds: float, compile_seconds: float) -> Fit:
        """Adds NumPyro's diagnostics, computed after the clock stopped."""
        import numpyro.diagnostics

        samples = result.diagnostics.pop("samples")
        summary = numpyro.diagnostics.summary(samples, group_by_chain=True)
        ess = min(float(np.nanmin(s["n_eff"])) for s in summary.values())
        result.diagnostics.update(
            max_rhat=max(float(np.nanmax(s["r_hat"])) for s in summary.values()),
            min_ess=ess,
            divergences=int(problem.mcmc.get_extra_fields()["diverging"].sum()),
            ess_per_second=ess / seconds,
            sigma=float(np.mean(samples["sigma"])),
        )
        return super().finish(responses, options, problem, result, seconds, compile_seconds)
