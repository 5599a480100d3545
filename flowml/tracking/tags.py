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

SOURCE_TYPE_LOCAL = "LOCAL"
SOURCE_TYPE_PROJECT = "PROJECT"
SOURCE_TYPE_JOB = "JOB"

# Why a run failed: the exception's type and message (set when a run ends FAILED).
ERROR_TYPE = "flowml.error.type"
ERROR_MESSAGE = "flowml.error.message"
