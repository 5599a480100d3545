"""``flowml models serve`` (the registry adds its model commands to this same sub-app)."""

from __future__ import annotations

from typing import Annotated

from cyclopts import App, Parameter

app = App(name="models", help="Serve models (and, with the registry, manage registered ones).")


@app.command
def serve(
    *,
    model_uri: Annotated[str, Parameter(name=["--model-uri", "-m"])],
    host: str = "127.0.0.1",
    port: Annotated[int, Parameter(name=["--port", "-p"])] = 5000,
    workers: Annotated[int, Parameter(name=["--workers", "-w"])] = 1,
    max_body_size: int | None = None,
    body_timeout: float | None = None,
    predict_threads: int | None = None,
    trace_sample_rate: float = 0.0,
    trace_redact: Annotated[list[str] | None, Parameter(name=["--trace-redact"])] = None,
) -> None:
    """Serve a model over HTTP with MLflow's scoring protocol (/invocations, /ping, /version).

    The model is loaded before the port is bound: an unresolvable URI stops the command
    with an error instead of starting a server that cannot answer.

    Args:
        model_uri: A local path, any fsspec URL, runs:/RUN_ID/PATH or
            models:/NAME/VERSION (also models:/NAME@ALIAS).
        host: Interface to bind (loopback by default; 0.0.0.0 exposes it).
        port: TCP port.
        workers: Worker processes, each with its own copy of the model.
        max_body_size: Largest request body in bytes, answered 413 above it
            (default FLOWML_SERVING_MAX_BODY_BYTES, else 50 MiB).
        body_timeout: Seconds a request body may stall before the server answers 408
            and closes the connection (default FLOWML_SERVING_BODY_TIMEOUT, else 30).
        predict_threads: Requests scored at once per worker, each on its own thread
            (default FLOWML_SERVING_PREDICT_THREADS, else CPUs + 4, at most 32).
        trace_sample_rate: Fraction of requests recorded as traces in the tracking store
            (0 to 1; 0, the default, records none), tagged with the model URI, name and version.
        trace_redact: A request or response field never recorded in traces (repeatable).
    """
    from flowml.models.serving.limits import limits_from_env
    from flowml.models.serving.server import serve as run_server

    limits = limits_from_env(max_body_size, body_timeout, predict_threads)
    run_server(
        model_uri,
        host=host,
        port=port,
        workers=workers,
        limits=limits,
        trace_sample_rate=trace_sample_rate,
        trace_redact=tuple(trace_redact or ()),
    )


from flowml.cli import model_registry  # noqa: E402,F401 - adds the registry commands to this app
