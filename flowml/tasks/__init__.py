"""Prefect-native building blocks: tracked decorators and ready-made flow steps.

This is the only layer that knows Prefect deeply. Names load on first use.
"""

from __future__ import annotations

from flowml._lazy import lazy_exports

_EXPORTS = {
    "batch_predict": "flowml.tasks.batch_predict",
    "evaluate_model": "flowml.tasks.evaluate",
    "promote_model": "flowml.tasks.steps",
    "register_model": "flowml.tasks.steps",
    "tracked_flow": "flowml.tasks.decorators",
    "tracked_task": "flowml.tasks.decorators",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
