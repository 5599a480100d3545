"""Prefect-native building blocks: tracked decorators and ready-made flow steps.

This is the only layer that knows Prefect deeply. Names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "batch_predict": "flowml.tasks.batch_predict",
    "promote_model": "flowml.tasks.steps",
    "register_model": "flowml.tasks.steps",
    "tracked_flow": "flowml.tasks.decorators",
    "tracked_task": "flowml.tasks.decorators",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flowml.tasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
