"""The auth tables, on the tracking schema's `MetaData` (one database, one migration history).

The alembic revisions ``0005_auth`` and ``0007_token_expiry`` create exactly these; a
test compares the two.

Design notes:
- a token row keeps only a salted scrypt hash of its secret; ``token_id`` is the public,
  random half of the token, so a request finds its row with one indexed lookup and the
  secret is checked against one hash (never a scan over all hashes);
- a revoked token keeps its row (``revoked_time`` set) so ``tokens list`` can show it;
- a token may expire (``expires_time``): refused from then on, like a revoked one;
- per-model permissions reference ``registered_models.id``, so a rename keeps them;
  deleting an experiment's row, a model or a user removes its permissions (cascade).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, String, Table

from flowml.tracking.store.schema import metadata

__all__ = [
    "auth_experiment_permissions",
    "auth_registered_model_permissions",
    "auth_tokens",
    "auth_users",
]

_ID = BigInteger().with_variant(Integer(), "sqlite")

auth_users = Table(
    "auth_users",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("username", String(256), nullable=False, unique=True),
    Column("is_admin", Boolean(create_constraint=False), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("token_id", String(32), nullable=False, unique=True),
    Column("user_id", _ID, ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=True),
    Column("salt", String(64), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("revoked_time", BigInteger, nullable=True),
    # Refused from this instant on (epoch ms); NULL never expires. Added by ``0007``.
    Column("expires_time", BigInteger, nullable=True),
)

auth_experiment_permissions = Table(
    "auth_experiment_permissions",
    metadata,
    Column(
        "experiment_id",
        _ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", _ID, ForeignKey("auth_users.id", ondelete="CASCADE"), primary_key=True),
    Column("permission", String(32), nullable=False),
)

auth_registered_model_permissions = Table(
    "auth_registered_model_permissions",
    metadata,
    Column(
        "model_id",
        _ID,
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", _ID, ForeignKey("auth_users.id", ondelete="CASCADE"), primary_key=True),
    Column("permission", String(32), nullable=False),
)
