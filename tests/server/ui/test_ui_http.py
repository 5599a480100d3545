"""The UI's files and endpoints over real HTTP (no browser): served, typed, offline, confined."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from ui_helpers import PREFECT_UI, Seeded

from flowml.exceptions import InvalidParameter
from flowml.server.history import downsample
from flowml.server.run_files import media_type
from flowml.server.ui import STATIC_DIR, UIConfig
from flowml.tracking.entities import Metric

REPO = Path(__file__).resolve().parents[3]
API = "/ajax-api/2.0"

# The only absolute URLs allowed in any asset: the SVG namespace (not fetched, a name) and
# uPlot's attribution banner (a comment).
ALLOWED_URLS = {"http://www.w3.org/2000/svg", "https://github.com/leeoniya/uPlot"}


def assets() -> list[Path]:
    return sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())


def test_every_asset_is_package_data() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["flowml"]
    for path in assets():
        rel = path.relative_to(REPO / "flowml").as_posix()
        assert any(fnmatch.fnmatchcase(rel, g) for g in globs), f"{rel} would not be installed"


def test_no_asset_names_an_external_url() -> None:
    for path in assets():
        text = path.read_text(encoding="utf-8", errors="replace")
        found = set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'`)]*", text))
        found = {u for u in found if u.startswith("http")}
        assert found <= ALLOWED_URLS, f"{path.name} names {found - ALLOWED_URLS}"
        assert "@import" not in text or path.suffix != ".css"


def test_module_imports_resolve() -> None:
    for path in (STATIC_DIR / "js").rglob("*.js"):
        for target in re.findall(r'from "(\.[^"]+)"', path.read_text()):
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports {target}"


def test_vendored_uplot_keeps_its_license() -> None:
    license_text = (STATIC_DIR / "vendor" / "uplot" / "LICENSE").read_text()
    assert "MIT License" in license_text and "Leon Sorokin" in license_text


def test_pages_and_assets_are_served_with_their_types(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        index = http.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        csp = index.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert index.headers["x-content-type-options"] == "nosniff"
        for path in assets():
            rel = path.relative_to(STATIC_DIR).as_posix()
            reply = http.get(f"/static/{rel}")
            assert reply.status_code == 200, rel
            assert reply.content == path.read_bytes()
            kind = reply.headers["content-type"]
            if rel.endswith(".js"):
                assert "javascript" in kind, (rel, kind)
            elif rel.endswith(".css"):
                assert kind.startswith("text/css"), (rel, kind)
        config = http.get("/ui-config.json").json()
        assert config == {"prefect_ui_url": PREFECT_UI}


def test_api_errors_stay_json_beside_the_ui(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        missing = http.get("/static/no/such/page.js")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
        wrong = http.post("/")
        assert wrong.status_code == 405
        assert http.get("/no/such/page").json()["error_code"] == "ENDPOINT_NOT_FOUND"
        # A known API path with the wrong method is still a 405, not a file lookup.
        assert http.get(f"{API}/mlflow/runs/create").status_code == 405
        assert http.get(f"{API}/mlflow/experiments/get", params={"experiment_id": "1"}).is_success


def test_static_files_cannot_be_read_outside_their_folder(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        for path in (
            "/static/../ui/__init__.py",
            "/static/%2e%2e/__init__.py",
            "/static/js/..%2f..%2f__init__.py",
        ):
            reply = http.get(path)
            assert reply.status_code == 404, path
            assert b"STATIC_DIR" not in reply.content


def test_prefect_ui_url_must_be_http() -> None:
    assert UIConfig.create("http://127.0.0.1:4200/").prefect_ui_url == "http://127.0.0.1:4200"
    assert UIConfig.create(None).prefect_ui_url is None
    for bad in ("javascript:alert(1)", "ftp://host", "http://", "//evil", "http://h/?q=1"):
        with pytest.raises(InvalidParameter, match="Prefect UI URL"):
            UIConfig.create(bad)


# -- downsampled histories -------------------------------------------------------------------


def test_downsample_keeps_extremes_and_ends() -> None:
    points = [Metric("m", float(i % 97), i, i) for i in range(10_000)]
    points[5_000] = Metric("m", 1e9, 5_000, 5_000)  # a spike
    points[7_777] = Metric("m", -1e9, 7_777, 7_777)  # a drop
    kept = downsample(points, 400)
    assert len(kept) <= 400
    assert kept[0] is points[0] and kept[-1] is points[-1]
    values = [p.value for p in kept]
    assert 1e9 in values and -1e9 in values
    assert [p.step for p in kept] == sorted(p.step for p in kept)
    assert downsample(points[:10], 400) == points[:10]
    nan = [Metric("m", float("nan") if i == 3 else i, i, i) for i in range(100)]
    assert len(downsample(nan, 8)) <= 8
    with pytest.raises(InvalidParameter, match="at least 4"):
        downsample(points, 3)


def test_history_endpoint(seeded: Seeded) -> None:
    run_id = seeded.ids["train_run_ids"][0]
    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        reply = http.post(
            f"{API}/flowml/metrics/history",
            json={"run_ids": [run_id], "metric_keys": ["loss", "nope"], "max_points": 40},
        )
        assert reply.status_code == 200, reply.text
        loss, nope = reply.json()["series"]
        assert loss["total"] == 200 and 4 <= len(loss["values"]) <= 40
        assert len(loss["steps"]) == len(loss["timestamps"]) == len(loss["values"])
        assert nope == {
            "run_id": run_id,
            "key": "nope",
            "total": 0,
            "steps": [],
            "timestamps": [],
            "values": [],
        }
        for body, code, words in [
            ({"run_ids": [run_id], "metric_keys": ["loss"], "max_points": 2}, 400, "max_points"),
            ({"run_ids": [run_id], "metric_keys": []}, 400, "at least one"),
            ({"run_ids": ["r"] * 11, "metric_keys": ["k"] * 100}, 400, "fewer runs"),
            ({"run_ids": ["0" * 32], "metric_keys": ["loss"]}, 404, "No run"),
        ]:
            bad = http.post(f"{API}/flowml/metrics/history", json=body)
            assert bad.status_code == code and words in bad.json()["message"], bad.text


# -- files by run and by model version -------------------------------------------------------


def test_media_types_never_run_in_the_page() -> None:
    assert media_type("plots/a.png") == "image/png"
    assert media_type("config.json") == "application/json"
    assert media_type("sample.csv") == "text/csv"
    assert media_type("model/MLmodel") == "text/plain"
    assert media_type("config.yaml") == "text/plain"
    for active in ("page.html", "x.svg", "a.js", "b.xml", "c.xhtml"):
        assert media_type(active) in ("text/plain", "application/octet-stream"), active
    assert media_type("weights.bin") == "application/octet-stream"


def test_run_artifacts_by_run_id(seeded: Seeded) -> None:
    run_id = seeded.ids["train_run_ids"][0]
    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        got = http.get("/get-artifact", params={"run_uuid": run_id, "path": "config.json"})
        assert got.status_code == 200 and got.json()["model"] == "rf"
        assert got.headers["content-type"].startswith("application/json")
        assert "sandbox" in got.headers["content-security-policy"]
        assert got.headers["x-content-type-options"] == "nosniff"
        png = http.get("/get-artifact", params={"run_id": run_id, "path": "plots/curve-0.png"})
        assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
        for path in ("../../../flowml.db", "/etc/passwd", "%2e%2e/x", "logs/../../x", ""):
            bad = http.get("/get-artifact", params={"run_uuid": run_id, "path": path})
            assert bad.status_code == 400, (path, bad.text)
            assert b"SQLite" not in bad.content
        missing = http.get("/get-artifact", params={"run_uuid": run_id, "path": "nope.txt"})
        assert missing.status_code == 404
        unknown = http.get("/get-artifact", params={"run_uuid": "0" * 32, "path": "a.txt"})
        assert unknown.status_code == 404


def test_logged_html_is_served_as_text(seeded: Seeded) -> None:
    from flowml.tracking.client import TrackingClient

    store = f"sqlite:///{seeded.root / 'flowml.db'}"
    client = TrackingClient(store, str(seeded.root / "artifacts"))
    run = client.create_run(seeded.ids["experiment_id"], run_name="html")
    client.log_text(run.info.run_id, "<script>alert(document.cookie)</script>", "report.html")
    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        got = http.get("/get-artifact", params={"run_uuid": run.info.run_id, "path": "report.html"})
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/plain")
    assert "sandbox" in got.headers["content-security-policy"]


def test_model_version_files_audit_and_mlmodel(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        example = http.get(
            "/model-versions/get-artifact",
            params={"name": "wine-classifier", "version": "1", "path": "input_example.json"},
        )
        assert example.status_code == 200 and "alcohol" in example.text
        escape = http.get(
            "/model-versions/get-artifact",
            params={"name": "wine-classifier", "version": "1", "path": "../../../flowml.db"},
        )
        assert escape.status_code == 400
        mlmodel = http.get(
            f"{API}/flowml/model-versions/mlmodel",
            params={"name": "wine-classifier", "version": "1"},
        ).json()["mlmodel"]
        assert "python_function" in mlmodel["flavors"]
        assert "alcohol" in mlmodel["signature"]["inputs"]
        audit = http.get(f"{API}/flowml/registry/audit", params={"name": "wine-classifier"})
        actions = [e["action"] for e in audit.json()["entries"]]
        assert actions.count("version_registered") == 3
        assert "approval_granted" in actions and "alias_set" in actions
        approval = next(e for e in audit.json()["entries"] if e["action"] == "approval_granted")
        assert approval["details"]["approver"] == "alice"
        paged = http.get(
            f"{API}/flowml/registry/audit", params={"name": "wine-classifier", "max_results": "2"}
        ).json()["entries"]
        assert len(paged) == 2
        after = http.get(
            f"{API}/flowml/registry/audit",
            params={"name": "wine-classifier", "after_id": str(paged[-1]["id"])},
        ).json()["entries"]
        assert after[0]["id"] > paged[-1]["id"]
        bad = http.get(f"{API}/flowml/registry/audit", params={"name": "x", "max_results": "0"})
        assert bad.status_code == 400
        gone = http.get(
            f"{API}/flowml/model-versions/mlmodel", params={"name": "nope", "version": "1"}
        )
        assert gone.status_code == 404


# -- flowml ui -------------------------------------------------------------------------------


def test_flowml_ui_serves_the_local_store_and_prints_its_url(tmp_path: Path) -> None:
    env = {**os.environ, "FLOWML_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowml.cli", "ui", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"flowml UI: (http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        url = match.group(1)
        assert str(tmp_path / "home" / "flowml.db") in line
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "flowml ui did not answer"
                time.sleep(0.2)
        assert reply.status_code == 200 and "<title>flowml</title>" in reply.text
        experiments = httpx.post(f"{url}ajax-api/2.0/mlflow/experiments/search", json={})
        assert [e["name"] for e in experiments.json()["experiments"]] == ["Default"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_flowml_ui_refuses_a_public_host(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flowml.cli", "ui", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and "loopback" in done.stderr


def test_parquet_preview(seeded: Seeded) -> None:
    run_id = seeded.ids["train_run_ids"][0]
    table = f"{API}/flowml/artifacts/table"
    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        reply = http.get(
            table, params={"run_id": run_id, "path": "data/predictions.parquet", "max_rows": "5"}
        )
        assert reply.status_code == 200, reply.text
        data = reply.json()
        assert data["columns"] == ["id", "quality"]
        assert data["rows"] == [[0, 5], [1, 6], [2, 7], [3, 5], [4, 6]]
        assert data["total_rows"] == 500
        for params, words in [
            ({"path": "data/sample.csv"}, "not a .parquet file"),
            ({"path": "data/predictions.parquet", "max_rows": "0"}, "max_rows"),
            ({"path": "data/predictions.parquet", "max_rows": "1001"}, "max_rows"),
            ({"path": "../../flowml.parquet"}, ""),
        ]:
            bad = http.get(table, params={"run_id": run_id, **params})
            assert bad.status_code == 400 and words in bad.json()["message"], bad.text
    # A file that only claims to be Parquet is refused with a clear message, not a 500.
    from flowml.tracking.client import TrackingClient

    store = f"sqlite:///{seeded.root / 'flowml.db'}"
    client = TrackingClient(store, str(seeded.root / "artifacts"))
    client.log_text(run_id, "not parquet at all", "fake.parquet")
    with httpx.Client(base_url=seeded.url, timeout=30) as http:
        fake = http.get(table, params={"run_id": run_id, "path": "fake.parquet"})
    assert fake.status_code == 400 and "not a valid Parquet file" in fake.json()["message"]


def test_requests_go_through_api_js_with_the_browsers_credentials() -> None:
    """One module talks to the server, always same-origin with the user's credentials, so the
    server's auth (cookies or HTTP auth) decides what the pages see."""
    callers = {}
    for path in (STATIC_DIR / "js").rglob("*.js"):
        text = path.read_text()
        if re.search(r"\bfetch\(|XMLHttpRequest|WebSocket|EventSource", text):
            callers[path.name] = text
    assert list(callers) == ["api.js"]
    calls = re.findall(r"fetch\(([^;]*?)\);", callers["api.js"], re.S)
    assert calls == ["path + query(params), init", 'url, { credentials: "same-origin" }']
    send = callers["api.js"].split("async function send")[1].split("fetch(")[0]
    assert 'const init = { method, credentials: "same-origin"' in send
