"""``@flowml.tracked_flow`` and ``@flowml.tracked_task``: Prefect's ``@flow`` and ``@task``,
with every run tracked.

They build real Prefect ``Flow`` and ``Task`` objects, so every Prefect option and feature
works unchanged (retries, caching, task runners, ``.submit``, ``.map``, ``with_options``,
async, serving). The user's function is wrapped with `functools.wraps` (Prefect sees its
signature, parameter schema, docstring and source; async stays async) and the tracked run is
closed by state hooks appended after the user's own.

Example:
    >>> import flowml
    >>> @flowml.tracked_task(retries=2)
    ... def train(lr: float) -> dict[str, float]:
    ...     flowml.log_metric("loss", 0.3)
    ...     return {"accuracy": 0.91}
    >>> @flowml.tracked_flow(experiment="wine")
    ... def pipeline(lr: float = 0.1):
    ...     return train(lr)
    >>> pipeline()
    {'accuracy': 0.91}
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast, overload

from prefect.flows import Flow
from prefect.tasks import Task

from flowml._prefect_local import allow_slow_local_start
from flowml.tasks import flow_runs, identity, task_runs
from flowml.tasks.flow_runs import FlowAttempt
from flowml.tasks.recorder import RunOptions
from flowml.tasks.summarize import DEFAULT_MAX_VALUE_LENGTH, ParamPolicy
from flowml.tasks.task_runs import TaskAttempt

__all__ = ["TrackedFlow", "TrackedTask", "tracked_flow", "tracked_task"]

F = TypeVar("F", bound=Callable[..., Any])
_TRACKED_ATTR = "__flowml_tracked__"


def _wrap(fn: Callable[..., Any], attempt: Callable[[], Any]) -> Callable[..., Any]:
    """Run ``fn`` inside an attempt scope, preserving what Prefect inspects: coroutine and
    generator functions stay so, and ``__wrapped__`` exposes the signature and source."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            with attempt() as scope:
                result = await fn(*args, **kwargs)
                scope.succeeded(result)
                return result

    elif inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            with attempt() as scope:
                async for item in fn(*args, **kwargs):
                    yield item
                scope.succeeded(None)

    elif inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with attempt() as scope:
                result = yield from fn(*args, **kwargs)
                scope.succeeded(result)
                return result

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with attempt() as scope:
                result = fn(*args, **kwargs)
                scope.succeeded(result)
                return result

    # Prefect derives task keys and cache keys from the code of this function: point it
    # at the user's code, not at this wrapper shared by every tracked task.
    wrapper.__prefect_task_source__ = fn  # type: ignore[attr-defined]
    setattr(wrapper, _TRACKED_ATTR, True)
    return wrapper


def _unwrap_descriptor(fn: Any) -> tuple[Callable[..., Any], type | None]:
    if isinstance(fn, (classmethod, staticmethod)):
        return fn.__func__, type(fn)
    return fn, None


def _task_fn(fn: Any) -> Any:
    inner, descriptor = _unwrap_descriptor(fn)
    if not getattr(inner, _TRACKED_ATTR, False):
        inner = _wrap(inner, TaskAttempt)
    return descriptor(inner) if descriptor else inner


def _with_hook(hooks: Sequence[Any] | None, hook: Any) -> list[Any]:
    out = list(hooks or [])
    if hook not in out:
        out.append(hook)
    return out


def _options(
    log_params: bool | Sequence[str],
    exclude_params: Sequence[str],
    max_param_length: int,
    summarize_param: Callable[[Any], str | None] | None,
    log_result: bool | str,
    artifacts: bool,
    experiment: str | None = None,
) -> RunOptions:
    policy = ParamPolicy.from_option(log_params, exclude_params, max_param_length, summarize_param)
    return RunOptions(policy, log_result, artifacts, experiment)


class TrackedTask(Task):
    """A Prefect ``Task`` whose runs are tracked runs (see `tracked_task`)."""

    flowml_options: RunOptions

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        flowml_options: RunOptions | None = None,
        **task_kwargs: Any,
    ) -> None:
        allow_slow_local_start()
        super().__init__(_task_fn(fn), **task_kwargs)
        self.flowml_options = flowml_options or RunOptions()
        # After the user's own hooks; see `task_runs.attach_task_hooks` for which ones.
        task_runs.attach_task_hooks(self)

    def with_options(self, **options: Any) -> TrackedTask:
        """Prefect's ``Task.with_options``; the copy stays tracked, with the same flowml
        options and the tracking hooks after any hooks given here."""
        return _still_tracked(self, super().with_options(**options), task_runs.attach_task_hooks)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        _bind_calling_flow_run()
        return super().__call__(*args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        _bind_calling_flow_run()
        return super().submit(*args, **kwargs)

    def map(self, *args: Any, **kwargs: Any) -> Any:
        _bind_calling_flow_run()
        return super().map(*args, **kwargs)


def _bind_calling_flow_run() -> None:
    """A tracked task called from a plain ``@flow``: open the flow run's tracked run here,
    in the flow's own process, so the hooks that close it run where the flow ends."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow is None or ctx.flow_run is None or ctx.detached:
        return
    if identity.find_binding(str(ctx.flow_run.id)) is None:
        flow_runs.open_flow_run(ctx, RunOptions(), attach_hooks=True)


class TrackedFlow(Flow):
    """A Prefect ``Flow`` whose runs are tracked runs (see `tracked_flow`)."""

    flowml_options: RunOptions

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        flowml_options: RunOptions | None = None,
        **flow_kwargs: Any,
    ) -> None:
        allow_slow_local_start()
        original, descriptor = _unwrap_descriptor(fn)
        if not flow_kwargs.get("version"):
            flow_kwargs["version"] = _source_version(original)
        for name in ("on_completion", "on_failure", "on_crashed", "on_cancellation"):
            flow_kwargs[name] = _with_hook(flow_kwargs.get(name), flow_runs.on_flow_final)
        wrapped = (
            original if getattr(original, _TRACKED_ATTR, False) else _wrap(original, FlowAttempt)
        )
        super().__init__(descriptor(wrapped) if descriptor else wrapped, **flow_kwargs)
        self._entrypoint = _entrypoint(inspect.unwrap(original))
        self.flowml_options = flowml_options or RunOptions()

    def with_options(self, **options: Any) -> TrackedFlow:
        """Prefect's ``Flow.with_options``; the copy stays tracked (see `TrackedTask`)."""
        return _still_tracked(self, super().with_options(**options), flow_runs.attach_flow_hooks)


T = TypeVar("T", "TrackedTask", "TrackedFlow")


def _still_tracked(original: T, copy: Any, attach_hooks: Callable[[Any], None]) -> T:
    """A ``with_options`` copy made ours again: Prefect builds a plain ``Task`` or ``Flow``
    from our (already wrapped) function; the copy keeps the class, the flowml options and
    the tracking hooks, after any hooks the call gave."""
    copy.__class__ = type(original)
    tracked = cast(T, copy)
    tracked.flowml_options = original.flowml_options
    attach_hooks(tracked)
    return tracked


def _source_version(fn: Callable[..., Any]) -> str | None:
    """What Prefect uses as a flow's default version (a hash of its file), computed from the
    user's file rather than this module's."""
    from prefect.utilities.hashing import file_hash

    try:
        source = inspect.getsourcefile(inspect.unwrap(fn))
        return file_hash(source) if source else None
    except (TypeError, OSError):
        return None


def _entrypoint(fn: Callable[..., Any]) -> str:
    module = fn.__module__
    if module == "__main__" or (module or "").startswith("__prefect_loader_"):
        try:
            module = inspect.getfile(fn)
        except TypeError:
            pass
    return f"{module}:{getattr(fn, '__qualname__', fn.__name__)}"


@overload
def tracked_task(__fn: F) -> TrackedTask: ...


@overload
def tracked_task(
    __fn: None = None,
    *,
    log_params: bool | Sequence[str] = True,
    exclude_params: Sequence[str] = (),
    max_param_length: int = DEFAULT_MAX_VALUE_LENGTH,
    summarize_param: Callable[[Any], str | None] | None = None,
    log_result: bool | str = True,
    artifacts: bool = True,
    **task_kwargs: Any,
) -> Callable[[F], TrackedTask]: ...


def tracked_task(
    __fn: Callable[..., Any] | None = None,
    *,
    log_params: bool | Sequence[str] = True,
    exclude_params: Sequence[str] = (),
    max_param_length: int = DEFAULT_MAX_VALUE_LENGTH,
    summarize_param: Callable[[Any], str | None] | None = None,
    log_result: bool | str = True,
    artifacts: bool = True,
    **task_kwargs: Any,
) -> TrackedTask | Callable[[Callable[..., Any]], TrackedTask]:
    """Prefect's ``@task``, with each task run tracked as a child run of its flow run's run.

    Each task run gets one run (the same across retries; none for a cache hit, which links
    to the run that computed the result) recording the arguments as params, the result as
    metrics, duration and attempts, Prefect tags and lineage; ``flowml.log_*`` calls in the
    body go to it. Artifacts and ``flowml.run.*`` events appear in the Prefect UI.

    Args:
        log_params: log the arguments as params (``True``), none (``False``), or only the
            named ones.
        exclude_params: arguments never logged (secrets, huge objects).
        max_param_length: scalar values longer than this are summarised.
        summarize_param: ``value -> str | None``, tried before the built-in summary.
        log_result: log a numeric result (or a mapping's numeric values) as metrics; a
            string names the metric (and prefixes a mapping's keys).
        artifacts: publish the table and markdown artifacts for each run.
        **task_kwargs: every ``prefect.task`` option (``retries``, ``cache_policy``,
            ``on_failure``, ``task_run_name``...).

    Returns:
        A `TrackedTask` (a ``prefect.Task``).

    Raises:
        InvalidParameter: from a run's first write, when a value breaks a tracking rule.

    Example:
        >>> @flowml.tracked_task(retries=1, log_result="accuracy")
        ... def evaluate(threshold: float) -> float:
        ...     return 0.75
        >>> @flowml.tracked_flow(experiment="scoring")
        ... def pipeline():
        ...     return evaluate(0.5)
        >>> pipeline()
        0.75
        >>> task_run = flowml.search_runs(experiment_names=["scoring"],
        ...                               filter_string="params.threshold = '0.5'")[0]
        >>> task_run.data.metrics["accuracy"]
        0.75
    """
    options = _options(
        log_params, exclude_params, max_param_length, summarize_param, log_result, artifacts
    )

    def decorate(fn: Callable[..., Any]) -> TrackedTask:
        return TrackedTask(fn, flowml_options=options, **task_kwargs)

    return decorate(__fn) if __fn is not None else decorate


@overload
def tracked_flow(__fn: F) -> TrackedFlow: ...


@overload
def tracked_flow(
    __fn: None = None,
    *,
    experiment: str | None = None,
    log_params: bool | Sequence[str] = True,
    exclude_params: Sequence[str] = (),
    max_param_length: int = DEFAULT_MAX_VALUE_LENGTH,
    summarize_param: Callable[[Any], str | None] | None = None,
    log_result: bool | str = True,
    artifacts: bool = True,
    **flow_kwargs: Any,
) -> Callable[[F], TrackedFlow]: ...


def tracked_flow(
    __fn: Callable[..., Any] | None = None,
    *,
    experiment: str | None = None,
    log_params: bool | Sequence[str] = True,
    exclude_params: Sequence[str] = (),
    max_param_length: int = DEFAULT_MAX_VALUE_LENGTH,
    summarize_param: Callable[[Any], str | None] | None = None,
    log_result: bool | str = True,
    artifacts: bool = True,
    **flow_kwargs: Any,
) -> TrackedFlow | Callable[[Callable[..., Any]], TrackedFlow]:
    """Prefect's ``@flow``, with each flow run tracked as a run (tasks nest under it).

    The run is keyed by the flow run id (retries resume it), closed when the flow run reaches
    its terminal state (FINISHED, FAILED, KILLED for cancelled or crashed), and records the
    flow parameters, a numeric result, duration, attempts and Prefect tags. A subflow's run
    nests under its parent flow's run.

    Args:
        experiment: the experiment name (created on first use). Default: the parent flow's
            experiment for a subflow, else the one chosen with ``flowml.set_experiment`` or
            ``FLOWML_EXPERIMENT_ID``, else one named after the flow.
        log_params, exclude_params, max_param_length, summarize_param, log_result,
            artifacts: as for `tracked_task`, applied to the flow's parameters and result.
        **flow_kwargs: every ``prefect.flow`` option (``task_runner``, ``retries``,
            ``log_prints``, ``on_completion``...).

    Returns:
        A `TrackedFlow` (a ``prefect.Flow``: call it, ``.serve()`` it, deploy it).

    Example:
        >>> @flowml.tracked_flow(experiment="wine")
        ... def train(n_estimators: int = 100):
        ...     flowml.log_metric("accuracy", 0.9)
        >>> train(n_estimators=10)
        >>> run = flowml.search_runs(experiment_names=["wine"])[0]
        >>> run.info.status, run.data.params["n_estimators"], run.data.metrics["accuracy"]
        ('FINISHED', '10', 0.9)
    """
    options = _options(
        log_params,
        exclude_params,
        max_param_length,
        summarize_param,
        log_result,
        artifacts,
        experiment,
    )

    def decorate(fn: Callable[..., Any]) -> TrackedFlow:
        return TrackedFlow(fn, flowml_options=options, **flow_kwargs)

    return decorate(__fn) if __fn is not None else decorate
