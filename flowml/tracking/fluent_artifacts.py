"""The fluent artifact functions, with MLflow's names and signatures.

Each writes to (or names a place in) the active run's artifacts, starting a run when none is
active as MLflow's do, through that run's `TrackingClient`.

Example:
    >>> with flowml.start_run() as run:
    ...     flowml.log_text("hello", "notes/hello.txt")
    >>> [f.path for f in flowml.TrackingClient().list_artifacts(run.info.run_id, "notes")]
    ['notes/hello.txt']
"""

from __future__ import annotations

from typing import Any

from flowml.tracking.fluent import _run_id_for_logging, get_client

__all__ = [
    "get_artifact_uri",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_table",
    "log_text",
]


def log_artifact(local_path: str, artifact_path: str | None = None) -> None:
    """Copy a local file into the active run's artifacts (under ``artifact_path``).

    Raises:
        InvalidParameter: ``local_path`` is not a file, or ``artifact_path`` leaves the
            run's artifacts.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("notes.txt").write_text("first try")
        >>> with flowml.start_run() as run:
        ...     flowml.log_artifact("notes.txt", artifact_path="docs")
        >>> (Path(flowml.get_run(run.info.run_id).info.artifact_uri) / "docs/notes.txt").read_text()
        'first try'
    """
    run_id, client = _run_id_for_logging()
    client.log_artifact(run_id, local_path, artifact_path)


def log_artifacts(local_dir: str, artifact_path: str | None = None) -> None:
    """Copy a local directory's files into the active run's artifacts (under ``artifact_path``).

    Example:
        >>> from pathlib import Path
        >>> Path("out").mkdir()
        >>> _ = Path("out/a.txt").write_text("a")
        >>> with flowml.start_run() as run:
        ...     flowml.log_artifacts("out", artifact_path="results")
        >>> [f.path for f in flowml.TrackingClient().list_artifacts(run.info.run_id, "results")]
        ['results/a.txt']
    """
    run_id, client = _run_id_for_logging()
    client.log_artifacts(run_id, local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    """Save a string as the artifact ``artifact_file`` of the active run.

    Example:
        >>> with flowml.start_run() as run:
        ...     flowml.log_text("all good", "report/summary.txt")
        >>> client = flowml.TrackingClient()
        >>> [f.path for f in client.list_artifacts(run.info.run_id, "report")]
        ['report/summary.txt']
    """
    run_id, client = _run_id_for_logging()
    client.log_text(run_id, text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str) -> None:
    """Save a dict as a JSON (``.json``) or YAML (``.yaml``/``.yml``) artifact of the active run.

    Example:
        >>> import json
        >>> with flowml.start_run() as run:
        ...     flowml.log_dict({"classes": ["cat", "dog"]}, "labels.json")
        >>> path = flowml.TrackingClient().download_artifacts(run.info.run_id, "labels.json")
        >>> json.load(open(path))
        {'classes': ['cat', 'dog']}
    """
    run_id, client = _run_id_for_logging()
    client.log_dict(run_id, dictionary, artifact_file)


def log_image(
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = None,
) -> None:
    """Log an image: a file (``artifact_file``) or step ``step`` of the series ``key``.

    Args:
        image: a numpy array (HxW, HxWx1/3/4; bool, int in [0, 255] or float in [0, 1])
            or a PIL image.
        artifact_file: save it as this file (``"plots/mask.png"``); alone.
        key: instead, the name of an image series (MLflow's step-indexed layout).
        step: the series step (default 0).
        timestamp: epoch ms (default now).
        synchronous: accepted for MLflow's signature; images are always written at once.

    Raises:
        InvalidParameter: both or neither of ``artifact_file``/``key``, or a bad image.

    Example:
        >>> import numpy as np
        >>> with flowml.start_run():
        ...     flowml.log_image(np.zeros((28, 28)), key="digits", step=3)
        ...     flowml.log_image(np.ones((8, 8, 3)), artifact_file="plots/white.png")
    """
    run_id, client = _run_id_for_logging()
    client.log_image(run_id, image, artifact_file, key, step, timestamp)


def log_figure(
    figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
) -> None:
    """Save a matplotlib or plotly figure as the artifact ``artifact_file`` (``.png``,
    ``.svg``, ``.html`` for plotly...); ``save_kwargs`` go to ``savefig``/``to_html``.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> figure, axes = plt.subplots()
        >>> _ = axes.plot([1, 2, 3], [0.9, 0.5, 0.3])
        >>> with flowml.start_run() as run:
        ...     flowml.log_figure(figure, "loss.png")
        >>> plt.close(figure)
        >>> [f.path for f in flowml.TrackingClient().list_artifacts(run.info.run_id)]
        ['loss.png']
    """
    run_id, client = _run_id_for_logging()
    client.log_figure(run_id, figure, artifact_file, save_kwargs=save_kwargs)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Write a dict or DataFrame as a table artifact (``.json`` in pandas' ``split`` layout, or
    ``.parquet``); a second call with the same file appends rows, as MLflow's does.

    Example:
        >>> with flowml.start_run() as run:
        ...     flowml.log_table({"question": ["2+2?"], "answer": ["4"]}, "qa.json")
        ...     flowml.log_table({"question": ["3+3?"], "answer": ["6"]}, "qa.json")
        >>> path = flowml.TrackingClient().download_artifacts(run.info.run_id, "qa.json")
        >>> import pandas as pd
        >>> pd.read_json(path, orient="split")["answer"].tolist()
        [4, 6]
    """
    if run_id is None:
        run_id, client = _run_id_for_logging()
    else:
        client = get_client()
    client.log_table(run_id, data, artifact_file)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The URI of the active run's artifacts, or of ``artifact_path`` inside them.

    Example:
        >>> with flowml.start_run() as run:
        ...     uri = flowml.get_artifact_uri("model")
        >>> uri == f"{run.info.artifact_uri}/model"
        True
    """
    run_id, client = _run_id_for_logging()
    return client.artifact_repo(run_id).uri_for(artifact_path)
