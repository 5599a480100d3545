"""The prompt registry on a real SQLite store (and PostgreSQL): versions, aliases, lineage,
templates, and bad input that changes nothing."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

import flowml
from flowml import genai
from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.genai import MissingPromptVariables, PromptTemplateError
from flowml.registry import RegistryClient
from flowml.registry import schema as rs


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The store the prompt functions use by default: this test's SQLite file, or a fresh
    PostgreSQL schema."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("FLOWML_TRACKING_URI", url)
        flowml.set_tracking_uri(url)
    yield request.param


def _counts() -> tuple[int, ...]:
    store = RegistryClient().store
    with store.engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                rs.registered_models,
                rs.registered_model_tags,
                rs.model_versions,
                rs.model_version_tags,
                rs.registered_model_aliases,
            )
        )


def test_versions_are_immutable_and_numbered(registry):
    first = genai.register_prompt(
        "qa", "Answer {{ question }} in {{n}} words.", commit_message="first", tags={"team": "s"}
    )
    second = genai.register_prompt("qa", "Answer {{question}} briefly.", commit_message="shorter")
    assert (first.version, second.version) == (1, 2)
    assert first.uri == "prompts:/qa/1" and first.variables == ["n", "question"]
    assert first.tags == {"team": "s"} and first.commit_message == "first"
    loaded = genai.load_prompt("prompts:/qa/1")
    assert loaded.template == "Answer {{ question }} in {{n}} words."
    assert loaded.format(question="why", n=3) == "Answer why in 3 words."
    assert genai.load_prompt("qa").version == 2  # a bare name is the newest version
    assert genai.load_prompt("qa", version=1).version == 1
    assert [v.version for v in genai.search_prompt_versions("qa")] == [2, 1]
    with pytest.raises(InvalidParameter, match="never changes"):
        RegistryClient().set_model_version_tag("qa", 1, "mlflow.prompt.text", "hacked")
    with pytest.raises(InvalidParameter, match="never changes"):
        RegistryClient().delete_model_version_tag("qa", 1, "mlflow.prompt.text")
    assert genai.load_prompt("prompts:/qa/1").template == loaded.template


def test_aliases_move_and_load(registry):
    genai.register_prompt("qa", "v1 {{q}}")
    genai.register_prompt("qa", "v2 {{q}}")
    genai.set_prompt_alias("qa", "production", 1)
    assert genai.load_prompt("prompts:/qa@production").format(q="x") == "v1 x"
    genai.set_prompt_alias("qa", "production", 2)
    production = genai.load_prompt("prompts:/qa@production")
    assert production.version == 2 and production.aliases == ["production"]
    genai.delete_prompt_alias("qa", "production")
    with pytest.raises(ResourceNotFound):
        genai.load_prompt("prompts:/qa@production")


def test_chat_templates(registry):
    messages = [
        {"role": "system", "content": "You answer about {{topic}}."},
        {"role": "user", "content": '{{question}} Reply as JSON like {"answer": 1}.'},
    ]
    version = genai.register_prompt("chat-qa", messages)
    loaded = genai.load_prompt("prompts:/chat-qa/1")
    assert loaded.prompt_type == "chat" and loaded.template == messages
    assert loaded.variables == ["question", "topic"]
    assert loaded.format(topic="wine", question="Red?") == [
        {"role": "system", "content": "You answer about wine."},
        {"role": "user", "content": 'Red? Reply as JSON like {"answer": 1}.'},
    ]
    assert version.to_dict()["uri"] == "prompts:/chat-qa/1"


def test_search_lists_prompts_only(registry):
    genai.register_prompt("qa", "{{q}}")
    genai.register_prompt("summary", "Summarise {{text}}")
    genai.set_prompt_alias("summary", "prod", 1)
    RegistryClient().create_registered_model("churn-model")
    prompts = genai.search_prompts()
    assert [(p.name, p.latest_version) for p in prompts] == [("qa", 1), ("summary", 1)]
    assert prompts[1].aliases == {"prod": 1} and prompts[1].tags == {}
    assert [p.name for p in genai.search_prompts("name LIKE 'sum%'")] == ["summary"]


def test_model_searches_leave_prompts_out(registry):
    genai.register_prompt("qa", "{{q}}")
    client = RegistryClient()
    client.create_registered_model("churn-model")
    assert [m.name for m in flowml.search_registered_models()] == ["churn-model"]
    assert [m.name for m in client.search_registered_models("name LIKE '%'")] == ["churn-model"]
    asked = client.search_registered_models("tags.`mlflow.prompt.is_prompt` = 'true'")
    assert [m.name for m in asked] == ["qa"]
    assert [p.name for p in genai.search_prompts()] == ["qa"]


def test_version_searches_leave_prompt_versions_out(registry, tmp_path):
    genai.register_prompt("qa", "{{q}}")
    genai.register_prompt("qa", "again {{q}}")
    client = RegistryClient()
    client.create_registered_model("churn-model")
    client.create_model_version("churn-model", str(tmp_path / "model"))
    every = flowml.search_model_versions()
    assert [(v.name, v.version) for v in every] == [("churn-model", 1)]
    assert [v.name for v in client.search_model_versions("name = 'qa'")] == []
    asked = client.search_model_versions("tags.`mlflow.prompt.text` IS NOT NULL")
    assert sorted((v.name, v.version) for v in asked) == [("qa", 1), ("qa", 2)]
    assert [v.version for v in genai.search_prompt_versions("qa")] == [2, 1]


def test_runs_that_load_a_version_are_its_lineage(registry):
    genai.register_prompt("qa", "{{q}}")
    genai.register_prompt("qa", "again {{q}}")
    genai.set_prompt_alias("qa", "production", 2)
    genai.load_prompt("prompts:/qa/1")  # no active run: nothing to link, no run started
    assert flowml.active_run() is None
    with flowml.start_run() as first:
        genai.load_prompt("prompts:/qa@production")
    with flowml.start_run() as second:
        genai.load_prompt("prompts:/qa/2")
        genai.load_prompt("prompts:/qa/1", link_to_run=False)
    runs = genai.get_prompt_runs("prompts:/qa@production")
    assert [r.info.run_id for r in runs] == [first.info.run_id, second.info.run_id]
    assert genai.get_prompt_runs("prompts:/qa/1") == []
    graph = flowml.lineage(first.info.run_id)
    assert "prompts:/qa/2" in graph.format()


def test_traces_that_load_a_version_are_its_lineage(registry):
    import json

    genai.register_prompt("qa_v", "{{q}}")
    genai.register_prompt("qa_v", "again {{q}}")
    genai.register_prompt("qaxv", "{{q}}")  # 'qa_v' as a LIKE pattern matches this name too
    genai.load_prompt("prompts:/qa_v/1")  # outside any trace: linked to none

    @flowml.trace
    def answer(q: str) -> str:
        first = genai.load_prompt("prompts:/qa_v/1")
        genai.load_prompt("prompts:/qa_v/1")  # loaded twice, linked once
        genai.load_prompt("prompts:/qaxv/1")
        return first.format(q=q)

    @flowml.trace
    def other(q: str) -> str:
        return genai.load_prompt("qa_v").format(q=q)  # the newest, version 2

    answer("a")
    first_id = flowml.get_last_active_trace_id()
    other("b")
    second_id = flowml.get_last_active_trace_id()
    flowml.set_experiment("elsewhere")  # a trace in another experiment is found too
    answer("c")
    third_id = flowml.get_last_active_trace_id()
    found = [t.info.trace_id for t in genai.get_prompt_traces("prompts:/qa_v/1")]
    assert found == [third_id, first_id]
    assert [t.info.trace_id for t in genai.get_prompt_traces("qa_v", 2)] == [second_id]
    assert [t.info.trace_id for t in genai.get_prompt_traces("prompts:/qaxv/1")] == [
        third_id,
        first_id,
    ]
    tag = flowml.get_trace(first_id).info.tags["mlflow.linkedPrompts"]
    assert json.loads(tag) == [
        {"name": "qa_v", "version": "1"},
        {"name": "qaxv", "version": "1"},
    ]
    with pytest.raises(ResourceNotFound):
        genai.get_prompt_traces("prompts:/qa_v/9")
    with pytest.raises(InvalidParameter, match="max_results"):
        genai.get_prompt_traces("prompts:/qa_v/1", max_results=0)


def test_format_names_every_missing_variable():
    genai.register_prompt("qa", "{{a}} {{b}} {{c}}")
    prompt = genai.load_prompt("prompts:/qa/1")
    with pytest.raises(MissingPromptVariables, match="Missing value.*a, c") as caught:
        prompt.format(b=1)
    assert caught.value.missing == ["a", "c"]
    assert isinstance(caught.value, InvalidParameter)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is MissingPromptVariables and copy.missing == ["a", "c"]
    # values are inserted as they are, never expanded again
    assert prompt.format(a="{{b}}", b="x", c="") == "{{b}} x "


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hello {{name", "unbalanced '{{'"),
        ("Hello name}}", "unbalanced '}}'"),
        ("Hello {{first name}}", "not a variable"),
        ("Hello {{}}", "not a variable"),
        ("Hello {{{name}}}", "not a variable"),
        ("   ", "must not be empty"),
        ([], "at least one message"),
        ([{"role": "user"}], "exactly 'role' and 'content'"),
        ([{"role": "", "content": "x"}], "non-empty string role"),
        ([{"role": "user", "content": "{{x"}], "message 0 has an unbalanced"),
        (42, "string or a list"),
    ],
)
def test_bad_templates_are_typed_errors_and_store_nothing(template: object, message: str):
    genai.register_prompt("qa", "{{q}}")
    before = _counts()
    with pytest.raises(PromptTemplateError, match=message):
        genai.register_prompt("qa", template)  # type: ignore[arg-type]
    with pytest.raises(PromptTemplateError):
        genai.register_prompt("fresh", template)  # type: ignore[arg-type]
    assert _counts() == before


def test_bad_names_uris_and_tags_are_typed_errors_and_store_nothing():
    RegistryClient().create_registered_model("churn")
    genai.register_prompt("qa", "{{q}}")
    before = _counts()
    bad_calls = [
        (lambda: genai.register_prompt("bad name", "x"), InvalidParameter, "prompt name"),
        (lambda: genai.register_prompt("../etc", "x"), InvalidParameter, "prompt name"),
        (lambda: genai.register_prompt("churn", "x"), InvalidParameter, "not a prompt"),
        (
            lambda: genai.register_prompt("qa", "x", tags={"mlflow.prompt.text": "y"}),
            InvalidParameter,
            "reserved",
        ),
        (lambda: genai.register_prompt("qa", "x" * 100_001), InvalidParameter, "100000"),
        (lambda: genai.load_prompt("prompts:/qa/x"), InvalidParameter, "Malformed"),
        (lambda: genai.load_prompt("prompts:/qa/1", version=1), InvalidParameter, "not both"),
        (lambda: genai.load_prompt("prompts:/qa/9"), ResourceNotFound, None),
        (lambda: genai.load_prompt("prompts:/nope/1"), ResourceNotFound, "No prompt"),
        (lambda: genai.load_prompt("prompts:/churn/1"), ResourceNotFound, "not a prompt"),
        (lambda: genai.set_prompt_alias("qa", "latest", 1), InvalidParameter, None),
        (lambda: genai.set_prompt_alias("churn", "prod", 1), ResourceNotFound, "not a prompt"),
        (lambda: genai.search_prompts(max_results=0), InvalidParameter, "max_results"),
        (lambda: genai.search_prompts("name ==== 'x'"), InvalidParameter, None),
    ]
    for call, error, message in bad_calls:
        with pytest.raises(error, match=message):
            call()
    assert _counts() == before
