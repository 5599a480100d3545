"""``flowml prompts list|show|versions|alias``: the prompt registry from the shell.

Every command only delegates to `flowml.genai`; prompts are registered from Python
(``flowml.genai.register_prompt``), where templates are written.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from cyclopts import App, Parameter

from flowml.cli._output import OutputOption, emit, format_ms, print_json

app = App(name="prompts", help="List and inspect prompt templates, and move their aliases.")

__all__ = ["alias", "app", "list_prompts", "show", "versions"]


@app.command(name="list")
def list_prompts(
    *,
    filter: Annotated[str | None, Parameter(name=["--filter", "-f"])] = None,
    max_results: int = 100,
    output: OutputOption = "table",
) -> None:
    """List prompts (filter e.g. "name LIKE 'qa%'")."""
    from flowml.genai.prompts import search_prompts

    prompts = search_prompts(filter, max_results)
    emit(
        output,
        "Prompts",
        ["name", "latest version", "aliases"],
        [
            [p.name, p.latest_version, ", ".join(f"{a}: {v}" for a, v in p.aliases.items())]
            for p in prompts
        ],
        [
            {
                "name": p.name,
                "latest_version": p.latest_version,
                "aliases": p.aliases,
                "tags": p.tags,
            }
            for p in prompts
        ],
    )


@app.command
def show(uri: str, *, output: OutputOption = "table") -> None:
    """Show one prompt version: prompts:/NAME/VERSION, prompts:/NAME@ALIAS or NAME (newest).

    Showing a prompt never links it to a run.
    """
    from flowml.genai.prompts import load_prompt

    version = load_prompt(uri, link_to_run=False)
    if output == "json":
        print_json(version.to_dict())
        return
    print(f"{version.uri}  ({version.prompt_type})")
    if version.aliases:
        print(f"aliases:   {', '.join(version.aliases)}")
    print(f"variables: {', '.join(version.variables) or '(none)'}")
    if version.commit_message:
        print(f"message:   {version.commit_message}")
    print(f"created:   {format_ms(version.creation_timestamp)}")
    print()
    print(_template_text(version.template))


@app.command
def versions(name: str, *, output: OutputOption = "table") -> None:
    """List every version of a prompt, newest first."""
    from flowml.genai.prompts import search_prompt_versions

    found = search_prompt_versions(name)
    emit(
        output,
        f"Versions of prompt {name}",
        ["version", "type", "aliases", "variables", "message", "created"],
        [
            [
                v.version,
                v.prompt_type,
                ", ".join(v.aliases),
                ", ".join(v.variables),
                v.commit_message or "",
                format_ms(v.creation_timestamp),
            ]
            for v in found
        ],
        [v.to_dict() for v in found],
    )


@app.command
def alias(name: str, alias: str, version: str | None = None, *, delete: bool = False) -> None:
    """Point ALIAS at VERSION of prompt NAME (moving it), or remove it with --delete.

    Args:
        name: The prompt.
        alias: The alias (letters, digits, _ and -; 'latest' and v<N> are reserved).
        version: The version number (not with --delete).
        delete: Remove the alias instead.
    """
    from flowml.exceptions import InvalidParameter
    from flowml.genai.prompts import delete_prompt_alias, set_prompt_alias

    if delete:
        if version is not None:
            raise InvalidParameter("--delete takes no VERSION")
        delete_prompt_alias(name, alias)
        print(f"Alias {alias!r} of prompt {name!r} removed")
        return
    if version is None:
        raise InvalidParameter("Give the VERSION the alias should point at (or --delete)")
    set_prompt_alias(name, alias, version)
    print(f"prompts:/{name}@{alias} -> version {version}")


def _template_text(template: Any) -> str:
    if isinstance(template, str):
        return template
    return json.dumps(template, indent=2, ensure_ascii=False)
