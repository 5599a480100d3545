"""Prompt templates: text or chat messages with ``{{variable}}`` placeholders.

A template is checked once, when it is registered: every ``{{`` must close with ``}}`` around
a variable name (letters, digits, ``_``; dotted parts allowed, as MLflow). Single braces are
plain text, so JSON examples inside a prompt need no escaping. Formatting replaces every
placeholder in one pass: a value that itself contains ``{{x}}`` is inserted as is, never
expanded again.

Example:
    >>> template = parse_template("Summarise {{ text }} in {{n}} words.")
    >>> template.variables
    ['n', 'text']
    >>> template.format(text="the report", n=20)
    'Summarise the report in 20 words.'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowml.exceptions import InvalidParameter

__all__ = [
    "MissingPromptVariables",
    "PromptTemplate",
    "PromptTemplateError",
    "parse_template",
]

PROMPT_TYPE_TEXT = "text"
PROMPT_TYPE_CHAT = "chat"
MAX_CHAT_MESSAGES = 1000

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_VARIABLE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*$")


class PromptTemplateError(InvalidParameter):
    """A template is malformed: unbalanced braces, a bad variable name, a bad chat message.

    Example:
        >>> from flowml import genai
        >>> try:
        ...     genai.register_prompt("qa", "Answer {{question")
        ... except genai.PromptTemplateError as error:
        ...     print(error)
        The template has an unbalanced '{{' near 'Answer {{question'
    """


class MissingPromptVariables(InvalidParameter):
    """``format`` was called without a value for some of the template's variables.

    Attributes:
        missing: the variables without a value, sorted.

    Example:
        >>> from flowml import genai
        >>> prompt = genai.register_prompt("qa", "Answer {{question}} for {{user}}.")
        >>> try:
        ...     prompt.format(user="ann")
        ... except genai.MissingPromptVariables as error:
        ...     print(error.missing)
        ['question']
    """

    def __init__(self, message: str, *, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = list(missing)


@dataclass(frozen=True)
class PromptTemplate:
    """A checked template.

    Attributes:
        template: the text, or the chat messages (``[{"role": ..., "content": ...}]``).
        prompt_type: ``"text"`` or ``"chat"``.
        variables: every variable name, sorted.
    """

    template: str | tuple[dict[str, str], ...]
    prompt_type: str
    variables: list[str]

    def format(self, **values: Any) -> str | list[dict[str, str]]:
        """The template with each ``{{variable}}`` replaced by ``str(value)``.

        Raises:
            MissingPromptVariables: a variable has no value (all missing ones are named).
        """
        missing = sorted(set(self.variables) - set(values))
        if missing:
            raise MissingPromptVariables(
                f"Missing value(s) for {', '.join(missing)}: format() needs "
                f"{', '.join(f'{name}=...' for name in missing)}",
                missing=missing,
            )
        if isinstance(self.template, str):
            return _fill(self.template, values)
        return [{**m, "content": _fill(m["content"], values)} for m in self.template]

    def serialize(self) -> str:
        """How the template is stored: the text, or the messages as JSON."""
        if isinstance(self.template, str):
            return self.template
        return json.dumps(list(self.template), ensure_ascii=False)


def parse_template(template: object) -> PromptTemplate:
    """Check a template and list its variables.

    Args:
        template: a non-empty string, or a non-empty list of ``{"role", "content"}`` dicts
            whose ``role`` and ``content`` are strings.

    Returns:
        A `PromptTemplate`.

    Raises:
        PromptTemplateError: an empty template, unbalanced ``{{``/``}}``, a placeholder that
            is not a variable name, or a malformed chat message.
    """
    if isinstance(template, str):
        if not template.strip():
            raise PromptTemplateError("A prompt template must not be empty")
        return PromptTemplate(template, PROMPT_TYPE_TEXT, sorted(_variables(template, "template")))
    if isinstance(template, Sequence) and not isinstance(template, (bytes, bytearray)):
        if not template:
            raise PromptTemplateError("A chat template needs at least one message")
        if len(template) > MAX_CHAT_MESSAGES:
            raise PromptTemplateError(f"A chat template holds at most {MAX_CHAT_MESSAGES} messages")
        messages: list[dict[str, str]] = []
        names: set[str] = set()
        for i, message in enumerate(template):
            if not isinstance(message, Mapping) or set(message) != {"role", "content"}:
                raise PromptTemplateError(
                    f"Chat message {i} must be a dict with exactly 'role' and 'content', got "
                    f"{message!r}"
                )
            role, content = message["role"], message["content"]
            if not isinstance(role, str) or not role.strip() or not isinstance(content, str):
                raise PromptTemplateError(
                    f"Chat message {i} needs a non-empty string role and a string content"
                )
            names |= _variables(content, f"message {i}")
            messages.append({"role": role, "content": content})
        return PromptTemplate(tuple(messages), PROMPT_TYPE_CHAT, sorted(names))
    raise PromptTemplateError(
        f"A prompt template is a string or a list of chat messages, got {type(template).__name__}"
    )


def load_template(text: str, prompt_type: str) -> PromptTemplate:
    """The template stored as ``text`` (see `PromptTemplate.serialize`)."""
    if prompt_type == PROMPT_TYPE_CHAT:
        return parse_template(json.loads(text))
    return parse_template(text)


def _variables(text: str, where: str) -> set[str]:
    names = set()
    for match in _PLACEHOLDER.finditer(text):
        found = _VARIABLE.match(match.group(1))
        if found is None or "{" in match.group(1):
            raise PromptTemplateError(
                f"The {where} has {match.group(0)!r}, which is not a variable: use "
                "{{name}} with letters, digits and _"
            )
        names.add(found.group(1))
    rest = _PLACEHOLDER.sub("", text)
    for brace in ("{{", "}}"):
        if brace in rest:
            at = rest.index(brace)
            raise PromptTemplateError(
                f"The {where} has an unbalanced {brace!r} near {rest[max(0, at - 15) : at + 17]!r}"
            )
    return names


def _fill(text: str, values: Mapping[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1).strip()]), text)
