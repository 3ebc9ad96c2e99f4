r"""What the estimators that wrap the field's own packages (``mirt-*``, ``girth-*``) share: the
CPU-only base class, the mapping of a common-slope fit onto the Rasch model, and the return of
per-question results to every question.

Each wrapper is timed by the same clock as irtbench's own estimators (the package's fit plus
everything needed to hand back every estimate and SE in irtbench's form: skills scored by the
package, Rasch parameters mapped); it finds the questions everybody got right or wrong inside
its ``run``, leaves them out of the package's fit (the packages fail or return arbitrary values
on them) and reports them at -/+inf, as irtbench's maximum-likelihood estimators do.

**What a package cannot fit is refused in one line.** A wrapper whose package has no handling of
missing responses says so (``complete_only``: girth's ``rasch_conditional`` sums girth's
missing-value code -99999 into the raw scores and fails with an ``IndexError``); it is refused,
untimed, with a ``ValueError`` that names the problem and an estimator that fits such data. An
error raised from inside a package's fit on other data (an ``IndexError``, an
``AssertionError``, a singular matrix) becomes a :class:`PackageFailure` (a ``ValueError``)
naming the estimator, the package and the package's own message, so that the command line reports
it in one line rather than a traceback from the package's internals.

**Rasch with an estimated skill SD.** The packages' marginal "1PL" fits fix the skills at
N(0, 1) and estimate one common discrimination :math:`a`:
:math:`\sigma(a(z - b^*_j))` with :math:`z \sim N(0, 1)` is the Rasch model
:math:`\sigma(\theta - b_j)` with :math:`\theta = az \sim N(0, a^2)` and :math:`b_j = ab^*_j`,
so the wrappers report :math:`b_j = ab^*_j`, skills :math:`a\hat z_i`, and the skill SD
:math:`a` (``diagnostics["sigma"]``), the model of ``mml-em``.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import numpy as np

from irtbench.estimators.base import Diagnostic, Estimator, Result, State, Stopwatch
from irtbench.models import find_extremes
from irtbench.responses import Responses, answers_of, observed_of


class PackageFailure(ValueError):
    """A package's fit failed from inside the package on these responses (module docstring)."""


#: what the packages raise from inside a fit on data they cannot handle
PACKAGE_ERRORS = (IndexError, AssertionError, ZeroDivisionError, np.linalg.LinAlgError)


class PeerFit(NamedTuple):
    """A package's estimates for the kept questions (``discrimination`` None under the Rasch
    model; SEs None where the package gives none; ``n_iter`` 0 and ``log_likelihood`` NaN
    where it does not report them, as girth; ``losses`` the package's objective per iteration
    where it reports one, else None: the fit's losses are then ``[-log_likelihood]``)."""

    skill: np.ndarray
    skill_se: np.ndarray | None
    difficulty: np.ndarray
    difficulty_se: np.ndarray | None
    discrimination: np.ndarray | None
    discrimination_se: np.ndarray | None
    n_iter: int
    log_likelihood: float
    diagnostics: dict[str, Diagnostic]
    losses: np.ndarray | None = None
    #: the 3PL's and 4PL's floors and their SEs (None under the other models)
    guessing: np.ndarray | None = None
    guessing_se: np.ndarray | None = None
    #: the 4PL's ceilings and their SEs (None under the other models)
    ceiling: np.ndarray | None = None
    ceiling_se: np.ndarray | None = None
    #: any other item parameters by name, each ``(kept questions, ...)`` (the M2PL's
    #: ``intercept`` and ``loadings`` ``(J, D)``), without SEs; skills may then be ``(n, D)``
    items: dict[str, np.ndarray] | None = None


#: the item parameters besides the difficulty that a :class:`PeerFit` may carry with SEs
PEER_ITEMS = ("discrimination", "guessing", "ceiling")


def common_slope_as_rasch(fit: PeerFit, slope: float, slope_se: float | None = None) -> PeerFit:
    """A common-slope fit under N(0, 1) skills as the Rasch model with skill SD ``slope``
    (module docstring). The difficulties' SEs are scaled by the slope, leaving out the slope's
    own (small) uncertainty."""
    def scaled(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else slope * values

    diagnostics = {**fit.diagnostics, "sigma": float(slope)}
    if slope_se is not None:
        diagnostics["sigma_se"] = float(slope_se)
    return PeerFit(scaled(fit.skill), scaled(fit.skill_se), scaled(fit.difficulty),
                   scaled(fit.difficulty_se), None, None, fit.n_iter, fit.log_likelihood,
                   diagnostics, fit.losses)


def as_float(responses: Responses) -> np.ndarray:
    """The dense responses as float64 0/1 with NaN for missing."""
    return np.where(observed_of(responses), answers_of(responses, np.float64), np.nan)


class PeerEstimator(Estimator[State]):
    """Base of the wrappers: CPU, dense matrices, both models (unless a subclass says
    otherwise); subclasses implement :meth:`estimate` on the kept questions' float64 matrix
    (NaN = missing)."""

    extra = "peers"
    models = ("rasch", "2pl")
    #: named on the command line only (the packages are slow on the default sweep's largest
    #: size); ``benchmarks/versus_peers.py`` compares them side by side
    in_default_sweep = False
    #: None when the package takes missing responses; else why it does not and which
    #: estimator does (the end of the refusal's sentence)
    complete_only: ClassVar[str | None] = None

    def setup(self, responses: Responses, options: dict, n_observed: int) -> State:
        """The state; ``ValueError`` when some responses are missing and the package cannot
        take them (``complete_only``)."""
        n_responses = int(np.prod(np.shape(responses)))
        if self.complete_only is not None and n_observed < n_responses:
            raise ValueError(
                f"estimator {self.name!r} needs complete responses, and "
                f"{n_responses - n_observed} of {n_responses} are missing: {self.complete_only}"
            )
        return State(responses, options, n_observed, str(options["device"]))

    def estimate_or_fail(self, responses: np.ndarray, options: dict) -> PeerFit:
        """:meth:`estimate`, with an error from inside the package as a
        :class:`PackageFailure` that names it (module docstring)."""
        try:
            return self.estimate(responses, options)
        except PACKAGE_ERRORS as error:
            message = str(error).splitlines()[0] if str(error) else "no message"
            raise PackageFailure(
                f"estimator {self.name!r}: {self.backend} failed inside its fit on these "
                f"{responses.shape[0]}x{responses.shape[1]} responses "
                f"({type(error).__name__}: {message})"
            ) from error

    def estimate(self, responses: np.ndarray, options: dict) -> PeerFit:
        raise NotImplementedError

    @classmethod
    def install_command(cls) -> str:
        return "pip install 'irtbench[peers]'"

    def warm_up(self, responses: Responses | None = None) -> None:
        """The package's one-off costs (imports, caches) on at most 200 rows of the data: no
        JIT compilation to keep out, and a whole fit of a large matrix would double a cell."""
        super().warm_up(None if responses is None else responses[:200])

    def run(self, state: State) -> Result:
        clock = Stopwatch()
        found = find_extremes(state.responses, judge_students=False, scan=state.scan)
        keep = ~found.questions
        fit = self.estimate_or_fail(as_float(np.asarray(state.responses)[:, keep]),
                                    state.options)
        compute_seconds = clock.stop()
        n_questions = len(keep)

        def per_question(values: np.ndarray | None, extreme: float | np.ndarray
                         ) -> np.ndarray | None:
            if values is None:
                return None
            values = np.asarray(values, dtype=np.float64)
            full = np.empty((n_questions, *values.shape[1:]))
            full[keep] = values
            full[~keep] = extreme if np.ndim(extreme) < 1 or values.ndim == 1 \
                else np.asarray(extreme)[:, None]
            return full

        limits = found.difficulty_limit[found.questions]
        return Result(
            np.asarray(fit.skill, dtype=np.float64),
            per_question(fit.difficulty, limits),
            None if fit.skill_se is None else np.asarray(fit.skill_se, dtype=np.float64),
            per_question(fit.difficulty_se, np.inf),
            np.array([-fit.log_likelihood]) if fit.losses is None
            else np.asarray(fit.losses, dtype=np.float64),
            fit.n_iter,
            compute_seconds,
            {**fit.diagnostics, "log_likelihood": fit.log_likelihood},
            items={**{name: per_question(getattr(fit, name), np.nan) for name in PEER_ITEMS
                      if getattr(fit, name) is not None},
                   **{name: per_question(values, np.nan)
                      for name, values in (fit.items or {}).items()}},
            item_se={**{name: per_question(getattr(fit, f"{name}_se"), np.nan)
                        for name in PEER_ITEMS},
                     **{name: None for name in fit.items or {}}},
        )
