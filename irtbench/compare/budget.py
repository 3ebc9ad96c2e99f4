r"""The time budget of a comparison and the fits made under it.

``time_budget`` seconds for the whole comparison (:class:`Budget`): each fit runs under the
time that is left (a SIGALRM in this process's main thread, :func:`irtbench.harness.limits.
time_limit`; a fit in C code is stopped when it returns to Python), and once it is spent the
remaining fits are skipped with that reason (:class:`Skipped`). :class:`Fitter` makes each fit
and counts it for the progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from irtbench.estimators import Fit, get_estimator
from irtbench.harness.cells import estimator_options
from irtbench.harness.limits import FitTimeout, time_limit

__all__ = ["Budget", "Fitter", "Skipped"]


@dataclass
class Budget:
    """Seconds left of the whole comparison (``seconds`` None or 0: no limit)."""

    seconds: float | None
    started: float = field(default_factory=time.perf_counter)

    def left(self) -> float | None:
        if not self.seconds:
            return None
        return self.seconds - (time.perf_counter() - self.started)

    def spent(self) -> bool:
        left = self.left()
        return left is not None and left <= 0.05


class Skipped(Exception):
    """A fit not run or not finished: its reason is the message."""


@dataclass
class Fitter:
    """Fits one (estimator, model) pair under the budget, counting the fits for the progress
    bar."""

    budget: Budget
    options: Mapping[str, Any]
    tick: Callable[[int], object]

    def __call__(self, name: str, model: str, responses: np.ndarray, *,
                 warm_up: bool = False) -> Fit:
        """One fit (after an untimed warm-up on the same data with ``warm_up``: the estimator's
        ``warm_up_options``, a few iterations, so that one-off costs stay out of its
        ``seconds``)."""
        if self.budget.spent():
            raise Skipped(f"the time budget of {self.budget.seconds:g} s was spent")
        estimator = get_estimator(name)(**estimator_options(name, self.options, "cpu"),
                                        model=model)
        try:
            with time_limit(self.budget.left()):
                if warm_up:
                    estimator.warm_up(responses)
                return estimator.fit(responses)
        except FitTimeout:
            raise Skipped(f"the time budget of {self.budget.seconds:g} s ran out during a "
                          "fit") from None
        finally:
            self.tick(1)
