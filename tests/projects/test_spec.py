from __future__ import annotations

from pathlib import Path

import pytest

from flowml.exceptions import InvalidParameter
from flowml.projects.errors import ProjectSpecError
from flowml.projects.spec import load_project

from .helpers import write

FULL = """
name: iris
python_env: env/python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      max_iter: {type: int, default: 100, description: Iterations}
      data: path
      out: {type: uri, default: out}
      label: {default: x}
      note: string
    command: "python train.py --alpha {alpha} --data {data} {max_iter} {out} {label} {note}"
  validate:
    command: python validate.py
"""


def test_full_spec(tmp_path: Path) -> None:
    write(tmp_path, {"MLproject": FULL, "env/python_env.yaml": "python: '3.11'\n"})
    project = load_project(tmp_path)
    assert project.name == "iris"
    assert project.env_type == "python_env"
    assert project.env_file == tmp_path / "env" / "python_env.yaml"
    main = project.get_entry_point("main")
    params = main.parameters
    assert list(params) == ["alpha", "max_iter", "data", "out", "label", "note"]
    assert (params["alpha"].type, params["alpha"].default) == ("float", 0.5)
    assert (params["max_iter"].type, params["max_iter"].default) == ("int", 100)
    assert params["max_iter"].description == "Iterations"
    assert params["data"].type == "path" and params["data"].required  # short form
    assert (params["label"].type, params["label"].default) == ("string", "x")
    assert project.get_entry_point("validate").parameters == {}


def test_defaults_are_converted_to_their_type(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "MLproject": """
            entry_points:
              main:
                parameters:
                  a: {type: float, default: 1}
                  b: {type: int, default: "7"}
                  c: {type: string, default: 3}
                command: "echo {a} {b} {c}"
            """
        },
    )
    params = load_project(tmp_path).entry_points["main"].parameters
    assert params["a"].default == 1.0 and isinstance(params["a"].default, float)
    assert params["b"].default == 7
    assert params["c"].default == "3"


def test_mlproject_name_is_case_insensitive_and_name_defaults_to_directory(tmp_path: Path) -> None:
    root = write(tmp_path / "my-proj", {"mlproject": "entry_points: {main: {command: 'true'}}"})
    project = load_project(root)
    assert project.name == "my-proj"
    assert project.env_type == "none"


def test_directory_without_mlproject_runs_scripts(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "print('hi')\n", "run.sh": "echo hi\n", "sub/x.py": ""})
    project = load_project(tmp_path)
    assert project.entry_points == {}
    assert project.get_entry_point("train.py").command == "python train.py"
    assert project.get_entry_point("run.sh").command.endswith(" run.sh")
    assert project.get_entry_point("sub/x.py").command == "python sub/x.py"


def test_conventional_env_files_are_picked_up(tmp_path: Path) -> None:
    write(tmp_path / "a", {"python_env.yaml": "dependencies: []\n", "t.py": ""})
    write(tmp_path / "b", {"conda.yaml": "dependencies: [python=3.11]\n", "t.py": ""})
    assert load_project(tmp_path / "a").env_type == "python_env"
    assert load_project(tmp_path / "b").env_type == "conda_env"


def test_docker_env(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "MLproject": """
            docker_env:
              image: python:3.11-slim
              volumes: ["/data:/data"]
              environment: [HOME, [MODE, fast]]
            entry_points: {main: {command: python t.py}}
            """
        },
    )
    project = load_project(tmp_path)
    assert project.env_type == "docker_env"
    assert project.docker_env is not None
    assert project.docker_env.image == "python:3.11-slim"
    assert project.docker_env.environment == ("HOME", ("MODE", "fast"))


@pytest.mark.parametrize(
    ("mlproject", "message"),
    [
        ("[1, 2]", "must be a YAML mapping"),
        ("name: [x", "not valid YAML"),
        ("nmae: x", "unknown key(s) nmae; accepted: name, python_env"),
        ("entry_points: [main]", "'entry_points' must be a mapping"),
        ("entry_points: {main: python x.py}", "entry point 'main' must be a mapping"),
        ("entry_points: {main: {parameters: {}}}", "needs a 'command'"),
        ("entry_points: {main: {command: x, params: {}}}", "unknown key(s) params"),
        (
            "entry_points: {main: {command: 'x {a}', parameters: {a: double_float}}}",
            "unknown type 'double_float'; accepted: float, int, path, string, uri",
        ),
        (
            "entry_points: {main: {command: 'x {a}', parameters: {a: {type: int, default: 1.5}}}}",
            "invalid default: Parameter 'a' expects an int, got 1.5",
        ),
        (
            "entry_points: {main: {command: 'x {a}', parameters: {a: {typ: int}}}}",
            "unknown key(s) typ; accepted: type, default, description",
        ),
        ("entry_points: {main: {command: 'x {b}'}}", "uses {b} but declares no such parameter"),
        (
            "entry_points: {main: {command: 'x {a!r}', parameters: {a: string}}}",
            "placeholders are plain {name}",
        ),
        ("entry_points: {main: {command: 'x {'}}", "malformed command template"),
        ("python_env: missing.yaml", "python_env file 'missing.yaml' not found"),
        ("python_env: ../outside.yaml", "not found in the project"),
        ("python_env: a.yaml\nconda_env: b.yaml", "a project has one environment"),
        ("docker_env: {volumes: []}", "docker_env needs an 'image'"),
        ("docker_env: {image: x, volumes: /a}", "volumes must be a list"),
        ("docker_env: {image: x, environment: [[a]]}", "[name, value] pair"),
        ("docker_env: {image: x, ports: [80]}", "unknown key(s) ports"),
        ("name: [x]", "'name' must be a string"),
    ],
)
def test_invalid_specs(tmp_path: Path, mlproject: str, message: str) -> None:
    write(tmp_path, {"MLproject": mlproject, "a.yaml": "", "b.yaml": ""})
    (tmp_path.parent / "outside.yaml").write_text("")
    with pytest.raises(ProjectSpecError) as info:
        load_project(tmp_path)
    assert message in str(info.value)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_unknown_entry_point_lists_the_accepted_ones(tmp_path: Path) -> None:
    write(tmp_path, {"MLproject": FULL.replace("env/python_env.yaml", "e.yaml"), "e.yaml": ""})
    project = load_project(tmp_path)
    with pytest.raises(InvalidParameter, match="declared entry points are main, validate"):
        project.get_entry_point("train")
    with pytest.raises(InvalidParameter, match="Unknown entry point 'missing.py'"):
        project.get_entry_point("missing.py")
    (tmp_path.parent / "evil.py").write_text("")
    with pytest.raises(InvalidParameter):
        project.get_entry_point("../evil.py")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="does not exist"):
        load_project(tmp_path / "nope")
