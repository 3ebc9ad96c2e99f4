"""The child side of the ``theta-irt`` peer (:mod:`irtbench.estimators.theta_irt`): a standalone
script that imports only the standard library, numpy and theta (which switches JAX to float64
for its whole process, the reason it runs apart), never irtbench.

    python -I _theta_irt_runner.py IN.npz OUT.npz SPAWNED

``IN.npz`` holds ``responses`` (float64, NaN = missing, the kept questions), theta's settings
(``model``: ``1PL``/``2PL``/``3PL``/``4PL``; ``n_points``, ``max_iter``, ``tol``,
``n_newton``; the priors ``la_sd``, ``beta_sd``, ``c_a``, ``c_b``, ``slip_a``, ``slip_b``, NaN
for none), ``item_se`` (compute theta's
item SEs) and ``warm`` (fit once before the fit that is kept and timed, so that its time is
theta's warm time, JIT compilation excluded). ``OUT.npz``: the item parameters ``a``, ``b``,
``c``, ``d``, their SEs (NaN without), EAP skills ``skill`` and their posterior SDs
``skill_se`` (theta's ``score``, N(0, 1) prior), ``loglik`` (the marginal log-likelihood at the estimate),
``objective`` (the penalised objective EM ascends, per iteration), ``n_iter``, ``converged``,
and the child's clocks: ``startup_seconds`` (start and imports), ``first_fit_seconds`` (the
first fit, compilation included), ``fit_seconds`` (the kept fit), ``score_seconds`` and
``se_seconds``.
"""

import math
import sys
import time
from pathlib import Path

# run as a script, its own folder (irtbench/estimators) comes first on sys.path; -I leaves it
# out on Python >= 3.11 only
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def monotonic() -> float:
    """The system-wide monotonic clock, comparable with the parent's."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def _or_none(value: float):
    value = float(value)
    return None if math.isnan(value) else value


def main(source: str, target: str, spawned: str) -> None:
    import numpy as np

    settings = {key: value[()] for key, value in np.load(source).items()}
    import theta

    imported = monotonic()
    responses = np.asarray(settings["responses"], dtype=np.float64)
    priors = theta.Priors(la_sd=_or_none(settings["la_sd"]),
                          beta_sd=_or_none(settings["beta_sd"]),
                          c_a=_or_none(settings["c_a"]), c_b=_or_none(settings["c_b"]),
                          slip_a=_or_none(settings["slip_a"]),
                          slip_b=_or_none(settings["slip_b"]))

    def calibrate():
        return theta.fit(responses, str(settings["model"]), n_points=int(settings["n_points"]),
                         max_iter=int(settings["max_iter"]), tol=float(settings["tol"]),
                         n_newton=int(settings["n_newton"]), priors=priors)

    started = monotonic()
    model = calibrate()
    first_fit_seconds = monotonic() - started
    fit_seconds = first_fit_seconds
    if bool(settings["warm"]):
        started = monotonic()
        model = calibrate()
        fit_seconds = monotonic() - started
    started = monotonic()
    skill, skill_se = model.score(responses, method="EAP", n_points=int(settings["n_points"]))
    score_seconds = monotonic() - started
    n_items = len(model.b)
    errors = {name: np.full(n_items, np.nan) for name in ("a", "b", "c", "d")}
    started = monotonic()
    if bool(settings["item_se"]):
        found = model.standard_errors(responses)
        for name in errors:
            if name in found:
                errors[name] = np.broadcast_to(np.asarray(found[name], np.float64),
                                               (n_items,)).copy()
    se_seconds = monotonic() - started
    np.savez(
        target,
        a=np.asarray(model.a, np.float64), b=np.asarray(model.b, np.float64),
        c=np.asarray(model.c, np.float64), d=np.asarray(model.d, np.float64),
        a_se=errors["a"], b_se=errors["b"], c_se=errors["c"], d_se=errors["d"],
        skill=np.asarray(skill, np.float64), skill_se=np.asarray(skill_se, np.float64),
        loglik=float(model.loglik), objective=np.asarray(model.objective_history, np.float64),
        n_iter=int(model.n_iter), converged=bool(model.converged),
        startup_seconds=imported - float(spawned), first_fit_seconds=first_fit_seconds,
        fit_seconds=fit_seconds, score_seconds=score_seconds, se_seconds=se_seconds,
        theta_version=_version("theta-irt"), jax_version=_version("jax"),
    )


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return ""


if __name__ == "__main__":
    main(*sys.argv[1:4])
