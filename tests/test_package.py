"""Package-level guarantees: the pinned public API, a light `import flowml`, the layering contract,
and a schema that matches its migrations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import flowml

ROOT = Path(__file__).resolve().parents[1]


def test_public_names_resolve():
    for name in flowml.__all__:
        assert getattr(flowml, name) is not None, name
    assert flowml.__all__ == sorted(flowml.__all__)
    # __all__ is written out for linters and type checkers; it must name exactly the lazy exports.
    assert set(flowml.__all__) == {*flowml._LAZY, "__version__"}


def test_import_flowml_stays_light():
    code = (
        "import sys, flowml\n"
        "heavy = [m for m in ('prefect', 'pandas', 'sqlalchemy', 'fastapi', 'uvicorn', 'sklearn', "
        "'pydantic', 'alembic', 'fsspec') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_layers_contract_holds():
    """import-linter's `layers` contract from pyproject.toml: lower layers never import higher
    ones."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; "
            "sys.exit(lint_imports_command())",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_schema_matches_migrations(tmp_path: Path):
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    import flowml.registry  # noqa: F401 - registers its tables on the shared metadata
    from flowml.tracking.store import migrate, schema
    from flowml.tracking.store.engine import get_engine

    modules = (
        "flowml.registry.schema",
        "flowml.tracking.lineage",
        "flowml.server.auth.schema",
        "flowml.tracing.schema",
    )
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            pass
    engine = get_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == []
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == migrate.HEAD_REVISION
