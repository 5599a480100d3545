"""A real ``flowml server`` subprocess on a loopback port, for the REST store's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from subprocess_helpers import free_port, stop, wait_answering

__all__ = ["LoopbackServer", "empty_database", "free_port"]

_NO_DELETE = (
    "CREATE TRIGGER registry_audit_no_delete BEFORE DELETE ON registry_audit "
    "BEGIN SELECT RAISE(ABORT, 'registry_audit is append-only'); END"
)


def empty_database(engine: Any) -> None:
    """Empty every table of a server's SQLite database (tracking and registry alike).

    The registry's audit table is append-only (a trigger): lifted for the emptying only,
    in the same transaction, so the server never sees it missing.
    """
    from sqlalchemy import delete

    import flowml.registry.schema  # noqa: F401 - its tables join the shared metadata
    from flowml.tracking.store import schema

    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS registry_audit_no_delete")
        for table in reversed(schema.metadata.sorted_tables):
            conn.execute(delete(table))
        conn.exec_driver_sql(_NO_DELETE)


class LoopbackServer:
    """A ``flowml server`` on 127.0.0.1, stoppable and restartable on the same port and store."""

    def __init__(
        self, root: Path, port: int | None = None, store_uri: str | None = None, workers: int = 1
    ) -> None:
        self.root = root
        self.store_uri = store_uri or f"sqlite:///{root / 'server.db'}"
        self.workers = workers
        self.destination = root / "artifacts"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = ["--port", str(self.port), "--backend-store-uri", self.store_uri]
        options += ["--workers", str(self.workers)]
        options += ["--artifacts-destination", str(self.destination)]
        with open(self.root / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flowml.cli", "server", *options],
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
        try:
            wait_answering(
                self.proc,
                self.url + "/health",
                lambda: (self.root / "server.log").read_text()[-3000:],
            )
        except AssertionError:
            self.stop()
            raise

    def empty(self) -> Any:
        """Empty the server's database and leave it as a new store leaves it (the Default
        experiment recreated): the session shares this server, and a test that logs into
        the Default experiment must find it whoever emptied the store before. Returns a
        `SqlStore` on that database."""
        from flowml.tracking.store.sql import SqlStore

        empty_database(SqlStore(self.store_uri, str(self.destination)).engine)
        return SqlStore(self.store_uri, str(self.destination))  # opening it makes Default

    def kill(self) -> None:
        """Stop abruptly (an outage), waiting until the port is closed."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(15)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
