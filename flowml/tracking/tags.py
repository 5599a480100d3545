"""System tag names. MLflow's own names where MLflow defines the concept, so MLflow tools
read them; ``flowml.*`` for what is ours."""

from __future__ import annotations

RUN_NAME = "mlflow.runName"
PARENT_RUN_ID = "mlflow.parentRunId"
USER = "mlflow.user"
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
GIT_COMMIT = "mlflow.source.git.commit"
GIT_REPO_URL = "mlflow.source.git.repoURL"
GIT_BRANCH = "mlflow.source.git.branch"
LOGGED_MODELS = "mlflow.log-model.history"
NOTE = "mlflow.note.content"

# Why a run ended FAILED although its code did not fail: tracked values were lost.
TRACKING_ERROR = "flowml.tracking_error"
# ``<host>:<pid>:<start>`` of the process that owns a RUNNING run (see `flowml.tracking.owner`),
# so `flowml runs gc` can tell a dead process from a slow one.
OWNER = "flowml.owner"

SOURCE_TYPE_LOCAL = "LOCAL"
SOURCE_TYPE_PROJECT = "PROJECT"
SOURCE_TYPE_JOB = "JOB"

# The Prefect runs behind a tracked run. Written by the Prefect integration (flowml.tasks, which
# knows them by the short names of `flowml.tasks.tags`) and by project runs (flowml.projects),
# read by `flowml models lineage`, `flowml runs gc` and the server: one spelling, here in the
# lowest layer, so a reader never misses a writer.
PREFECT_FLOW_RUN_ID = "flowml.prefect.flow_run_id"
PREFECT_TASK_RUN_ID = "flowml.prefect.task_run_id"
PREFECT_FLOW_NAME = "flowml.prefect.flow_name"
PREFECT_FLOW_RUN_NAME = "flowml.prefect.flow_run_name"
PREFECT_FLOW_VERSION = "flowml.prefect.flow_version"
PREFECT_TASK_NAME = "flowml.prefect.task_name"
PREFECT_DEPLOYMENT_ID = "flowml.prefect.deployment_id"
PREFECT_UI_URL = "flowml.prefect.ui_url"
PREFECT_ATTEMPT = "flowml.prefect.attempt"
PREFECT_STATE = "flowml.prefect.state"
PREFECT_RUN_KIND = "flowml.prefect.kind"  # PREFECT_RUN_KIND_FLOW or PREFECT_RUN_KIND_TASK
PREFECT_RUN_KIND_FLOW = "flow"
PREFECT_RUN_KIND_TASK = "task"
# The Prefect run's tags, sorted and comma-separated (``tags.`flowml.prefect.tags` LIKE ...``).
PREFECT_TAGS = "flowml.prefect.tags"
# Metrics the Prefect integration writes once, when the run reaches its final state.
PREFECT_METRIC_DURATION = "flowml.duration_s"
PREFECT_METRIC_ATTEMPTS = "flowml.attempts"
# Why a run failed: the exception's type and message (set when a run ends FAILED).
ERROR_TYPE = "flowml.error.type"
ERROR_MESSAGE = "flowml.error.message"
