"""Give Prefect's local mode enough time to start on a busy machine.

Without ``PREFECT_API_URL``, Prefect starts a temporary API server in a subprocess on first
use; on its very first start that server creates its database, which on a loaded 2-core
machine takes longer than Prefect's default 20-second start timeout ("Timed out while
attempting to connect to ephemeral Prefect API server"). flowml raises that timeout, unless
the user chose one (environment, ``.env``, profile or ``pyproject.toml``): the user's value
always wins.

The variable is also set in ``os.environ`` so that processes flowml starts (project entry
points, process-pool task runners) inherit it.

Example:
    >>> from flowml._prefect_local import allow_slow_local_start
    >>> allow_slow_local_start()   # before the first flow run of a process
"""

from __future__ import annotations

import os
import threading

__all__ = ["LOCAL_SERVER_STARTUP_TIMEOUT_SECONDS", "allow_slow_local_start"]

# Prefect's first start (database creation) took 20-40 s on a loaded 2-core machine; a server
# that crashes is still reported, only later.
LOCAL_SERVER_STARTUP_TIMEOUT_SECONDS = 120
TIMEOUT_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"

_lock = threading.Lock()
_done = False


def allow_slow_local_start() -> None:
    """Raise Prefect's local-server start timeout to ``LOCAL_SERVER_STARTUP_TIMEOUT_SECONDS``
    unless the user set one. Idempotent and cheap after the first call."""
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        _done = True
        if TIMEOUT_VARIABLE in os.environ:
            return
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        ephemeral = get_current_settings().server.ephemeral
        if "startup_timeout_seconds" in ephemeral.model_fields_set:
            return  # set in a profile, a .env file or pyproject.toml
        if ephemeral.startup_timeout_seconds >= LOCAL_SERVER_STARTUP_TIMEOUT_SECONDS:
            return
        os.environ[TIMEOUT_VARIABLE] = str(LOCAL_SERVER_STARTUP_TIMEOUT_SECONDS)
        # Prefect reads its settings once at import into a global context; rebuild it so the
        # new default applies in this process too (temporary_settings contexts are untouched).
        refresh_global_settings_context()
