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
    """
    from flowml.models.serving.server import serve as run_server

    run_server(model_uri, host=host, port=port, workers=workers)


from flowml.cli import model_registry  # noqa: E402,F401 - adds the registry commands to this app
