"""The REST scoring server (MLflow's protocol): `create_app` and `serve`."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from flowml.models.serving.app import create_app

        return create_app
    if name == "serve":
        from flowml.models.serving.server import serve

        return serve
    raise AttributeError(f"module 'flowml.models.serving' has no attribute {name!r}")
