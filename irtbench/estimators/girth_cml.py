"""``girth-cml``: girth's conditional maximum likelihood of the Rasch model
(``girth.rasch_conditional``), as a peer of ``cml``.

Difficulties on girth's origin (sum zero); skills by maximum likelihood at those difficulties
(``girth.ability_mle``), -/+inf for students with all responses wrong / right. No SEs. The
Rasch model only, and complete responses only: ``rasch_conditional`` has no handling of missing
responses (it adds girth's missing-value code, -99999, into the raw scores and fails with an
``IndexError``), so a matrix with any is refused in one line naming ``cml`` (booklet designs:
each student conditioned on the questions they answered) and ``mml-em`` (any pattern).
"""

from __future__ import annotations

import numpy as np

from irtbench.estimators._peers import PeerEstimator, PeerFit
from irtbench.estimators.base import register
from irtbench.estimators.girth_mml import girth_matrix


@register
class GirthCML(PeerEstimator):
    """girth's conditional ML (Rasch), wrapped."""

    name = "girth-cml"
    colour = 2
    objective = "conditional"
    gives_standard_errors = False
    reports_iterations = False
    infinite_extremes = True
    backend = "girth"
    requirements = ("girth",)
    summary = "peer: girth's conditional ML of the Rasch model, ML skills"
    spec: dict = {}
    models = ("rasch",)
    complete_only = ("girth's rasch_conditional has no handling of missing responses; use cml "
                     "(conditional ML over each booklet's questions) or mml-em")

    def estimate(self, responses: np.ndarray, options: dict) -> PeerFit:
        import girth

        data = girth_matrix(responses)
        difficulty = np.asarray(girth.rasch_conditional(data)["Difficulty"], dtype=np.float64)
        skill = girth.ability_mle(data, difficulty, 1, no_estimate=np.inf)
        return PeerFit(np.asarray(skill, dtype=np.float64), None, difficulty, None, None, None,
                       0, float("nan"), {})
