r"""``numpyro-vi``: mean-field variational inference with NumPyro SVI and an ``AutoNormal`` guide.

Model: :func:`irtbench.estimators._numpyro.irt_model` of any model; the Rasch model hierarchical —
:math:`\sigma \sim \mathrm{HalfNormal}(5)`, :math:`\theta_i \sim N(0, \sigma^2)`,
:math:`b_j \sim N(0, 10^2)` — so the skills' scale is learned with everything else instead of
being fixed (a fixed :math:`\sigma = 1` shrinks skills spread over +/-3 logits and biases the
difficulties). Models with slopes: skills :math:`N(0, I_D)` (which fix the scale), each item
parameter under its prior in its stated space (:math:`\log a_j \sim N(0, 1)`, the floors'
Beta ..., the M2PL's loadings :math:`N(0, 1)` as py-irt's, from a random start: zeros are a
saddle); each estimate is the guide's median mapped to the parameter (:math:`e^{\mu}`), its SE
half the distance between the mapped 15.9% and 84.1% quantiles (the SD for a normal site, the
delta method's :math:`a\,s` to first order for :math:`e^{\mu}`).

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
from irtbench.models import MODELS
from irtbench.responses import Responses

CHUNK_STEPS = 100


@register
class NumpyroVI(_numpyro.NumpyroEstimator):
    """Mean-field variational Bayes (``AutoNormal``) with a learned skill scale.

    """

    name = "numpyro-vi"
    colour = 10
    objective = "posterior"
    in_quick_sweep = False
    models = MODELS  # irt_model writes every model
    default_sweep_models = ("rasch",)  # its 2PL fits on demand: they would push the default
    # sweep past 10 minutes on 2 cores
    summary = "variational Bayes: SVI + AutoNormal (mean field), hierarchical skill scale"
    warm_up_options = {"num_steps": 100}
    spec = {
        "num_steps": option.positive_int(4000, "SVI steps (rounded up to a multiple of 100)"),
        "lr": option.positive(0.05, "initial Adam learning rate"),
        "difficulty_scale": option.DIFFICULTY_SCALE,
        "sigma_prior_scale": option.SIGMA_PRIOR_SCALE,
        **option.model_options("prior_log_a_sd", "prior_guessing_mean",
                               "prior_guessing_weight", "prior_ceiling_mean",
                               "prior_ceiling_weight", "dims", "prior_loading_sd",
                               prior_log_a_sd=1.0, prior_loading_sd=1.0),
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
        kwargs = _numpyro.irt_model_arguments(self.model, options)
        svi = _numpyro.build_svi(AutoNormal, optax.adam(schedule), kwargs)
        return _numpyro.SviState(**vars(base), model_kwargs=kwargs, svi=svi,
                                 chunk=_numpyro.make_chunk(svi, CHUNK_STEPS), steps=steps)

    def compile(self, state: _numpyro.SviState) -> None:
        _numpyro.compile_chunk(state, _numpyro.skill_scale_of(state.model))

    def run(self, state: _numpyro.SviState) -> Result:
        import jax

        data = _numpyro.place(state)
        clock = Stopwatch()
        scale = _numpyro.skill_scale_of(state.model)
        svi_state = state.initial
        if svi_state is None:
            svi_state = state.svi.init(jax.random.PRNGKey(int(state.options["seed"])), *data,
                                       scale)
        trace: list[Snapshot] = []
        svi_state, losses, _ = _numpyro.run_svi(state, svi_state, data, scale,
                                                max_steps=state.steps, chunk_steps=CHUNK_STEPS,
                                                trace=trace)
        params = state.svi.get_params(svi_state)
        guide = state.svi.guide
        median = guide.median(params)
        quantiles = guide.quantiles(params, list(ONE_SD))
        low = {site: q[0] for site, q in quantiles.items()}
        high = {site: q[1] for site, q in quantiles.items()}
        compute_seconds = clock.stop()
        parameters = state.model_kwargs["parameters"]
        model = state.model_kwargs["model"]
        items = model.report(_numpyro.site_values(parameters, median))
        spread = {name: np.abs(upper - lower) / 2 for (name, upper), lower in zip(
            _numpyro.site_values(parameters, high).items(),
            _numpyro.site_values(parameters, low).values())}
        item_se = model.report_errors(spread)
        diagnostics = ({"sigma": float(median["sigma"])} if model.learns_skill_scale else {})
        return Result(host(median["skill"]), items.pop("difficulty"),
                      (host(high["skill"]) - host(low["skill"])) / 2, item_se.pop("difficulty"),
                      losses, len(losses), compute_seconds, diagnostics, trace,
                      items=items, item_se=item_se)


#: the normal's quantiles one SD either side of the median
ONE_SD = (0.15865525393145707, 0.8413447460685429)
