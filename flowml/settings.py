"""flowml settings, read once from ``FLOWML_*`` environment variables.

| variable | default |
|---|---|
| ``FLOWML_HOME`` | ``~/.flowml`` |
| ``FLOWML_TRACKING_URI`` | ``sqlite:///$FLOWML_HOME/flowml.db`` |
| ``FLOWML_ARTIFACT_ROOT`` | ``$FLOWML_HOME/artifacts`` (any fsspec URL) |
| ``FLOWML_REGISTRY_URI`` | the tracking URI |
| ``FLOWML_SEARCH_TIMEOUT_SECONDS`` | ``60`` (``0``: no limit) |
| ``FLOWML_TRACKING_TOKEN`` (or ``MLFLOW_TRACKING_TOKEN``) | none (a tracking server token) |
| ``FLOWML_OTLP_ENDPOINT`` | unset (traces also go to this OTLP/HTTP endpoint when set) |
| ``FLOWML_JUDGE_URI`` | none: the OpenAI-compatible endpoint of LLM judges (``.../v1``) |
| ``FLOWML_JUDGE_MODEL`` | none: the model name the judges ask for |
| ``FLOWML_JUDGE_API_KEY`` | none: sent as a bearer token, when set |
| ``FLOWML_PUBLISH_AT_EXIT`` | ``auto``: Prefect artifacts still queued at exit are handed to a |
| | background process when the Prefect API outlives the program; ``wait``: published before exit |

Stores never read the environment: the edges (fluent API, CLI, servers) call
`get_settings()` and pass the values down.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS

DEFAULT_HOME = "~/.flowml"
DEFAULT_DB_FILENAME = "flowml.db"
DEFAULT_ARTIFACTS_DIRNAME = "artifacts"


class Settings(BaseSettings):
    """The ``FLOWML_*`` settings. Unset values get the defaults in the module docstring."""

    model_config = SettingsConfigDict(env_prefix="FLOWML_", extra="ignore")

    home: Path = Path(DEFAULT_HOME)
    tracking_uri: str | None = None
    artifact_root: str | None = None
    registry_uri: str | None = None
    run_id: str | None = None
    experiment_id: str | None = None
    # How long one search statement may run before it is cancelled (0: no limit).
    search_timeout_seconds: float = Field(
        default=DEFAULT_SEARCH_TIMEOUT_SECONDS, ge=0, allow_inf_nan=False
    )
    # Prefect's UI (e.g. http://127.0.0.1:4200): the web UI links runs to their flow runs.
    prefect_ui_url: str | None = None

    # A `flowml server` token, sent as ``Authorization: Bearer``; MLflow's name works too.
    tracking_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FLOWML_TRACKING_TOKEN", "MLFLOW_TRACKING_TOKEN"),
        repr=False,
    )

    # Proxied artifact uploads (``mlflow-artifacts:`` URIs, through `flowml server`): files
    # larger than the threshold go in parts of this size (the server's multipart endpoints).
    multipart_upload_threshold_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    multipart_upload_part_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)

    # Where traces are also exported over OTLP/HTTP (``http://host:4318``); unset: nowhere.
    otlp_endpoint: str | None = None

    # LLM judges (flowml.genai.judges): any OpenAI-compatible chat-completions endpoint.
    judge_uri: str | None = None
    judge_model: str | None = None
    judge_api_key: str | None = Field(default=None, repr=False)

    # Prefect artifacts still queued when a program ends (`flowml.tasks.outbox`): ``auto``
    # hands them to a process of their own when that is safe, ``wait`` publishes them first.
    publish_at_exit: Literal["auto", "wait"] = "auto"

    # While tracked flow runs are open, keep the objects that existed when the first opened
    # (the imported modules of Prefect, flowml and the program) out of the garbage
    # collector's full passes (`gc.freeze`, undone when the last ends), so that a flow of
    # many short tasks does not rescan them every few hundred tasks. ``false`` leaves the
    # collector alone (frozen objects are hidden from `gc.get_referrers` meanwhile).
    gc_freeze: bool = True

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.home / DEFAULT_DB_FILENAME}"

    @property
    def resolved_artifact_root(self) -> str:
        return self.artifact_root or str(self.home / DEFAULT_ARTIFACTS_DIRNAME)


@functools.lru_cache(maxsize=1)
def _cached(_env_key: tuple[tuple[str, str], ...]) -> Settings:
    return Settings()


def get_settings() -> Settings:
    """The current settings (re-read only when a variable they read changed)."""
    key = tuple(
        sorted(
            (k, v)
            for k, v in os.environ.items()
            if k.startswith("FLOWML_") or k == "MLFLOW_TRACKING_TOKEN"
        )
    )
    return _cached(key)
