"""The flavor catalog: built-ins, programmatic registration and the entry-point group."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.models.api import load_model, load_native, save_model
from flowml.models.flavors import (
    Flavor,
    catalog,
    flavor_for_loader_module,
    flavor_names,
    get_flavor,
    register_flavor,
)
from flowml.models.mlmodel import PYFUNC_FLAVOR, Model

PLUGIN = '''
import json
from flowml.models.flavors.base import Flavor
from flowml.models.mlmodel import PYFUNC_FLAVOR


class Lookup(dict):
    """A toy model: a lookup table."""


class _Predictor:
    def __init__(self, table):
        self.model = table

    def predict(self, data, params):
        return [self.model.get(str(v)) for v in data.iloc[:, 0]]


class LookupFlavor(Flavor):
    name = "lookup"
    loader_modules = ("flowml_lookup_plugin",)

    def can_save(self, model):
        return isinstance(model, Lookup)

    def save(self, model, path, mlmodel, **options):
        (path / "table.json").write_text(json.dumps(model))
        mlmodel.add_flavor("lookup", data="table.json")
        mlmodel.add_flavor(PYFUNC_FLAVOR, loader_module="flowml_lookup_plugin")

    def requirements(self, model, **options):
        return []

    def load(self, path, mlmodel):
        return Lookup(json.loads((path / mlmodel.flavor("lookup")["data"]).read_text()))

    def predictor(self, native, path, mlmodel):
        return _Predictor(native)
'''


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[Any]:
    """A third-party flavor installed as a distribution with a ``flowml.flavors`` entry point."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "flowml_lookup_plugin.py").write_text(PLUGIN)
    dist = site / "flowml_lookup_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: flowml-lookup-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[flowml.flavors]\nlookup = flowml_lookup_plugin:LookupFlavor\n"
        "broken = flowml_no_such_module:Nope\n"
    )
    sys.path.insert(0, str(site))
    saved = (dict(catalog._targets), dict(catalog._instances), catalog._discovered)
    catalog._targets.clear()
    catalog._instances.clear()
    catalog._discovered = False
    try:
        import flowml_lookup_plugin

        yield flowml_lookup_plugin
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("flowml_lookup_plugin", None)
        catalog._targets.clear()
        catalog._targets.update(saved[0])
        catalog._instances.clear()
        catalog._instances.update(saved[1])
        catalog._discovered = saved[2]


def test_builtins_come_first_and_load_lazily() -> None:
    assert flavor_names()[:2] == ["python_function", "sklearn"]
    assert flavor_for_loader_module("mlflow.sklearn").name == "sklearn"
    assert flavor_for_loader_module("mlflow.pyfunc.model").name == PYFUNC_FLAVOR


def test_entry_point_flavor_saves_and_loads(plugin: Any, tmp_path: Path) -> None:
    import pandas as pd

    assert "lookup" in flavor_names()
    save_model(plugin.Lookup({"1": "one", "2": "two"}), tmp_path / "m")
    assert json.loads((tmp_path / "m" / "table.json").read_text()) == {"1": "one", "2": "two"}
    model = load_model(str(tmp_path / "m"))
    assert model.predict(pd.DataFrame({"k": [2, 1, 3]})) == ["two", "one", None]
    assert load_native(str(tmp_path / "m"), "lookup") == {"1": "one", "2": "two"}


def test_a_broken_plugin_is_reported_but_hides_nothing(plugin: Any) -> None:
    with pytest.raises(ResourceNotFound, match="Cannot load flavor 'broken'.*package installed"):
        get_flavor("broken")
    assert flavor_for_loader_module("flowml_lookup_plugin").name == "lookup"


def test_register_flavor_by_class_and_refuse_duplicates(plugin: Any) -> None:
    class Other(plugin.LookupFlavor):
        name = "other"
        loader_modules = ("other_loader",)

    register_flavor("other", Other)
    assert isinstance(get_flavor("other"), Other)
    with pytest.raises(InvalidParameter, match="already registered"):
        register_flavor("sklearn", Other)
    register_flavor("not_a_flavor", dict)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="not a flowml Flavor subclass"):
        get_flavor("not_a_flavor")


def test_flavor_contract_is_enforced_at_construction() -> None:
    class Incomplete(Flavor):
        name = "incomplete"
        loader_modules = ()

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_native_load_of_a_missing_flavor(tmp_path: Path, classifier: Any) -> None:
    save_model(classifier, tmp_path / "m")
    message = r"no 'onnx' flavor; it has \['python_function', 'sklearn'\]"
    with pytest.raises(ResourceNotFound, match=message):
        load_native(str(tmp_path / "m"), "onnx")
    assert Model.load(tmp_path / "m").flavor("sklearn")["pickled_model"] == "model.pkl"
