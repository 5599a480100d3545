"""Lazily imported package attributes (PEP 562), shared by the package ``__init__`` modules.

A package lists which module defines each public name; the name's module is imported
only when the name is first used, which keeps ``import flowml`` (and its subpackages)
free of Prefect, SQLAlchemy and pandas.

Example:
    >>> _EXPORTS = {"RegistryClient": "flowml.registry.client"}
    >>> __all__ = sorted(_EXPORTS)
    >>> __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    exports: Mapping[str, str],
    namespace: MutableMapping[str, Any],
    modules: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module-level ``__getattr__`` and ``__dir__`` for lazily imported names.

    Args:
        package: the package's ``__name__``, used in the error for an unknown name.
        exports: public name -> module defining it. On first access the name is
            imported from that module and cached in ``namespace``, so later lookups
            never reach ``__getattr__`` again.
        namespace: the package's ``globals()``.
        modules: attribute name -> module returned whole (``flowml.sklearn`` is the
            sklearn flavor module); the import system already caches these.

    Returns:
        ``(__getattr__, __dir__)``, to bind at the package's top level.
    """
    whole = dict(modules or {})

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
            namespace[name] = value
            return value
        if name in whole:
            return importlib.import_module(whole[name])
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports) | set(whole))

    return __getattr__, __dir__
