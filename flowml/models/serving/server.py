"""Run the scoring app under uvicorn: ``flowml models serve -m URI``.

The model is resolved and loaded before the server binds its port, so a bad URI stops
the command with a clear message instead of a server that answers 500s. With several
workers, each worker process loads the already-downloaded local copy once at start.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.models.api import load_model
from flowml.models.pyfunc import load_pyfunc
from flowml.models.serving.app import ScoringApp, create_app
from flowml.models.serving.limits import ServingLimits, limits_from_env
from flowml.models.serving.protocol import protocol_with_head_timeout
from flowml.tracing.requests import RequestTracer

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "app_from_env", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
MODEL_PATH_ENV = "FLOWML_SERVE_MODEL_PATH"
# How `serve` hands the request-tracing options to worker processes.
TRACE_RATE_ENV = "FLOWML_SERVING_TRACE_SAMPLE_RATE"
TRACE_REDACT_ENV = "FLOWML_SERVING_TRACE_REDACT"
MODEL_URI_ENV = "FLOWML_SERVE_MODEL_URI"


def tracer_from_env() -> RequestTracer | None:
    """The request tracer the ``FLOWML_SERVING_TRACE_*`` variables ask for (or ``None``)."""
    rate = os.environ.get(TRACE_RATE_ENV)
    if not rate:
        return None
    try:
        value = float(rate)
    except ValueError:
        raise InvalidParameter(
            f"{TRACE_RATE_ENV} must be a number in [0, 1], got {rate!r}"
        ) from None
    redact = os.environ.get(TRACE_REDACT_ENV, "").split(",")
    return RequestTracer(value, redact, os.environ.get(MODEL_URI_ENV))


def _freeze_heap() -> None:
    # Everything loaded so far (libraries, the model) lives as long as the server: moving it
    # out of the collector's reach keeps full collections short, and so the latency tail.
    gc.collect()
    gc.freeze()


def app_from_env() -> ScoringApp:
    """The app for a uvicorn worker process: loads the model at ``$FLOWML_SERVE_MODEL_PATH``.

    Its limits come from the ``FLOWML_SERVING_*`` variables `serve` sets for the workers.
    """
    path = os.environ.get(MODEL_PATH_ENV)
    if not path:
        raise InvalidParameter(f"{MODEL_PATH_ENV} is not set: start workers with `serve`")
    app = create_app(load_pyfunc(path), limits_from_env(), tracer_from_env())
    _freeze_heap()
    return app


def serve(
    model_uri: str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    workers: int = 1,
    log_level: str = "warning",
    limits: ServingLimits | None = None,
    trace_sample_rate: float = 0.0,
    trace_redact: tuple[str, ...] = (),
    **uvicorn_options: Any,
) -> None:
    """Load the model at `model_uri` and serve it until interrupted.

    Args:
        model_uri: Any model URI `flowml.load_model` accepts.
        host: Interface to bind (loopback by default).
        port: TCP port.
        workers: Worker processes; each holds its own copy of the model.
        log_level: uvicorn's log level.
        limits: Body size, body timeout and prediction threads; by default from the
            ``FLOWML_SERVING_*`` variables, else `flowml.models.serving.limits`' defaults.
        trace_sample_rate: the fraction of requests recorded as traces (0: none), in the
            tracking store of ``FLOWML_TRACKING_URI``, tagged with the model's URI.
        trace_redact: request and response fields never recorded in those traces.
        **uvicorn_options: Passed to ``uvicorn.run``.

    Raises:
        ResourceNotFound: nothing loadable at `model_uri` (raised before binding).
        InvalidParameter: a bad URI, port, worker count or limit.

    Example:
        >>> serve("runs:/0123abcd/model", port=5001)  # doctest: +SKIP
    """
    if workers < 1:
        raise InvalidParameter(f"workers must be at least 1, got {workers}")
    if not 0 <= port <= 65535:
        raise InvalidParameter(f"port must be between 0 and 65535, got {port}")
    limits = limits if limits is not None else limits_from_env()
    tracer = (
        RequestTracer(trace_sample_rate, trace_redact, model_uri) if trace_sample_rate else None
    )
    model = load_model(model_uri)
    import uvicorn

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        # Request heads get a deadline too (uvicorn waits forever for a partial one).
        "http": protocol_with_head_timeout(limits.body_timeout),
        **uvicorn_options,
    }
    if workers == 1:
        app = create_app(model, limits, tracer)
        _freeze_heap()
        uvicorn.run(app, **options)
        return
    os.environ[MODEL_PATH_ENV] = str(model.path)
    os.environ.update(limits.to_env())
    if tracer is not None:
        os.environ[TRACE_RATE_ENV] = str(trace_sample_rate)
        os.environ[TRACE_REDACT_ENV] = ",".join(trace_redact)
        os.environ[MODEL_URI_ENV] = model_uri
    uvicorn.run(
        "flowml.models.serving.server:app_from_env", factory=True, workers=workers, **options
    )
