"""No command template lets a parameter value run: every placeholder position, run by bash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowml.exceptions import InvalidParameter
from flowml.projects.errors import ProjectSpecError
from flowml.projects.params import build_command, resolve_parameters
from flowml.projects.spec import EntryPoint, ParameterSpec, load_project

from .helpers import write

# Each payload, pasted into the command text, would run `touch MARKER` in some position.
PAYLOADS = [
    "$(touch {marker})",
    "`touch {marker}`",
    '"; touch {marker}; "',
    "'; touch {marker}; '",
    "'",
    '"',
    "\\",
    "x\ntouch {marker}\n",
    "$'\\x41' ${{HOME}} $((1+1)) !! *",
    "a[$(touch {marker})]",
]

# Where a placeholder can sit, and what the program must receive for value V.
POSITIONS = {
    "bare": ("{p}", "{v}"),
    "glued": ("--msg={p}", "--msg={v}"),
    "double": '"{p}"',
    "double, with text": ('"say {p} now"', "say {v} now"),
    "single": "'{p}'",
    "single, with text": ("'say {p} now'", "say {v} now"),
    "ansi-c": "$'{p}'",
    "double inside $( )": ('"$(printf %s "{p}")"', "{v}"),
    "bare inside $( )": ('"$(printf %s {p})"', "{v}"),
    "inside backquotes": ('"`printf %s {p}`"', "{v}"),
    "export": ('"$(export X={p}; printf %s "$X")"', "{v}"),
}


def _position(name: str) -> tuple[str, str]:
    spec = POSITIONS[name]
    return (spec, "{v}") if isinstance(spec, str) else spec


def _run(tmp_path: Path, template: str, value: str, type_: str = "string") -> list[str]:
    script = tmp_path / "argv.py"
    script.write_text("import sys, json; print(json.dumps(sys.argv[1:]))\n")
    ep = EntryPoint(
        name="main",
        command=f"{sys.executable} {script} {template}",
        parameters={"p": ParameterSpec(name="p", type=type_)},
    )
    command = build_command(ep, resolve_parameters(ep, {"p": value}))
    done = subprocess.run(
        ["bash", "-c", command.command],
        env={**os.environ, **command.env},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("position", list(POSITIONS))
@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_value_runs_in_any_position(tmp_path: Path, position: str, payload: str) -> None:
    marker = tmp_path / "MARKER"
    value = payload.format(marker=marker)
    template, expected = _position(position)
    argv = _run(tmp_path, template, value)
    if "$( )" in position or "backquotes" in position or position == "export":
        # Command substitution drops trailing newlines: the shell's rule, not an injection.
        assert argv == [expected.format(v=value).rstrip("\n")]
    else:
        assert argv == [expected.format(v=value)]
    assert not marker.exists()


def test_a_placeholder_in_a_comment_is_inert(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    argv = _run(tmp_path, "ok # note {p}", f"x\ntouch {marker} #")
    assert argv == ["ok"] and not marker.exists()


@pytest.mark.parametrize(
    "template",
    [
        "$(( {p} + 1 ))",
        "$(( 1 + {p} ))",
        "$[ {p} ]",
        '"$( (( {p} > 1 )) && echo big)"',
        "$([[ {p} -eq 1 ]] && echo one)",
        "$(let v={p}; echo $v)",
        "$(declare -i v={p}; echo $v)",
        "$(local v={p})",
        "$(read {p} </dev/null)",
        "$(printf -v {p} x)",
        "$([ -v {p} ])",
        "$(builtin read {p} </dev/null)",
        "$(a[{p}]=1)",
        "${{X:-{p}}}",
        "$(cat <<EOF\n{p}\nEOF\n)",
        "\\{p}",
    ],
)
def test_templates_that_cannot_be_made_safe_are_refused(tmp_path: Path, template: str) -> None:
    # Each would run `touch MARKER` from the value a[$(touch MARKER)] in bash, even quoted.
    (tmp_path / "MLproject").write_text(
        "entry_points:\n  train:\n    parameters: {p: string}\n"
        f"    command: {json.dumps('echo ' + template)}\n"
    )
    with pytest.raises(ProjectSpecError, match=r"entry point 'train': \{p\}"):
        load_project(tmp_path)
    ep = EntryPoint(
        name="train",
        command=f"echo {template}",
        parameters={"p": ParameterSpec(name="p", type="string")},
    )
    marker = tmp_path / "MARKER"
    with pytest.raises(ProjectSpecError, match="Entry point 'train'"):
        build_command(ep, resolve_parameters(ep, {"p": f"a[$(touch {marker})]"}))
    assert not marker.exists()


@pytest.mark.parametrize("template", ["$(( {p} + 1 ))", "$([[ {p} -eq 3 ]] && echo 4)"])
def test_numbers_may_sit_in_arithmetic(tmp_path: Path, template: str) -> None:
    assert _run(tmp_path, template, "3", type_="int") == ["4"]


def test_undeclared_parameters_are_refused_after_a_trailing_comment(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    for command in ("python t.py # a note", "cat <<EOF\nhello\nEOF"):
        ep = EntryPoint(name="main", command=command)
        resolved = resolve_parameters(ep, {"k": f"x\ntouch {marker} #"})
        with pytest.raises(InvalidParameter, match="Entry point 'main' takes no undeclared"):
            build_command(ep, resolved)
    assert not marker.exists()


def test_the_example_project_loads(tmp_path: Path) -> None:
    # Real templates stay accepted: the example project and MLflow-style quoting.
    project = load_project(Path(__file__).parents[2] / "flows" / "example_project")
    assert project.entry_points
    mlproject = """
    entry_points:
      main:
        parameters: {x: string}
        command: "python t.py '{x}' --y \\"{x}\\""
    """
    write(tmp_path, {"MLproject": mlproject})
    assert load_project(tmp_path).entry_points["main"].command == "python t.py '{x}' --y \"{x}\""
