"""flowml models: the MLmodel format, flavors, signatures, pyfunc loading and serving.

Everything here is imported on first use, so ``import flowml.models`` stays cheap.
"""

from __future__ import annotations

from flowml._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
