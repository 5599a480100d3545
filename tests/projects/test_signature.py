from __future__ import annotations

import inspect

from prefect.utilities.callables import parameter_schema

from flowml.projects.signature import EXTRA_PARAMETERS, flow_arguments, typed_function
from flowml.projects.spec import EntryPoint, ParameterSpec

ENTRY = EntryPoint(
    name="main",
    command="x {lr} {data-file} {class}",
    parameters={
        "lr": ParameterSpec(name="lr", type="float", default=0.1, description="Learning rate"),
        "data-file": ParameterSpec(name="data-file", type="path"),
        "class": ParameterSpec(name="class", type="int", default=1),
    },
)


def test_signature_types_defaults_and_docs() -> None:
    seen: list[dict] = []
    function = typed_function(ENTRY, seen.append, name="demo_main", doc="Run main.")
    signature = inspect.signature(function)
    # Names that cannot be Python arguments travel in the extra mapping.
    assert list(signature.parameters) == ["lr", EXTRA_PARAMETERS]
    assert signature.parameters["lr"].annotation is float
    assert signature.parameters["lr"].default == 0.1
    schema = parameter_schema(function).model_dump_for_openapi()
    assert schema["properties"]["lr"]["description"] == "(float) Learning rate"
    assert function.__name__ == "demo_main"

    function(lr=0.5, extra_parameters={"data-file": "/d", "class": "2", "seed": "1"})
    assert seen == [{"lr": 0.5, "data-file": "/d", "class": "2", "seed": "1"}]


def test_flow_arguments_route_names() -> None:
    arguments = flow_arguments(ENTRY, {"lr": 0.2, "data-file": "/d", "class": 3}, {"seed": "1"})
    assert arguments == {
        "lr": 0.2,
        EXTRA_PARAMETERS: {"seed": "1", "data-file": "/d", "class": "3"},
    }
    assert flow_arguments(ENTRY, {"lr": 0.2}, {}) == {"lr": 0.2}


def test_declared_extra_parameters_name_is_avoided() -> None:
    entry = EntryPoint(
        name="main",
        command="x {extra_parameters}",
        parameters={"extra_parameters": ParameterSpec(name="extra_parameters")},
    )
    function = typed_function(entry, lambda params: params, name="f", doc="d")
    assert list(inspect.signature(function).parameters) == ["extra_parameters", "extra_parameters_"]
