"""Every public ``flowml.*`` name has a docstring with an example, and the examples run.

Public names: ``flowml.__all__`` and the ``__all__`` of the public submodules ``flowml.genai``,
``flowml.tasks`` and the flavor modules ``flowml.openai``, ``flowml.sklearn``, ``flowml.pyfunc``.

The examples run as doctests against this test's temporary store (``FLOWML_HOME``,
``FLOWML_TRACKING_URI`` and ``FLOWML_ARTIFACT_ROOT`` under ``tmp_path``), in a temporary
working directory, with the defining module's globals plus ``flowml`` (as ``doctest`` would
give them). Examples that run a Prefect flow use the session's Prefect test harness.
"""

from __future__ import annotations

import doctest
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flowml

# The public namespaces: the package itself and its public submodules with their own names.
NAMESPACES = (
    "flowml",
    "flowml.genai",
    "flowml.tasks",
    "flowml.openai",
    "flowml.sklearn",
    "flowml.pyfunc",
)
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
_PARSER = doctest.DocTestParser()


def _namespace(dotted: str) -> Any:
    module: Any = flowml
    for part in dotted.split(".")[1:]:
        module = getattr(module, part)  # flowml.openai is a lazy alias, not an importable path
    return module


def _public() -> dict[str, Any]:
    """Qualified public name -> object; a name exported twice is listed once (first place)."""
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for dotted in NAMESPACES:
        namespace = _namespace(dotted)
        for name in namespace.__all__:
            if name.startswith("__"):
                continue
            obj = getattr(namespace, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            found[f"{dotted}.{name}"] = obj
    return found


PUBLIC = _public()


def _examples(obj: Any) -> list[doctest.Example]:
    return _PARSER.get_examples(obj.__doc__ or "")


def _needs_prefect(obj: Any) -> bool:
    """Whether the example runs a Prefect flow (so needs the Prefect API)."""
    source = "".join(example.source for example in _examples(obj))
    return re.search(r"tracked_flow|@flow\b|from prefect", source) is not None


def test_public_names_are_collected():
    """The collection sees every namespace (a renamed export cannot silently drop out)."""
    assert len(PUBLIC) > 100
    expected = {"flowml.log_metric", "flowml.genai.load_prompt", "flowml.openai.autolog"}
    assert expected | {"flowml.tasks.batch_predict", "flowml.sklearn.log_model"} <= set(PUBLIC)


@pytest.mark.parametrize("qualified", sorted(PUBLIC))
def test_public_name_has_docstring_with_example(qualified: str):
    doc = PUBLIC[qualified].__doc__ or ""
    assert doc.strip(), f"{qualified} has no docstring"
    examples = _examples(PUBLIC[qualified])
    assert examples, f"{qualified}'s docstring has no '>>>' example"
    skipped = [e for e in examples if e.options.get(doctest.SKIP)]
    assert len(skipped) < len(examples), f"{qualified}'s example is all '+SKIP'"


@pytest.fixture
def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _isolated_flowml: Path
) -> Iterator[Path]:
    """A temporary store and working directory, with every client and cache reset after."""
    monkeypatch.setenv("FLOWML_TRACKING_URI", f"sqlite:///{tmp_path / 'flowml.db'}")
    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield tmp_path
    from flowml.tasks import identity, publisher

    publisher.flush()
    identity._experiments.clear()  # shared clients are closed by conftest's `_isolated_flowml`


@pytest.mark.parametrize("qualified", sorted(PUBLIC))
def test_docstring_example_runs(qualified: str, store: Path, request: pytest.FixtureRequest):
    obj = PUBLIC[qualified]
    if not _examples(obj):
        pytest.fail(f"{qualified} has no example")
    if _needs_prefect(obj):
        request.getfixturevalue("prefect_harness")
    module = importlib.import_module(obj.__module__)
    globs = {**vars(module), "flowml": flowml}
    test = _PARSER.get_doctest(obj.__doc__, globs, qualified, module.__file__, 0)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
