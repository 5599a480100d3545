from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest

from flowml.exceptions import InvalidParameter
from flowml.projects.params import (
    ShellCommand,
    build_command,
    parse_key_values,
    resolve_parameters,
    validate_parameters,
)
from flowml.projects.spec import EntryPoint, ParameterSpec


def entry(command: str, **params: ParameterSpec) -> EntryPoint:
    return EntryPoint(name="main", command=command, parameters=params)


TYPED = entry(
    "train {alpha} {n} {name}",
    alpha=ParameterSpec(name="alpha", type="float"),
    n=ParameterSpec(name="n", type="int", default=3),
    name=ParameterSpec(name="name", type="string", default="x"),
)


def test_conversion_of_cli_strings_and_python_values() -> None:
    declared, extra = validate_parameters(TYPED, {"alpha": "0.25", "n": "10", "seed": 7})
    assert declared == {"alpha": 0.25, "n": 10, "name": "x"}
    assert isinstance(declared["alpha"], float) and isinstance(declared["n"], int)
    assert extra == {"seed": "7"}
    declared, _ = validate_parameters(TYPED, {"alpha": 1, "n": 4.0, "name": None})
    assert declared == {"alpha": 1.0, "n": 4, "name": "x"}  # None counts as not given


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "needs a value for 'alpha'; it accepts alpha (float, required), n (int, default 3)"),
        ({"alpha": "fast"}, "Parameter 'alpha' expects a float, got 'fast'"),
        ({"alpha": True}, "Parameter 'alpha' expects a float, got True"),
        ({"alpha": 1, "n": "1.5"}, "Parameter 'n' expects an int, got '1.5'"),
        ({"alpha": 1, "n": 2.5}, "expects an int"),
        ({"alpha": 1, "name": ["a"]}, "expects a string"),
        ({"alpha": 1, "extra": {"a": 1}}, "must be a string or a number"),
        ({"alpha": 1, " ": "v"}, "non-empty name"),
    ],
)
def test_invalid_values(given: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        validate_parameters(TYPED, given)
    assert message in str(info.value)


def test_parse_key_values() -> None:
    assert parse_key_values(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    for bad in (["novalue"], ["=1"]):
        with pytest.raises(InvalidParameter, match="key=value"):
            parse_key_values(bad)


def run_shell(command: ShellCommand) -> list[str]:
    """Run ``command`` with bash as the runner does, returning the argv the program got."""
    done = subprocess.run(
        ["bash", "-c", command.command],
        env={**os.environ, **command.env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_command_refers_to_values_and_appends_extras(tmp_path: Path) -> None:
    resolved = resolve_parameters(TYPED, {"alpha": 0.5, "name": "a b", "lr": "0.1", "x y": "z"})
    command = build_command(TYPED, resolved)
    assert command.display == "train 0.5 3 'a b' --lr 0.1 --'x y' z"
    assert "a b" not in command.command and "0.5" not in command.command
    script = tmp_path / "argv.py"
    script.write_text("import sys, json; print(json.dumps(sys.argv[1:]))\n")
    ep = TYPED.model_copy(update={"command": f"{sys.executable} {script} {{alpha}} {{n}} {{name}}"})
    argv = run_shell(build_command(ep, resolved))
    assert argv == ["0.5", "3", "a b", "--lr", "0.1", "--x y", "z"]


@pytest.mark.parametrize(
    "payload",
    ["; rm -rf /tmp/flowml-canary", "$(touch /tmp/flowml-canary)", "`id`", "a'b\"c", "x\ny", "*"],
)
def test_no_parameter_can_inject_a_command(tmp_path: Path, payload: str) -> None:
    script = tmp_path / "echo_args.py"
    script.write_text("import sys, json; print(json.dumps(sys.argv[1:]))\n")
    ep = entry(
        f"{sys.executable} {script} {{name}}", name=ParameterSpec(name="name", type="string")
    )
    resolved = resolve_parameters(ep, {"name": payload, payload: payload})
    # Exactly three arguments, byte for byte: nothing was expanded, split or executed.
    assert run_shell(build_command(ep, resolved)) == [payload, f"--{payload}", payload]


def test_path_parameters_are_resolved_to_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a\n")
    ep = entry(
        "x {data} {out}",
        data=ParameterSpec(name="data", type="path"),
        out=ParameterSpec(name="out", type="uri", default="results"),
    )
    resolved = resolve_parameters(ep, {"data": "data.csv"}, cwd=tmp_path)
    assert resolved.declared["data"] == str(tmp_path / "data.csv")
    assert resolved.declared["out"] == str(tmp_path / "results")  # a local uri: absolute
    assert resolved.logged == {"data": str(tmp_path / "data.csv"), "out": str(tmp_path / "results")}
    resolved = resolve_parameters(ep, {"data": (tmp_path / "data.csv").as_uri(), "out": "s3://b/k"})
    assert resolved.declared == {"data": str(tmp_path / "data.csv"), "out": "s3://b/k"}


def test_missing_local_path_is_rejected(tmp_path: Path) -> None:
    ep = entry("x {data}", data=ParameterSpec(name="data", type="path"))
    with pytest.raises(InvalidParameter, match="no such file or directory"):
        resolve_parameters(ep, {"data": "nope.csv"}, cwd=tmp_path)


def test_remote_path_is_downloaded(tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/flowml-params-test/data/train.csv", b"a,b\n1,2\n")
    fs.pipe("/flowml-params-test/data/more/x.txt", b"x")
    ep = entry("x {data}", data=ParameterSpec(name="data", type="path"))
    try:
        url = "memory://flowml-params-test/data/train.csv"
        # Without a storage directory (validation only), the URI stays as it is.
        assert resolve_parameters(ep, {"data": url}).declared["data"] == url
        resolved = resolve_parameters(ep, {"data": url}, storage_dir=tmp_path)
        local = Path(str(resolved.declared["data"]))
        assert local.read_bytes() == b"a,b\n1,2\n" and local.is_relative_to(tmp_path)
        assert resolved.logged["data"] == url
        folder = resolve_parameters(
            ep, {"data": "memory://flowml-params-test/data"}, storage_dir=tmp_path / "2"
        )
        assert (Path(str(folder.declared["data"])) / "more" / "x.txt").read_bytes() == b"x"
        with pytest.raises(InvalidParameter, match="nothing found at"):
            resolve_parameters(
                ep, {"data": "memory://flowml-params-test/none"}, storage_dir=tmp_path
            )
    finally:
        fs.rm("/flowml-params-test", recursive=True)
