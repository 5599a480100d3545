"""flowml's tracking server: MLflow's REST API over flowml's stores (``flowml server``).

`flowml.server.app.create_app` builds the ASGI app; `flowml.server.serve.serve` runs it
under uvicorn. One router module per MLflow API group (`experiments`, `runs`,
`artifacts`) converts wire shapes (`wire`) to store entities and back; the business rules
stay in the stores below. `auth` holds the security layers (token auth, permissions, Host
allow-list, CORS, body limits). Nothing here is imported by ``import flowml``.
"""

from __future__ import annotations

__all__: list[str] = []
