"""The fluent API: ``flowml.start_run()``, ``flowml.log_metric(...)`` and friends.

The active-run stack lives in a `contextvars.ContextVar`, so each thread and
each asyncio task sees its own runs (Prefect copies the context into the task
runs it starts). Metrics, params and tags are queued in the client's buffer and
written in batches; `end_run` and `flush` write them out.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from flowml.exceptions import InvalidParameter, InvalidState
from flowml.settings import get_settings
from flowml.tracking import tags as systags
from flowml.tracking.client import TrackingClient, shared_client
from flowml.tracking.context import system_tags
from flowml.tracking.entities import (
    Experiment,
    Metric,
    PagedList,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
    now_ms,
)
from flowml.tracking.owner import current_owner
from flowml.tracking.signals import install_sigterm_flush, sigterm_received
from flowml.tracking.store.base import DEFAULT_EXPERIMENT_ID, SEARCH_MAX_RESULTS_DEFAULT

_run_stack: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "flowml_run_stack", default=()
)
_tracking_uri: str | None = None
_experiment_id: str | None = None


class ActiveRun:
    """A run made active by `start_run`; a context manager that ends it.

    On leaving the ``with`` block the run ends FINISHED, or FAILED when an exception
    escaped (KILLED for ``KeyboardInterrupt``).

    Example:
        >>> with flowml.start_run(run_name="baseline") as run:
        ...     run.info.run_name, run.info.status
        ('baseline', 'RUNNING')
        >>> flowml.get_run(run.info.run_id).info.status
        'FINISHED'
    """

    def __init__(self, run: Run, client: TrackingClient, *, owned: bool = True) -> None:
        self._run = run
        self.client = client
        self._owned = owned

    @property
    def info(self):  # noqa: ANN201 - RunInfo
        return self._run.info

    @property
    def data(self):  # noqa: ANN201 - RunData as of start
        return self._run.data

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        _end(self, status)

    def __repr__(self) -> str:
        return f"<ActiveRun run_id={self.info.run_id} name={self.info.run_name!r}>"


# -- configuration -------------------------------------------------------------------------


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Point the fluent API at another store (``None`` goes back to the settings).

    Args:
        uri: ``sqlite:///path.db``, ``postgresql://user@host/db`` or ``http(s)://`` (a
            tracking server).

    Raises:
        InvalidParameter: a file path or ``file:`` URI (MLflow's ``./mlruns`` file store,
            which flowml does not read); the message says how to import one instead.

    Example:
        >>> flowml.set_tracking_uri("sqlite:///flowml.db")
    """
    global _tracking_uri
    if uri is None:
        _tracking_uri = None
        return
    from flowml.tracking.store.schemes import check_tracking_uri

    _tracking_uri = check_tracking_uri(os.fspath(uri) if isinstance(uri, os.PathLike) else uri)


def get_tracking_uri() -> str:
    """The store the fluent API writes to: `set_tracking_uri`'s, else ``FLOWML_TRACKING_URI``,
    else ``sqlite:///$FLOWML_HOME/flowml.db``.

    Example:
        >>> flowml.set_tracking_uri("sqlite:///experiments.db")
        >>> flowml.get_tracking_uri()
        'sqlite:///experiments.db'
        >>> flowml.set_tracking_uri(None)  # back to the settings
    """
    return _tracking_uri or get_settings().resolved_tracking_uri


def get_client() -> TrackingClient:
    """The process-wide client for the current tracking URI and artifact root."""
    return shared_client(get_tracking_uri(), get_settings().resolved_artifact_root)


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment the default for new runs, creating it by name when missing.

    Args:
        experiment_name: the experiment's name (created when no experiment has it).
        experiment_id: instead, an existing experiment's id.

    Returns:
        The `Experiment`.

    Raises:
        InvalidParameter: both or neither argument given, or the experiment is deleted
            (restore it first).
        ResourceNotFound: no experiment has ``experiment_id``.

    Example:
        >>> experiment = flowml.set_experiment("churn")
        >>> with flowml.start_run() as run:
        ...     run.info.experiment_id == experiment.experiment_id
        True
    """
    global _experiment_id
    client = get_client()
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidParameter("Give exactly one of experiment_name or experiment_id")
    if experiment_id is None:
        assert experiment_name is not None  # exactly one of the two is given (checked above)
        experiment = client.get_or_create_experiment(experiment_name)
    else:
        experiment = client.get_experiment(experiment_id)
        if experiment.lifecycle_stage != "active":
            raise InvalidState(
                f"Experiment {experiment.name!r} is deleted; restore it "
                f"(flowml experiments restore {experiment.experiment_id}) or use another name"
            )
    _experiment_id = experiment.experiment_id
    return experiment


def selected_experiment_id() -> str | None:
    """The experiment chosen with `set_experiment` or ``FLOWML_EXPERIMENT_ID`` (or ``None``)."""
    return _experiment_id or get_settings().experiment_id


def experiment_id_override() -> str | None:
    """The experiment chosen with `set_experiment`, or ``None`` when the settings decide."""
    return _experiment_id


def tracking_uri_override() -> str | None:
    """The URI given to `set_tracking_uri`, or ``None`` when the settings decide."""
    return _tracking_uri


def current_experiment_id() -> str:
    """Where new runs go: the selected experiment, else the Default experiment."""
    return _current_experiment_id()


def _current_experiment_id() -> str:
    settings = get_settings()
    return _experiment_id or settings.experiment_id or DEFAULT_EXPERIMENT_ID


# -- the run stack -------------------------------------------------------------------------


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread / asyncio task, or ``None``.

    Example:
        >>> flowml.active_run() is None
        True
        >>> with flowml.start_run() as run:
        ...     flowml.active_run().info.run_id == run.info.run_id
        True
    """
    stack = _run_stack.get()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, else the last run this process started (ended or not), as MLflow.

    Returns:
        The run as stored now (``None`` when this process started none).

    Example:
        >>> with flowml.start_run():
        ...     flowml.log_metric("acc", 0.9)
        >>> flowml.last_active_run().data.metrics
        {'acc': 0.9}
    """
    run = active_run() or _last_run
    return run.client.get_run(run.info.run_id) if run is not None else None


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    parent_run_id: str | None = None,
    log_system_tags: bool = True,
) -> ActiveRun:
    """Start a new run (or resume ``run_id``) and make it active.

    Args:
        run_id: resume this run instead of creating one (``FLOWML_RUN_ID`` does the same
            for the first run of a process, as used by ``flowml run``).
        experiment_id: where to create the run; default: `set_experiment`'s, then
            ``FLOWML_EXPERIMENT_ID``, then the Default experiment.
        run_name: the run's name (generated when omitted).
        nested: required to start a run while another is active; the new run becomes its child.
        tags: extra tags.
        description: stored as the ``mlflow.note.content`` tag.
        parent_run_id: explicit parent (default: the active run when ``nested``).
        log_system_tags: add user, source and git commit tags.

    Returns:
        An `ActiveRun`, usable as a context manager.

    Example:
        >>> with flowml.start_run(run_name="baseline") as run:
        ...     flowml.log_params({"lr": 0.01})
        ...     flowml.log_metric("acc", 0.91)
        >>> run.info.run_name, flowml.get_run(run.info.run_id).info.status
        ('baseline', 'FINISHED')
    """
    parent = active_run()
    if parent is not None and not nested:
        raise InvalidState(
            f"Run {parent.info.run_id} is already active; end it first or start this run with "
            "nested=True"
        )
    client = get_client()
    stack = _run_stack.get()
    if run_id is None and not stack and get_settings().run_id and not _env_run_used.is_set():
        run_id = get_settings().run_id
        _env_run_used.set()
    if run_id is not None:
        run = client.get_run(run_id)
        if run.info.lifecycle_stage != "active":
            raise InvalidState(f"Run {run_id} is deleted; restore it before resuming it")
        if run.info.status != RunStatus.RUNNING:
            client.update_run(run_id, status=RunStatus.RUNNING)
        # The resuming process owns the run now: `flowml runs gc` watches this one.
        extra = {**(tags or {}), systags.OWNER: current_owner()}
        if run_name:
            client.update_run(run_id, name=run_name)
        client.log_batch(run_id, tags=[RunTag(k, str(val)) for k, val in extra.items()])
        run = client.get_run(run_id)
    else:
        all_tags: dict[str, Any] = system_tags() if log_system_tags else {}
        all_tags.update(tags or {})
        if description is not None:
            all_tags[systags.NOTE] = description
        if parent_run_id is None and parent is not None:
            parent_run_id = parent.info.run_id
        run = client.create_run(
            experiment_id or _current_experiment_id(),
            tags=all_tags,
            run_name=run_name,
            parent_run_id=parent_run_id,
        )
    active = ActiveRun(run, client)
    _run_stack.set((*stack, active))
    global _last_run
    _last_run = active
    with _open_lock:
        _open_runs[run.info.run_id] = active
    install_sigterm_flush()
    return active


_env_run_used = threading.Event()
_last_run: ActiveRun | None = None  # for `last_active_run`, from any thread, as MLflow


@contextlib.contextmanager
def activate_run(
    run: Run, client: TrackingClient | None = None, *, flush: bool = True
) -> Iterator[ActiveRun]:
    """Make an existing run the active one for a block, without starting or ending it.

    Used by integrations (Prefect tasks) that own the run's life cycle themselves. With
    ``flush=False`` what the block logged stays queued for the owner to write with the run's
    final values (one transaction instead of two).
    """
    active = ActiveRun(run, client or get_client(), owned=False)
    token = _run_stack.set((*_run_stack.get(), active))
    try:
        yield active
    finally:
        _run_stack.reset(token)
        if flush:
            active.client.flush(run.info.run_id)


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the innermost active run: write its queued values, then set ``status``.

    Example:
        >>> run = flowml.start_run()
        >>> flowml.end_run(status="KILLED")
        >>> flowml.get_run(run.info.run_id).info.status
        'KILLED'
    """
    run = active_run()
    if run is not None:
        _end(run, status)


def _end(run: ActiveRun, status: str) -> None:
    stack = _run_stack.get()
    if run in stack:
        _run_stack.set(tuple(r for r in stack if r is not run))
    with _open_lock:
        _open_runs.pop(run.info.run_id, None)
    run.client.set_terminated(run.info.run_id, status)


def run_for_logging() -> tuple[str, TrackingClient]:
    """The run the fluent ``log_*`` calls write to, and its client: the active run, or a run
    started (and ended at exit) when none is active, as MLflow does."""
    return _run_id_for_logging()


def _run_id_for_logging() -> tuple[str, TrackingClient]:
    run = active_run()
    if run is None:
        run = start_run()
    return run.info.run_id, run.client


# Runs this process started (or resumed) with `start_run` and has not ended, from any thread:
# ended when the interpreter exits, as MLflow does, so a script that forgets `end_run` (or
# logs without starting a run) does not leave its run RUNNING.
_open_runs: dict[str, ActiveRun] = {}
_open_lock = threading.Lock()


def end_open_runs(status: str) -> None:
    """End every run this process started and has not ended, innermost first."""
    with _open_lock:
        runs = list(_open_runs.values())[::-1]
        _open_runs.clear()
    for run in runs:
        try:
            run.client.set_terminated(run.info.run_id, status)
        except Exception as exc:  # the process is ending: report, don't raise
            print(f"flowml: could not end run {run.info.run_id}: {exc}", file=sys.stderr)


@atexit.register
def _end_open_runs_at_exit() -> None:
    # An uncaught exception ended the program (the interpreter keeps it in sys.last_value):
    # its runs failed; after a SIGTERM or Ctrl-C they were killed; otherwise they finished.
    last = getattr(sys, "last_value", None)
    if sigterm_received() or isinstance(last, KeyboardInterrupt):
        status = RunStatus.KILLED
    elif last is not None:
        status = RunStatus.FAILED
    else:
        status = RunStatus.FINISHED
    end_open_runs(status)


def _forget_open_runs_after_fork() -> None:
    # A forked child must not end its parent's runs when it exits.
    global _open_lock
    _open_lock = threading.Lock()
    _open_runs.clear()


os.register_at_fork(after_in_child=_forget_open_runs_after_fork)


# -- logging -------------------------------------------------------------------------------


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log a metric point to the active run (queued; written in batches).

    Args:
        key: the metric's name.
        value: a number (NaN and infinities are kept, as MLflow).
        step: the training step (default 0).
        timestamp: epoch milliseconds (default now).

    Example:
        >>> with flowml.start_run() as run:
        ...     for step, loss in enumerate([0.9, 0.5, 0.3]):
        ...         flowml.log_metric("loss", loss, step=step)
        >>> flowml.get_run(run.info.run_id).data.metrics
        {'loss': 0.3}
    """
    run_id, client = _run_id_for_logging()
    client.buffer.add(
        run_id,
        metrics=[Metric(key, value, timestamp if timestamp is not None else now_ms(), step or 0)],
    )


def log_metrics(
    metrics: dict[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    """Log several metrics at one step and timestamp to the active run (queued).

    Example:
        >>> with flowml.start_run() as run:
        ...     flowml.log_metrics({"precision": 0.8, "recall": 0.6}, step=1)
        >>> sorted(flowml.get_run(run.info.run_id).data.metrics.items())
        [('precision', 0.8), ('recall', 0.6)]
    """
    run_id, client = _run_id_for_logging()
    ts = timestamp if timestamp is not None else now_ms()
    client.buffer.add(run_id, metrics=[Metric(k, val, ts, step or 0) for k, val in metrics.items()])


def log_param(key: str, value: Any) -> Any:
    """Log a param (write-once: the same value again is a no-op, another value an error).

    Returns:
        ``value``, so a setting can be logged where it is read.

    Raises:
        InvalidParameter: the run already has another value for ``key`` (raised when the
            queue is written: at `flush`, at the run's end, or by a later batch).

    Example:
        >>> with flowml.start_run() as run:
        ...     lr = flowml.log_param("lr", 0.01)
        >>> lr, flowml.get_run(run.info.run_id).data.params
        (0.01, {'lr': '0.01'})
    """
    run_id, client = _run_id_for_logging()
    client.buffer.add(run_id, params=[Param(key, value if isinstance(value, str) else str(value))])
    return value


def log_params(params: dict[str, Any]) -> None:
    """Log several params (values are stored as strings; write-once as `log_param`).

    Example:
        >>> with flowml.start_run() as run:
        ...     flowml.log_params({"depth": 3, "criterion": "gini"})
        >>> flowml.get_run(run.info.run_id).data.params
        {'criterion': 'gini', 'depth': '3'}
    """
    run_id, client = _run_id_for_logging()
    client.buffer.add(
        run_id,
        params=[Param(k, val if isinstance(val, str) else str(val)) for k, val in params.items()],
    )


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run (tags, unlike params, may be overwritten).

    Example:
        >>> with flowml.start_run() as run:
        ...     flowml.set_tag("stage", "draft")
        ...     flowml.set_tag("stage", "final")
        >>> flowml.get_run(run.info.run_id).data.tags["stage"]
        'final'
    """
    run_id, client = _run_id_for_logging()
    client.buffer.add(run_id, tags=[RunTag(key, str(value))])


def set_tags(tags: dict[str, Any]) -> None:
    """Set several tags on the active run (values are stored as strings).

    Example:
        >>> with flowml.start_run() as run:
        ...     flowml.set_tags({"team": "risk", "priority": 1})
        >>> tags = flowml.get_run(run.info.run_id).data.tags
        >>> tags["team"], tags["priority"]
        ('risk', '1')
    """
    run_id, client = _run_id_for_logging()
    client.buffer.add(run_id, tags=[RunTag(k, str(val)) for k, val in tags.items()])


def flush() -> None:
    """Write every queued metric, param and tag now.

    Example:
        >>> with flowml.start_run() as run:
        ...     flowml.log_metric("acc", 0.9)
        ...     flowml.flush()  # readable by other processes from here on
        ...     flowml.get_run(run.info.run_id).data.metrics
        {'acc': 0.9}
    """
    get_client().flush()
    for run in _run_stack.get():
        run.client.flush()


# -- reading -------------------------------------------------------------------------------


def get_run(run_id: str) -> Run:
    """The run as stored now: its info, params, latest metrics, tags and inputs.

    Raises:
        ResourceNotFound: no run has that id.

    Example:
        >>> with flowml.start_run(run_name="baseline") as run:
        ...     flowml.log_params({"lr": 0.01})
        >>> stored = flowml.get_run(run.info.run_id)
        >>> stored.info.run_name, stored.info.status, stored.data.params
        ('baseline', 'FINISHED', {'lr': '0.01'})
    """
    return get_client().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every logged point of one metric of a run.

    Example:
        >>> with flowml.start_run() as run:
        ...     for step, loss in enumerate([0.9, 0.5]):
        ...         flowml.log_metric("loss", loss, step=step)
        >>> [(m.step, m.value) for m in flowml.get_metric_history(run.info.run_id, "loss")]
        [(0, 0.9), (1, 0.5)]
    """
    return get_client().get_metric_history(run_id, key)


def delete_run(run_id: str) -> None:
    """Move a run to the deleted lifecycle stage (searches skip it; `restore_run` undoes it).

    Raises:
        ResourceNotFound: no run has that id.

    Example:
        >>> with flowml.start_run() as run:
        ...     pass
        >>> flowml.delete_run(run.info.run_id)
        >>> flowml.get_run(run.info.run_id).info.lifecycle_stage
        'deleted'
    """
    get_client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    """Bring a deleted run back to the active lifecycle stage.

    Raises:
        ResourceNotFound: no run has that id.

    Example:
        >>> with flowml.start_run() as run:
        ...     pass
        >>> flowml.delete_run(run.info.run_id)
        >>> flowml.restore_run(run.info.run_id)
        >>> flowml.get_run(run.info.run_id).info.lifecycle_stage
        'active'
    """
    get_client().restore_run(run_id)


def search_experiments(
    view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
) -> PagedList[Experiment]:
    """Search experiments with MLflow's filter grammar (``name``, ``tags.<key>``...).

    Args:
        view_type: `ViewType.ACTIVE_ONLY`, ``DELETED_ONLY`` or ``ALL``.
        max_results: the page size.
        filter_string: e.g. ``"name LIKE 'churn%'"``.
        order_by: e.g. ``["name ASC"]``.
        page_token: the previous page's ``token``.

    Returns:
        A page of `Experiment` (a list with a ``token`` for the next page).

    Example:
        >>> _ = flowml.create_experiment("churn-a")
        >>> _ = flowml.create_experiment("churn-b")
        >>> found = flowml.search_experiments(filter_string="name LIKE 'churn%'", order_by=["name"])
        >>> [e.name for e in found]
        ['churn-a', 'churn-b']
    """
    return get_client().search_experiments(
        view_type, max_results, filter_string, order_by, page_token
    )


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str | None = None,
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
    order_by: Sequence[str] | None = None,
    output_format: str | None = None,
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
    *,
    page_token: str | None = None,
    output: str = "list",
) -> Any:
    """Search runs with MLflow's filter grammar, plus ``OR`` and parentheses.

    Args:
        experiment_ids: where to search (default: the current experiment).
        filter_string: e.g. ``"metrics.acc > 0.9 and (params.model = 'rf' or tags.best = 'yes')"``.
        run_view_type: `ViewType` ``ACTIVE_ONLY``, ``DELETED_ONLY`` or ``ALL``.
        max_results: at most this many runs (one page; pass ``page_token`` for the next).
        order_by: e.g. ``["metrics.acc DESC", "attributes.start_time"]``.
        output_format: ``"list"`` (a `PagedList` of runs with ``.token``) or ``"pandas"`` (a
            DataFrame with MLflow's columns: ``run_id``, ``metrics.<k>``, ``params.<k>``,
            ``tags.<k>``...); default: ``output``.
        search_all_experiments: with neither ids nor names, search every active experiment
            instead of the current one.
        experiment_names: alternatively, experiments by name (unknown names match nothing).
        page_token: the ``token`` of a previous page (list output).
        output: flowml's older name for ``output_format`` (default ``"list"``).

    The positional order is MLflow's; ``page_token`` and ``output`` are keyword-only.

    Returns:
        A `PagedList` of runs, or a pandas DataFrame.

    Raises:
        InvalidParameter: both ids and names, an unknown output, or a bad filter.

    Example:
        >>> df = flowml.search_runs(search_all_experiments=True, output_format="pandas")
    """
    client = get_client()
    if experiment_ids and experiment_names:
        raise InvalidParameter("Give experiment_ids or experiment_names, not both")
    fmt = output_format if output_format is not None else output
    if fmt not in ("list", "pandas"):
        raise InvalidParameter(f"Unknown output format {fmt!r}; expected 'list' or 'pandas'")
    ids = [str(e) for e in experiment_ids or []]
    for name in experiment_names or []:
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            ids.append(exp.experiment_id)
    if not ids and not experiment_names:
        ids = _all_experiment_ids(client) if search_all_experiments else [_current_experiment_id()]
    runs = (
        client.search_runs(ids, filter_string, run_view_type, max_results, order_by, page_token)
        if ids
        else PagedList([], None)
    )
    if fmt == "list":
        return runs
    from flowml.tracking.frames import runs_to_dataframe

    return runs_to_dataframe(runs)


def _all_experiment_ids(client: TrackingClient) -> list[str]:
    ids: list[str] = []
    token: str | None = None
    while True:
        page = client.search_experiments(ViewType.ACTIVE_ONLY, page_token=token)
        ids.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return ids
