"""`TrackingClient`: every tracking operation, with explicit experiment and run ids.

The client is thin: it validates nothing the store doesn't, holds the write
buffer, and routes artifacts to the run's fsspec location. Reads of a run flush
that run's queued writes first, so a client always sees what it logged.

Example:
    >>> client = TrackingClient("sqlite:///flowml.db")
    >>> exp_id = client.create_experiment("demo")
    >>> run = client.create_run(exp_id, run_name="first")
    >>> client.log_metric(run.info.run_id, "acc", 0.93)
    >>> client.set_terminated(run.info.run_id)
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowml.exceptions import InvalidParameter, InvalidState, ResourceAlreadyExists
from flowml.settings import get_settings
from flowml.tracking import tags as systags
from flowml.tracking.artifacts import ArtifactRepository, FileInfo, safe_artifact_path
from flowml.tracking.buffer import BatchBuffer, BufferedWriteError, is_store_fault
from flowml.tracking.closer import RunCloser
from flowml.tracking.context import current_user
from flowml.tracking.entities import (
    Experiment,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
    now_ms,
)
from flowml.tracking.opener import RunOpener
from flowml.tracking.owner import current_owner
from flowml.tracking.store.base import SEARCH_MAX_RESULTS_DEFAULT, AbstractStore
from flowml.tracking.store.schemes import get_store

__all__ = ["TrackingClient", "shared_client"]


class TrackingClient:
    """Client for a tracking store.

    Args:
        tracking_uri: the store URI; defaults to ``FLOWML_TRACKING_URI`` (a SQLite file
            under ``FLOWML_HOME`` when unset).
        artifact_root: where new experiments keep artifacts; defaults to
            ``FLOWML_ARTIFACT_ROOT``.
    """

    def __init__(self, tracking_uri: str | None = None, artifact_root: str | None = None) -> None:
        settings = get_settings()
        self.tracking_uri = tracking_uri or settings.resolved_tracking_uri
        self.artifact_root = artifact_root or settings.resolved_artifact_root
        self.search_timeout_seconds = settings.search_timeout_seconds
        self._store: AbstractStore | None = None
        self._buffer: BatchBuffer | None = None
        self._opener: RunOpener | None = None
        self._closer: RunCloser | None = None
        self._init_lock = threading.Lock()

    @property
    def store(self) -> AbstractStore:
        if self._store is None:
            with self._init_lock:
                if self._store is None:
                    self._store = get_store(
                        self.tracking_uri,
                        _absolute(self.artifact_root),
                        search_timeout_seconds=self.search_timeout_seconds,
                    )
        return self._store

    @property
    def buffer(self) -> BatchBuffer:
        if self._buffer is None:
            with self._init_lock:
                if self._buffer is None:
                    self._buffer = BatchBuffer(self.store)
        return self._buffer

    @property
    def opener(self) -> RunOpener | None:
        """The queue of runs opened without waiting (None: the store cannot create a run
        whose id the client chose)."""
        if self._opener is None and self.store.supports_deferred_open:
            buffer = self.buffer
            with self._init_lock:
                if self._opener is None:
                    self._opener = RunOpener(self.store)
                    # Queued values of a run are written after the run itself.
                    buffer.before_write = self._opener.ensure
        return self._opener

    @property
    def closer(self) -> RunCloser:
        """The queue of run ends written in the background (see `flowml.tracking.closer`)."""
        if self._closer is None:
            with self._init_lock:
                if self._closer is None:
                    self._closer = RunCloser()
        return self._closer

    def flush(self, run_id: str | None = None) -> None:
        """Write queued values now (for one run, or all); raise any failed queued write."""
        self._settle(run_id)
        if self._buffer is not None:
            self._buffer.flush(run_id)

    def _settle(self, run_id: str | None = None) -> None:
        """Before the run (every run when None) is read or written: its queued end is
        written, and its creation when it was opened without waiting."""
        if self._closer is not None:
            self._closer.ensure(run_id)
        if self._opener is not None:
            self._opener.ensure(run_id)  # the run itself first, when opened without waiting

    # -- experiments -------------------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        """Create an experiment; returns its id. Raises `ResourceAlreadyExists` on a taken name."""
        return self.store.create_experiment(
            name, artifact_location, {k: str(val) for k, val in (tags or {}).items()}
        )

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created when there is none (also when another
        process creates it at the same time: both get the same experiment).

        Raises:
            InvalidState: the experiment exists but is deleted; as MLflow's ``set_experiment``,
                it is neither used nor created again until it is restored
                (`restore_experiment`, ``flowml experiments restore ID``).
            InvalidParameter: ``name`` is not a valid experiment name.

        Example:
            >>> client.get_or_create_experiment("wine").lifecycle_stage
            'active'
        """
        experiment = self.store.get_experiment_by_name(name)
        if experiment is None:
            try:
                self.create_experiment(name)
            except ResourceAlreadyExists:
                pass  # another process created it between the two calls
            experiment = self.store.get_experiment_by_name(name)
            if experiment is None:
                raise InvalidState(f"Experiment {name!r} was deleted while being created")
        if experiment.lifecycle_stage != "active":
            raise InvalidState(
                f"Experiment {name!r} is deleted; restore it "
                f"(flowml experiments restore {experiment.experiment_id}) or use another name"
            )
        return experiment

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        return self.store.search_experiments(
            view_type, max_results, filter_string, order_by, page_token
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.restore_experiment(str(experiment_id))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.store.rename_experiment(str(experiment_id), new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.store.set_experiment_tag(str(experiment_id), key, str(value))

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
        *,
        parent_run_id: str | None = None,
        run_key: str | None = None,
    ) -> Run:
        """Create a run (status RUNNING).

        Args:
            experiment_id: the experiment to create it in.
            start_time: epoch ms; now by default.
            tags: extra tags; ``mlflow.user`` and ``flowml.owner`` (this process) are added
                when missing.
            run_name: a name; a memorable one is generated when omitted.
            parent_run_id: make this a nested run of that run.
            run_key: an idempotency key: a second call with the same key returns the first run.
        """
        all_tags = _run_tags(tags, parent_run_id)
        return self.store.create_run(
            str(experiment_id),
            user_id=all_tags[systags.USER],
            start_time=start_time,
            tags=[RunTag(k, val) for k, val in all_tags.items()],
            run_name=run_name,
            run_key=run_key,
        )

    def open_run(
        self,
        experiment_id: str,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
        *,
        parent_run_id: str | None = None,
        run_key: str | None = None,
    ) -> Run:
        """Create a new run (status RUNNING) without waiting for the store, when it can.

        Like `create_run`, except that a ``run_key`` must be new: the run is validated and
        returned at once, and written in the background (or with its first read, its
        queued values or its end). A key that turns out to exist already is not detected
        here: the run's end then fails with `ResourceNotFound`, and the caller opens the
        run with `create_run`. Without a background opener this is `create_run`.
        """
        opener = self.opener
        if opener is None:
            return self.create_run(
                experiment_id,
                tags=tags,
                run_name=run_name,
                parent_run_id=parent_run_id,
                run_key=run_key,
            )
        all_tags = _run_tags(tags, parent_run_id)
        return opener.open(
            str(experiment_id),
            all_tags[systags.USER],
            [RunTag(k, val) for k, val in all_tags.items()],
            run_name,
            run_key,
        )

    def get_run(self, run_id: str) -> Run:
        self.flush(run_id)
        return self.store.get_run(run_id)

    def get_run_by_key(self, run_key: str) -> Run | None:
        self._settle()  # a run opened without waiting may hold the key
        return self.store.get_run_by_key(run_key)

    def update_run(
        self, run_id: str, status: str | None = None, name: str | None = None
    ) -> RunInfo:
        self._settle(run_id)
        return self.store.update_run_info(run_id, status=status, run_name=name)

    def set_terminated(
        self, run_id: str, status: str = RunStatus.FINISHED, end_time: int | None = None
    ) -> RunInfo | None:
        """Write the run's queued values, then end it with ``status``.

        The run never stays RUNNING because of its queued values: when some were refused,
        it ends FAILED with the reason in the ``flowml.tracking_error`` tag; when the store
        fails, the values and the end stay queued, in that order, and are retried (every
        second, on the next flush, at exit). Either way the error is raised.

        Returns:
            The run's info once ended.

        Raises:
            BufferedWriteError: queued values were refused (the run ended FAILED) or could
                not be written yet (the end is queued behind them).
        """
        if status not in RunStatus.ALL:
            raise InvalidParameter(
                f"Unknown run status {status!r}; expected one of {RunStatus.ALL}"
            )
        end_time = end_time or now_ms()
        try:
            self.flush(run_id)
        except BufferedWriteError as exc:
            if exc.kept:
                self.buffer.end_later(run_id, status, end_time)
            else:
                self._end_failed(run_id, end_time, str(exc))
            raise
        try:
            info = self.store.update_run_info(run_id, status=status, end_time=end_time)
        except Exception as exc:
            if is_store_fault(exc):  # written with the next flush of the buffer
                self.buffer.end_later(run_id, status, end_time)
            raise
        if self._buffer is not None:
            self._buffer.forget(run_id)
        return info

    def _end_failed(self, run_id: str, end_time: int, reason: str) -> None:
        tags = [RunTag(systags.TRACKING_ERROR, reason[:500])]
        try:
            self.store.finish_run(run_id, RunStatus.FAILED, end_time, tags=tags)
        except Exception as exc:  # the caller gets the first error; this one is retried
            if not is_store_fault(exc):
                raise
            self.buffer.end_later(run_id, RunStatus.FAILED, end_time, reason)

    def delete_run(self, run_id: str) -> None:
        self.flush(run_id)
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.restore_run(run_id)

    # -- params, metrics, tags ---------------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool = True,
    ) -> None:
        """Log many values at once: written in one transaction (``synchronous``) or queued."""
        if synchronous:
            self.flush(run_id)
            self.store.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        else:
            self.buffer.add(run_id, metrics=list(metrics), params=list(params), tags=list(tags))

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool = True,
    ) -> None:
        metric = Metric(key, value, timestamp if timestamp is not None else now_ms(), step or 0)
        self.log_batch(run_id, metrics=[metric], synchronous=synchronous)

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool = True) -> Any:
        self.log_batch(run_id, params=[Param(key, _str(value))], synchronous=synchronous)
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool = True) -> None:
        self.log_batch(run_id, tags=[RunTag(key, _str(value))], synchronous=synchronous)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.flush(run_id)
        self.store.delete_tag(run_id, key)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self.flush(run_id)
        return self.store.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Runs matching a filter such as ``metrics.acc > 0.9 and params.lr = '0.01'``."""
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        self.flush()
        return self.store.search_runs(
            [str(e) for e in experiment_ids],
            filter_string,
            run_view_type,
            max_results,
            order_by,
            page_token,
        )

    # -- artifacts ---------------------------------------------------------------------------

    def artifact_repo(self, run_id: str) -> ArtifactRepository:
        self._settle(run_id)
        uri = self.store.get_run(run_id).info.artifact_uri
        # ``mlflow-artifacts:`` URIs (runs made through a server) go through its proxy.
        return ArtifactRepository(uri, proxy_url=self.tracking_uri)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self.artifact_repo(run_id).log_artifact(local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self.artifact_repo(run_id).log_artifacts(local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Write ``text`` as the artifact ``artifact_file`` (UTF-8)."""
        self.artifact_repo(run_id).write_bytes(artifact_file, text.encode("utf-8"))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """Write ``dictionary`` as JSON, or YAML when ``artifact_file`` ends in .yaml/.yml."""
        suffix = Path(safe_artifact_path(artifact_file)).suffix.lower()
        if suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(dictionary, sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2, default=str)
        self.log_text(run_id, text, artifact_file)

    def log_image(
        self,
        run_id: str,
        image: Any,
        artifact_file: str | None = None,
        key: str | None = None,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Log a numpy array or PIL image as a file, or as step ``step`` of series ``key``
        (MLflow's layout; see `flowml.tracking.media`)."""
        from flowml.tracking import media

        media.log_image(self, run_id, image, artifact_file, key, step, timestamp)

    def log_figure(
        self,
        run_id: str,
        figure: Any,
        artifact_file: str,
        *,
        save_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Save a matplotlib or plotly figure as the artifact ``artifact_file``."""
        from flowml.tracking import media

        media.log_figure(self, run_id, figure, artifact_file, save_kwargs)

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Write a dict or DataFrame as a ``.json``/``.parquet`` table artifact (appending)."""
        from flowml.tracking import media

        media.log_table(self, run_id, data, artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self.artifact_repo(run_id).list_artifacts(path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        """Copy a run's artifact (file or directory) to a local directory; returns its path."""
        return self.artifact_repo(run_id).download_artifacts(path, dst_path)

    def close(self) -> None:
        self._settle()
        if self._buffer is not None:
            self._buffer.close()


_shared: dict[tuple[str, str], TrackingClient] = {}
_shared_lock = threading.Lock()


def shared_client(
    tracking_uri: str | None = None, artifact_root: str | None = None
) -> TrackingClient:
    """The process-wide client for a store and artifact root (the settings' when ``None``).

    The fluent API, tracked Prefect tasks and registry clients all take their client here, so
    whatever points at one store shares one write buffer: what one of them queued, the
    others read.
    """
    if tracking_uri is None or artifact_root is None:
        settings = get_settings()
        tracking_uri = tracking_uri or settings.resolved_tracking_uri
        artifact_root = artifact_root or settings.resolved_artifact_root
    key = (tracking_uri, artifact_root)
    client = _shared.get(key)
    if client is None:
        with _shared_lock:
            client = _shared.get(key)
            if client is None:
                client = _shared[key] = TrackingClient(tracking_uri, artifact_root)
    return client


def close_shared_clients() -> None:
    """Write out and forget every shared client (tests, and before the process ends)."""
    with _shared_lock:
        clients = list(_shared.values())
        _shared.clear()
    for client in clients:
        try:
            client.close()
        except Exception:  # a store that went away must not keep the others open
            pass


def _run_tags(tags: dict[str, Any] | None, parent_run_id: str | None) -> dict[str, str]:
    # Every run records the process that owns it, so `flowml runs gc` can end it should
    # that process die; a caller acting for another process passes its own owner tag.
    all_tags = {systags.USER: current_user(), systags.OWNER: current_owner()}
    all_tags.update({k: str(val) for k, val in (tags or {}).items()})
    if parent_run_id is not None:
        all_tags[systags.PARENT_RUN_ID] = parent_run_id
    return all_tags


def _str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _absolute(root: str) -> str:
    """Local artifact roots become absolute paths so runs stay valid from any cwd."""
    if "://" in root:
        return root
    return str(Path(root).expanduser().resolve())
