"""`import_mlflow`: copy an MLflow tracking store into flowml, idempotently.

Order: experiments (mapped by name; the source's id is kept when flowml has it free),
runs in batches (artifacts copied first, then every row of the batch in one transaction),
logged models (each with its files), then the registry (each registered model in one
transaction, every addition audited). Everything is keyed by the source's ids, so a rerun
skips what is there and an interrupted import resumes where it stopped.

Example:
    >>> from flowml.importers.mlflow import import_mlflow
    >>> report = import_mlflow("sqlite:///mlflow.db")      # doctest: +SKIP
    >>> report.matches                                      # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from flowml.importers.mlflow.artifacts import copy_tree, delete_tree, require_under
from flowml.importers.mlflow.errors import InvalidSourceData
from flowml.importers.mlflow.records import SourceRegisteredModel
from flowml.importers.mlflow.report import ImportReport
from flowml.importers.mlflow.source import MlflowSource, open_source, redact
from flowml.importers.mlflow.target import PlannedRun, Target, check_target_uri

__all__ = ["DEFAULT_BATCH_SIZE", "Progress", "import_mlflow"]

#: Runs per transaction: large enough for bulk statements, small enough to resume cheaply.
DEFAULT_BATCH_SIZE = 200


class Progress(Protocol):
    """Receives the import's progress (the CLI draws a bar from it)."""

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class _Silent:
    def phase(self, name: str, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


def import_mlflow(
    source: str,
    *,
    tracking_uri: str | None = None,
    artifact_root: str | None = None,
    registry_uri: str | None = None,
    keep_artifact_locations: bool = False,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> ImportReport:
    """Import an MLflow tracking store (database or server) into flowml's database.

    Args:
        source: ``sqlite:///mlflow.db``, ``postgresql://...`` or ``http(s)://`` of an MLflow
            tracking server.
        tracking_uri: flowml's database (default: ``FLOWML_TRACKING_URI``).
        artifact_root: where copied artifacts go (default: ``FLOWML_ARTIFACT_ROOT``).
        registry_uri: flowml's registry database (default: the tracking URI).
        keep_artifact_locations: leave artifacts where they are and point flowml at them.
        dry_run: read and compare only; nothing is written anywhere.
        batch_size: runs per transaction.
        progress: receives phases and advances (a progress bar).

    Returns:
        An `ImportReport` with the source's counts and flowml's, before and after.

    Raises:
        NotAnMLflowStore: the source is not an MLflow store or cannot be reached.
        UnsupportedMLflowSchema: a schema newer than MLflow 3.17's.
        InvalidSourceData: an unsafe id or artifact location in the source.
        ArtifactImportError: artifacts could not be copied (the run was not imported).
        InvalidParameter: flowml's tracking URI is not a SQL database.
        StoreError: flowml's database cannot be opened (an MLflow database given as
            flowml's, a newer flowml's, a read-only one).
    """
    from flowml.settings import get_settings

    settings = get_settings()
    tracking_uri = tracking_uri or settings.resolved_tracking_uri
    artifact_root = artifact_root or settings.resolved_artifact_root
    registry_uri = registry_uri or (
        settings.registry_uri if tracking_uri == settings.resolved_tracking_uri else None
    )
    if batch_size < 1:
        from flowml.exceptions import InvalidParameter

        raise InvalidParameter(f"batch_size must be at least 1, got {batch_size}")
    check_target_uri(tracking_uri)
    src = open_source(source)
    try:
        target = _open_target(tracking_uri, registry_uri, artifact_root, dry_run)
        job = _Import(src, redact(source), target, artifact_root, keep_artifact_locations,
                      batch_size, progress or _Silent())  # fmt: skip
        return job.run(dry_run)
    finally:
        src.close()


def _open_target(
    tracking_uri: str, registry_uri: str | None, artifact_root: str, dry_run: bool
) -> Target | None:
    """flowml's database, opened (and migrated) through its SQL store; in a dry run only
    when it exists at the current schema (else it is planned as empty and left alone)."""
    from flowml.tracking.store import migrate
    from flowml.tracking.store.engine import get_engine

    if dry_run:
        url = make_url(tracking_uri)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            return None
        engine = get_engine(tracking_uri)
        with engine.connect() as conn:
            migrate.check_flowml_database(
                conn, migrate.current_revision(conn), redact(tracking_uri)
            )
        return None if migrate.needs_upgrade(engine) else Target(engine)
    from flowml.tracking.store.sql import SqlStore

    store = SqlStore(tracking_uri, artifact_root)
    registry_engine = None
    if registry_uri and registry_uri != tracking_uri:
        registry_engine = get_engine(registry_uri)
        migrate.upgrade(registry_engine)
    return Target(store.engine, registry_engine)


class _Import:
    def __init__(
        self,
        src: MlflowSource,
        source_name: str,
        target: Target | None,
        artifact_root: str,
        keep: bool,
        batch_size: int,
        progress: Progress,
    ) -> None:
        self.src, self.source_name, self.target, self.keep = src, source_name, target, keep
        self.artifact_root = artifact_root.rstrip("/")
        self.batch_size, self.progress = batch_size, progress
        self.exp_map: dict[str, tuple[int, str]] = {}
        self.run_uris: dict[str, tuple[str | None, str]] = {}  # run -> (source uri, flowml uri)

    def run(self, dry_run: bool) -> ImportReport:
        counts = self.src.counts()
        experiments = self.src.experiments()
        index = self.src.run_index()
        models = self.src.logged_models()
        registered = self.src.registered_models()
        self.progress.phase("experiments", len(experiments))
        plan = self._plan_experiments(experiments)
        ids = (
            [run_id for run_id, _, _ in index],
            [m.model_id for m in models],
            [m.name for m in registered],
        )
        before = self._counts(*ids)
        if dry_run:
            after = {k: max(before.get(k, 0), v or 0) for k, v in counts.items()}
        else:
            assert self.target is not None
            self._experiments(experiments, plan)
            self._runs(index)
            self._logged_models(models)
            self._registry(registered)
            after = self._counts(*ids)
        return ImportReport.build(
            self.source_name, dry_run, counts, before, after,
            {src: str(dst) for src, (dst, _) in plan.items() if dst is not None},
        )  # fmt: skip

    def _counts(self, run_ids: list[str], model_ids: list[str], names: list[str]) -> dict[str, int]:
        if self.target is None:
            return {}
        mapped = [flowml_id for flowml_id, _ in self.exp_map.values()]
        return self.target.counts(mapped, run_ids, model_ids, names)

    # -- experiments ------------------------------------------------------------------------

    def _plan_experiments(self, experiments: Sequence) -> dict[str, tuple]:
        """source id -> (flowml id or None if to be created, its location or None)."""
        existing = self.target.experiments() if self.target is not None else {}
        plan: dict[str, tuple] = {}
        for exp in experiments:
            found = existing.get(exp.name)
            plan[exp.experiment_id] = found if found is not None else (None, None)
            if found is not None:
                self.exp_map[exp.experiment_id] = found
        return plan

    def _experiments(self, experiments: Sequence, plan: dict[str, tuple]) -> None:
        assert self.target is not None
        taken = {i for i, _ in self.target.experiments().values()}
        for exp in experiments:
            if exp.experiment_id in self.exp_map:
                self.target.add_experiment_tags(self.exp_map[exp.experiment_id][0], exp.tags)
            else:
                wanted = int(exp.experiment_id)
                new_id, location = self.target.create_experiment(
                    exp, None if wanted in taken else wanted,
                    exp.artifact_location if self.keep else None, self.artifact_root,
                )  # fmt: skip
                taken.add(new_id)
                self.exp_map[exp.experiment_id] = (new_id, location)
                plan[exp.experiment_id] = (new_id, location)
            self.progress.advance(1)
        self._source_locations = {e.experiment_id: e.artifact_location for e in experiments}

    # -- runs -------------------------------------------------------------------------------

    def _run_uri(self, run_id: str, experiment_id: str, source_uri: str | None) -> str:
        if self.keep and source_uri:
            return source_uri
        return f"{self.exp_map[experiment_id][1].rstrip('/')}/{run_id}/artifacts"

    def _runs(self, index: list[tuple[str, str, str | None]]) -> None:
        assert self.target is not None
        for run_id, exp_id, uri in index:
            if exp_id not in self.exp_map:
                raise InvalidSourceData(
                    f"Run {run_id} belongs to experiment {exp_id}, which the source does not "
                    "hold; nothing of it was imported."
                )
            self.run_uris[run_id] = (uri, self._run_uri(run_id, exp_id, uri))
        done = self.target.existing_runs([r for r, _, _ in index])
        todo = [r for r, _, _ in index if r not in done]
        self.progress.phase("runs", len(todo))
        for start in range(0, len(todo), self.batch_size):
            batch = self.src.read_runs(todo[start : start + self.batch_size])
            copied: list[str] = []
            try:
                planned = []
                for run in batch:
                    dest = self.run_uris[run.run_id][1]
                    if not self.keep and run.artifact_uri:
                        require_under(run.artifact_uri,
                                      self._source_locations.get(run.experiment_id),
                                      f"run {run.run_id}")  # fmt: skip
                        if copy_tree(run.artifact_uri, dest, f"run {run.run_id}",
                                     proxy_url=self.src.proxy_url):  # fmt: skip
                            copied.append(dest)
                    planned.append(PlannedRun(run, self.exp_map[run.experiment_id][0], dest))
                self.target.write_runs(planned)
            except BaseException:
                # The batch's rows were not written: its copied files must not linger.
                for dest in copied:
                    delete_tree(dest)
                raise
            self.progress.advance(len(batch))

    # -- logged models and registry ---------------------------------------------------------

    def _logged_models(self, models: Sequence) -> None:
        assert self.target is not None
        done = self.target.existing_logged_models([m.model_id for m in models])
        todo = [m for m in models if m.model_id not in done]
        self.progress.phase("logged models", len(todo))
        self.model_uris = {
            m.artifact_location: self._model_uri(m.experiment_id, m.model_id, m.artifact_location)
            for m in models
        }
        for model in todo:
            dest = self.model_uris[model.artifact_location]
            what = f"logged model {model.model_id}"
            if not self.keep:
                require_under(model.artifact_location,
                              self._source_locations.get(model.experiment_id), what)  # fmt: skip
                copy_tree(model.artifact_location, dest, what, proxy_url=self.src.proxy_url)
                self._into_run(model)
            self.target.write_logged_model(model, self.exp_map[model.experiment_id][0], dest)
            self.progress.advance(1)

    def _model_uri(self, experiment_id: str, model_id: str, source_uri: str) -> str:
        if self.keep:
            return source_uri
        return f"{self.exp_map[experiment_id][1].rstrip('/')}/models/{model_id}/artifacts"

    def _into_run(self, model: Any) -> None:
        """MLflow 3 keeps a logged model outside its run's artifacts and resolves
        ``runs:/<run>/<name>`` through the model; flowml resolves it in the run's artifacts,
        so the model's files are placed there too (unless the run already has that path)."""
        from flowml.tracking.artifacts import ArtifactRepository, safe_artifact_path

        if not model.run_id or model.run_id not in self.run_uris:
            return
        run_dest = self.run_uris[model.run_id][1]
        name = safe_artifact_path(model.name)
        if name and not ArtifactRepository(run_dest).exists(name):
            try:
                copy_tree(model.artifact_location, run_dest, f"logged model {model.model_id}",
                          proxy_url=self.src.proxy_url, dest_path=name)  # fmt: skip
            except BaseException:
                # A partial copy would pass for the model on the next run's exists() check.
                delete_tree(f"{run_dest.rstrip('/')}/{name}")
                raise

    def _registry(self, registered: Sequence[SourceRegisteredModel]) -> None:
        assert self.target is not None
        self.progress.phase("registered models", len(registered))
        reason = f"imported from MLflow ({self.src.where})"
        for model in registered:
            locations = {v.version: self._locate(v.storage_location or v.source or "")
                         for v in model.versions}  # fmt: skip
            self.target.write_registered_model(model, locations, reason)
            self.progress.advance(1)

    def _locate(self, location: str) -> str:
        """A version's storage location in flowml: under the copied model or run artifacts."""
        if self.keep:
            return location
        for old, new in (*self.model_uris.items(), *self.run_uris.values()):
            if old and (location == old or location.startswith(old.rstrip("/") + "/")):
                return new + location[len(old.rstrip("/")) :]
        return location
