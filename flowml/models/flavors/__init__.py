"""Model flavors, one module each, found through `flowml.models.flavors.catalog`."""

from __future__ import annotations

from flowml.models.flavors.base import Flavor, Predictor
from flowml.models.flavors.catalog import (
    ENTRY_POINT_GROUP,
    flavor_for_loader_module,
    flavor_for_model,
    flavor_names,
    get_flavor,
    register_flavor,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Flavor",
    "Predictor",
    "flavor_for_loader_module",
    "flavor_for_model",
    "flavor_names",
    "get_flavor",
    "register_flavor",
]
