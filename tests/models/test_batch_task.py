"""``flowml.tasks.batch_predict`` inside real Prefect flow runs, mapped over several files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowml.exceptions import InvalidParameter
from flowml.models.api import save_model


@pytest.fixture
def model_dir(tmp_path: Path, classifier: Any, frame: Any) -> str:
    save_model(classifier, tmp_path / "clf", input_example=frame.head(2))
    return str(tmp_path / "clf")


def test_mapped_over_files_in_a_flow(
    prefect_harness: None, tmp_path: Path, model_dir: str, classifier: Any
) -> None:
    from prefect import flow, unmapped

    from flowml.tasks.batch_predict import batch_predict, clear_model_cache

    rng = np.random.default_rng(2)
    inputs, outputs = [], []
    for i in range(3):
        part = pd.DataFrame({"a": rng.normal(size=1_200), "b": rng.integers(0, 9, size=1_200)})
        path = tmp_path / f"part-{i}.parquet"
        part.to_parquet(path)
        inputs.append(str(path))
        outputs.append(f"memory://scored-{tmp_path.name}/part-{i}.csv")

    @flow
    def score_all(model_uri: str, sources: list[str], targets: list[str]) -> list[Any]:
        return batch_predict.map(unmapped(model_uri), sources, targets, chunk_rows=500).result()

    clear_model_cache()
    results = score_all(model_dir, inputs, outputs)
    assert [(r.rows, r.chunks) for r in results] == [(1_200, 3)] * 3
    for source, target in zip(inputs, outputs, strict=True):
        scored = pd.read_csv(target)
        expected = classifier.predict(pd.read_parquet(source))
        np.testing.assert_array_equal(scored["prediction"], expected)


def test_a_violation_fails_the_task_run(
    prefect_harness: None, tmp_path: Path, model_dir: str
) -> None:
    from prefect import flow

    from flowml.tasks.batch_predict import batch_predict

    pd.DataFrame({"a": [1.0]}).to_csv(tmp_path / "in.csv", index=False)

    @flow
    def score_one() -> Any:
        return batch_predict(model_dir, str(tmp_path / "in.csv"), str(tmp_path / "out.csv"))

    with pytest.raises(InvalidParameter, match=r"missing input column\(s\) \['b'\]"):
        score_one()
    assert not (tmp_path / "out.csv").exists()
