"""MLflow 3.17's model formats both ways, with the genuine MLflow in its own venv: skops
(MLflow's default for scikit-learn), custom ``PythonModel``s loaded without MLflow, and the
requirements MLflow's own server needs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from flowml.exceptions import InvalidParameter
from flowml.models.api import load_model, save_model
from flowml.models.environment import MLFLOW_SERVING_REQUIREMENT

pytestmark = pytest.mark.mlflow

MLFLOW_SAVE_SKLEARN = """
import json, sys
import mlflow.sklearn, pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
data = pd.read_parquet(sys.argv[1])
y = (data["a"] > 0).astype(int)
linear = LogisticRegression().fit(data, y)
forest = RandomForestClassifier(n_estimators=4, random_state=0).fit(data, y)
mlflow.sklearn.save_model(linear, sys.argv[2] + "/linear", input_example=data.head(2))
mlflow.sklearn.save_model(forest, sys.argv[2] + "/forest",
                          skops_trusted_types=["sklearn.tree._tree.Tree"])
print(json.dumps({"linear": linear.predict_proba(data)[:, 1].tolist(),
                  "forest": forest.predict_proba(data)[:, 1].tolist()}))
"""


def _last_json(out: str) -> Any:
    return json.loads(out.strip().splitlines()[-1])


def test_mlflow_default_skops_models_load_in_flowml(
    run_mlflow: Callable[..., str], tmp_path: Path, frame: Any
) -> None:
    frame.to_parquet(tmp_path / "data.parquet")
    expected = _last_json(
        run_mlflow(MLFLOW_SAVE_SKLEARN, str(tmp_path / "data.parquet"), str(tmp_path))
    )
    for name in ("linear", "forest"):
        conf = yaml.safe_load((tmp_path / name / "MLmodel").read_text())["flavors"]["sklearn"]
        assert conf["serialization_format"] == "skops"  # MLflow 3.17's default
        model = load_model(str(tmp_path / name))
        np.testing.assert_allclose(model.unwrap().predict_proba(frame)[:, 1], expected[name])
        np.testing.assert_array_equal(model.predict(frame), model.unwrap().predict(frame))


MLFLOW_LOAD_SKLEARN = """
import json, sys
import mlflow.pyfunc, mlflow.sklearn, pandas as pd
data = pd.read_parquet(sys.argv[1])
native = mlflow.sklearn.load_model(sys.argv[2])
print(json.dumps({"proba": native.predict_proba(data)[:, 1].tolist(),
                  "pred": mlflow.pyfunc.load_model(sys.argv[2]).predict(data).tolist()}))
"""


def test_flowml_skops_models_load_in_mlflow(
    run_mlflow: Callable[..., str], tmp_path: Path, frame: Any, labels: Any
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=4, random_state=0).fit(frame, labels)
    target = tmp_path / "forest"
    save_model(
        forest,
        target,
        serialization_format="skops",
        skops_trusted_types=["sklearn.tree._tree.Tree"],
    )
    assert (target / "model.skops").is_file() and not (target / "model.pkl").exists()
    requirements = (target / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("skops==") for line in requirements)
    frame.to_parquet(tmp_path / "data.parquet")
    theirs = _last_json(
        run_mlflow(MLFLOW_LOAD_SKLEARN, str(tmp_path / "data.parquet"), str(target))
    )
    np.testing.assert_allclose(theirs["proba"], forest.predict_proba(frame)[:, 1])
    assert theirs["pred"] == forest.predict(frame).tolist()
    np.testing.assert_array_equal(load_model(str(target)).predict(frame), theirs["pred"])


def test_skops_save_refuses_untrusted_types_and_leaves_nothing(
    tmp_path: Path, frame: Any, labels: Any
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(random_state=0).fit(frame, labels)
    with pytest.raises(InvalidParameter, match=r"sklearn\.tree\._tree\.Tree"):
        save_model(tree, tmp_path / "tree", serialization_format="skops")
    assert not (tmp_path / "tree").exists()
    assert list(tmp_path.iterdir()) == []  # no staging directory left behind either
    with pytest.raises(InvalidParameter, match="skops_trusted_types is for"):
        save_model(tree, tmp_path / "tree", skops_trusted_types=["x"])
    local = _LocalEstimator().fit(frame, labels)
    with pytest.raises(InvalidParameter, match="does not trust by default") as info:
        save_model(local, tmp_path / "local", serialization_format="skops")
    assert "test_mlflow_formats.Local" in str(info.value)
    trusted = [f"{__name__}.<lambda>", f"{__name__}.Local"]
    with pytest.raises(InvalidParameter, match="does not load back"):
        save_model(
            local, tmp_path / "local", serialization_format="skops", skops_trusted_types=trusted
        )
    assert list(tmp_path.iterdir()) == []


def _local_class() -> type:
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Local(ClassifierMixin, BaseEstimator):  # defined in a function: skops refuses it
        def fit(self, X: Any, y: Any) -> Any:
            self.classes_ = np.unique(y)
            self.hook_ = lambda v: v
            return self

        def predict(self, X: Any) -> Any:
            return np.zeros(len(X), dtype=int)

    return Local


def _LocalEstimator() -> Any:  # noqa: N802 - reads like the class it builds
    return _local_class()()


MLFLOW_SAVE_CUSTOM = """
import sys
import mlflow, mlflow.pyfunc, numpy as np

class Scaled(mlflow.pyfunc.PythonModel):
    def __init__(self, shift):
        self.shift = shift
    def load_context(self, context):
        self.scale = float(open(context.artifacts["scale"]).read())
    def predict(self, context, model_input, params=None):
        bonus = (params or {}).get("bonus", 0.0)
        return (model_input["a"] * self.scale + self.shift + bonus).to_numpy()

class UsesMlflow(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        mlflow.log_metric("calls", 1)
        return model_input

class Hinted(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[str], params=None) -> list[str]:
        return model_input

open(sys.argv[1] + "/scale.txt", "w").write("3")
mlflow.pyfunc.save_model(sys.argv[1] + "/plain", python_model=Scaled(0.5),
                         artifacts={"scale": sys.argv[1] + "/scale.txt"})
mlflow.pyfunc.save_model(sys.argv[1] + "/uses_mlflow", python_model=UsesMlflow())
mlflow.pyfunc.save_model(sys.argv[1] + "/hinted", python_model=Hinted())
print(mlflow.__version__)
"""


def test_mlflow_custom_models_load_without_mlflow_or_say_what_to_install(
    run_mlflow: Callable[..., str], tmp_path: Path, frame: Any
) -> None:
    import importlib.util

    assert importlib.util.find_spec("mlflow") is None  # flowml's environment has no MLflow
    version = run_mlflow(MLFLOW_SAVE_CUSTOM, str(tmp_path)).strip().splitlines()[-1]
    model = load_model(str(tmp_path / "plain"))
    np.testing.assert_allclose(model.predict(frame), frame["a"] * 3 + 0.5)
    for name in ("uses_mlflow", "hinted"):
        with pytest.raises(InvalidParameter, match="uses MLflow|imports mlflow") as info:
            load_model(str(tmp_path / name))
        assert f"pip install 'mlflow=={version}'" in str(info.value)


MLFLOW_CHECK_REQUIREMENTS = """
import json, sys
import mlflow.sklearn
from mlflow.utils.environment import _contains_mlflow_requirement, _PythonEnv
from mlflow.utils.requirements_utils import _parse_requirements
from sklearn.linear_model import LogisticRegression
model_dir = sys.argv[1]

def parsed(path):
    return [r.req_str for r in _parse_requirements(path, is_constraint=False)]

ours = parsed(model_dir + "/requirements.txt")
env = _PythonEnv.from_yaml(model_dir + "/python_env.yaml")
mlflow.sklearn.save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), sys.argv[2],
                          serialization_format="skops")
theirs = parsed(sys.argv[2] + "/requirements.txt")
print(json.dumps({"ours": ours, "theirs": theirs, "has_mlflow": _contains_mlflow_requirement(ours),
                  "deps": env.dependencies, "python": env.python}))
"""


def test_requirements_let_mlflows_server_rebuild_the_environment(
    run_mlflow: Callable[..., str], tmp_path: Path, classifier: Any
) -> None:
    save_model(classifier, tmp_path / "ours", serialization_format="skops")
    lines = (tmp_path / "ours" / "requirements.txt").read_text().splitlines()
    assert lines[0] == MLFLOW_SERVING_REQUIREMENT  # MLflow is not installed here
    checked = _last_json(
        run_mlflow(MLFLOW_CHECK_REQUIREMENTS, str(tmp_path / "ours"), str(tmp_path / "theirs"))
    )
    assert checked["has_mlflow"]  # MLflow's own test for "can run the scoring server"
    assert checked["deps"] == ["-r requirements.txt"]

    def names(reqs: list[str]) -> set[str]:
        return {r.split("==")[0].split(">=")[0].lower() for r in reqs}

    # everything MLflow writes for the same model, flowml writes too
    assert names(checked["theirs"]) <= names(checked["ours"])
