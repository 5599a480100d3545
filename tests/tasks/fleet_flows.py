"""A tracked flow that process workers on "other machines" run, logging through a flowml
server (``FLOWML_TRACKING_URI=http://...``): see ``test_multi_machine``."""

from __future__ import annotations

import flowml

STEPS = 20


@flowml.tracked_task
def train(member: int, lr: float) -> float:
    flowml.log_params({"lr_used": lr, "member_of": "fleet"})
    for step in range(STEPS):
        flowml.log_metric("loss", lr / (step + 1), step=step)
    flowml.set_tag("fleet.member", str(member))
    return 1.0 - lr / STEPS


@flowml.tracked_flow(name="fleet", experiment="fleet")
def fleet(index: int, members: int = 3) -> int:
    for member in range(members):
        train(member, 0.1 * (index + 1))
    return members
