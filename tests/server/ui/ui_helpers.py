"""What the UI tests share: the seeded store's summary and how to make it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEED = Path(__file__).with_name("ui_seed.py")
PREFECT_UI = "http://127.0.0.1:4200"


@dataclass
class Seeded:
    server: Any
    root: Path
    ids: dict[str, Any]

    @property
    def url(self) -> str:
        return self.server.url


def seed_store(root: Path) -> dict[str, Any]:
    env = {**os.environ, "FLOWML_HOME": str(root / "home")}
    done = subprocess.run(
        [sys.executable, str(SEED), str(root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
