r"""The halves of held-out respondents (``split="rows"``).

Each held-out row's observed items are split at random into halves (:func:`halves`); its skill
is estimated from one half under the items fitted on the other rows
(:func:`irtbench.scoring.score`: EAP or MAP under the fit's skill distribution,
:meth:`SkillPrior.of <irtbench.scoring.SkillPrior.of>`, or ML; the M2PL by MAP) and the other
half is predicted.
"""

from __future__ import annotations

import numpy as np

__all__ = ["halves"]


def halves(observed: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each row's observed items split at random into a scoring half (True) and a scored half:
    ``(n, J)`` bool of the scoring half (``ceil(m/2)`` of a row's ``m`` answers; a row with a
    single answer has nothing to score)."""
    rng = np.random.default_rng(seed)
    scoring = np.zeros(observed.shape, dtype=bool)
    for i in range(observed.shape[0]):
        items = np.flatnonzero(observed[i])
        chosen = rng.permutation(items)[: (len(items) + 1) // 2]
        scoring[i, chosen] = True
    return scoring
