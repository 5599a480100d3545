"""The tracking server's auth and request security (``flowml server --auth token``).

| module | what |
|---|---|
| `config` | `SecurityConfig`: auth mode, default permission, Host allow-list, CORS, limits |
| `permissions` | the levels (READ < EDIT < MANAGE) and the 401/403 errors |
| `tokens` | token generation and salted scrypt hashing |
| `schema`, `store` | the auth tables (migration ``0005_auth``) and `AuthStore` over them |
| `access` | one request's permission lookups and requirements |
| `rules` | which level each route needs on which resource; search filtering |
| `guard` | applies the rules at the endpoints, logs every denial |
| `middleware` | Host allow-list, body limit, authentication (ASGI) |
| `admin` | the user and permission endpoints (MLflow's basic-auth shapes) |
"""

from __future__ import annotations

__all__: list[str] = []
