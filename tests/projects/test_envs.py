from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from flowml.exceptions import InvalidParameter
from flowml.projects.conda import CondaManager, find_conda, python_env_from_conda
from flowml.projects.docker import DockerManager, DockerRun
from flowml.projects.envs import READY_MARKER, LocalManager, get_env_manager
from flowml.projects.errors import EnvironmentUnavailable, ProjectSpecError
from flowml.projects.spec import load_project
from flowml.projects.venv import VirtualenvManager, load_python_env

from .helpers import write

PRINT_PREFIX = "import sys; print(sys.prefix)"


def run_in(env, command: str, work_dir: Path) -> str:
    launch = env.launch(command, work_dir, dict(os.environ))
    done = subprocess.run(
        launch.argv, cwd=launch.cwd, env=launch.env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def project_with(tmp_path: Path, files: dict[str, str]):
    return load_project(write(tmp_path / "proj", files))


def test_manager_selection(tmp_path: Path) -> None:
    roots = tmp_path / "envs"
    plain = project_with(tmp_path / "a", {"t.py": ""})
    python_env = project_with(tmp_path / "b", {"python_env.yaml": "dependencies: []\n"})
    conda_env = project_with(tmp_path / "c", {"conda.yaml": "dependencies: [python=3.11]\n"})
    docker = project_with(tmp_path / "d", {"MLproject": "docker_env: {image: python:3.11}\n"})
    assert isinstance(get_env_manager(None, plain, roots), LocalManager)
    assert isinstance(get_env_manager(None, python_env, roots), VirtualenvManager)
    assert isinstance(get_env_manager(None, conda_env, roots), CondaManager)
    assert isinstance(get_env_manager("virtualenv", conda_env, roots), VirtualenvManager)
    assert isinstance(get_env_manager("local", python_env, roots), LocalManager)
    # docker_env always runs in Docker, whatever was asked (as MLflow).
    assert isinstance(get_env_manager("local", docker, roots), DockerManager)
    with pytest.raises(InvalidParameter, match="accepted: conda, local, virtualenv"):
        get_env_manager("pipenv", plain, roots)
    with pytest.raises(InvalidParameter, match="python_env, which conda cannot build"):
        get_env_manager("conda", python_env, roots)


def test_local_environment_uses_the_current_interpreter(tmp_path: Path) -> None:
    project = project_with(tmp_path, {"t.py": ""})
    env = LocalManager().prepare(project, print)
    assert env.manager == "local"
    assert run_in(env, f'python -c "{PRINT_PREFIX}"', project.directory) == sys.prefix


def test_virtualenv_is_created_cached_and_reused(tmp_path: Path) -> None:
    envs_root = tmp_path / "envs"
    project = project_with(
        tmp_path, {"python_env.yaml": "build_dependencies: []\ndependencies: []\n"}
    )
    manager = VirtualenvManager(envs_root)
    logged: list[str] = []
    first = manager.prepare(project, logged.append)
    assert first.created and first.location is not None
    assert first.location.parent == envs_root
    assert (first.location / READY_MARKER).is_file()
    assert run_in(first, f'python -c "{PRINT_PREFIX}"', project.directory) == str(first.location)
    sentinel = first.location / "sentinel"
    sentinel.write_text("still here")

    # A second manager (a later run) with the same spec reuses the environment as it is.
    second = VirtualenvManager(envs_root).prepare(project, logged.append)
    assert not second.created
    assert second.location == first.location
    assert sentinel.read_text() == "still here"
    assert any(line.startswith("Reusing environment") for line in logged)

    # Another spec is another environment; the first one stays.
    (project.directory / "python_env.yaml").write_text(
        "dependencies: []\nbuild_dependencies: []\n# x\n"
    )
    assert manager.env_dir(project) == first.location  # comments don't change the content
    # Asking for the running Python's version resolves to the same interpreter: same env.
    (project.directory / "python_env.yaml").write_text(
        f"python: '{sys.version_info.major}.{sys.version_info.minor}'\n"
    )
    assert manager.env_dir(project) == first.location
    (project.directory / "python_env.yaml").write_text("dependencies: ['./pkg.whl']\n")
    assert manager.env_dir(project) != first.location


def build_wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel, written by hand so installing it needs no index."""
    wheel = directory / "tiny_pkg-0.1-py3-none-any.whl"
    info = "tiny_pkg-0.1.dist-info"
    files = {
        "tiny_pkg/__init__.py": "VALUE = 'from-the-wheel'\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: tiny-pkg\nVersion: 0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: flowml-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(name, text)
    return wheel


@pytest.mark.slow
def test_virtualenv_installs_dependencies(tmp_path: Path) -> None:
    project = project_with(
        tmp_path, {"python_env.yaml": "dependencies: ['./tiny_pkg-0.1-py3-none-any.whl']\n"}
    )
    build_wheel(project.directory)
    env = VirtualenvManager(tmp_path / "envs").prepare(project, print)
    assert env.created
    probe = 'python -c "import tiny_pkg; print(tiny_pkg.VALUE)"'
    assert run_in(env, probe, project.directory) == "from-the-wheel"
    with pytest.raises(AssertionError):  # the host interpreter does not see it
        run_in(LocalManager().prepare(project, print), probe, project.directory)


def test_incomplete_environment_is_rebuilt(tmp_path: Path) -> None:
    project = project_with(tmp_path, {"python_env.yaml": "dependencies: []\n"})
    manager = VirtualenvManager(tmp_path / "envs")
    broken = manager.env_dir(project)
    broken.mkdir(parents=True)
    (broken / "half-written").write_text("")
    env = manager.prepare(project, print)
    assert env.created and not (broken / "half-written").exists()
    assert (broken / READY_MARKER).is_file()


def test_requirement_files_are_part_of_the_hash(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        {"python_env.yaml": "dependencies: ['-r requirements.txt']\n", "requirements.txt": ""},
    )
    manager = VirtualenvManager(tmp_path / "envs")
    before = manager.env_dir(project)
    (project.directory / "requirements.txt").write_text("# changed\n")
    assert manager.env_dir(project) != before


def test_unavailable_python_version(tmp_path: Path) -> None:
    project = project_with(tmp_path, {"python_env.yaml": "python: '2.7'\n"})
    manager = VirtualenvManager(tmp_path / "envs", use_uv=False)
    with pytest.raises(EnvironmentUnavailable, match="asks for Python 2.7"):
        manager.check(project)
    assert not (tmp_path / "envs").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("python: 3.10\n", 'write the Python version as a string, e.g. python: "3.1"'),
        ("dependencies: numpy\n", "must be a mapping with python"),
        ("pyhton: '3.11'\n", "must be a mapping with python"),
        ("- a\n", "must be a mapping with python"),
    ],
)
def test_invalid_python_env(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "python_env.yaml"
    path.write_text(content)
    with pytest.raises(ProjectSpecError) as info:
        load_python_env(path)
    assert message in str(info.value)


def test_conda_yaml_translates_for_virtualenv(tmp_path: Path) -> None:
    path = tmp_path / "conda.yaml"
    path.write_text("dependencies:\n  - python=3.11.*\n  - numpy\n  - pip:\n    - requests==2.0\n")
    env = python_env_from_conda(path)
    assert (env.python, env.dependencies) == ("3.11", ("requests==2.0",))


@pytest.mark.skipif(find_conda() is not None, reason="conda is installed here")
def test_missing_conda_is_a_clear_error(tmp_path: Path) -> None:
    project = project_with(tmp_path, {"conda.yaml": "dependencies: [python=3.11]\n"})
    manager = CondaManager(tmp_path / "envs")
    with pytest.raises(EnvironmentUnavailable, match="needs conda .* no conda executable"):
        manager.check(project)
    with pytest.raises(EnvironmentUnavailable):
        manager.prepare(project, print)
    assert not (tmp_path / "envs").exists()


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client")
def test_docker_without_engine_fails_fast(tmp_path: Path) -> None:
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0:
        pytest.skip("a Docker engine is running here")
    project = project_with(tmp_path, {"MLproject": "docker_env: {image: python:3.11}\n"})
    with pytest.raises(EnvironmentUnavailable, match="no Docker engine is reachable"):
        DockerManager().check(project)


def test_docker_command_line(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        {
            "MLproject": """
            docker_env:
              image: img:1
              volumes: ["/data:/data"]
              environment: [HOME, [MODE, fast]]
            """
        },
    )
    assert project.docker_env is not None
    run = DockerRun(docker="docker", spec=project.docker_env)
    env = {
        "FLOWML_RUN_ID": "r1",
        "FLOWML_TRACKING_URI": "sqlite:////srv/flowml/flowml.db",
        "HOME": "/root",
        "PYTHONUNBUFFERED": "1",
    }
    launch = run.launch("python t.py --x 'a b'", project.directory, env)
    argv = launch.argv
    assert argv[:4] == ["docker", "run", "--rm", "--init"]
    assert f"{project.directory}:/flowml/project" in argv and "/srv/flowml:/srv/flowml" in argv
    assert "/data:/data" in argv
    names = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
    assert names == ["FLOWML_RUN_ID", "FLOWML_TRACKING_URI", "PYTHONUNBUFFERED", "HOME", "MODE"]
    assert launch.env["MODE"] == "fast"
    assert argv[-4:] == ["img:1", "bash", "-c", "python t.py --x 'a b'"]
