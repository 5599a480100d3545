"""MLflow's everyday fluent names: experiments, search_runs options, last_active_run,
set_tracking_uri's refusal of file stores, images, figures, tables and dataset inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import flowml
from flowml.exceptions import (
    ArtifactPathError,
    InvalidParameter,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from flowml.tracking import fluent

IMAGE_FILE = re.compile(
    r"^images/(?P<key>[^+]+)\+step\+(?P<step>\d+)\+timestamp\+(?P<ts>\d+)\+[0-9a-f-]{36}"
    r"(?P<compressed>\+compressed)?\.(?P<ext>png|webp)$"
)


def _files(run_id: str, path: str | None = None) -> list[str]:
    return sorted(f.path for f in flowml.TrackingClient().list_artifacts(run_id, path))


def _read(run_id: str, path: str) -> bytes:
    client = flowml.TrackingClient()
    return client.artifact_repo(run_id).read_bytes(path)


# -- experiments ------------------------------------------------------------------------------


def test_experiment_functions_have_mlflows_names():
    exp_id = flowml.create_experiment("parity", tags={"team": "ml", "n": 3})
    assert flowml.get_experiment(exp_id).name == "parity"
    assert flowml.get_experiment_by_name("parity").experiment_id == exp_id
    assert flowml.get_experiment_by_name("missing") is None
    assert flowml.get_experiment(exp_id).tags == {"team": "ml", "n": "3"}
    with pytest.raises(ResourceAlreadyExists):
        flowml.create_experiment("parity")

    flowml.set_experiment("parity")
    flowml.set_experiment_tag("stage", "dev")
    flowml.set_experiment_tags({"owner": "ana", "stage": "prod"})
    assert flowml.get_experiment(exp_id).tags == {
        "team": "ml",
        "n": "3",
        "owner": "ana",
        "stage": "prod",
    }
    with pytest.raises(InvalidParameter):
        flowml.set_experiment_tag("bad key!", "x")
    assert "bad key!" not in flowml.get_experiment(exp_id).tags

    flowml.delete_experiment(exp_id)
    assert flowml.get_experiment(exp_id).lifecycle_stage == "deleted"
    with pytest.raises(ResourceNotFound):
        flowml.get_experiment("987654")
    with pytest.raises(ResourceNotFound):
        flowml.delete_experiment("987654")


# -- search_runs, last_active_run ---------------------------------------------------------------


def test_search_runs_output_format_and_all_experiments():
    for name in ("a", "b"):
        flowml.set_experiment(name)
        with flowml.start_run():
            flowml.log_metric("m", 1.0)
    flowml.create_experiment("gone")
    flowml.set_experiment("gone")
    with flowml.start_run():
        pass
    flowml.delete_experiment(flowml.get_experiment_by_name("gone").experiment_id)
    flowml.set_experiment("b")

    assert len(flowml.search_runs()) == 1  # the current experiment only
    everything = flowml.search_runs(search_all_experiments=True, output_format="list")
    assert len(everything) == 2  # the deleted experiment is not searched, as in MLflow
    frame = flowml.search_runs(search_all_experiments=True, output_format="pandas")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2
    assert {"run_id", "experiment_id", "metrics.m"} <= set(frame.columns)
    # output_format wins over flowml's older `output`
    assert isinstance(flowml.search_runs(output="list", output_format="pandas"), pd.DataFrame)
    named = flowml.search_runs(experiment_names=["a"], search_all_experiments=True)
    assert len(named) == 1

    with pytest.raises(InvalidParameter, match="not both"):
        flowml.search_runs(experiment_ids=["1"], experiment_names=["a"])
    with pytest.raises(InvalidParameter, match="Unknown output"):
        flowml.search_runs(output_format="json")


def test_last_active_run():
    assert flowml.last_active_run() is None
    with flowml.start_run() as run:
        flowml.log_metric("acc", 0.5)
        assert flowml.last_active_run().info.run_id == run.info.run_id
    last = flowml.last_active_run()
    assert last.info.run_id == run.info.run_id
    assert last.info.status == "FINISHED" and last.data.metrics == {"acc": 0.5}


# -- set_tracking_uri ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    ["./mlruns", "mlruns", "/data/mlruns", "file:///tmp/mlruns", "file:mlruns", Path("mlruns")],
)
def test_set_tracking_uri_refuses_file_stores(uri, tmp_path):
    good = f"sqlite:///{tmp_path / 'kept.db'}"
    flowml.set_tracking_uri(good)
    with pytest.raises(InvalidParameter, match="flowml import mlflow") as info:
        flowml.set_tracking_uri(uri)
    assert "mlflow server --backend-store-uri" in str(info.value)
    assert flowml.get_tracking_uri() == good  # the refused URI changed nothing


def test_file_store_from_the_environment_is_refused_at_first_use(monkeypatch):
    monkeypatch.setenv("FLOWML_TRACKING_URI", "./mlruns")
    with pytest.raises(InvalidParameter, match="flowml import mlflow"):
        flowml.TrackingClient().search_experiments()


def test_set_tracking_uri_accepts_stores_and_none(tmp_path):
    flowml.set_tracking_uri(f"sqlite:///{tmp_path / 'x.db'}")
    flowml.set_tracking_uri("http://127.0.0.1:5000")
    assert flowml.get_tracking_uri() == "http://127.0.0.1:5000"
    flowml.set_tracking_uri(None)
    assert fluent.tracking_uri_override() is None


# -- images -------------------------------------------------------------------------------------


def test_log_image_series_uses_mlflows_layout():
    from PIL import Image

    with flowml.start_run() as run:
        for step in range(3):
            flowml.log_image(
                np.full((40, 60, 3), step * 50, dtype=np.uint8),
                key="val/pred",
                step=step,
                timestamp=1_000 + step,
            )
        flowml.log_image(Image.new("RGB", (300, 100)), key="pil", step=7)
    files = _files(run.info.run_id, "images")
    assert len(files) == 8
    parsed = [IMAGE_FILE.match(f) for f in files]
    assert all(parsed), files
    series = sorted(
        (m["step"], m["ts"], bool(m["compressed"]), m["ext"])
        for m in parsed
        if m["key"] == "val~pred"
    )
    assert series == [
        (str(s), str(1_000 + s), compressed, "webp" if compressed else "png")
        for s in range(3)
        for compressed in (False, True)
    ]
    compressed = next(f for f in files if f.startswith("images/pil") and f.endswith(".webp"))
    with Image.open(__import__("io").BytesIO(_read(run.info.run_id, compressed))) as small:
        assert small.size == (256, 85)  # fits 256 pixels, keeps the aspect ratio
    assert flowml.get_run(run.info.run_id).data.tags["mlflow.loggedImages"] == "True"


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((5, 5), dtype=bool),
        np.zeros((5, 5, 1), dtype=np.int64),
        np.ones((5, 5, 3), dtype=np.float32),
        np.zeros((5, 5, 4), dtype=np.uint8),
    ],
)
def test_log_image_accepts_mlflows_array_kinds(array):
    from PIL import Image

    with flowml.start_run() as run:
        flowml.log_image(array, "plots/img.png")
    with Image.open(__import__("io").BytesIO(_read(run.info.run_id, "plots/img.png"))) as img:
        assert img.size == (5, 5)


def test_log_image_rescales_floats_out_of_range_with_a_warning():
    with flowml.start_run() as run:
        with pytest.warns(UserWarning, match="rescaled"):
            flowml.log_image(np.linspace(-1, 3, 25).reshape(5, 5), "f.png")
    assert _files(run.info.run_id) == ["f.png"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image": np.full((4, 4), 300), "key": "k"}, r"\[0, 255\]"),
        ({"image": np.zeros((4, 4, 2)), "key": "k"}, "HxW"),
        ({"image": np.zeros((4,)), "key": "k"}, "HxW"),
        ({"image": np.array([["a"]]), "key": "k"}, "dtype"),
        ({"image": [[0, 1]], "key": "k"}, "numpy array or a PIL image"),
        ({"image": np.zeros((4, 4)), "key": "bad#key"}, "Invalid image key"),
        ({"image": np.zeros((4, 4)), "key": "k", "artifact_file": "a.png"}, "not both"),
        ({"image": np.zeros((4, 4))}, "artifact_file"),
        ({"image": np.full((4, 4), np.nan), "key": "k"}, "NaN"),
        ({"image": np.zeros((4, 4)), "key": "k", "step": "1"}, "step must be an integer"),
        ({"image": np.zeros((4, 4)), "key": "k", "timestamp": 1.5}, "timestamp must be"),
    ],
)
def test_log_image_refuses_bad_input_and_writes_nothing(kwargs, match):
    with flowml.start_run() as run:
        with pytest.raises(InvalidParameter, match=match):
            flowml.log_image(**kwargs)
    assert _files(run.info.run_id) == []
    assert "mlflow.loggedImages" not in flowml.get_run(run.info.run_id).data.tags


def test_log_image_paths_stay_inside_the_run():
    with flowml.start_run() as run:
        with pytest.raises(ArtifactPathError):
            flowml.log_image(np.zeros((4, 4)), "../../escape.png")
        # dots and slashes are legal in a key: the key becomes one file name under images/
        flowml.log_image(np.zeros((4, 4)), key="../../etc", step=1)
    files = _files(run.info.run_id, "images")
    assert len(files) == 2 and all(f.startswith("images/..~..~etc+step+1+") for f in files)
    root = Path(flowml.get_run(run.info.run_id).info.artifact_uri)
    assert not (root.parent / "escape.png").exists()


# -- figures ------------------------------------------------------------------------------------


def test_log_figure_matplotlib_and_plotly():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    with flowml.start_run() as run:
        flowml.log_figure(fig, "plots/line.png")
        flowml.log_figure(fig, "plots/line.svg", save_kwargs={"dpi": 50})
        flowml.log_figure(go.Figure(go.Scatter(x=[0, 1], y=[2, 3])), "plots/scatter.html")
    plt.close(fig)
    rid = run.info.run_id
    assert _files(rid, "plots") == ["plots/line.png", "plots/line.svg", "plots/scatter.html"]
    assert _read(rid, "plots/line.png").startswith(b"\x89PNG")
    assert b"<svg" in _read(rid, "plots/line.svg")
    html = _read(rid, "plots/scatter.html").decode()
    assert "cdn.plot.ly" in html and "scatter" in html


def test_log_figure_refuses_what_it_cannot_save():
    import plotly.graph_objects as go

    with flowml.start_run() as run:
        with pytest.raises(InvalidParameter, match="matplotlib or plotly"):
            flowml.log_figure(object(), "x.png")
        with pytest.raises(InvalidParameter, match="plotly figure is saved as"):
            flowml.log_figure(go.Figure(), "x.txt")
        with pytest.raises(ArtifactPathError):
            flowml.log_figure(go.Figure(), "../x.html")
    assert _files(run.info.run_id) == []


# -- tables -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["json", "parquet"])
def test_log_table_appends_as_mlflow_does(suffix):
    path = f"eval/results.{suffix}"
    with flowml.start_run() as run:
        flowml.log_table({"q": ["a", "b"], "score": [0.1, 0.2]}, path)
        flowml.log_table(pd.DataFrame({"q": ["c"], "score": [0.3]}), path)
        flowml.log_table({"q": "d", "score": 0.4}, path)  # all scalars: one row
    raw = _read(run.info.run_id, path)
    if suffix == "json":
        table = json.loads(raw)
        assert table["columns"] == ["q", "score"]
        assert table["data"] == [["a", 0.1], ["b", 0.2], ["c", 0.3], ["d", 0.4]]
    else:
        frame = pd.read_parquet(__import__("io").BytesIO(raw))
        assert frame["q"].tolist() == ["a", "b", "c", "d"]
    tag = json.loads(flowml.get_run(run.info.run_id).data.tags["mlflow.loggedArtifacts"])
    assert tag == [{"path": path, "type": "table"}]


def test_log_table_stores_image_columns_as_files():
    from PIL import Image

    images = [Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), "red")]
    with flowml.start_run() as run:
        flowml.log_table({"prompt": ["dog", "cat"], "image": images}, "gen.json")
    table = json.loads(_read(run.info.run_id, "gen.json"))
    cells = [row[1] for row in table["data"]]
    assert all(c["type"] == "image" for c in cells)
    assert all(c["filepath"].startswith("table_images/gen/") for c in cells)
    stored = _files(run.info.run_id, "table_images/gen")
    assert sorted(stored) == sorted(
        [c["filepath"] for c in cells] + [c["compressed_filepath"] for c in cells]
    )


@pytest.mark.parametrize(
    ("data", "path", "match"),
    [
        ({"a": [1]}, "table.csv", ".json or .parquet"),
        ({"a": [1]}, "a,b.json", "may not contain"),
        ([1, 2], "t.json", "dict or a pandas DataFrame"),
        ({"a": [1, object()]}, "t.parquet", "Cannot save"),
    ],
)
def test_log_table_refuses_bad_input(data, path, match):
    with flowml.start_run() as run:
        with pytest.raises(InvalidParameter, match=match):
            flowml.log_table(data, path)
    assert _files(run.info.run_id) == []


def test_log_table_mixed_image_column_and_unreadable_existing_table_are_left_alone():
    from PIL import Image

    with flowml.start_run() as run:
        with pytest.raises(InvalidParameter, match="mixes images"):
            flowml.log_table({"img": [Image.new("RGB", (2, 2)), "text"]}, "t.json")
        flowml.log_text("not a table", "old.json")
        with pytest.raises(InvalidParameter, match="cannot be read"):
            flowml.log_table({"a": [1]}, "old.json")
    assert _read(run.info.run_id, "old.json") == b"not a table"
    assert "mlflow.loggedArtifacts" not in flowml.get_run(run.info.run_id).data.tags


# -- datasets and log_input ---------------------------------------------------------------------


def test_log_input_takes_mlflow_style_datasets():
    frame = pd.DataFrame({"x": [1.0, 2.0], "label": [0, 1]})
    ds = flowml.data.from_pandas(
        frame, source="s3://bucket/train.csv", targets="label", name="train"
    )
    described = ds.to_dict()
    assert described["source_type"] == "s3"
    assert json.loads(described["source"]) == {"uri": "s3://bucket/train.csv"}
    assert json.loads(described["schema"]) == {
        "mlflow_colspec": [
            {"type": "double", "name": "x", "required": True},
            {"type": "long", "name": "label", "required": True},
        ]
    }
    assert json.loads(described["profile"]) == {"num_rows": 2, "num_elements": 4}
    arrays = flowml.data.from_numpy(np.zeros((3, 2)), targets=np.array([0, 1, 0]))
    assert arrays.uri.startswith("mlflow-dataset:dataset@blake2b:")

    with flowml.start_run() as run:
        flowml.log_input(ds, context="training", tags={"split": "a"})
        flowml.log_input(dataset=arrays, context="eval")
    graph = flowml.lineage(run.info.run_id)
    uris = {n.uri: n for n in graph.nodes.values() if n.kind == "dataset"}
    assert set(uris) == {"s3://bucket/train.csv", arrays.uri}
    assert uris["s3://bucket/train.csv"].digest == ds.digest
    recorded = json.loads(flowml.get_run(run.info.run_id).data.tags["flowml.inputs"])
    assert [r["tags"] for r in recorded] == [
        {"mlflow.data.context": "training", "split": "a"},
        {"mlflow.data.context": "eval"},
    ]

    # the same data read by another run links the two runs
    with flowml.start_run() as other:
        flowml.log_input(flowml.data.from_numpy(np.zeros((3, 2)), targets=np.array([0, 1, 0])))
    assert arrays.uri in {n.uri for n in flowml.lineage(other.info.run_id).nodes.values()}


def test_dataset_bad_input():
    frame = pd.DataFrame({"x": [1.0]})
    with pytest.raises(InvalidParameter, match="targets column"):
        flowml.data.from_pandas(frame, targets="y")
    with pytest.raises(InvalidParameter, match="DataFrame"):
        flowml.data.from_pandas([1, 2])
    with pytest.raises(InvalidParameter, match="numpy array"):
        flowml.data.from_numpy([1, 2])
    with pytest.raises(InvalidParameter, match="dataset name"):
        flowml.data.from_pandas(frame, name="")
    with flowml.start_run() as run:
        ds = flowml.data.from_pandas(frame)
        with pytest.raises(InvalidParameter, match="not both"):
            flowml.log_input(ds, dataset=ds)
        with pytest.raises(InvalidParameter, match="context"):
            flowml.log_input(ds, context="x" * 300)
    assert not [n for n in flowml.lineage(run.info.run_id).nodes.values() if n.kind == "dataset"]
    assert "flowml.inputs" not in flowml.get_run(run.info.run_id).data.tags


def test_log_input_takes_mlflows_positional_order_and_model_inputs():
    ds = flowml.data.from_numpy(np.arange(6).reshape(3, 2), name="feats")

    class LoggedModelInput:  # what MLflow passes: an object with a model_id
        model_id = "m-0123abcd"

    with flowml.start_run() as run:
        flowml.log_input(ds, "training", {"split": "b"})  # MLflow: (dataset, context, tags)
        flowml.log_input(model=LoggedModelInput())
        with pytest.raises(InvalidParameter, match="model must be"):
            flowml.log_input(model="../escape")
    nodes = {n.uri: n for n in flowml.lineage(run.info.run_id).nodes.values()}
    assert nodes[ds.uri].label == "feats" and nodes["models:/m-0123abcd"].kind == "model"
    recorded = json.loads(flowml.get_run(run.info.run_id).data.tags["flowml.inputs"])
    assert recorded == [
        {
            "uri": ds.uri,
            "name": "feats",
            "digest": ds.digest,
            "tags": {"mlflow.data.context": "training", "split": "b"},
        }
    ]


def test_missing_optional_libraries_are_named_with_their_install(monkeypatch):
    import sys

    import plotly.graph_objects as go

    with flowml.start_run() as run:
        # plotly writes images through kaleido (not among the test dependencies)
        monkeypatch.setitem(sys.modules, "kaleido", None)
        with pytest.raises(InvalidParameter, match="pip install kaleido"):
            flowml.log_figure(go.Figure(), "fig.png")
        monkeypatch.setitem(sys.modules, "PIL", None)  # as if pillow were not installed
        monkeypatch.setitem(sys.modules, "PIL.Image", None)
        with pytest.raises(InvalidParameter, match=r"pip install pillow"):
            flowml.log_image(np.zeros((4, 4)), key="k")
    assert _files(run.info.run_id) == []
