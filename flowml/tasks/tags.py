"""Tag and metric names the Prefect integration writes on runs.

MLflow's own tags (run name, parent run, source, git commit) come from
`flowml.tracking.tags`; these name what Prefect adds.
"""

from __future__ import annotations

from flowml.tracking import tags as systags
from flowml.tracking.lineage import flow_run_uri, task_run_uri

FLOW_NAME = "flowml.prefect.flow_name"
FLOW_RUN_ID = systags.PREFECT_FLOW_RUN_ID
FLOW_RUN_NAME = "flowml.prefect.flow_run_name"
FLOW_VERSION = "flowml.prefect.flow_version"
TASK_NAME = "flowml.prefect.task_name"
TASK_RUN_ID = systags.PREFECT_TASK_RUN_ID
DEPLOYMENT_ID = "flowml.prefect.deployment_id"
UI_URL = "flowml.prefect.ui_url"
ATTEMPT = "flowml.prefect.attempt"
STATE = "flowml.prefect.state"
RUN_KIND = "flowml.prefect.kind"  # "flow" or "task"
# The Prefect run's tags, sorted and comma-separated (``tags.`flowml.prefect.tags` LIKE ...``).
PREFECT_TAGS = "flowml.prefect.tags"
# The process that owns the run (every run records it; see `flowml.tracking.owner`).
OWNER = systags.OWNER

RUN_KIND_FLOW = "flow"
RUN_KIND_TASK = "task"

# Metrics written once, when the run reaches its final state.
METRIC_DURATION = "flowml.duration_s"
METRIC_ATTEMPTS = "flowml.attempts"


def flow_run_key(flow_run_id: object) -> str:
    """The run key of a flow run's tracked run (``prefect-flow-run:<id>``)."""
    return flow_run_uri(flow_run_id)


def task_run_key(task_run_id: object) -> str:
    """The run key of a task run's tracked run (``prefect-task-run:<id>``).

    It is also the lineage URI of the task run's result, so a run consuming that result
    finds its producer by run key.
    """
    return task_run_uri(task_run_id)
