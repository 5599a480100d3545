"""Evaluation fixtures: small labelled data sets and fitted scikit-learn models."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def binary() -> tuple[Any, Any]:
    """A 300-row binary classification frame (label column ``label``) and a model fit on it."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300)})
    frame["label"] = (frame["x1"] + 0.3 * frame["x2"] + rng.normal(0, 0.5, 300) > 0).astype(int)
    model = LogisticRegression().fit(frame[["x1", "x2"]], frame["label"])
    return frame, model


@pytest.fixture
def multiclass() -> tuple[Any, Any, Any]:
    """A 3-class problem as a numpy array, its string labels, and a model fit on them."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    features, y = make_classification(400, 6, n_informative=4, n_classes=3, random_state=0)
    labels = [("red", "green", "blue")[i] for i in y]
    return features, labels, LogisticRegression(max_iter=500).fit(features, labels)


@pytest.fixture
def regression() -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["y"] = 3 * frame["a"] - frame["b"] + 10 + rng.normal(0, 0.3, 200)
    return frame, LinearRegression().fit(frame[["a", "b"]], frame["y"])
