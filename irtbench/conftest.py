"""Doctests of an estimator whose backend is not installed are skipped with the reason (its
module imports without the backend; its examples need it)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from _pytest.doctest import DoctestItem

    from irtbench.estimators import estimators, get_estimator

    missing = {}
    for name in estimators():
        cls = get_estimator(name)
        if not cls.available():
            missing.setdefault(cls.__module__, f"{name}: {', '.join(cls.missing_requirements())} "
                                               f"not installed ({cls.install_command()})")
    for item in items:
        if isinstance(item, DoctestItem) and item.dtest.globs.get("__name__") in missing:
            item.add_marker(pytest.mark.skip(reason=missing[item.dtest.globs["__name__"]]))
