"""The flavor catalog: built-in flavors plus the ``flowml.flavors`` entry-point group.

Flavors are imported on first use only. Lookups go by flavor name, by the
``python_function.loader_module`` written in an MLmodel file, or by the object to save.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from typing import Any

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.models.flavors.base import Flavor

__all__ = [
    "ENTRY_POINT_GROUP",
    "flavor_for_loader_module",
    "flavor_for_model",
    "flavor_names",
    "get_flavor",
    "register_flavor",
]

ENTRY_POINT_GROUP = "flowml.flavors"

# Order matters for `flavor_for_model`: custom Python models first, then libraries.
_BUILTIN: dict[str, str] = {
    "python_function": "flowml.models.flavors.python_model:PythonModelFlavor",
    "sklearn": "flowml.models.flavors.sklearn:SklearnFlavor",
}

_lock = threading.Lock()
_targets: dict[str, str | type[Flavor]] = {}
_instances: dict[str, Flavor] = {}
_discovered = False


def _discover() -> None:
    global _discovered
    with _lock:
        if _discovered:
            return
        targets: dict[str, str | type[Flavor]] = dict(_BUILTIN)
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            # A built-in name is never shadowed by a plugin.
            targets.setdefault(entry.name, entry.value)
        for name, target in targets.items():
            _targets.setdefault(name, target)
        _discovered = True


def register_flavor(name: str, flavor: str | type[Flavor]) -> None:
    """Register a flavor class (or its ``"module:Class"`` path) under `name`.

    Raises:
        InvalidParameter: `name` is already taken.
    """
    _discover()
    with _lock:
        if name in _targets:
            raise InvalidParameter(f"A flavor named {name!r} is already registered")
        _targets[name] = flavor


def flavor_names() -> list[str]:
    """The names of every known flavor, built-ins first."""
    _discover()
    return list(_targets)


def _instantiate(name: str, target: str | type[Flavor]) -> Flavor:
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
            target = getattr(module, attr)
        except (ImportError, AttributeError) as exc:
            raise ResourceNotFound(
                f"Cannot load flavor {name!r} from {module_name}:{attr} ({exc}); "
                "is its package installed?"
            ) from None
    if not (isinstance(target, type) and issubclass(target, Flavor)):
        raise InvalidParameter(f"Flavor {name!r} is not a flowml Flavor subclass: {target!r}")
    return target()


def get_flavor(name: str) -> Flavor:
    """The flavor registered as `name`.

    Raises:
        ResourceNotFound: no such flavor (the message lists the known ones).
    """
    _discover()
    if name not in _instances:
        if name not in _targets:
            raise ResourceNotFound(f"Unknown flavor {name!r}; known flavors: {sorted(_targets)}")
        flavor = _instantiate(name, _targets[name])
        with _lock:
            _instances.setdefault(name, flavor)
    return _instances[name]


def _all_flavors() -> list[Flavor]:
    out = []
    for name in flavor_names():
        try:
            out.append(get_flavor(name))
        except ResourceNotFound:
            continue  # a broken plugin must not hide the working flavors
    return out


def flavor_for_loader_module(loader_module: str) -> Flavor:
    """The flavor that loads models whose ``python_function.loader_module`` is given.

    Raises:
        ResourceNotFound: no known flavor reads that loader module.
    """
    for flavor in _all_flavors():
        if loader_module in flavor.loader_modules:
            return flavor
    raise ResourceNotFound(
        f"No flowml flavor loads models with loader_module {loader_module!r}; known flavors: "
        f"{flavor_names()} (third-party flavors register under the {ENTRY_POINT_GROUP!r} "
        "entry-point group)"
    )


def flavor_for_model(model: Any) -> Flavor:
    """The flavor that can save `model`.

    Raises:
        InvalidParameter: no known flavor saves objects of that type.
    """
    for flavor in _all_flavors():
        if flavor.can_save(model):
            return flavor
    raise InvalidParameter(
        f"No flowml flavor can save a {type(model).__module__}.{type(model).__qualname__}; "
        f"known flavors: {flavor_names()}"
    )
