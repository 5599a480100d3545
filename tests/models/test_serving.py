"""The scoring server as a real process on a loopback port, called over HTTP."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowml.models.api import load_model, save_model
from flowml.models.signature import infer_signature

from .conftest import Server


def _post(
    server: Server, body: bytes | str, content_type: str = "application/json"
) -> tuple[int, Any]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(
        server.url + "/invocations",
        data=data,
        method="POST",
        headers={"Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def _get(server: Server, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(server.url + path, timeout=10) as reply:
        return reply.status, reply.read()


def _content_type(server: Server, path: str) -> str:
    with urllib.request.urlopen(server.url + path, timeout=10) as reply:
        return str(reply.headers["Content-Type"])


@pytest.fixture
def served(
    tmp_path: Path, classifier: Any, frame: Any, start_server: Callable[..., Server]
) -> Server:
    save_model(classifier, tmp_path / "clf", input_example=frame.head(2))
    return start_server(str(tmp_path / "clf"))


def test_health_and_version(served: Server) -> None:
    from flowml import __version__

    assert _get(served, "/ping")[0] == 200
    assert _get(served, "/health")[0] == 200
    # MLflow's server answers a bare version string labelled application/json.
    assert _get(served, "/version") == (200, __version__.encode())
    assert _content_type(served, "/version") == "application/json"


def test_every_json_payload_shape(served: Server, classifier: Any, frame: Any) -> None:
    rows = frame.head(3)
    expected = classifier.predict(rows).tolist()
    records = rows.to_dict(orient="records")
    payloads = {
        "dataframe_split": {
            "dataframe_split": {"columns": ["a", "b"], "data": rows.values.tolist()}
        },
        "split+index": {"dataframe_split": rows.to_dict(orient="split")},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs-records": {"inputs": records},
        "inputs-columns": {"inputs": {"a": rows["a"].tolist(), "b": rows["b"].tolist()}},
        "with-params": {"dataframe_records": records, "params": {"ignored": 1}},
    }
    for name, payload in payloads.items():
        status, body = _post(served, json.dumps(payload))
        assert (status, body) == (200, {"predictions": expected}), name


def test_serving_input_example_round_trips(served: Server, tmp_path: Path) -> None:
    example = (tmp_path / "clf" / "serving_input_example.json").read_text()
    status, body = _post(served, example)
    assert status == 200 and len(body["predictions"]) == 2


def test_csv_and_parquet_bodies(served: Server, classifier: Any, frame: Any) -> None:
    expected = classifier.predict(frame).tolist()
    assert _post(served, frame.to_csv(index=False), "text/csv") == (200, {"predictions": expected})
    assert _post(served, frame.to_csv(index=False), "text/csv; charset=utf-8")[0] == 200
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    assert _post(served, buffer.getvalue(), "application/vnd.apache.parquet") == (
        200,
        {"predictions": expected},
    )


def test_a_large_batch_is_scored(served: Server, classifier: Any) -> None:
    big = pd.DataFrame({"a": np.linspace(-2, 2, 5000), "b": np.arange(5000) % 10})
    status, body = _post(served, json.dumps({"dataframe_split": big.to_dict(orient="split")}))
    assert status == 200 and body["predictions"] == classifier.predict(big).tolist()


MALFORMED = [
    ("not json", "application/json", 400, "BAD_REQUEST", "not valid JSON"),
    ("[1, 2]", "application/json", 400, "BAD_REQUEST", "got a JSON list"),
    ('{"data": [[1, 2]]}', "application/json", 400, "BAD_REQUEST", "exactly one of"),
    (
        '{"inputs": [[1, 2]], "instances": [[1, 2]]}',
        "application/json",
        400,
        "BAD_REQUEST",
        "exactly one of",
    ),
    (
        '{"dataframe_split": {"columns": ["a", "b"], "data": [[1.0]]}}',
        "application/json",
        400,
        "BAD_REQUEST",
        "every row must have 2 values",
    ),
    ('{"dataframe_split": [1]}', "application/json", 400, "BAD_REQUEST", "must be an object"),
    (
        '{"dataframe_records": {"a": 1}}',
        "application/json",
        400,
        "BAD_REQUEST",
        "must be a list of objects",
    ),
    (
        '{"inputs": [{"a": 1.0}], "params": [1]}',
        "application/json",
        400,
        "BAD_REQUEST",
        "'params' must be a JSON object",
    ),
    (
        '{"dataframe_records": [{"a": 1.0}]}',
        "application/json",
        400,
        "INVALID_PARAMETER_VALUE",
        "Model is missing input column(s) ['b']",
    ),
    (
        '{"dataframe_records": [{"a": 1.0, "b": 1.5}]}',
        "application/json",
        400,
        "INVALID_PARAMETER_VALUE",
        "cannot safely convert float64 to long",
    ),
    (
        '{"dataframe_records": [{"a": "x", "b": 1}]}',
        "application/json",
        400,
        "INVALID_PARAMETER_VALUE",
        "column 'a'",
    ),
    ("a,b\n1.0", "text/csv", 400, "INVALID_PARAMETER_VALUE", "column 'b'"),
    # Rows without column names are not matched to named columns by position (as MLflow).
    (
        '{"inputs": [[0.5, 1]]}',
        "application/json",
        400,
        "INVALID_PARAMETER_VALUE",
        "The signature names its columns ['a', 'b']",
    ),
    (
        '{"instances": [[0.5, 1], [1.5, 2]]}',
        "application/json",
        400,
        "INVALID_PARAMETER_VALUE",
        "so none is matched by position",
    ),
    (
        '{"dataframe_split": {"data": [[0.5, 1]]}}',
        "application/json",
        400,
        "INVALID_PARAMETER_VALUE",
        "Model is missing input column(s) ['a', 'b']",
    ),
    (
        '{"dataframe_records": [{"a": 0.5, "b": null}]}',
        "application/json",
        400,
        "INVALID_PARAMETER_VALUE",
        "it holds only nulls and a long column has no missing value",
    ),
    ("\x00\x01", "application/vnd.apache.parquet", 400, "BAD_REQUEST", "not a valid Parquet"),
    (
        "a=1",
        "application/x-www-form-urlencoded",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "Unsupported content type",
    ),
    ("{}", "application/json; charset=latin-1", 415, "UNSUPPORTED_MEDIA_TYPE", "UTF-8 only"),
]


def test_malformed_requests_get_json_errors_and_the_server_keeps_serving(
    served: Server, frame: Any
) -> None:
    good = json.dumps({"dataframe_records": frame.head(1).to_dict(orient="records")})
    for body, content_type, status, code, message in MALFORMED:
        got_status, got = _post(served, body, content_type)
        assert (got_status, got["error_code"]) == (status, code), (body, got)
        assert message in got["message"], (body, got)
        assert _post(served, good)[0] == 200


def test_unknown_routes_and_methods(served: Server) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(served, "/nope")
    with info.value:
        assert info.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(served, "/invocations")
    with info.value:
        assert info.value.code == 405


def test_custom_model_with_params_and_a_failing_model(
    tmp_path: Path, frame: Any, start_server: Callable[..., Server]
) -> None:
    def score(data: pd.DataFrame) -> Any:
        if (data["a"] > 100).any():
            raise RuntimeError("a is too large")
        return data["a"] * 2

    save_model(
        python_model=score,
        path=tmp_path / "fn",
        signature=infer_signature(frame[["a"]], params={"unused": 1}),
    )
    server = start_server(str(tmp_path / "fn"), workers=2)
    status, body = _post(server, '{"inputs": {"a": [1.5, 2]}, "params": {"unused": 3}}')
    assert (status, body) == (200, {"predictions": [{"a": 3.0}, {"a": 4.0}]})
    status, body = _post(server, '{"inputs": {"a": [101.0]}}')
    assert status == 400 and "RuntimeError: a is too large" in body["message"]
    status, body = _post(server, '{"inputs": {"a": [1.0]}, "params": {"unused": "x"}}')
    assert status == 400
    assert body["message"] == "Invalid value 'x' for param 'unused': expected long"
    assert _post(server, '{"inputs": {"a": [1.0]}}')[0] == 200


def test_a_column_of_only_nulls_is_scored_as_missing_values(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    def count_missing(data: pd.DataFrame) -> Any:
        return data.isna().sum(axis=1).to_numpy()

    example = pd.DataFrame({"a": [1.0], "when": pd.to_datetime(["2024-01-01"]), "b": [1]})
    save_model(
        python_model=count_missing, path=tmp_path / "nulls", signature=infer_signature(example)
    )
    server = start_server(str(tmp_path / "nulls"))
    split = {"columns": ["a", "when", "b"], "data": [[None, None, 1], [None, None, 2]]}
    assert _post(server, json.dumps({"dataframe_split": split})) == (200, {"predictions": [2, 2]})
    records = [{"a": None, "when": "2024-01-01", "b": 3}]
    assert _post(server, json.dumps({"dataframe_records": records})) == (200, {"predictions": [1]})
    status, body = _post(server, json.dumps({"inputs": {"a": [1.0], "when": [None], "b": [None]}}))
    assert status == 400 and "column 'b': it holds only nulls" in body["message"]


def test_serving_a_model_from_a_run(
    classifier: Any, frame: Any, start_server: Callable[..., Server]
) -> None:
    from flowml.tracking import fluent

    with fluent.start_run():
        info = fluent_log(classifier)
    server = start_server(info)
    records = frame.head(2).to_dict("records")
    status, body = _post(server, json.dumps({"dataframe_records": records}))
    assert status == 200 and body["predictions"] == classifier.predict(frame.head(2)).tolist()


def fluent_log(model: Any) -> str:
    from flowml.models.api import log_model

    return log_model(model, "served").model_uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("/no/such/model", "No model at '/no/such/model'"),
        ("runs:/0123456789abcdef0123456789abcdef/model", "No run with id"),
        ("models:/churn/1", "churn"),
    ],
)
def test_refuses_to_start_on_an_unresolvable_uri(tmp_path: Path, uri: str, message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flowml.cli", "models", "serve", "-m", uri, "--port", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and message in done.stderr


def test_predictions_match_in_process_scoring(
    tmp_path: Path, classifier: Any, frame: Any, start_server: Callable[..., Server]
) -> None:
    save_model(classifier, tmp_path / "p", pyfunc_predict_fn="predict_proba")
    server = start_server(str(tmp_path / "p"))
    status, body = _post(server, json.dumps({"dataframe_split": frame.to_dict(orient="split")}))
    np.testing.assert_array_equal(
        np.asarray(body["predictions"]), load_model(str(tmp_path / "p")).predict(frame)
    )
