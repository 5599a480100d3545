"""The tags that make a registered model a prompt, as MLflow 3 names them.

Prompts live in the registry as registered models tagged ``mlflow.prompt.is_prompt=true``;
each version holds its template in ``mlflow.prompt.text`` and its kind in
``_mlflow_prompt_type``. A version's template is written once, when the version is created:
the store refuses to set or delete those tags afterwards, so a prompt version never changes.
"""

from __future__ import annotations

from flowml.exceptions import InvalidParameter

__all__ = [
    "IMMUTABLE_VERSION_TAGS",
    "IS_PROMPT_TAG",
    "PROMPT_SOURCE",
    "PROMPT_TEXT_TAG",
    "PROMPT_TYPE_TAG",
    "check_version_tag_writable",
]

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
PROMPT_TEXT_TAG = "mlflow.prompt.text"
PROMPT_TYPE_TAG = "_mlflow_prompt_type"
# The placeholder source MLflow's store gives prompt versions (they have no files).
PROMPT_SOURCE = "prompt-template"
IMMUTABLE_VERSION_TAGS = frozenset({PROMPT_TEXT_TAG, PROMPT_TYPE_TAG})


def check_version_tag_writable(key: str) -> None:
    """Refuse to change a tag that holds a prompt version's template.

    Raises:
        InvalidParameter: ``key`` is a template tag (register a new version instead).
    """
    if key in IMMUTABLE_VERSION_TAGS:
        raise InvalidParameter(
            f"The tag {key!r} holds a prompt version's template, which never changes: "
            "register a new version (flowml.genai.register_prompt) instead"
        )
