"""The scoring server's limits: body size, idle-body timeout, prediction threads.

| limit | CLI option | ``FLOWML_SERVING_...`` | default |
|---|---|---|---|
| largest request body (bytes) | ``--max-body-size`` | ``MAX_BODY_BYTES`` | 50 MiB |
| seconds a body may stall | ``--body-timeout`` | ``BODY_TIMEOUT`` | 30 |
| predictions at once | ``--predict-threads`` | ``PREDICT_THREADS`` | CPUs + 4, at most 32 |

A body over the limit is answered 413 before it is buffered (the ``Content-Length`` is checked
up front and a chunked body is counted as it arrives), so memory stays bounded whatever a
client sends. A body that stops arriving for ``body_timeout`` seconds is answered 408 and the
connection closed, so a stalled client cannot hold a connection forever.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from flowml.exceptions import InvalidParameter

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PREDICT_THREADS",
    "ENV_PREFIX",
    "ServingLimits",
    "limits_from_env",
]

DEFAULT_MAX_BODY_BYTES = 50 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0
# The size of asyncio's default executor, where MLflow's server runs its predictions.
DEFAULT_PREDICT_THREADS = min(32, (os.cpu_count() or 1) + 4)
ENV_PREFIX = "FLOWML_SERVING_"


@dataclass(frozen=True)
class ServingLimits:
    """Resource limits of one scoring app.

    Args:
        max_body_bytes: Largest accepted request body; larger ones get 413.
        body_timeout: Seconds the server waits for the next piece of a request body
            before answering 408 and closing the connection.
        predict_threads: Worker threads scoring requests, so the event loop stays free
            for health checks and other clients while a model computes.

    Raises:
        InvalidParameter: a limit is not positive.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    predict_threads: int = DEFAULT_PREDICT_THREADS

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "body_timeout", "predict_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not value > 0:
                raise InvalidParameter(f"Serving limit {name} must be positive, got {value!r}")

    def to_env(self) -> dict[str, str]:
        """The ``FLOWML_SERVING_*`` variables that rebuild these limits in a worker process."""
        return {
            f"{ENV_PREFIX}MAX_BODY_BYTES": str(self.max_body_bytes),
            f"{ENV_PREFIX}BODY_TIMEOUT": repr(float(self.body_timeout)),
            f"{ENV_PREFIX}PREDICT_THREADS": str(self.predict_threads),
        }


def limits_from_env(
    max_body_bytes: int | None = None,
    body_timeout: float | None = None,
    predict_threads: int | None = None,
) -> ServingLimits:
    """Limits from explicit values, else ``FLOWML_SERVING_*`` variables, else the defaults.

    Raises:
        InvalidParameter: a variable is not a number, or a limit is not positive.
    """
    from pydantic import ValidationError
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class _Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
        body_timeout: float = DEFAULT_BODY_TIMEOUT
        predict_threads: int = DEFAULT_PREDICT_THREADS

    try:
        settings = _Settings()
    except ValidationError as exc:
        fields = sorted(f"{ENV_PREFIX}{e['loc'][0]}".upper() for e in exc.errors() if e["loc"])
        raise InvalidParameter(f"Invalid serving setting(s) {fields}: use a number") from None
    given: dict[str, Any] = {
        "max_body_bytes": max_body_bytes,
        "body_timeout": body_timeout,
        "predict_threads": predict_threads,
    }
    values = {k: v if v is not None else getattr(settings, k) for k, v in given.items()}
    return ServingLimits(**values)
