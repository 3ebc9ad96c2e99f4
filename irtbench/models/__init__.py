"""The models irtbench fits, one file each behind :class:`~irtbench.models.base.Model`:
:mod:`~irtbench.models.rasch`, :mod:`~irtbench.models.twopl`, :mod:`~irtbench.models.threepl`,
:mod:`~irtbench.models.fourpl`, :mod:`~irtbench.models.m2pl` (the multidimensional 2PL: skills
``(n, D)``).

``MODELS`` names them in order; :func:`get_model` returns one's description. Nothing outside
this package and the estimators' kernels branches on a model's name: the rest loops over
:attr:`Model.item_parameters <irtbench.models.base.Model.item_parameters>`.
"""

from __future__ import annotations

import numpy as np

from irtbench.extremes import Extremes, extremes, find_extremes
from irtbench.models.base import Alignment, Model, sigmoid
from irtbench.models.m2pl import M2PL
from irtbench.models.rasch import (
    Rasch,
    asymptotic_se,
    information,
    log_likelihood,
    probabilities,
)
from irtbench.models.fourpl import FourPL
from irtbench.models.threepl import ThreePL
from irtbench.models.twopl import TwoPL

__all__ = [
    "ITEM_PARAMETERS",
    "MODELS",
    "Alignment",
    "Extremes",
    "Model",
    "asymptotic_se",
    "extremes",
    "find_extremes",
    "get_model",
    "information",
    "item_attribute",
    "log_likelihood",
    "model_suffix",
    "probabilities",
    "sigmoid",
]

_REGISTRY: dict[str, Model] = {model.name: model for model in (
    Rasch(), TwoPL(), ThreePL(), FourPL(), M2PL())}

#: the models irtbench fits, by name
MODELS: tuple[str, ...] = tuple(_REGISTRY)

#: every model's item parameters in order, each once (``"difficulty"`` first)
ITEM_PARAMETERS: tuple[str, ...] = tuple(dict.fromkeys(
    name for model in _REGISTRY.values() for name in model.item_parameters))


def model_suffix(model: str, separator: str = " ", *, title: bool = False) -> str:
    """How a label names a model after the rest: nothing for the first (the Rasch model, which
    labels from before the other models named implicitly), else ``separator`` and its name
    (``title``: its title, ``2PL``)."""
    if model == MODELS[0]:
        return ""
    return separator + (get_model(model).title if title else model)


def get_model(name: str) -> Model:
    """The description of the model ``name``; ``ValueError`` naming the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def item_attribute(owner: object, name: str) -> np.ndarray | None:
    """``owner.<parameter>`` (and ``<parameter>_se``) read from its ``extra_items`` (and
    ``extra_se``): None where its model has no such parameter; AttributeError for other names."""
    base = name[:-3] if name.endswith("_se") else name
    if base not in ITEM_PARAMETERS or base == "difficulty" or name.startswith("_"):
        raise AttributeError(f"{type(owner).__name__!r} object has no attribute {name!r}")
    store = vars(owner).get("extra_se" if name.endswith("_se") else "extra_items") or {}
    return store.get(base)
