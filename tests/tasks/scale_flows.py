"""Tracked flows that the Prefect-at-scale tests run in other processes: as a script, served
with ``.serve()``, or by a process worker.

    python scale_flows.py many N        # a flow of N tracked tasks; prints its flow run id
    python scale_flows.py serve NAME    # serves `blocking` as deployment NAME until stopped
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import flowml


@flowml.tracked_task
def step(i: int) -> float:
    return float(i)


@flowml.tracked_flow(name="many-steps", experiment="scale")
def many(n: int) -> int:
    for i in range(n):
        step(i)
    return n


@flowml.tracked_task
def wait_for(path: str) -> str:
    """Block until ``path`` exists (the test cancels the flow run meanwhile)."""
    Path(path + ".started").touch()
    while not os.path.exists(path):
        time.sleep(0.2)
    return path


@flowml.tracked_flow(name="blocking", experiment="cancel")
def blocking(path: str) -> str:
    step(1)
    return wait_for(path)


if __name__ == "__main__":
    if sys.argv[1] == "many":
        started = time.perf_counter()
        state = many(int(sys.argv[2]), return_state=True)
        # Shown by the test on failure: how long the flow took, publication excluded.
        print(f"flow returned after {time.perf_counter() - started:.1f} s", file=sys.stderr)
        print(state.state_details.flow_run_id)
    elif sys.argv[1] == "serve":
        blocking.serve(name=sys.argv[2])
