"""Where artifacts live: the real destination on the server, ``mlflow-artifacts:`` on the wire.

An MLflow client writes artifacts through the server when a run's artifact URI is
``mlflow-artifacts:/<path>``: it sends them to ``/api/2.0/mlflow-artifacts/artifacts/<path>``
and the server keeps them under its ``--artifacts-destination``. flowml's database stores
the *real* location (``<destination>/<experiment id>/<run id>/artifacts``), so the library,
the CLI and a process that reads the store directly find the files without the server;
the server translates at its edge: a stored location under the destination is sent as
``mlflow-artifacts:/<path below the destination>``, and an ``mlflow-artifacts:`` location a
client sends is stored as the real one. Locations elsewhere (another bucket, another disk)
pass through unchanged, as MLflow's server does: the client reads and writes them itself.
"""

from __future__ import annotations

import functools
import os
from urllib.parse import urlsplit

from flowml.exceptions import InvalidParameter
from flowml.tracking.artifacts import safe_artifact_path

__all__ = ["PROXY_SCHEME", "ArtifactLocations", "normalize_destination"]

PROXY_SCHEME = "mlflow-artifacts"


def normalize_destination(destination: str) -> str:
    """An absolute local path, or the URL as given, without a trailing slash."""
    if "://" not in destination:
        destination = os.path.abspath(os.path.expanduser(destination))
    return destination.rstrip("/") or "/"


class ArtifactLocations:
    """Translate artifact locations between the store (real) and the wire (proxied).

    Args:
        destination: the server's artifact destination (already normalized).
    """

    __slots__ = ("destination",)

    def __init__(self, destination: str) -> None:
        self.destination = destination

    def relative(self, location: str) -> str | None:
        """The path of ``location`` below the destination, or ``None`` when it is elsewhere."""
        location = location.rstrip("/")
        if location == self.destination:
            return ""
        prefix = self.destination + "/"
        if not location.startswith(prefix):
            return None
        # A stored location is data: a crafted one must not step back out of the destination.
        return safe_artifact_path(location[len(prefix) :])

    def to_wire(self, location: str) -> str:
        """``mlflow-artifacts:/<path>`` for a location under the destination, else as is."""
        return _to_wire(self, location)

    def _to_wire(self, location: str) -> str:
        try:
            rel = self.relative(location)
        except InvalidParameter:
            return location
        if rel is None:
            return location
        return f"{PROXY_SCHEME}:/{rel}"

    def from_wire(self, location: str | None) -> str | None:
        """The real location to store for one a client sent (``None``: the default).

        Raises:
            InvalidParameter: an ``mlflow-artifacts:`` URI naming another host, or whose
                path could leave the destination.
        """
        if not location:
            return None
        parts = urlsplit(location)
        if parts.scheme.lower() != PROXY_SCHEME:
            return location
        if parts.netloc:
            raise InvalidParameter(
                f"Artifact location {location!r} names a host; use {PROXY_SCHEME}:/<path> "
                "for this server's artifact destination"
            )
        rel = safe_artifact_path(parts.path.lstrip("/"))
        return f"{self.destination}/{rel}" if rel else self.destination


@functools.lru_cache(maxsize=16_384)
def _to_wire(locations: ArtifactLocations, location: str) -> str:
    # Every run of every search reply goes through here (its path is checked each time
    # otherwise); bounded, and a pure function of the destination and the location.
    return locations._to_wire(location)
