"""Reversible method patches, grouped by integration, and the per-integration options.

A patch replaces one attribute of one class (``LogisticRegression.fit``) and remembers what
was there, so `revert` puts back exactly the original object (or removes the attribute
when the class only inherited it). Nothing here knows a library: integrations decide what
to patch and what the replacement does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AutologConfig", "config_for", "is_patched", "patch", "revert", "set_config"]

_log = logging.getLogger("flowml.autolog")
_MISSING = object()


@dataclass(frozen=True)
class AutologConfig:
    """One integration's options, as given to its ``autolog()``."""

    log_models: bool = True
    log_input_examples: bool = True
    log_model_signatures: bool = True
    log_datasets: bool = True
    exclusive: bool = False
    silent: bool = False
    extra_tags: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


_lock = threading.Lock()
# integration -> [(class, attribute, what the class itself held before)]
_patches: dict[str, list[tuple[type, str, Any]]] = {}
_configs: dict[str, AutologConfig] = {}


def set_config(integration: str, config: AutologConfig) -> None:
    _configs[integration] = config


def config_for(integration: str) -> AutologConfig | None:
    """The integration's options while it is enabled, else ``None``."""
    return _configs.get(integration)


def patch(
    integration: str, owner: type, name: str, make: Callable[[Callable[..., Any]], Any]
) -> None:
    """Replace ``owner.name`` with ``make(original)``, once per integration and class.

    ``original`` is what ``owner.name`` resolves to now (inherited or not); the class's own
    attribute, or its absence, is what `revert` restores.
    """
    with _lock:
        done = _patches.setdefault(integration, [])
        if any(cls is owner and attr == name for cls, attr, _ in done):
            return
        own = owner.__dict__.get(name, _MISSING)
        original = getattr(owner, name)
        setattr(owner, name, make(original))
        done.append((owner, name, own))


def is_patched(integration: str) -> bool:
    return bool(_patches.get(integration))


def revert(integration: str) -> None:
    """Put back every attribute the integration replaced, and forget its options."""
    with _lock:
        done = _patches.pop(integration, [])
        _configs.pop(integration, None)
        for owner, name, own in reversed(done):
            if own is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, own)


def warn(config: AutologConfig | None, message: str, *args: Any) -> None:
    """Report an autologging problem (never raised into the user's code) unless silent."""
    if config is None or not config.silent:
        _log.warning(message, *args)
