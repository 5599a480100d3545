"""Every flowml exception crosses a process boundary as itself: pickled by a process pool or a
Dask worker and unpickled on the other side with its type, message, code and attributes."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

import flowml
from flowml.exceptions import FlowMLError


def _all_error_classes() -> list[type[FlowMLError]]:
    for module in pkgutil.walk_packages(flowml.__path__, "flowml."):
        # Scripts, not modules: __main__ starts the CLI, migrations run only inside alembic.
        if module.name.endswith(".__main__") or ".migrations" in module.name:
            continue
        importlib.import_module(module.name)
    found: list[type[FlowMLError]] = []
    todo = [FlowMLError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("flowml.") and cls not in found:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _sample(name: str, annotation: Any) -> Any:
    """A value of the parameter's declared type (annotations are strings here)."""
    text = str(annotation)
    if "BaseException" in text or "Exception" in text:
        return OSError(5, "disk full")
    if "bool" in text:
        return True
    if "int" in text:
        return 7
    if "float" in text:
        return 0.25
    if "list" in text or "Sequence" in text:
        return []
    if "dict" in text or "Mapping" in text:
        return {"k": "v"}
    return f"{name}-value"


def _instance(cls: type[FlowMLError]) -> FlowMLError:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is not param.empty and name != "error_code":
            continue
        if name == "message":
            value: Any = f"{cls.__name__} happened; do this to fix it"
        elif name == "error_code":
            value = "CUSTOM_CODE"
        else:
            value = _sample(name, param.annotation)
        if param.kind == param.KEYWORD_ONLY:
            kwargs[name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    # Exceptions compare by identity: compare what they say instead.
    return {
        k: (type(val), str(val)) if isinstance(val, BaseException) else val
        for k, val in state.items()
    }


ERRORS = _all_error_classes()


def test_the_walk_finds_the_errors_with_custom_constructors():
    names = {cls.__name__ for cls in ERRORS}
    assert {"PromotionRefused", "ApprovalRejected", "BufferedWriteError", "StoreError"} <= names


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_round_trips_through_pickle(cls: type[FlowMLError]):
    error = _instance(cls)
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is cls
    assert str(back) == str(error) and back.args == error.args
    assert back.message == error.message and back.error_code == error.error_code
    assert _comparable(vars(back)) == _comparable(vars(error))


def _refuse(_: int) -> None:
    from flowml.registry.errors import ApprovalRejected

    raise ApprovalRejected(
        "Promotion of churn v3 to @champion was rejected",
        name="churn",
        version=3,
        target="champion",
        comment="not this week",
    )


def test_a_process_pool_worker_raises_the_real_error():
    from flowml.registry.errors import ApprovalRejected

    with ProcessPoolExecutor(max_workers=1) as pool:
        with pytest.raises(ApprovalRejected, match="rejected") as info:
            pool.submit(_refuse, 0).result()
    assert (info.value.name, info.value.version, info.value.comment) == (
        "churn",
        3,
        "not this week",
    )


def test_a_buffered_write_error_with_an_unpicklable_cause_still_crosses():
    from flowml.exceptions import StoreError
    from flowml.tracking.buffer import BufferedWriteError

    class DriverError(Exception):  # defined locally: pickle cannot find it by name
        pass

    error = BufferedWriteError("abc", DriverError("connection reset"), 0, kept=12)
    back = pickle.loads(pickle.dumps(error))
    assert (back.run_id, back.kept, str(back)) == ("abc", 12, str(error))
    assert isinstance(back.cause, StoreError) and "connection reset" in str(back.cause)
