"""flows/promote.py, the champion/challenger example, under real Prefect flow runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import flowml
from flowml.registry import RegistryClient
from flowml.registry.errors import PromotionRefused

pytestmark = pytest.mark.usefixtures("prefect_harness")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def promote_flow() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "flowml_example_promote", ROOT / "flows" / "promote.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def data(tmp_path: Path) -> tuple[Any, Any, str]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400)})
    frame["label"] = (frame["x1"] + 0.5 * frame["x2"] > 0).astype("int64")
    holdout = tmp_path / "holdout.csv"
    frame.iloc[300:].to_csv(holdout, index=False)
    train = frame.iloc[:300]
    return train[["x1", "x2"]], train["label"], str(holdout)


def _register(model: Any, features: Any, labels: Any) -> int:
    from flowml.models import log_model

    model.fit(features, labels)
    with flowml.start_run():
        info = log_model(
            model, "model", registered_model_name="wine", input_example=features.head(3)
        )
    return info.registered_model_version


def test_champion_challenger(promote_flow: ModuleType, data):
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    features, labels, holdout = data
    client = RegistryClient()
    weak = _register(DummyClassifier(strategy="most_frequent"), features, labels)
    first = promote_flow.champion_challenger("wine", holdout, "label")
    assert first.version == weak and first.previous is None  # nobody to beat yet
    strong = _register(LogisticRegression(), features, labels)
    second = promote_flow.champion_challenger("wine", holdout, "label", min_score=0.8)
    assert (second.version, second.previous) == (strong, weak)
    assert client.get_model_version_by_alias("wine", "champion").version == strong
    scores = {g["gate"]: (g["candidate_value"], g["champion_value"]) for g in second.gates}
    candidate, champion = scores[
        "beats_champion('accuracy_score', margin=0, higher_is_better=True)"
    ]
    assert candidate > 0.9 and champion < candidate
    evaluation = next(g for g in second.gates if g["gate"].startswith("evaluation("))
    assert evaluation["passed"], evaluation
    assert promote_flow.champion_challenger("wine", holdout, "label") is None  # already champion
    _register(DummyClassifier(strategy="most_frequent"), features, labels)
    state = promote_flow.champion_challenger("wine", holdout, "label", return_state=True)
    with pytest.raises(PromotionRefused, match="does not beat"):
        state.result()
    assert client.get_model_version_by_alias("wine", "champion").version == strong
    refused = client.get_audit_log("wine")[-1]
    assert refused.action == "promotion_refused" and refused.reason.startswith(
        "champion/challenger"
    )
