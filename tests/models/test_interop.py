"""MLflow 3.17 interoperability, for real: MLflow runs in its own venv, in a subprocess.

flowml -> MLflow: a scikit-learn model and a custom Python model saved by flowml load and
predict identically with ``mlflow.pyfunc.load_model``. MLflow -> flowml: scikit-learn models
saved by MLflow load and predict identically in flowml.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowml.exceptions import InvalidParameter
from flowml.models import PythonModel
from flowml.models.api import load_model, save_model
from flowml.models.input_example import load_input_example
from flowml.models.signature import infer_signature

pytestmark = pytest.mark.mlflow

MLFLOW_PREDICT = """
import json, sys
import mlflow, mlflow.models, pandas as pd
model_path, data_path, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
model = mlflow.pyfunc.load_model(model_path)
pred = model.predict(pd.read_parquet(data_path), params=params or None)
if hasattr(pred, "tolist"):
    pred = pred.tolist()
serving = open(model_path + "/serving_input_example.json").read() if len(sys.argv) > 4 else None
if serving:
    mlflow.models.validate_serving_input(model_path, serving)
print(json.dumps({
    "predictions": pred,
    "inputs": str(model.metadata.get_input_schema()),
    "params": str(model.metadata.get_params_schema()),
    "loader": model.metadata.flavors["python_function"]["loader_module"],
}))
"""


def _mlflow_predict(
    run_mlflow: Callable[..., str],
    model: Path,
    data: pd.DataFrame,
    tmp_path: Path,
    params: dict[str, Any] | None = None,
    check_serving: bool = False,
) -> dict[str, Any]:
    data_path = tmp_path / "data.parquet"
    data.to_parquet(data_path)
    args = [str(model), str(data_path), json.dumps(params or {})]
    if check_serving:
        args.append("serving")
    return json.loads(run_mlflow(MLFLOW_PREDICT, *args).strip().splitlines()[-1])


def test_flowml_sklearn_model_predicts_identically_in_mlflow(
    run_mlflow: Callable[..., str], tmp_path: Path, classifier: Any, frame: Any
) -> None:
    save_model(
        classifier, tmp_path / "m", input_example=frame.head(2), pyfunc_predict_fn="predict_proba"
    )
    ours = load_model(str(tmp_path / "m")).predict(frame)
    theirs = _mlflow_predict(run_mlflow, tmp_path / "m", frame, tmp_path, check_serving=True)
    assert theirs["loader"] == "mlflow.sklearn"
    assert theirs["inputs"] == "['a': double (required), 'b': long (required)]"
    np.testing.assert_array_equal(np.asarray(theirs["predictions"]), ours)


class ShiftModel(PythonModel):
    """Defined in this test module, which MLflow's venv cannot import: pickled by value."""

    def __init__(self, shift: float) -> None:
        self.shift = shift
        self.scale = 1.0

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["scale"]) as handle:
            self.scale = float(handle.read())

    def predict(self, context: Any, model_input: Any, params: dict | None = None) -> Any:
        bonus = (params or {}).get("bonus", 0.0)
        return (model_input["a"] * self.scale + self.shift + bonus).to_numpy()


def test_flowml_custom_model_predicts_identically_in_mlflow(
    run_mlflow: Callable[..., str], tmp_path: Path, frame: Any
) -> None:
    scale = tmp_path / "scale.txt"
    scale.write_text("3")
    save_model(
        python_model=ShiftModel(0.25),
        path=tmp_path / "m",
        pickle_by_value=True,
        artifacts={"scale": str(scale)},
        input_example=frame.head(2),
        signature=infer_signature(frame, params={"bonus": 0.0}),
    )
    ours = load_model(str(tmp_path / "m")).predict(frame, params={"bonus": 2.0})
    theirs = _mlflow_predict(run_mlflow, tmp_path / "m", frame, tmp_path, {"bonus": 2.0})
    assert theirs["loader"] == "mlflow.pyfunc.model"
    assert theirs["params"] == "['bonus': double (default: 0.0)]"
    np.testing.assert_array_equal(np.asarray(theirs["predictions"]), ours)
    np.testing.assert_allclose(ours, frame["a"] * 3 + 2.25)


MLFLOW_SAVE = """
import json, sys
import mlflow.sklearn, pandas as pd
from sklearn.ensemble import RandomForestClassifier
data = pd.read_parquet(sys.argv[1])
clf = RandomForestClassifier(n_estimators=5, random_state=0).fit(data, (data["a"] > 0).astype(int))
for fmt in sys.argv[3:]:
    kwargs = ({"skops_trusted_types": ["sklearn.tree._tree.Tree"]} if fmt == "skops"
              else {"serialization_format": fmt})
    mlflow.sklearn.save_model(clf, sys.argv[2] + "/" + fmt, input_example=data.head(3), **kwargs)
print(json.dumps(clf.predict_proba(data)[:, 1].tolist()))
"""


def test_mlflow_sklearn_models_load_and_predict_in_flowml(
    run_mlflow: Callable[..., str], tmp_path: Path, frame: Any
) -> None:
    frame.to_parquet(tmp_path / "data.parquet")
    out = run_mlflow(
        MLFLOW_SAVE, str(tmp_path / "data.parquet"), str(tmp_path), "cloudpickle", "pickle", "skops"
    )
    expected = np.asarray(json.loads(out.strip().splitlines()[-1]))
    for fmt in ("cloudpickle", "pickle"):
        model = load_model(str(tmp_path / fmt))
        assert model.loader_module == "mlflow.sklearn"
        assert model.metadata.extra["mlflow_version"].startswith("3.17.")
        assert model.metadata.get_input_schema().input_names() == ["a", "b"]
        native = model.unwrap()
        np.testing.assert_array_equal(native.predict_proba(frame)[:, 1], expected)
        np.testing.assert_array_equal(model.predict(frame), native.predict(frame))
        example = load_input_example(tmp_path / fmt, model.metadata.saved_input_example_info)
        pd.testing.assert_frame_equal(
            example, frame.head(3).reset_index(drop=True), check_dtype=False
        )
    try:
        import skops  # noqa: F401
    except ImportError:
        with pytest.raises(InvalidParameter, match="skops format: `pip install skops`"):
            load_model(str(tmp_path / "skops"))
    else:
        np.testing.assert_array_equal(
            load_model(str(tmp_path / "skops")).unwrap().predict_proba(frame)[:, 1], expected
        )
