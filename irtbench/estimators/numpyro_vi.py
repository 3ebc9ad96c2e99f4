r"""``numpyro-vi``: mean-field variational inference with NumPyro SVI and an ``AutoNormal`` guide.

Model: :func:`irtbench.estimators._numpyro.rasch_model`, hierarchical —
:math:`\sigma \sim \mathrm{HalfNormal}(5)`, :math:`\theta_i \sim N(0, \sigma^2)`,
:math:`b_j \sim N(0, 10^2)` — so the skills' scale is learned with everything else instead of
being fixed (a fixed :math:`\sigma = 1` shrinks skills spread over +/-3 logits and biases the
difficulties). ``model="2pl"``: skills N(0, 1) (which fix the 2PL's scale),
:math:`\log a_j \sim N(0, 1)`; discriminations are the guide's medians :math:`e^{\mu}` with
SDs :math:`a\,s` (delta method).

The guide is a product of independent normals, one per skill, difficulty and (log) sigma,
fitted by maximising the ELBO with Adam (``lr``, halved every ``num_steps / 4`` steps, so the
last steps average out the gradient noise) for ``num_steps`` steps in jitted chunks. Estimates
are the guide's means; ``skill_se``/``difficulty_se`` its standard deviations (mean-field:
posterior correlations are ignored, which makes them slightly too small).
"""

from __future__ import annotations

import numpy as np

from irtbench.estimators import options as option
from irtbench.estimators import _numpyro
from irtbench.estimators.base import Option, Result, Snapshot, Stopwatch, host, register
from irtbench.responses import Responses

CHUNK_STEPS = 100


@register
class NumpyroVI(_numpyro.NumpyroEstimator):
    """Mean-field variational Bayes (``AutoNormal``) with a learned skill scale.

    """

    name = "numpyro-vi"
    models = ("rasch", "2pl")
    default_sweep_models = ("rasch",)  # its 2PL fits on demand: they would push the default
    # sweep past 10 minutes on 2 cores
    summary = "variational Bayes: SVI + AutoNormal (mean field), hierarchical skill scale"
    warm_up_options = {"num_steps": 100}
    spec = {
        "num_steps": option.positive_int(4000, "SVI steps (rounded up to a multiple of 100)"),
        "lr": option.positive(0.05, "initial Adam learning rate"),
        "difficulty_scale": option.DIFFICULTY_SCALE,
        "sigma_prior_scale": option.SIGMA_PRIOR_SCALE,
        "device": option.DEVICE,
        "seed": option.SEED,
    }

    def setup(self, responses: Responses, options: dict[str, Option],
              n_observed: int) -> _numpyro.SviState:
        import optax
        from numpyro.infer.autoguide import AutoNormal

        base = super().setup(responses, options, n_observed)
        steps = -(-int(options["num_steps"]) // CHUNK_STEPS) * CHUNK_STEPS
        schedule = optax.exponential_decay(float(options["lr"]),
                                           transition_steps=max(steps // 4, 1), decay_rate=0.5)
        svi = _numpyro.build_svi(
            AutoNormal, optax.adam(schedule),
            _numpyro.model_options(options, difficulty_scale=float(options["difficulty_scale"]),
                                   sigma_prior_scale=float(options["sigma_prior_scale"])),
        )
        return _numpyro.SviState(**vars(base), svi=svi,
                                 chunk=_numpyro.make_chunk(svi, CHUNK_STEPS), steps=steps)

    def compile(self, state: _numpyro.SviState) -> None:
        _numpyro.compile_chunk(state, _numpyro.skill_scale_of(state.options))

    def run(self, state: _numpyro.SviState) -> Result:
        import jax

        data = _numpyro.place(state)
        clock = Stopwatch()
        scale = _numpyro.skill_scale_of(state.options)
        svi_state = state.initial
        if svi_state is None:
            svi_state = state.svi.init(jax.random.PRNGKey(int(state.options["seed"])), *data,
                                       scale)
        trace: list[Snapshot] = []
        svi_state, losses, _ = _numpyro.run_svi(state, svi_state, data, scale,
                                                max_steps=state.steps, chunk_steps=CHUNK_STEPS,
                                                trace=trace)
        params = state.svi.get_params(svi_state)
        compute_seconds = clock.stop()
        if scale is not None:  # the 2PL: a = exp(log a); its median and delta-method SD
            discrimination = np.exp(host(params["log_discrimination_auto_loc"]))
            return Result(
                host(params["skill_auto_loc"]), host(params["difficulty_auto_loc"]),
                host(params["skill_auto_scale"]), host(params["difficulty_auto_scale"]),
                losses, len(losses), compute_seconds, {}, trace,
                items={"discrimination": discrimination},
                item_se={"discrimination":
                         discrimination * host(params["log_discrimination_auto_scale"])},
            )
        sigma = float(state.svi.guide.median(params)["sigma"])
        return Result(
            host(params["skill_auto_loc"]), host(params["difficulty_auto_loc"]),
            host(params["skill_auto_scale"]), host(params["difficulty_auto_scale"]),
            losses, len(losses), compute_seconds, {"sigma": sigma}, trace,
        )
