"""flowml: the machine-learning lifecycle, native to Prefect 3."""

from __future__ import annotations

__version__ = "0.1.0"
