"""The ``virtualenv`` manager: a venv built from ``python_env.yaml``, cached by content hash.

``python_env.yaml`` is MLflow's format::

    python: "3.11"                 # optional: the current interpreter's version
    build_dependencies: [pip]      # installed first
    dependencies:                  # pip requirement lines; "-r requirements.txt" works
      - scikit-learn>=1.4

The environment lives in ``$FLOWML_HOME/envs/<hash>``, the hash covering the Python version,
the requirement lines and the content of the requirement files they name, so a second run
with the same spec reuses it. With ``uv`` on ``PATH`` it builds the venv (and can fetch
interpreters); otherwise ``python -m venv`` and pip do, with an interpreter of the requested
version found on ``PATH``.

A bare ``flowml`` dependency installs the flowml that is running (from its source directory
when it was installed from one), so the child's ``flowml.log_metric`` matches the parent's.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from flowml.projects.envs import EnvManager, LogFn, ShellEnv, build_once, content_hash, run_tool
from flowml.projects.errors import EnvironmentUnavailable, ProjectSpecError
from flowml.projects.spec import Project

__all__ = ["PythonEnv", "VirtualenvManager", "load_python_env"]

_FILE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")


class PythonEnv(BaseModel):
    """The content of a ``python_env.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    python: str | None = None
    build_dependencies: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()


def load_python_env(path: Path) -> PythonEnv:
    """Read and validate a ``python_env.yaml``.

    Args:
        path: The file.

    Returns:
        Its content.

    Raises:
        ProjectSpecError: Not YAML, or not the python_env shape.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(document.get("python"), (int, float)):
            # YAML reads `python: 3.10` as the float 3.1: refuse rather than guess.
            raise ProjectSpecError(
                f"{path.name}: write the Python version as a string, e.g. python: "
                f'"{document["python"]}" (got the number {document["python"]!r}).'
            )
        return PythonEnv.model_validate(document)
    except (yaml.YAMLError, AttributeError, ValidationError) as exc:
        raise ProjectSpecError(
            f"{path.name} must be a mapping with python (a version string), build_dependencies "
            f"and dependencies (lists of requirement strings): {exc}"
        ) from exc


class VirtualenvManager(EnvManager):
    """Builds and caches venvs under ``envs_root``.

    Args:
        envs_root: The cache directory (``$FLOWML_HOME/envs``).
        use_uv: Force (``True``) or avoid (``False``) uv; ``None``: use it when on ``PATH``.
    """

    name = "virtualenv"

    def __init__(self, envs_root: Path, use_uv: bool | None = None) -> None:
        self.envs_root = Path(envs_root)
        self.uv = shutil.which("uv") if use_uv is not False else None
        if use_uv and self.uv is None:
            raise EnvironmentUnavailable("use_uv=True, but `uv` is not on PATH.")

    def check(self, project: Project) -> None:
        spec = self.python_env(project)
        if self.uv is None:
            _find_interpreter(spec.python)

    def python_env(self, project: Project) -> PythonEnv:
        """The project's environment spec (a conda.yaml is translated; none: empty)."""
        if project.env_type == "python_env" and project.env_file is not None:
            return load_python_env(project.env_file)
        if project.env_type == "conda_env" and project.env_file is not None:
            from flowml.projects.conda import python_env_from_conda

            return python_env_from_conda(project.env_file)
        return PythonEnv()

    def env_dir(self, project: Project) -> Path:
        """Where the environment for ``project`` is cached."""
        spec = self.python_env(project)
        lines = _requirement_lines(spec.dependencies, project.directory)
        build_lines = _requirement_lines(spec.build_dependencies, project.directory)
        python = spec.python if self.uv else _find_interpreter(spec.python)[1]
        key = content_hash(
            {"python": python, "build": build_lines, "deps": lines},
            _referenced_files(build_lines + lines),
        )
        return self.envs_root / key

    def prepare(self, project: Project, log: LogFn) -> ShellEnv:
        spec = self.python_env(project)
        env_dir = self.env_dir(project)

        def build(target: Path) -> None:
            self._create(spec, project.directory, target, log)

        created = build_once(env_dir, build, log)
        return ShellEnv(
            manager=self.name,
            bin_dirs=(str(env_dir / "bin"),),
            set_env={"VIRTUAL_ENV": str(env_dir)},
            unset_env=("PYTHONHOME", "CONDA_PREFIX"),
            location=env_dir,
            created=created,
        )

    def _create(self, spec: PythonEnv, project_dir: Path, env_dir: Path, log: LogFn) -> None:
        build_lines = _requirement_lines(spec.build_dependencies, project_dir)
        lines = _requirement_lines(spec.dependencies, project_dir)
        python = env_dir / "bin" / "python"
        if self.uv:
            argv = [self.uv, "venv", "--quiet", str(env_dir)]
            run_tool(argv + ([f"--python={spec.python}"] if spec.python else []), "uv venv", log)
            installer = [self.uv, "pip", "install", "--python", str(python)]
        else:
            interpreter, _ = _find_interpreter(spec.python)
            # Without anything to install, skip ensurepip: faster and needs no index.
            pip = ["--without-pip"] if not (lines or build_lines) else []
            run_tool([interpreter, "-m", "venv", *pip, str(env_dir)], "python -m venv", log)
            installer = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        for step, requirement_lines in (
            ("build dependencies", build_lines),
            ("dependencies", lines),
        ):
            if not requirement_lines:
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
                handle.write("\n".join(requirement_lines) + "\n")
            try:
                run_tool([*installer, "-r", handle.name], f"install {step}", log, cwd=project_dir)
            finally:
                Path(handle.name).unlink(missing_ok=True)


def _requirement_lines(lines: tuple[str, ...], project_dir: Path) -> list[str]:
    """Requirement lines with file references made absolute and ``flowml`` pinned to the host."""
    resolved: list[str] = []
    for raw in lines:
        line = str(raw).strip()
        option, _, rest = line.partition(" ")
        if option in _FILE_OPTIONS and rest.strip():
            line = f"{option} {(project_dir / rest.strip()).resolve()}"
        elif line.startswith((".", "file:")) and not line.startswith("file://"):
            line = str((project_dir / line.removeprefix("file:")).resolve())
        elif line.lower() == "flowml":
            line = _host_flowml_requirement()
        resolved.append(line)
    return resolved


def _referenced_files(lines: list[str]) -> list[Path]:
    files = []
    for line in lines:
        option, _, rest = line.partition(" ")
        if option in _FILE_OPTIONS and Path(rest.strip()).is_file():
            files.append(Path(rest.strip()))
    return files


def _host_flowml_requirement() -> str:
    """How to install the running flowml: its source directory if it came from one."""
    try:
        distribution = metadata.distribution("flowml")
    except metadata.PackageNotFoundError:
        return "flowml"
    direct = distribution.read_text("direct_url.json")
    if direct:
        info = json.loads(direct)
        url = info.get("url", "")
        if url.startswith("file://"):
            editable = info.get("dir_info", {}).get("editable", False)
            return f"-e {url}" if editable else f"flowml @ {url}"
    return f"flowml=={distribution.version}"


def _find_interpreter(requested: str | None) -> tuple[str, str]:
    """A Python interpreter matching ``requested`` (a version prefix): ``(path, version)``."""
    current = platform.python_version()
    if requested is None or _matches(current, requested):
        return sys.executable, current
    parts = requested.split(".")
    candidate = shutil.which(f"python{parts[0]}.{parts[1]}") if len(parts) >= 2 else None
    if candidate:
        probe = subprocess.run(
            [candidate, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        )
        version = probe.stdout.strip()
        if probe.returncode == 0 and _matches(version, requested):
            return candidate, version
    raise EnvironmentUnavailable(
        f"The project's python_env asks for Python {requested}, but flowml runs on {current} "
        f"and found no python{'.'.join(parts[:2])} on PATH. Install uv (it fetches "
        "interpreters) or that Python, or run with env_manager='local'."
    )


def _matches(version: str, requested: str) -> bool:
    wanted = requested.strip().split(".")
    return version.split(".")[: len(wanted)] == wanted
