r"""What a fold's calibration gives the strategies and the estimates: the model, the items
fitted on the calibration rows, those rows' skills, the skill distribution new respondents are
scored under and how they are scored (:class:`Calibration`); and the scoring of each new
respondent on its own items (:func:`score_items`), by :func:`irtbench.scoring.score`.

A new respondent is scored on the items it was shown alone: the columns of all the rows'
items, each row's other cells left unanswered, so that the cost grows with the items shown,
not with the benchmark's :math:`J`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from irtbench.estimators import Fit
from irtbench.models import Model, get_model
from irtbench.scoring import Scores, SkillPrior, score

__all__ = ["Calibration", "default_method", "score_items"]


def default_method(model: Model) -> str:
    """How new respondents are scored unless told: EAP under the calibration skill
    distribution for one skill, MAP for vector skills (the M2PL: :func:`irtbench.scoring.score`
    offers only MAP there)."""
    return "map" if len(model.skill_shape(1)) > 1 else "eap"


@dataclass(frozen=True)
class Calibration:
    """A fold's calibration (module docstring): ``model``, the fitted ``items``, the
    calibration respondents' fitted ``skill``, the ``prior`` new respondents are scored under
    (:meth:`SkillPrior.of <irtbench.scoring.SkillPrior.of>` of the fit) and the scoring
    ``method``."""

    model: Model
    items: Mapping[str, np.ndarray]
    skill: np.ndarray
    prior: SkillPrior
    method: str

    @classmethod
    def of(cls, fit: Fit, method: str | None = None) -> Calibration:
        """The calibration of a fit, scored by ``method`` (None: :func:`default_method`)."""
        model = get_model(fit.model)
        return cls(model, fit.items, np.asarray(fit.skill, np.float64), SkillPrior.of(fit),
                   method or default_method(model))

    @property
    def vector_skills(self) -> bool:
        return len(self.model.skill_shape(1)) > 1

    def prior_mean(self) -> np.ndarray:
        """The skill distribution's mean, ``(D,)`` (one entry for one skill)."""
        return np.asarray(self.prior.mean, np.float64).reshape(-1)

    def prior_covariance(self) -> np.ndarray:
        """The skill distribution's covariance, ``(D, D)`` (:math:`s^2` for one skill)."""
        spread = np.asarray(self.prior.sd_or_cov, np.float64)
        return np.atleast_2d(spread) if self.vector_skills else np.atleast_2d(spread**2)

    def prior_skills(self, n: int) -> np.ndarray:
        """The distribution's mean for ``n`` respondents, in the model's shape of skills."""
        mean = self.prior_mean()
        return np.tile(mean, (n, 1)) if self.vector_skills else np.full(n, mean[0])


def score_items(calibration: Calibration, answers: np.ndarray, items: np.ndarray) -> Scores:
    """Each row's skill from its answers to its own ``items`` (``(n, k)``, or ``(1, k)``
    shared) alone, by :func:`irtbench.scoring.score` under the calibration's prior and
    method (module docstring)."""
    n = answers.shape[0]
    items = np.broadcast_to(items, (n, items.shape[1]))
    columns = np.unique(items)
    shown = np.full((n, len(columns)), np.nan, dtype=np.float32)
    rows = np.arange(n)[:, None]
    shown[rows, np.searchsorted(columns, items)] = answers[rows, items]
    fitted = {name: np.asarray(values)[columns] for name, values in calibration.items.items()}
    return score(calibration.model, fitted, shown, method=calibration.method,
                 prior=calibration.prior)
