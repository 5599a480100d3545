"""A seeded store behind a real loopback `flowml server`, shared by the UI tests."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import PREFECT_UI, Seeded, seed_store


def _server_helpers() -> Any:
    # tests/server/conftest.py is not importable by name (every conftest is "conftest").
    path = Path(__file__).parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_flowml_server_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_helpers = _server_helpers()
start_server = _helpers.start_server


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("ui")
    ids = seed_store(root)
    previous = os.environ.get("FLOWML_PREFECT_UI_URL")
    os.environ["FLOWML_PREFECT_UI_URL"] = PREFECT_UI  # read by the server subprocess
    try:
        srv = start_server(f"sqlite:///{root / 'flowml.db'}", root)
    finally:
        if previous is None:
            os.environ.pop("FLOWML_PREFECT_UI_URL", None)
        else:
            os.environ["FLOWML_PREFECT_UI_URL"] = previous
    yield Seeded(srv, root, ids)
    srv.stop()
