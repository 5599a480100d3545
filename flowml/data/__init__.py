"""``flowml.data``: MLflow-style dataset objects for ``flowml.log_input``.

The same names as ``mlflow.data``; the definitions live in `flowml.tracking.datasets`.

Example:
    >>> import flowml
    >>> ds = flowml.data.from_numpy(np.zeros((4, 2)), targets=np.array([0, 1, 0, 1]))
    >>> with flowml.start_run():
    ...     flowml.log_input(ds, context="training")
"""

from __future__ import annotations

from flowml.tracking.datasets import (
    Dataset,
    DatasetSource,
    NumpyDataset,
    PandasDataset,
    from_numpy,
    from_pandas,
)

__all__ = [
    "Dataset",
    "DatasetSource",
    "NumpyDataset",
    "PandasDataset",
    "from_numpy",
    "from_pandas",
]
