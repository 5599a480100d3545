"""The Prefect integration's short names for the tags and metrics it writes on runs.

The names themselves are defined once, in `flowml.tracking.tags` (``PREFECT_*``), where the
layers that read them without Prefect (the CLI, the server, ``flowml runs gc``) find them too.
"""

from __future__ import annotations

from flowml.tracking import tags as systags
from flowml.tracking.lineage import flow_run_uri, task_run_uri

FLOW_NAME = systags.PREFECT_FLOW_NAME
FLOW_RUN_ID = systags.PREFECT_FLOW_RUN_ID
FLOW_RUN_NAME = systags.PREFECT_FLOW_RUN_NAME
FLOW_VERSION = systags.PREFECT_FLOW_VERSION
TASK_NAME = systags.PREFECT_TASK_NAME
TASK_RUN_ID = systags.PREFECT_TASK_RUN_ID
DEPLOYMENT_ID = systags.PREFECT_DEPLOYMENT_ID
UI_URL = systags.PREFECT_UI_URL
ATTEMPT = systags.PREFECT_ATTEMPT
STATE = systags.PREFECT_STATE
RUN_KIND = systags.PREFECT_RUN_KIND
PREFECT_TAGS = systags.PREFECT_TAGS
# The process that owns the run (every run records it; see `flowml.tracking.owner`).
OWNER = systags.OWNER

RUN_KIND_FLOW = systags.PREFECT_RUN_KIND_FLOW
RUN_KIND_TASK = systags.PREFECT_RUN_KIND_TASK

METRIC_DURATION = systags.PREFECT_METRIC_DURATION
METRIC_ATTEMPTS = systags.PREFECT_METRIC_ATTEMPTS


def flow_run_key(flow_run_id: object) -> str:
    """The run key of a flow run's tracked run (``prefect-flow-run:<id>``)."""
    return flow_run_uri(flow_run_id)


def task_run_key(task_run_id: object) -> str:
    """The run key of a task run's tracked run (``prefect-task-run:<id>``).

    It is also the lineage URI of the task run's result, so a run consuming that result
    finds its producer by run key.
    """
    return task_run_uri(task_run_id)
