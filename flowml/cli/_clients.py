"""The clients CLI commands talk to, built from the environment's settings.

Imported inside each call so that ``flowml --help`` never loads SQLAlchemy or a store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowml.registry.client import RegistryClient
    from flowml.tracking.client import TrackingClient

__all__ = ["registry_client", "tracking_client"]


def tracking_client() -> TrackingClient:
    """A `TrackingClient` for the configured tracking URI."""
    from flowml.tracking.client import TrackingClient

    return TrackingClient()


def registry_client() -> RegistryClient:
    """A `RegistryClient` for the configured registry URI."""
    from flowml.registry.client import RegistryClient

    return RegistryClient()
