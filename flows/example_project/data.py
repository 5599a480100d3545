"""The example's data: datasets that ship inside scikit-learn, so nothing is downloaded."""

from __future__ import annotations

from sklearn.datasets import load_iris, load_wine
from sklearn.utils import Bunch

LOADERS = {"iris": load_iris, "wine": load_wine}


def load(name: str) -> Bunch:
    """Load a bundled dataset by name (``iris`` or ``wine``)."""
    if name not in LOADERS:
        raise SystemExit(f"unknown dataset {name!r}; choose one of {', '.join(LOADERS)}")
    return LOADERS[name](as_frame=True)
