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

# The Prefect runs behind a tracked run. Written by the Prefect integration (flowml.tasks) and
# by project runs (flowml.projects), read by `flowml models lineage` and `flowml runs gc`: one
# spelling, here, so a reader never misses a writer.
PREFECT_FLOW_RUN_ID = "flowml.prefect.flow_run_id"
PREFECT_TASK_RUN_ID = "flowml.prefect.task_run_id"
# Why a run failed: the exception's type and message (set when a run ends FAILED).
ERROR_TYPE = "flowml.error.type"
ERROR_MESSAGE = "flowml.error.message"
