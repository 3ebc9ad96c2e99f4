r"""``theta-irt``: theta's marginal ML by Bock–Aitkin EM in JAX (PyPI ``theta-irt`` 0.1.1, import
name ``theta``, "the fastest IRT library"), as a peer run in an interpreter of its own.

**Why a process of its own.** ``import theta`` sets ``jax_enable_x64`` for the whole process
(``theta/_config.py``): every JAX array made after it is float64, which would silently change
``jax-adam`` and the NumPyro estimators in the same process. Each fit therefore writes the kept
questions' responses to a temporary ``.npz``, runs :mod:`irtbench.estimators._theta_irt_runner`
(numpy and theta only) in a child interpreter and reads the estimates back
(:mod:`irtbench.estimators._child`, as ``py-irt``). The interpreter: option ``python``; else
``$IRTBENCH_THETA_IRT_PYTHON``; else this one (theta needs only JAX and numpy, which irtbench's
``jax`` extra has: ``pip install 'irtbench[theta]'``).

**What theta fits** (read from its source, ``theta/models.py``, ``calibrate.py``,
``priors.py``, ``quadrature.py``): :math:`P = c + (d - c)\,\sigma(a(\theta - b))` with
:math:`\theta \sim N(0, 1)` integrated out on a 61-node Gauss–Hermite rule (``n_points``),
EM with a damped Newton M-step per item in the unconstrained coordinates
:math:`(\log a, \beta = -ab, \operatorname{logit} c)`, stopped when no reported parameter
moves more than ``tol`` (1e-4) or after ``max_iter`` (500) iterations. So:

* ``model="2pl"``: theta's ``"2PL"``, the suite's 2PL on the N(0, 1) scale: the model of
  ``mml-em``'s and ``mirt-em``'s 2PL, with no prior on :math:`a` or :math:`b` (pure marginal
  ML). **The slope is constrained positive** (:math:`a = e^{\log a}`): a badly keyed item
  whose ML slope is negative is driven towards :math:`a \to 0`, where :math:`b = -\beta/a`
  runs off (the suite's runaway rule then flags it), where ``mml-em`` finds the negative
  slope. Options ``prior_log_a_sd`` and ``prior_d_sd`` (None by default, theta's) pass theta's
  :math:`\log a \sim N(0, s^2)` (a density of :math:`\log a`, no Jacobian) and
  :math:`\beta \sim N(0, s^2)` on the intercept.
* ``model="rasch"``: theta's ``"1PL"``, one common slope :math:`a` under N(0, 1): the Rasch
  model with skill SD :math:`a`, mapped as for ``mirt-em`` (:mod:`irtbench.estimators._peers`:
  difficulty :math:`a b`, skills :math:`a\hat z`, ``diagnostics["sigma"]`` = :math:`a`): the
  model of ``mml-em``'s Rasch fit.
* ``model="3pl"``: theta's ``"3PL"`` (:math:`d = 1`), whose floor carries a Beta prior; theta's
  default is Beta(2, 8), here replaced by the suite's (``prior_guessing_mean``,
  ``prior_guessing_weight``: BILOG-MG's Beta(6, 16), as ``mml-em``'s 3PL; weight 0: no prior), so
  that both maximise the same posterior.
* ``model="4pl"``: theta's ``"4PL"``, :math:`d` the suite's ceiling :math:`u`, kept above the
  floor by theta's map :math:`d = c + (1 - c)\sigma(g_d)`; the floor's prior as the 3PL's, and
  theta's Beta prior on the slip :math:`1 - d` (its default Beta(2, 10)) replaced by the
  suite's ceiling prior (``prior_ceiling_mean``, ``prior_ceiling_weight``):
  :math:`u \sim \mathrm{Beta}(\alpha_u, \beta_u)` is :math:`1 - u \sim
  \mathrm{Beta}(\beta_u, \alpha_u)`, Beta(2, 20) by default, so that theta maximises
  ``mml-em``'s 4PL posterior (up to its Gauss–Hermite rule and its positive slopes). Measured
  here (theta 0.1.1, seed 0 of ``simulate(2000, 30)``): theta leaves some items at its start
  (:math:`a = 1`, :math:`c = 0.1`), 3 of 30 in its 3PL and 2 of 30 in its 4PL, whose EM had
  not converged after its 500 iterations; the suite reports what theta returns.

**Skills**: EAP under N(0, 1) by ``model.score`` (61 nodes) with posterior SDs as SEs, every
student finite. **Item SEs**: theta's ``standard_errors``, the inverse of the full observed
information of every free item parameter by autodiff (a :math:`2J \times 2J` Hessian for the
2PL): computed when ``item_se`` is True, or (None, the default) when the test has at most
:data:`AUTO_SE_ITEMS` questions; None otherwise. Questions everybody got right or wrong are
left out of theta's fit and reported at -/+inf (:mod:`irtbench.estimators._peers`).

**Clock.** ``Fit.seconds`` times everything (the suite's one clock): the ``.npz`` files, the
child's start and its import of JAX and theta, its fit (JIT compilation included: a fresh
process compiles every time), the scoring, the SEs, the results read back. ``diagnostics``
split it: ``theta_process_seconds``, ``theta_startup_seconds``, ``theta_first_fit_seconds``,
``theta_fit_seconds`` (with ``warm=True`` the child fits twice and keeps the second: theta's
warm time, what its README reports), ``theta_score_seconds``, ``theta_se_seconds``. ``losses``
are theta's penalised objective per EM iteration, negated; ``log_likelihood`` the marginal
log-likelihood at the estimate (theta's ``loglik``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

from irtbench.estimators import options as option
from irtbench.estimators._child import caller_threads, importable_by, run_runner
from irtbench.estimators._peers import PeerEstimator, PeerFit, common_slope_as_rasch
from irtbench.estimators.base import BackendNotInstalled, Option, register
from irtbench.models import get_model
from irtbench.models.asymptotic import ASYMPTOTES

#: the environment variable naming theta's interpreter
PYTHON_VARIABLE = "IRTBENCH_THETA_IRT_PYTHON"
RUNNER = Path(__file__).with_name("_theta_irt_runner.py")
#: theta's names of the suite's models
THETA_MODELS = {"rasch": "1PL", "2pl": "2PL", "3pl": "3PL", "4pl": "4PL"}
#: the models theta fits with one slope shared by every item (mapped onto the Rasch model)
COMMON_SLOPE = frozenset({"rasch"})
#: theta's names of the asymptotes (its ``c`` and ``d``)
THETA_ITEMS = {"guessing": "c", "ceiling": "d"}
#: item SEs by default up to this many questions (a full 2J x 2J autodiff Hessian beyond)
AUTO_SE_ITEMS = 200


def interpreter(python: Option = None) -> Path:
    """theta's interpreter: ``python``, else ``$IRTBENCH_THETA_IRT_PYTHON``, else this one."""
    if python:
        return Path(str(python))
    return Path(os.environ.get(PYTHON_VARIABLE) or sys.executable)


def problem(python: Path) -> str | None:
    """Why ``python`` cannot run theta (None when it can); this interpreter is asked
    in-process (no child started by ``irtbench list``)."""
    if python == Path(sys.executable):
        return None if importlib.util.find_spec("theta") is not None else "theta-irt"
    return importable_by(python, "theta")


def _nan_or(value: Option) -> float:
    return float("nan") if value is None else float(value)


def _beta_or_nan(shapes: tuple[float, float], weight: Option) -> tuple[float, float]:
    """A Beta prior's shapes, or NaN (none) at weight 0."""
    return shapes if float(weight) > 0 else (float("nan"), float("nan"))


@register
class ThetaIrt(PeerEstimator):
    """theta's JAX MML-EM in a child interpreter; see the module docstring for what it fits and
    how its models and clock map onto the suite's."""

    name = "theta-irt"
    colour = 13
    objective = "marginal"
    backend = "theta"
    extra = "theta"
    models = ("rasch", "2pl", "3pl", "4pl")
    summary = "peer: theta's JAX marginal ML by EM (float64; own process), EAP skills"
    spec = {
        "n_points": option.positive_int(61, "theta's Gauss-Hermite nodes (its default)", low=5),
        "tol": option.positive(1e-4, "stop when no reported parameter moves more (theta's)"),
        "max_iter": option.positive_int(500, "cap on EM iterations (theta's)"),
        "n_newton": option.positive_int(3, "Newton steps per M-step (theta's)"),
        **option.model_options("prior_log_a_sd", "prior_d_sd", "prior_guessing_mean",
                               "prior_guessing_weight",
                               "prior_ceiling_mean", "prior_ceiling_weight"),
        "item_se": option.flag(None, "theta's item SEs (full autodiff Hessian); None: up to "
                               f"{AUTO_SE_ITEMS} questions", none_ok=True),
        "warm": option.flag(False, "fit twice in the child and keep the second (theta's warm "
                            "time, JIT compilation excluded)"),
        "python": option.unchecked(None, "theta's interpreter (None: "
                                   f"${PYTHON_VARIABLE} or this one)"),
    }
    warm_up_options = {"max_iter": 2, "item_se": False}

    @classmethod
    def install_command(cls) -> str:
        return "pip install 'irtbench[theta]'"

    @classmethod
    def missing_requirements(cls) -> list[str]:
        found = problem(interpreter())
        return [] if found is None else [found]

    def require_backend(self) -> None:  # type: ignore[override]
        found = problem(interpreter(self.options.get("python")))
        if found is not None:
            raise BackendNotInstalled(f"estimator {self.name!r} needs {found}, which is not "
                                      f"installed; install it with: {self.install_command()}")

    def payload(self, responses: np.ndarray, options: dict) -> dict[str, object]:
        """What the runner reads (its module docstring)."""
        model = str(options["model"])
        # each asymptote's Beta prior (weight 0: none, NaN); theta reads the floor's where it
        # fits a floor and the slip's (1 - the ceiling's, its shapes swapped) where a ceiling
        c_a, c_b = _beta_or_nan(ASYMPTOTES["guessing"].prior_of(options),
                                options["prior_guessing_weight"])
        slip_b, slip_a = _beta_or_nan(ASYMPTOTES["ceiling"].prior_of(options),
                                      options["prior_ceiling_weight"])
        item_se = options["item_se"]
        if item_se is None:
            item_se = responses.shape[1] <= AUTO_SE_ITEMS
        return dict(responses=responses.astype(np.float64), model=THETA_MODELS[model],
                    n_points=int(options["n_points"]), max_iter=int(options["max_iter"]),
                    tol=float(options["tol"]), n_newton=int(options["n_newton"]),
                    la_sd=_nan_or(options["prior_log_a_sd"]),
                    beta_sd=_nan_or(options["prior_d_sd"]), c_a=c_a, c_b=c_b,
                    slip_a=slip_a, slip_b=slip_b,
                    item_se=bool(item_se), warm=bool(options["warm"]),
                    threads=caller_threads())

    def estimate(self, responses: np.ndarray, options: dict) -> PeerFit:
        out, process_seconds = run_runner(interpreter(options["python"]), RUNNER,
                                          self.payload(responses, options), what="theta-irt")
        has_se = bool(np.isfinite(out["b_se"]).any())
        diagnostics = {
            "converged": bool(out["converged"]),
            "theta_process_seconds": process_seconds,
            **{f"theta_{name}": float(out[name]) for name in (
                "startup_seconds", "first_fit_seconds", "fit_seconds", "score_seconds",
                "se_seconds")},
            "theta_version": str(out["theta_version"]),
        }
        model = str(options["model"])
        asymptotes = get_model(model).item_parameters[2:]  # after the difficulty and slope
        fit = PeerFit(out["skill"], out["skill_se"], out["b"], out["b_se"] if has_se else None,
                      out["a"], out["a_se"] if has_se else None, int(out["n_iter"]),
                      float(out["loglik"]), diagnostics, losses=-out["objective"],
                      **{name: out[THETA_ITEMS[name]] for name in asymptotes},
                      **{f"{name}_se": out[f"{THETA_ITEMS[name]}_se"] if has_se else None
                         for name in asymptotes})
        if model in COMMON_SLOPE:  # theta's 1PL: one slope, mapped onto the Rasch model
            slope_se = float(out["a_se"][0]) if has_se else None
            return common_slope_as_rasch(fit, float(out["a"][0]), slope_se)
        return fit
