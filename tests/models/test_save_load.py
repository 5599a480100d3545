"""save_model / load_model round trips for every flavor and input type, and the files written."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import flowml.models.flavors.sklearn as sk_flavor
from flowml.exceptions import InvalidParameter, ResourceAlreadyExists, ResourceNotFound
from flowml.models import PythonModel, PythonModelContext
from flowml.models.api import load_model, load_native, save_model
from flowml.models.mlmodel import Model
from flowml.models.signature import infer_signature


def _mlmodel(path: Path) -> dict[str, Any]:
    return yaml.safe_load((path / "MLmodel").read_text())


@pytest.mark.parametrize("fmt", ["cloudpickle", "pickle"])
def test_sklearn_round_trip(tmp_path: Path, classifier: Any, frame: Any, fmt: str) -> None:
    save_model(classifier, tmp_path / "m", serialization_format=fmt)
    model = load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(model.predict(frame), classifier.predict(frame))
    native = sk_flavor.load_model(str(tmp_path / "m"))
    np.testing.assert_array_equal(native.predict(frame), classifier.predict(frame))
    conf = _mlmodel(tmp_path / "m")["flavors"]
    assert conf["sklearn"]["serialization_format"] == fmt
    assert conf["python_function"]["loader_module"] == "mlflow.sklearn"


def test_sklearn_predict_proba_is_selectable(tmp_path: Path, classifier: Any, frame: Any) -> None:
    sk_flavor.save_model(classifier, tmp_path / "m", pyfunc_predict_fn="predict_proba")
    np.testing.assert_allclose(
        load_model(str(tmp_path / "m")).predict(frame), classifier.predict_proba(frame)
    )


def test_sklearn_pipeline_with_numpy_input(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.arange(20, dtype="float64").reshape(10, 2)
    pipe = make_pipeline(StandardScaler(), LinearRegression()).fit(X, X.sum(axis=1))
    save_model(pipe, tmp_path / "m", input_example=X[:2])
    info = _mlmodel(tmp_path / "m")
    assert json.loads(info["signature"]["inputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}
    ]
    assert info["saved_input_example_info"]["type"] == "ndarray"
    example = json.loads((tmp_path / "m" / "input_example.json").read_text())
    assert example == [[0.0, 1.0], [2.0, 3.0]]
    assert json.loads((tmp_path / "m" / "serving_input_example.json").read_text()) == {
        "inputs": [[0.0, 1.0], [2.0, 3.0]]
    }
    np.testing.assert_allclose(load_model(str(tmp_path / "m")).predict(X), pipe.predict(X))


def test_dataframe_example_files_and_inferred_signature(
    tmp_path: Path, classifier: Any, frame: Any
) -> None:
    save_model(classifier, tmp_path / "m", input_example=frame.head(2))
    info = _mlmodel(tmp_path / "m")
    assert info["saved_input_example_info"] == {
        "artifact_path": "input_example.json",
        "pandas_orient": "split",
        "serving_input_path": "serving_input_example.json",
        "type": "dataframe",
    }
    assert json.loads(info["signature"]["inputs"]) == [
        {"type": "double", "name": "a", "required": True},
        {"type": "long", "name": "b", "required": True},
    ]
    assert json.loads(info["signature"]["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}
    ]
    example = json.loads((tmp_path / "m" / "input_example.json").read_text())
    assert example["columns"] == ["a", "b"] and len(example["data"]) == 2
    serving = json.loads((tmp_path / "m" / "serving_input_example.json").read_text())
    assert serving == {"dataframe_split": example}


def test_mlmodel_and_environment_files(tmp_path: Path, classifier: Any) -> None:
    import cloudpickle
    import sklearn

    save_model(
        classifier,
        tmp_path / "m",
        extra_pip_requirements=["requests>=2"],
        metadata={"team": "risk"},
    )
    info = _mlmodel(tmp_path / "m")
    assert {
        "flavors",
        "model_uuid",
        "utc_time_created",
        "flowml_version",
        "model_size_bytes",
        "metadata",
    } <= set(info)
    assert len(info["model_uuid"]) == 32 and info["metadata"] == {"team": "risk"}
    assert info["flavors"]["python_function"]["env"] == {
        "conda": "conda.yaml",
        "virtualenv": "python_env.yaml",
    }
    requirements = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert f"cloudpickle=={cloudpickle.__version__}" in requirements
    assert requirements[-1] == "requests>=2"
    python_env = yaml.safe_load((tmp_path / "m" / "python_env.yaml").read_text())
    assert python_env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert python_env["dependencies"] == ["-r requirements.txt"]
    assert "wheel" in python_env["build_dependencies"]
    conda = yaml.safe_load((tmp_path / "m" / "conda.yaml").read_text())
    assert conda["dependencies"][0] == f"python={python_env['python']}"
    assert conda["dependencies"][-1] == {"pip": requirements}


def test_pip_requirements_replace_the_inferred_ones(tmp_path: Path, classifier: Any) -> None:
    save_model(classifier, tmp_path / "m", pip_requirements=["scikit-learn", "numpy<3"])
    assert (tmp_path / "m" / "requirements.txt").read_text() == "scikit-learn\nnumpy<3\n"


class AddK(PythonModel):
    def __init__(self, offset: float) -> None:
        self.offset = offset
        self.loaded: str | None = None

    def load_context(self, context: PythonModelContext) -> None:
        path = context.artifacts.get("weights")
        self.loaded = Path(path).read_text() if path else None

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict | None = None
    ) -> Any:
        scale = float(self.loaded or 1)
        return (model_input["a"] * scale + self.offset + (params or {}).get("k", 0)).to_numpy()


def test_custom_model_with_artifacts_params_and_config(tmp_path: Path, frame: Any) -> None:
    weights = tmp_path / "weights.txt"
    weights.write_text("2")
    signature = infer_signature(frame, params={"k": 0})
    save_model(
        python_model=AddK(1.0),
        path=tmp_path / "m",
        signature=signature,
        artifacts={"weights": str(weights)},
        model_config={"mode": "fast"},
    )
    weights.write_text("100")  # the model keeps its own copy
    model = load_model(str(tmp_path / "m"))
    np.testing.assert_allclose(model.predict(frame), frame["a"] * 2 + 1)
    np.testing.assert_allclose(model.predict(frame, params={"k": 10}), frame["a"] * 2 + 11)
    conf = _mlmodel(tmp_path / "m")["flavors"]["python_function"]
    assert conf["loader_module"] == "mlflow.pyfunc.model"
    assert conf["artifacts"] == {"weights": {"path": "artifacts/weights.txt", "uri": str(weights)}}
    assert conf["config"] == {"mode": "fast"}
    assert isinstance(load_native(str(tmp_path / "m"), "python_function"), AddK)


def test_function_model_and_list_inputs(tmp_path: Path) -> None:
    save_model(
        python_model=lambda data: [len(x) for x in data.iloc[:, 0]],
        path=tmp_path / "m",
        input_example=["ab", "c"],
    )
    info = _mlmodel(tmp_path / "m")
    assert info["saved_input_example_info"]["type"] == "json_object"
    assert json.loads(info["signature"]["inputs"]) == [{"type": "string", "required": True}]
    assert load_model(str(tmp_path / "m")).predict(["xyz", "q"]) == [3, 1]


def test_records_input_example(tmp_path: Path) -> None:
    example = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    save_model(python_model=lambda df: df["a"] * 2, path=tmp_path / "m", input_example=example)
    assert json.loads((tmp_path / "m" / "serving_input_example.json").read_text()) == {
        "inputs": example
    }
    assert load_model(str(tmp_path / "m")).predict(example).tolist() == [2, 4]


def test_code_paths_are_shipped_and_importable(tmp_path: Path) -> None:
    package = tmp_path / "src" / "helper_mod_for_flowml_test.py"
    package.parent.mkdir()
    package.write_text("def double(x):\n    return x * 2\n")
    sys.path.insert(0, str(package.parent))
    try:
        import helper_mod_for_flowml_test as helper

        save_model(
            python_model=lambda df: helper.double(df["a"]),
            path=tmp_path / "m",
            code_paths=[str(package)],
        )
    finally:
        sys.path.remove(str(package.parent))
        sys.modules.pop("helper_mod_for_flowml_test", None)
    assert (tmp_path / "m" / "code" / package.name).is_file()
    assert _mlmodel(tmp_path / "m")["flavors"]["python_function"]["code"] == "code"
    try:
        out = load_model(str(tmp_path / "m")).predict(pd.DataFrame({"a": [1, 2]}))
    finally:
        sys.modules.pop("helper_mod_for_flowml_test", None)
    assert out.tolist() == [2, 4]


def test_fsspec_memory_uri_loads(tmp_path: Path, classifier: Any, frame: Any) -> None:
    import fsspec

    save_model(classifier, tmp_path / "m")
    fs = fsspec.filesystem("memory")
    fs.put(str(tmp_path / "m"), "/models/clf", recursive=True)
    try:
        model = load_model("memory://models/clf")
        np.testing.assert_array_equal(model.predict(frame), classifier.predict(frame))
    finally:
        fs.rm("/models/clf", recursive=True)


# -- refusals ---------------------------------------------------------------------------


def test_existing_target_is_never_overwritten(tmp_path: Path, classifier: Any) -> None:
    target = tmp_path / "m"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ResourceAlreadyExists, match="exists and is not empty"):
        save_model(classifier, target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    save_model(classifier, empty)
    assert (empty / "MLmodel").is_file()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"serialization_format": "json"}, InvalidParameter, "serialization_format must be one of"),
        ({"pyfunc_predict_fn": "transform"}, InvalidParameter, "pyfunc_predict_fn must be one of"),
        ({"colour": "red"}, InvalidParameter, r"Unknown sklearn flavor option\(s\): \['colour'\]"),
        ({"input_example": object()}, InvalidParameter, "Unsupported input example type object"),
        ({"signature": {"inputs": "[]"}}, InvalidParameter, "signature must be a ModelSignature"),
        ({"extra_pip_requirements": "numpy"}, InvalidParameter, "a list of lines"),
        ({"code_paths": ["/no/such/file.py"]}, InvalidParameter, "does not exist"),
        ({"flavor": "tensorflow"}, ResourceNotFound, "Unknown flavor 'tensorflow'"),
    ],
)
def test_bad_arguments_leave_nothing_behind(
    tmp_path: Path, classifier: Any, kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        save_model(classifier, tmp_path / "m", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_objects_and_argument_mixes(tmp_path: Path, classifier: Any) -> None:
    with pytest.raises(InvalidParameter, match="No flowml flavor can save a builtins.dict"):
        save_model({"not": "a model"}, tmp_path / "m")
    with pytest.raises(InvalidParameter, match="exactly one of `model` or `python_model`"):
        save_model(classifier, tmp_path / "m", python_model=lambda x: x)
    with pytest.raises(InvalidParameter, match="python_model must be a flowml PythonModel"):
        save_model(python_model=42, path=tmp_path / "m")
    with pytest.raises(InvalidParameter, match="cannot save a LogisticRegression"):
        save_model(classifier, tmp_path / "m", flavor="python_function")
    assert list(tmp_path.iterdir()) == []


def test_loading_what_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ResourceNotFound, match="No model at"):
        load_model(str(tmp_path / "missing"))
    with pytest.raises(ResourceNotFound, match="No MLmodel file"):
        load_model(str(tmp_path))
    (tmp_path / "MLmodel").write_text("flavors: [1, 2]\n")
    with pytest.raises(InvalidParameter, match="'flavors' mapping"):
        load_model(str(tmp_path))
    (tmp_path / "MLmodel").write_text("flavors:\n  onnx: {}\n")
    with pytest.raises(ResourceNotFound, match="no 'python_function' flavor"):
        load_model(str(tmp_path))
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.onnx\n"
    )
    with pytest.raises(ResourceNotFound, match="No flowml flavor loads models with loader_module"):
        load_model(str(tmp_path))


def test_unknown_mlmodel_keys_survive_a_round_trip(tmp_path: Path) -> None:
    data = {
        "flavors": {"python_function": {"loader_module": "x"}},
        "mlflow_version": "3.17.2",
        "model_id": None,
        "model_uuid": "u" * 32,
        "utc_time_created": "t",
    }
    model = Model.from_dict(data)
    assert model.to_dict()["mlflow_version"] == "3.17.2" and "model_id" in model.to_dict()
