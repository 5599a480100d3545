"""The ``conda`` manager: a conda environment built from ``conda.yaml``, cached by content hash.

Environments live in ``$FLOWML_HOME/envs/conda-<hash>`` (created with ``--prefix``, so they
never clash with the user's named environments).
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

import yaml

from flowml.projects.envs import EnvManager, LogFn, ShellEnv, build_once, content_hash, run_tool
from flowml.projects.errors import EnvironmentUnavailable, ProjectSpecError
from flowml.projects.spec import Project
from flowml.projects.venv import PythonEnv

__all__ = ["CondaManager", "find_conda", "python_env_from_conda"]


def find_conda() -> str | None:
    """The conda executable: ``$CONDA_EXE`` (set by conda's shell hook), else ``conda`` on PATH."""
    from_env = os.environ.get("CONDA_EXE")
    if from_env and Path(from_env).is_file():
        return from_env
    return shutil.which("conda")


class CondaManager(EnvManager):
    """Builds and caches conda environments under ``envs_root``."""

    name = "conda"

    def __init__(self, envs_root: Path) -> None:
        self.envs_root = Path(envs_root)

    def check(self, project: Project) -> None:
        if find_conda() is None:
            raise EnvironmentUnavailable(
                f"Project {project.name!r} needs conda (env_manager='conda'), but no conda "
                "executable was found ($CONDA_EXE or conda on PATH). Install Miniforge or "
                "Miniconda, or run with env_manager='virtualenv' or 'local'."
            )

    def prepare(self, project: Project, log: LogFn) -> ShellEnv:
        self.check(project)
        conda = find_conda()
        assert conda is not None  # check() raised otherwise
        env_file = project.env_file if project.env_type == "conda_env" else None
        if env_file is not None:
            prefix = self.envs_root / f"conda-{content_hash({'kind': 'conda'}, [env_file])}"
        else:
            python = ".".join(platform.python_version_tuple()[:2])
            prefix = self.envs_root / f"conda-{content_hash({'kind': 'conda', 'python': python})}"

        def build(target: Path) -> None:
            if env_file is not None:
                argv = [conda, "env", "create", "--quiet", "--prefix", str(target)]
                run_tool([*argv, "--file", str(env_file)], "conda env create", log)
            else:
                argv = [conda, "create", "--quiet", "--yes", "--prefix", str(target)]
                run_tool([*argv, f"python={python}"], "conda create", log)

        created = build_once(prefix, build, log)
        return ShellEnv(
            manager=self.name,
            bin_dirs=(str(prefix / "bin"),),
            set_env={"CONDA_PREFIX": str(prefix)},
            unset_env=("PYTHONHOME", "VIRTUAL_ENV"),
            location=prefix,
            created=created,
        )


def python_env_from_conda(path: Path) -> PythonEnv:
    """Translate a ``conda.yaml`` for the virtualenv manager: its Python and pip packages.

    Args:
        path: The conda environment file.

    Returns:
        The Python version pinned by a ``python=X.Y`` dependency and the ``pip:`` list.

    Raises:
        ProjectSpecError: The file is not a conda environment mapping.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ProjectSpecError(f"{path.name} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("dependencies", []), list):
        raise ProjectSpecError(f"{path.name} must be a mapping with a 'dependencies' list.")
    python: str | None = None
    pip: list[str] = []
    for item in document.get("dependencies", []):
        if isinstance(item, str) and item.replace(" ", "").startswith("python="):
            python = item.split("=", 1)[1].strip().lstrip("=").rstrip(".*") or None
        elif isinstance(item, dict) and isinstance(item.get("pip"), list):
            pip.extend(str(requirement) for requirement in item["pip"])
    return PythonEnv(python=python, dependencies=tuple(pip))
