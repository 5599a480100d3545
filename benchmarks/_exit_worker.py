"""One flow of N tasks in a process of its own, for the exit measurement of
`bench_prefect_overhead.py`: says ``returned`` on stderr when the flow returns, and the
parent times what is left until the process ends (Prefect's shutdown and, tracked, the hand-off
of what is still queued to flowml's outbox process).

    python _exit_worker.py plain|tracked N
"""

from __future__ import annotations

import sys


def main(side: str, n: int) -> None:
    from _prefect_baseline import plain_flow

    if side == "plain":
        plain_flow()(n)
    else:
        import flowml

        @flowml.tracked_task(name="tracked-step")
        def tracked_step(i: int, scale: float) -> dict[str, float]:
            return {"score": i * scale}

        @flowml.tracked_flow(name="tracked-exit", experiment="bench", log_result=False)
        def tracked_flow(count: int) -> None:
            for i in range(count):
                tracked_step(i, 0.5)

        tracked_flow(n)
    print("returned", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
