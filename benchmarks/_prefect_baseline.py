"""The baseline the Prefect benchmarks time tracked flows against: plain Prefect tasks.

Imported by `bench_prefect_overhead.py` and by `_prefect_pair_worker.py` (which also runs in
MLflow's venv), so it needs nothing but Prefect.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any


def plain_flow() -> Any:
    """A ``@flow(n)`` running ``n`` plain ``@task`` calls, returning the loop's seconds.

    Keeps Prefect's per-task console logging out of the measurement's noise (set before
    Prefect is imported).
    """
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect import flow, task

    logging.getLogger("prefect").setLevel(logging.WARNING)

    @task
    def plain_step(i: int, scale: float) -> dict[str, float]:
        return {"score": i * scale}

    @flow
    def plain_flow(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            plain_step(i, 0.5)
        return time.perf_counter() - start

    return plain_flow
