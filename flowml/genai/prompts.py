"""The prompt registry: versioned ``{{variable}}`` templates with aliases, in the model registry.

A prompt is a registered model tagged as a prompt (MLflow 3's layout, so both tools read the
same database): each `register_prompt` adds an immutable version, aliases point at versions,
and ``prompts:/name/3`` or ``prompts:/name@production`` load one. Loading a prompt inside a
run records the version as one of the run's inputs, so `get_prompt_runs` finds every run
that used it; loading it while a trace is recorded links it to the trace (its
``mlflow.linkedPrompts`` tag, as MLflow 3 writes it), so `get_prompt_traces` finds those.

Example:
    >>> from flowml import genai
    >>> genai.register_prompt("qa", "Answer {{question}} briefly.", commit_message="first")
    >>> genai.set_prompt_alias("qa", "production", 1)
    >>> genai.load_prompt("prompts:/qa@production").format(question="Why is the sky blue?")
    'Answer Why is the sky blue? briefly.'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowml.exceptions import InvalidParameter, ResourceAlreadyExists, ResourceNotFound
from flowml.genai.template import PromptTemplate, load_template, parse_template
from flowml.registry import validation as rv
from flowml.registry.client import RegistryClient
from flowml.registry.entities import ModelVersion
from flowml.registry.prompt_tags import (
    IS_PROMPT_TAG,
    PROMPT_SOURCE,
    PROMPT_TEXT_TAG,
    PROMPT_TYPE_TAG,
)
from flowml.tracking.search import quote_literal

__all__ = [
    "KIND_PROMPT",
    "Prompt",
    "PromptVersion",
    "delete_prompt_alias",
    "get_prompt_runs",
    "get_prompt_traces",
    "load_prompt",
    "parse_prompt_uri",
    "register_prompt",
    "search_prompt_versions",
    "search_prompts",
    "set_prompt_alias",
]

KIND_PROMPT = "prompt"
SCHEME = "prompts:/"
NAME_RULE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_URI = re.compile(r"^prompts:/([A-Za-z0-9_.\-]+)(?:/([0-9]+)|@([A-Za-z0-9_.\-]+))?$")
_RESERVED_TAG_PREFIXES = ("mlflow.prompt.", "_mlflow_prompt")
MAX_SEARCH_RESULTS = 1000
# The trace tag listing the prompt versions loaded while the trace was recorded (MLflow 3's).
LINKED_PROMPTS_TAG = "mlflow.linkedPrompts"


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version of a prompt.

    Attributes:
        name: the prompt's name.
        version: the version number.
        template: the text, or the chat messages.
        prompt_type: ``"text"`` or ``"chat"``.
        variables: the template's variable names, sorted.
        commit_message: why this version was registered.
        tags: the version's own tags.
        aliases: the aliases pointing at it.
        creation_timestamp: epoch ms.

    Example:
        >>> from flowml import genai
        >>> version = genai.register_prompt("qa", "Answer {{question}} briefly.", "first")
        >>> version.version, version.prompt_type, version.variables, version.commit_message
        (1, 'text', ['question'], 'first')
        >>> version.format(question="why?")
        'Answer why? briefly.'
    """

    name: str
    version: int
    template: Any
    prompt_type: str
    variables: list[str]
    commit_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    creation_timestamp: int | None = None

    @property
    def uri(self) -> str:
        """``prompts:/<name>/<version>``."""
        return f"{SCHEME}{self.name}/{self.version}"

    def format(self, **values: Any) -> str | list[dict[str, str]]:
        """The template with its variables filled in.

        Raises:
            MissingPromptVariables: a variable has no value (all missing ones are named).
        """
        return self._parsed().format(**values)

    def _parsed(self) -> PromptTemplate:
        template = self.template
        return parse_template(template if isinstance(template, str) else list(template))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "prompt_type": self.prompt_type,
            "template": self.template,
            "variables": self.variables,
            "commit_message": self.commit_message,
            "tags": self.tags,
            "aliases": self.aliases,
            "creation_timestamp": self.creation_timestamp,
        }


@dataclass(frozen=True)
class Prompt:
    """A prompt and its newest version number.

    Attributes:
        name: the prompt's name.
        latest_version: the highest version number (``None`` if it has none).
        aliases: alias -> version.
        tags: the prompt's own tags (without the registry's marker tag).

    Example:
        >>> from flowml import genai
        >>> _ = genai.register_prompt("qa", "Answer {{question}} briefly.")
        >>> genai.set_prompt_alias("qa", "production", 1)
        >>> genai.search_prompts("name = 'qa'")
        [Prompt(name='qa', latest_version=1, aliases={'production': 1}, tags={})]
    """

    name: str
    latest_version: int | None
    aliases: dict[str, int]
    tags: dict[str, str]


def register_prompt(
    name: str,
    template: str | list[dict[str, str]],
    commit_message: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    registry_uri: str | None = None,
) -> PromptVersion:
    """Register a new version of a prompt (the prompt is created on its first version).

    Args:
        name: letters, digits, ``_``, ``-`` and ``.``.
        template: text with ``{{variable}}`` placeholders, or chat messages
            ``[{"role": "system", "content": "..."}, ...]``.
        commit_message: why this version; stored as the version's description.
        tags: the version's tags.
        registry_uri: the registry; ``FLOWML_REGISTRY_URI`` (or the tracking URI) by default.

    Returns:
        The new `PromptVersion`.

    Raises:
        PromptTemplateError: a malformed template (unbalanced braces, bad variable name...).
        InvalidParameter: a bad name, tag or message; a registered model (not a prompt) has
            the name.

    Example:
        >>> from flowml import genai
        >>> chat = [{"role": "user", "content": "{{question}}"}]
        >>> genai.register_prompt("qa", chat, "chat form").prompt_type
        'chat'
    """
    _check_name(name)
    parsed = parse_template(template)
    version_tags = _user_tags(tags)
    version_tags.update({PROMPT_TEXT_TAG: parsed.serialize(), PROMPT_TYPE_TAG: parsed.prompt_type})
    for key, value in version_tags.items():
        rv.validate_tag(key, value)
    rv.validate_description(commit_message)
    client = RegistryClient(registry_uri)
    _ensure_prompt(client, name)
    version = client.store.create_model_version(
        name, PROMPT_SOURCE, tags=version_tags, description=commit_message
    )
    return _to_prompt_version(version)


def load_prompt(
    name_or_uri: str,
    version: int | str | None = None,
    *,
    link_to_run: bool = True,
    registry_uri: str | None = None,
) -> PromptVersion:
    """Load a prompt version by URI (``prompts:/qa/3``, ``prompts:/qa@production``) or name.

    Args:
        name_or_uri: a ``prompts:/`` URI, or a prompt name (with ``version``).
        version: the version number when ``name_or_uri`` is a name (default: the newest).
        link_to_run: record the version as an input of the active run, if there is one.
        registry_uri: the registry.

    Returns:
        The `PromptVersion`.

    Raises:
        InvalidParameter: a malformed URI, name or version.
        ResourceNotFound: no such prompt, version or alias (or the name is a model's).

    Example:
        >>> from flowml import genai
        >>> _ = genai.register_prompt("qa", "Answer {{question}} briefly.")
        >>> genai.set_prompt_alias("qa", "production", 1)
        >>> genai.load_prompt("prompts:/qa@production").format(question="Why?")
        'Answer Why? briefly.'
        >>> genai.load_prompt("qa", version=1).version
        1
    """
    name, number, alias = parse_prompt_uri(name_or_uri, version)
    client = RegistryClient(registry_uri)
    found = _resolve(client, name, number, alias)
    if link_to_run:
        _link_to_active_run(found)
    _link_to_active_trace(found)
    return found


def search_prompts(
    filter_string: str | None = None,
    max_results: int = 100,
    *,
    registry_uri: str | None = None,
) -> list[Prompt]:
    """Prompts matching a registry filter (``name LIKE 'qa%'``, ``tags.team = 'search'``).

    Raises:
        InvalidParameter: a malformed filter or ``max_results`` out of 1..1000.

    Example:
        >>> from flowml import genai
        >>> _ = genai.register_prompt("qa", "Answer {{question}}.", tags={"team": "search"})
        >>> _ = genai.register_prompt("summary", "Summarize {{text}}.")
        >>> [p.name for p in genai.search_prompts("name LIKE 'q%'")]
        ['qa']
    """
    if (
        isinstance(max_results, bool)
        or not isinstance(max_results, int)
        or not (1 <= max_results <= MAX_SEARCH_RESULTS)
    ):
        raise InvalidParameter(f"max_results must be 1..{MAX_SEARCH_RESULTS}, got {max_results!r}")
    if filter_string is not None and not isinstance(filter_string, str):
        raise InvalidParameter(f"filter_string must be a string, got {filter_string!r}")
    marker = f"tags.`{IS_PROMPT_TAG}` = 'true'"
    query = f"{marker} and ({filter_string})" if filter_string and filter_string.strip() else marker
    client = RegistryClient(registry_uri)
    models = client.store.search_registered_models(query, max_results=max_results)
    return [
        Prompt(
            model.name,
            _latest(client, model.name),
            dict(sorted(_aliases(model).items())),
            {k: val for k, val in model.tags.items() if k != IS_PROMPT_TAG},
        )
        for model in models
        if model.tags.get(IS_PROMPT_TAG) == "true"  # the filter's guarantee, checked again
    ]


def search_prompt_versions(name: str, *, registry_uri: str | None = None) -> list[PromptVersion]:
    """Every version of a prompt, newest first.

    Raises:
        ResourceNotFound: no prompt has that name.

    Example:
        >>> from flowml import genai
        >>> _ = genai.register_prompt("qa", "Answer {{question}} briefly.")
        >>> _ = genai.register_prompt("qa", "Answer {{question}} in one word.")
        >>> [v.version for v in genai.search_prompt_versions("qa")]
        [2, 1]
    """
    _check_name(name)
    client = RegistryClient(registry_uri)
    _require_prompt(client, name)
    out: list[PromptVersion] = []
    token = None
    while True:
        page = client.store.search_model_versions(
            f"name = {quote_literal(name)} AND tags.`{PROMPT_TEXT_TAG}` IS NOT NULL",
            order_by=["version_number DESC"],
            page_token=token,
        )
        out.extend(_to_prompt_version(v) for v in page)
        token = page.token
        if not token:
            return out


def set_prompt_alias(
    name: str, alias: str, version: int | str, *, registry_uri: str | None = None
) -> None:
    """Point ``alias`` (``production``) at a version, moving it from any other.

    Raises:
        InvalidParameter: a malformed or reserved alias.
        ResourceNotFound: no such prompt or version.

    Example:
        >>> from flowml import genai
        >>> _ = genai.register_prompt("qa", "Answer {{question}} briefly.")
        >>> _ = genai.register_prompt("qa", "Answer {{question}} in one word.")
        >>> genai.set_prompt_alias("qa", "production", 1)
        >>> genai.load_prompt("prompts:/qa@production").version
        1
    """
    _check_name(name)
    client = RegistryClient(registry_uri)
    _require_prompt(client, name)
    client.set_registered_model_alias(name, alias, version)


def delete_prompt_alias(name: str, alias: str, *, registry_uri: str | None = None) -> None:
    """Remove an alias of a prompt.

    Raises:
        ResourceNotFound: no such prompt or alias.

    Example:
        >>> from flowml import genai
        >>> _ = genai.register_prompt("qa", "Answer {{question}} briefly.")
        >>> genai.set_prompt_alias("qa", "staging", 1)
        >>> genai.delete_prompt_alias("qa", "staging")
        >>> genai.load_prompt("qa").aliases
        []
    """
    _check_name(name)
    client = RegistryClient(registry_uri)
    _require_prompt(client, name)
    client.delete_registered_model_alias(name, alias)


def get_prompt_runs(
    name_or_uri: str, version: int | str | None = None, *, registry_uri: str | None = None
) -> list[Any]:
    """The runs that loaded a prompt version (its lineage), oldest first.

    Raises:
        InvalidParameter: a malformed URI.
        ResourceNotFound: no such prompt, version or alias.

    Example:
        >>> from flowml import genai
        >>> _ = genai.register_prompt("qa", "Answer {{question}} briefly.")
        >>> with flowml.start_run() as run:
        ...     _ = genai.load_prompt("prompts:/qa/1")  # recorded as an input of the run
        >>> [r.info.run_id for r in genai.get_prompt_runs("prompts:/qa/1")] == [run.info.run_id]
        True
    """
    name, number, alias = parse_prompt_uri(name_or_uri, version)
    client = RegistryClient(registry_uri)
    found = _resolve(client, name, number, alias)
    entries = client.tracking.store.search_lineage(uris=[found.uri], direction="input")
    run_ids = list(dict.fromkeys(e.run_id for e in sorted(entries, key=lambda e: e.timestamp or 0)))
    return [client.tracking.get_run(run_id) for run_id in run_ids if run_id]


def get_prompt_traces(
    name_or_uri: str,
    version: int | str | None = None,
    *,
    experiment_ids: Sequence[str] | None = None,
    max_results: int = 100,
    registry_uri: str | None = None,
) -> list[Any]:
    """The traces that loaded a prompt version (its lineage), newest first.

    A prompt version loaded while a trace is recorded is linked to that trace, in its
    ``mlflow.linkedPrompts`` tag as MLflow 3 writes it.

    Args:
        name_or_uri: ``prompts:/qa/3``, ``prompts:/qa@production``, or a name with ``version``.
        version: the version when ``name_or_uri`` is a name (default: the newest).
        experiment_ids: where to look (default: every active experiment).
        max_results: at most this many traces (1..1000).
        registry_uri: the registry.

    Returns:
        `Trace` objects with their spans.

    Raises:
        InvalidParameter: a malformed URI or ``max_results`` out of range.
        ResourceNotFound: no such prompt, version or alias.

    Example:
        >>> import flowml
        >>> from flowml import genai
        >>> _ = genai.register_prompt("qa", "Answer {{question}} briefly.")
        >>> @flowml.trace
        ... def answer(question):
        ...     return genai.load_prompt("prompts:/qa/1").format(question=question)
        >>> _ = answer("Why?")
        >>> [t.info.trace_id for t in genai.get_prompt_traces("prompts:/qa/1")] == [
        ...     flowml.get_last_active_trace_id()
        ... ]
        True
    """
    from flowml.tracing.fluent import search_traces

    if (
        isinstance(max_results, bool)
        or not isinstance(max_results, int)
        or not (1 <= max_results <= MAX_SEARCH_RESULTS)
    ):
        raise InvalidParameter(f"max_results must be 1..{MAX_SEARCH_RESULTS}, got {max_results!r}")
    name, number, alias = parse_prompt_uri(name_or_uri, version)
    client = RegistryClient(registry_uri)
    found = _resolve(client, name, number, alias)
    if experiment_ids is None:
        experiment_ids = _all_experiment_ids(client)
    if not experiment_ids:
        return []
    link = {"name": found.name, "version": str(found.version)}
    # The tag holds JSON as MLflow writes it: a LIKE finds the link's text, then the JSON is
    # checked ('_' of a name is LIKE's any character).
    page = search_traces(
        experiment_ids=list(experiment_ids),
        filter_string=f"tags.`{LINKED_PROMPTS_TAG}` LIKE '%{json.dumps(link)}%'",
        max_results=max_results,
        return_type="list",
    )
    return [t for t in page if link in _linked(t.info.tags)]


def parse_prompt_uri(
    name_or_uri: object, version: int | str | None = None
) -> tuple[str, int | None, str | None]:
    """``(name, version, alias)`` from ``prompts:/name/3``, ``prompts:/name@alias``,
    ``prompts:/name`` or a bare name with ``version``.

    Raises:
        InvalidParameter: anything else, or both a URI version and ``version``.
    """
    if not isinstance(name_or_uri, str) or not name_or_uri:
        raise InvalidParameter(f"A prompt is named by a string, got {name_or_uri!r}")
    if not name_or_uri.startswith(SCHEME):
        _check_name(name_or_uri)
        return name_or_uri, None if version is None else rv.validate_version(version), None
    match = _URI.match(name_or_uri)
    if match is None:
        raise InvalidParameter(
            f"Malformed prompt URI {name_or_uri!r}: use prompts:/<name>/<version> or "
            "prompts:/<name>@<alias>"
        )
    if version is not None:
        raise InvalidParameter("Pass the version in the URI or as version=, not both")
    name, number, alias = match.groups()
    return name, None if number is None else rv.validate_version(number), alias


# -- helpers -----------------------------------------------------------------------------------


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not NAME_RULE.match(name):
        raise InvalidParameter(
            f"A prompt name holds letters, digits, '_', '-' and '.', got {name!r}"
        )
    rv.validate_model_name(name)


def _user_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidParameter(f"tags must be a mapping, got {type(tags).__name__}")
    out = {}
    for key, value in tags.items():
        if not isinstance(key, str) or key.startswith(_RESERVED_TAG_PREFIXES):
            raise InvalidParameter(f"The tag key {key!r} is reserved for the prompt registry")
        out[key] = value if isinstance(value, str) else str(value)
    return out


def _ensure_prompt(client: RegistryClient, name: str) -> None:
    try:
        client.store.create_registered_model(name, {IS_PROMPT_TAG: "true"})
    except ResourceAlreadyExists:
        _require_prompt(client, name, exists_error=True)


def _require_prompt(client: RegistryClient, name: str, *, exists_error: bool = False) -> Any:
    try:
        model = client.store.get_registered_model(name)
    except ResourceNotFound:
        raise ResourceNotFound(f"No prompt named {name!r} (flowml prompts list)") from None
    if model.tags.get(IS_PROMPT_TAG) != "true":
        message = f"{name!r} is a registered model, not a prompt: pick another name"
        raise InvalidParameter(message) if exists_error else ResourceNotFound(message)
    return model


def _resolve(
    client: RegistryClient, name: str, number: int | None, alias: str | None
) -> PromptVersion:
    _require_prompt(client, name)
    if alias is not None:
        version = client.store.get_model_version_by_alias(name, alias)
    elif number is not None:
        version = client.store.get_model_version(name, number)
    else:
        version = client.store.get_latest_version(name)
    return _to_prompt_version(version)


def _to_prompt_version(version: ModelVersion) -> PromptVersion:
    tags = dict(version.tags)
    text = tags.pop(PROMPT_TEXT_TAG, None)
    prompt_type = tags.pop(PROMPT_TYPE_TAG, "text")
    if text is None:
        raise ResourceNotFound(f"{version.name} version {version.version} holds no prompt text")
    parsed = load_template(text, prompt_type)
    template = parsed.template if isinstance(parsed.template, str) else list(parsed.template)
    return PromptVersion(
        name=version.name,
        version=int(version.version),
        template=template,
        prompt_type=parsed.prompt_type,
        variables=parsed.variables,
        commit_message=version.description,
        tags=tags,
        aliases=sorted(version.aliases),
        creation_timestamp=version.creation_timestamp,
    )


def _link_to_active_run(found: PromptVersion) -> None:
    from flowml.tracking import fluent
    from flowml.tracking.digest import digest_value
    from flowml.tracking.lineage.inputs import record_input

    run = fluent.active_run()
    if run is None:
        return
    digest = digest_value(found._parsed().serialize())
    record_input(
        run.info.run_id, KIND_PROMPT, found.uri, name=found.name, digest=digest, client=run.client
    )


def _link_to_active_trace(found: PromptVersion) -> None:
    """Add the version to the ``mlflow.linkedPrompts`` tag of the trace being recorded."""
    from flowml.tracing.fluent import get_current_active_span, update_current_trace

    if get_current_active_span() is None:
        return
    from flowml.tracing import provider

    span = get_current_active_span()
    assert span is not None
    pending = provider.current_pending(span._span.context.trace_id)
    if pending is None:
        return
    links = _linked(pending.tags)
    link = {"name": found.name, "version": str(found.version)}
    if link not in links:
        update_current_trace(tags={LINKED_PROMPTS_TAG: json.dumps([*links, link])})


def _linked(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """The prompt versions a trace's tags link to (none when the tag is not MLflow's form)."""
    try:
        links = json.loads(tags.get(LINKED_PROMPTS_TAG) or "[]")
    except ValueError:
        return []
    if not isinstance(links, list):
        return []
    return [
        {"name": str(item["name"]), "version": str(item["version"])}
        for item in links
        if isinstance(item, dict) and "name" in item and "version" in item
    ]


def _all_experiment_ids(client: RegistryClient) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        page = client.tracking.search_experiments(max_results=1000, page_token=token)
        ids += [e.experiment_id for e in page]
        token = page.token
        if not token:
            return ids


def _latest(client: RegistryClient, name: str) -> int | None:
    try:
        return int(client.store.get_latest_version(name).version)
    except ResourceNotFound:
        return None


def _aliases(model: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in model.aliases.items()}
