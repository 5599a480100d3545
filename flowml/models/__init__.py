"""flowml models: the MLmodel format, flavors, signatures, pyfunc loading and serving.

Everything here is imported on first use, so ``import flowml.models`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ColSpec",
    "DataType",
    "Model",
    "ModelInfo",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "Schema",
    "TensorSpec",
    "infer_signature",
    "load_model",
    "log_model",
    "save_model",
]

_EXPORTS = {
    "ColSpec": "flowml.models.schema",
    "DataType": "flowml.models.schema",
    "ModelSignature": "flowml.models.schema",
    "ParamSchema": "flowml.models.schema",
    "ParamSpec": "flowml.models.schema",
    "Schema": "flowml.models.schema",
    "TensorSpec": "flowml.models.schema",
    "Model": "flowml.models.mlmodel",
    "ModelInfo": "flowml.models.mlmodel",
    "PyFuncModel": "flowml.models.pyfunc",
    "PythonModel": "flowml.models.python_model",
    "PythonModelContext": "flowml.models.python_model",
    "infer_signature": "flowml.models.signature",
    "load_model": "flowml.models.api",
    "log_model": "flowml.models.api",
    "save_model": "flowml.models.api",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flowml.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
