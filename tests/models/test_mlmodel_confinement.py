"""Every file an MLmodel names stays inside the model directory.

A crafted MLmodel points ``pickled_model``, ``python_model``, ``data``, ``code`` or an
``artifacts`` entry outside its directory, at a pickle that creates a marker when it is
unpickled. Loading must fail with `InvalidParameter` before anything is read: the marker
never appears and ``sys.path`` is untouched.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import flowml
from flowml.exceptions import InvalidParameter
from flowml.models import load_model
from flowml.models.input_example import load_input_example
from flowml.models.mlmodel import Model

from .helpers import bomb_pickle, edit_mlmodel


def _double(model_input: Any) -> Any:
    return model_input["a"] * 2


@pytest.fixture
def outside(tmp_path: Path) -> dict[str, Path]:
    """A booby-trapped pickle and a code directory, both outside any model directory."""
    marker = tmp_path / "unpickled"
    pkl = bomb_pickle(tmp_path / "outside" / "evil.pkl", marker)
    code = tmp_path / "outside" / "code"
    code.mkdir()
    (code / "evil_module.py").write_text("import os\nos.mkdir('never')\n", encoding="utf-8")
    return {"marker": marker, "pickle": pkl, "code": code}


@pytest.fixture
def sk_model(tmp_path: Path, classifier: Any) -> Path:
    path = tmp_path / "models" / "sk"
    flowml.save_model(classifier, path)
    return path


@pytest.fixture
def py_model(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "py"
    flowml.save_model(python_model=_double, path=path)
    return path


def _entries_pointing_at(target: Path, model: Path) -> list[str]:
    rel = os.path.relpath(target, model)  # ../../outside/evil.pkl
    return [
        rel,
        str(target),  # absolute
        f"./{rel}",
        rel.replace("..", "%2e%2e"),
        rel.replace("/", "%2f"),
        rel.replace("/", "\\"),
        f"file://{target}",
    ]


def _refused(model: Path, outside: dict[str, Path], *loaders: Any) -> None:
    path_before = list(sys.path)
    for load in loaders:
        with pytest.raises(InvalidParameter, match="model directory"):
            load()
    assert not outside["marker"].exists()
    assert sys.path == path_before


def test_the_bait_is_live(outside: dict[str, Path]):
    """Control: the planted pickle does create the marker when something unpickles it."""
    import pickle

    pickle.loads(outside["pickle"].read_bytes())
    assert outside["marker"].is_dir()


def test_sklearn_pickled_model_outside_is_refused(sk_model: Path, outside: dict[str, Path]):
    for entry in _entries_pointing_at(outside["pickle"], sk_model):
        edit_mlmodel(sk_model, "sklearn", pickled_model=entry)
        _refused(
            sk_model,
            outside,
            lambda: load_model(str(sk_model)),
            lambda: flowml.sklearn.load_model(str(sk_model)),
        )


def test_python_model_pickle_outside_is_refused(py_model: Path, outside: dict[str, Path]):
    for entry in _entries_pointing_at(outside["pickle"], py_model):
        edit_mlmodel(py_model, "python_function", python_model=entry)
        _refused(py_model, outside, lambda: load_model(str(py_model)))


@pytest.mark.parametrize("key", ["data", "model_path", "model_data"])
def test_other_file_entries_outside_are_refused(py_model: Path, outside: dict[str, Path], key: str):
    for entry in _entries_pointing_at(outside["pickle"], py_model):
        edit_mlmodel(py_model, "python_function", **{key: entry})
        _refused(py_model, outside, lambda: load_model(str(py_model)))


def test_code_outside_is_never_put_on_sys_path(py_model: Path, outside: dict[str, Path]):
    for entry in [*_entries_pointing_at(outside["code"], py_model), "/"]:
        edit_mlmodel(py_model, "python_function", code=entry)
        _refused(py_model, outside, lambda: load_model(str(py_model)))
        assert str(outside["code"]) not in sys.path


def test_artifacts_outside_are_refused(tmp_path: Path, outside: dict[str, Path]):
    data = tmp_path / "weights.txt"
    data.write_text("1", encoding="utf-8")
    model = tmp_path / "models" / "art"
    flowml.save_model(python_model=_double, path=model, artifacts={"weights": str(data)})
    for entry in _entries_pointing_at(outside["pickle"], model):
        edit_mlmodel(
            model, "python_function", artifacts={"weights": {"path": entry, "uri": str(data)}}
        )
        _refused(model, outside, lambda: load_model(str(model)))


def test_a_symlink_out_of_the_model_directory_is_refused(sk_model: Path, outside: dict[str, Path]):
    (sk_model / "model.pkl").unlink()
    (sk_model / "model.pkl").symlink_to(outside["pickle"])
    _refused(
        sk_model,
        outside,
        lambda: load_model(str(sk_model)),
        lambda: flowml.sklearn.load_model(str(sk_model)),
    )


def test_an_input_example_outside_is_refused(tmp_path: Path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"token": 1}', encoding="utf-8")
    model = tmp_path / "models" / "m"
    model.mkdir(parents=True)
    for entry in ("../../secret.json", str(secret), "%2e%2e/%2e%2e/secret.json"):
        with pytest.raises(InvalidParameter, match="model directory"):
            load_input_example(model, {"artifact_path": entry, "type": "json_object"})
        mlmodel = Model(saved_input_example_info={"artifact_path": entry, "type": "json_object"})
        with pytest.raises(InvalidParameter):
            mlmodel.check_paths(model)


def test_honest_models_still_load(
    sk_model: Path, py_model: Path, tmp_path: Path, frame: Any, outside: dict[str, Path]
):
    """Relative paths inside the directory, nested ones and ``code`` keep working."""
    assert len(load_model(str(sk_model)).predict(frame)) == len(frame)
    moved = sk_model / "nested" / "model.pkl"
    moved.parent.mkdir()
    shutil.move(sk_model / "model.pkl", moved)
    edit_mlmodel(sk_model, "sklearn", pickled_model="./nested//model.pkl")
    assert len(load_model(str(sk_model)).predict(frame)) == len(frame)
    helper = tmp_path / "helper_mod_for_confinement.py"
    helper.write_text("VALUE = 1\n", encoding="utf-8")
    with_code = tmp_path / "models" / "code"
    flowml.save_model(python_model=_double, path=with_code, code_paths=[helper])
    before = list(sys.path)
    try:
        got = load_model(str(with_code)).predict(pd.DataFrame({"a": [2.0]}))
        assert list(got) == [4.0]
        assert sys.path[0] == str((with_code / "code").resolve())
    finally:
        sys.path[:] = before
    from flowml.models.mlmodel import model_file

    inside = model_file(py_model, "python_model.pkl", "k")
    assert inside == (py_model / "python_model.pkl").resolve()
    assert not outside["marker"].exists()
