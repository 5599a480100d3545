"""A typed Python signature for an entry point, so Prefect shows (and checks) its parameters.

Prefect derives a flow's parameter schema from its function's signature and the ``Args:``
section of its docstring. An entry point's parameters become keyword-only arguments with the
matching Python type (``float``, ``int``, ``str`` for string/path/uri) and default; undeclared
parameters, and declared ones whose names are not Python identifiers, travel in one extra
``dict`` argument.
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable, Mapping
from typing import Any

from flowml.projects.spec import EntryPoint, ParameterSpec, Scalar

__all__ = ["EXTRA_PARAMETERS", "extra_argument_name", "flow_arguments", "typed_function"]

EXTRA_PARAMETERS = "extra_parameters"
_PYTHON_TYPES: dict[str, type] = {"float": float, "int": int}


def extra_argument_name(entry_point: EntryPoint) -> str:
    """The name of the extra-parameters argument (``extra_parameters`` unless declared)."""
    name = EXTRA_PARAMETERS
    while name in entry_point.parameters:
        name += "_"
    return name


def _is_argument(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def typed_function(
    entry_point: EntryPoint, body: Callable[[dict[str, Any]], Any], name: str, doc: str
) -> Callable[..., Any]:
    """A function with the entry point's typed signature that calls ``body(parameters)``.

    Args:
        entry_point: The entry point whose parameters become the signature.
        body: Receives all parameters (declared and extra) in one mapping.
        name: The function's ``__name__``.
        doc: The docstring's summary line(s); an ``Args:`` section is appended.

    Returns:
        The function.
    """
    extra_name = extra_argument_name(entry_point)
    parameters: list[inspect.Parameter] = []
    lines = [doc.rstrip(), "", "Args:"]
    for spec in entry_point.parameters.values():
        if not _is_argument(spec.name):
            continue
        annotation = _PYTHON_TYPES.get(spec.type, str)
        default = inspect.Parameter.empty if spec.required else spec.default
        parameters.append(
            inspect.Parameter(
                spec.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
        lines.append(f"    {spec.name}: {_describe(spec)}")
    parameters.append(
        inspect.Parameter(
            extra_name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=dict[str, str] | None,
        )
    )
    lines.append(
        f"    {extra_name}: Other parameters by name; undeclared ones are appended to the "
        "command as --key value."
    )

    def project_entry_point(**kwargs: Any) -> Any:
        extra = kwargs.pop(extra_name, None) or {}
        return body({**extra, **kwargs})

    project_entry_point.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    project_entry_point.__annotations__ = {p.name: p.annotation for p in parameters}
    project_entry_point.__name__ = name
    project_entry_point.__doc__ = "\n".join(lines) + "\n"
    return project_entry_point


def flow_arguments(
    entry_point: EntryPoint, declared: Mapping[str, Scalar], extra: Mapping[str, str]
) -> dict[str, Any]:
    """Map parameters onto the arguments of `typed_function`'s signature.

    Args:
        entry_point: The entry point.
        declared: Declared parameters, converted.
        extra: Undeclared parameters.

    Returns:
        Keyword arguments for the flow.
    """
    arguments: dict[str, Any] = {}
    overflow: dict[str, str] = dict(extra)
    for key, value in declared.items():
        if _is_argument(key):
            arguments[key] = value
        else:
            overflow[key] = str(value)
    if overflow:
        arguments[extra_argument_name(entry_point)] = overflow
    return arguments


def _describe(spec: ParameterSpec) -> str:
    text = f"({spec.type})"
    if spec.description:
        text += f" {spec.description}"
    return text
