"""Bait for the confinement tests: model files whose unpickling leaves a marker behind."""

from __future__ import annotations

import pickle
from pathlib import Path

import yaml


class _Bomb:
    """Unpickles by creating `marker` (a directory) and returns a working custom model."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        code = (
            f"__import__('os').mkdir({str(self.marker)!r}) or "
            "__import__('flowml.models.python_model', fromlist=['_'])._FunctionModel(len)"
        )
        return eval, (code,)


def bomb_pickle(path: Path, marker: Path) -> Path:
    """Write a pickle at `path` whose loading creates `marker`; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(_Bomb(marker)))
    return path


def plant_bomb_model(directory: Path, marker: Path) -> Path:
    """A complete custom-model directory whose pickle creates `marker` when it loads."""
    bomb_pickle(directory / "python_model.pkl", marker)
    mlmodel = {
        "flavors": {
            "python_function": {
                "loader_module": "mlflow.pyfunc.model",
                "python_model": "python_model.pkl",
            }
        }
    }
    (directory / "MLmodel").write_text(yaml.safe_dump(mlmodel), encoding="utf-8")
    return directory


def edit_mlmodel(directory: Path, flavor: str, **entries: object) -> None:
    """Overwrite entries of one flavor block in the MLmodel file at `directory`."""
    path = directory / "MLmodel"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["flavors"][flavor].update(entries)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
