"""flowml's MLflow-named functions take MLflow 3.17's arguments: read from the genuine
MLflow in its own venv, every parameter MLflow accepts is accepted by flowml, in MLflow's
positional order, apart from the differences the README's table names."""

from __future__ import annotations

import importlib.util
import inspect
import json
import subprocess
from pathlib import Path

import pytest

import flowml

pytestmark = pytest.mark.mlflow

ROOT = Path(__file__).resolve().parents[1]

NAMES = [
    "autolog",
    "create_experiment",
    "delete_experiment",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "last_active_run",
    "log_figure",
    "log_image",
    "log_input",
    "log_table",
    "search_runs",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tracking_uri",
    "sklearn.autolog",
    "data.from_pandas",
    "data.from_numpy",
]
# MLflow parameter -> why flowml has none (each is in the README's table)
NOT_TAKEN = {
    ("create_experiment", "trace_location"): "Databricks Unity Catalog trace locations",
}
# MLflow parameter -> flowml's name for the same position
RENAMED = {("log_input", "dataset"): "source"}

DUMP = r"""
import inspect, json, sys
import mlflow, mlflow.data, mlflow.sklearn
out = {}
for dotted in sys.argv[1:]:
    obj = mlflow
    for part in dotted.split("."):
        obj = getattr(obj, part)
    out[dotted] = [(p.name, p.kind.name) for p in inspect.signature(obj).parameters.values()]
print(json.dumps(out))
"""


def _mlflow_signatures() -> dict[str, list[tuple[str, str]]]:
    env_module = ROOT / "benchmarks" / "_mlflow_env.py"
    spec = importlib.util.spec_from_file_location("_mlflow_env", env_module)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    done = subprocess.run(
        [module.mlflow_python(), "-c", DUMP, *NAMES],
        capture_output=True,
        text=True,
        env=module.mlflow_env(),
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _flowml(dotted: str) -> inspect.Signature:
    obj = flowml
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return inspect.signature(obj)


def test_flowml_takes_mlflows_arguments_in_mlflows_order():
    theirs = _mlflow_signatures()
    for name in NAMES:
        ours = _flowml(name).parameters
        positional = [
            p.name for p in ours.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        index = 0
        for param, kind in theirs[name]:
            if (name, param) in NOT_TAKEN:
                continue
            mine = RENAMED.get((name, param), param)
            assert mine in ours, f"flowml.{name} lacks MLflow's {param!r}"
            if kind == "POSITIONAL_OR_KEYWORD":
                assert positional[index] == mine, (
                    f"flowml.{name}: position {index} is {positional[index]!r}, "
                    f"MLflow's is {param!r}"
                )
                index += 1
            else:
                assert ours[mine].kind in (
                    inspect.Parameter.KEYWORD_ONLY,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                ), f"flowml.{name}: {mine!r} must be accepted by keyword"
