"""Environment managers: where an entry point's command runs.

- ``local``: projects without an environment, or on request; ``python`` is the interpreter
  running flowml.
- ``virtualenv``: ``python_env`` projects; a venv built from ``python_env.yaml``, cached by
  content hash.
- ``conda``: ``conda_env`` projects; a conda env built from ``conda.yaml``, cached the same way.
- ``docker``: ``docker_env`` projects (always, as MLflow); a container of the project's image.

A manager's `EnvManager.check` is cheap and runs before any tracked run is created, so a
missing tool fails fast; `EnvManager.prepare` may build (or reuse) the environment.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from flowml.exceptions import InvalidParameter
from flowml.projects.errors import ExecutionError
from flowml.projects.process import Launch, run_streaming
from flowml.projects.spec import Project

__all__ = [
    "ENV_MANAGERS",
    "EnvManager",
    "Launch",
    "LocalManager",
    "PreparedEnv",
    "ShellEnv",
    "build_once",
    "content_hash",
    "get_env_manager",
    "run_tool",
]

ENV_MANAGERS: tuple[str, ...] = ("conda", "local", "virtualenv")
# Directory-name length of a cached environment: short enough to keep shebang lines of
# console scripts well under the kernel's limit, long enough never to collide.
HASH_LENGTH = 20
READY_MARKER = ".flowml-ready"

LogFn = Callable[[str], None]


class PreparedEnv(ABC):
    """A prepared environment that turns a shell command into a `Launch`."""

    #: The ``mlflow.project.env`` tag value.
    manager: str

    @abstractmethod
    def launch(self, command: str, work_dir: Path, env: Mapping[str, str]) -> Launch:
        """Wrap ``command`` to run in this environment.

        Args:
            command: The shell command (already quoted).
            work_dir: The project directory, the command's working directory.
            env: The full environment for the command (flowml's variables included).

        Returns:
            What to start.
        """


@dataclass(frozen=True)
class ShellEnv(PreparedEnv):
    """A shell on the host, with ``bin_dirs`` first on ``PATH`` and ``set_env`` applied.

    Attributes:
        manager: The ``mlflow.project.env`` tag value.
        bin_dirs: Directories put in front of ``PATH``.
        set_env: Variables set for the command.
        unset_env: Variables removed (e.g. ``PYTHONHOME``, which would escape a venv).
        location: The environment's directory, for venv/conda ones.
        created: Whether `prepare` built it now (``False``: reused from the cache).
    """

    manager: str
    bin_dirs: tuple[str, ...] = ()
    set_env: Mapping[str, str] = field(default_factory=dict)
    unset_env: tuple[str, ...] = ()
    location: Path | None = None
    created: bool = False

    def launch(self, command: str, work_dir: Path, env: Mapping[str, str]) -> Launch:
        merged = {k: v for k, v in env.items() if k not in self.unset_env}
        merged.update(self.set_env)
        path = merged.get("PATH", os.defpath)
        merged["PATH"] = os.pathsep.join([*self.bin_dirs, path])
        shell = shutil.which("bash", path=merged["PATH"]) or "/bin/sh"
        return Launch(argv=[shell, "-c", command], env=merged, cwd=work_dir)


class EnvManager(ABC):
    """Builds the environment a project's commands run in."""

    name: ClassVar[str]

    @abstractmethod
    def check(self, project: Project) -> None:
        """Fail fast when this manager cannot work here (a missing tool).

        Raises:
            EnvironmentUnavailable: The tool the manager needs is missing.
        """

    @abstractmethod
    def prepare(self, project: Project, log: LogFn) -> PreparedEnv:
        """Build, or reuse, the environment for ``project``.

        Args:
            project: The loaded project.
            log: Receives progress lines (shown in the Prefect run logs).

        Returns:
            The prepared environment.

        Raises:
            EnvironmentUnavailable: The tool the manager needs is missing.
            ExecutionError: Building the environment failed.
        """


class LocalManager(EnvManager):
    """Runs commands where flowml runs: ``python`` is the current interpreter."""

    name = "local"

    def check(self, project: Project) -> None:
        return None

    def prepare(self, project: Project, log: LogFn) -> PreparedEnv:
        return ShellEnv(manager=self.name, bin_dirs=(str(Path(sys.executable).parent),))


def get_env_manager(requested: str | None, project: Project, envs_root: Path) -> EnvManager:
    """Choose the manager for ``project``.

    Without a request: ``python_env`` -> virtualenv, ``conda_env`` -> conda, otherwise
    local. A ``docker_env`` project always runs in Docker, as in MLflow.

    Args:
        requested: ``"local"``, ``"virtualenv"``, ``"conda"`` or ``None``.
        project: The loaded project.
        envs_root: Where cached environments live (``$FLOWML_HOME/envs``).

    Returns:
        The manager.

    Raises:
        InvalidParameter: An unknown manager, or conda for a ``python_env`` project.
    """
    if requested is not None and requested not in ENV_MANAGERS:
        raise InvalidParameter(
            f"Unknown env_manager {requested!r}; accepted: {', '.join(ENV_MANAGERS)}."
        )
    if project.env_type == "docker_env":
        from flowml.projects.docker import DockerManager

        return DockerManager()
    if requested is None:
        requested = {"python_env": "virtualenv", "conda_env": "conda"}.get(
            project.env_type, "local"
        )
    if requested == "conda" and project.env_type == "python_env":
        raise InvalidParameter(
            f"Project {project.name!r} declares a python_env, which conda cannot build; "
            "use env_manager 'virtualenv' or 'local'."
        )
    if requested == "virtualenv":
        from flowml.projects.venv import VirtualenvManager

        return VirtualenvManager(envs_root)
    if requested == "conda":
        from flowml.projects.conda import CondaManager

        return CondaManager(envs_root)
    return LocalManager()


def content_hash(document: object, files: Iterable[Path] = ()) -> str:
    """A short, stable hash of a JSON-able ``document`` and the bytes of ``files``.

    Args:
        document: What defines the environment (versions, requirement lines...).
        files: Files whose content also defines it (requirements files, conda.yaml).

    Returns:
        ``HASH_LENGTH`` hex characters.
    """
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode())
    for path in files:
        digest.update(b"\0" + path.read_bytes())
    return digest.hexdigest()[:HASH_LENGTH]


def build_once(env_dir: Path, build: Callable[[Path], None], log: LogFn) -> bool:
    """Build ``env_dir`` with ``build`` unless a complete build is already there.

    Builders of the same environment (two runs at once, in any process) serialise on a lock
    file beside it; a build cut short leaves no ready marker and is redone from scratch.

    Args:
        env_dir: The cached environment's directory.
        build: Creates the environment in the (absent) directory it is given.
        log: Receives progress lines.

    Returns:
        ``True`` if it was built now, ``False`` if reused.
    """
    import fcntl  # POSIX: project environments are built on Linux/macOS workers

    env_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(env_dir.parent / f"{env_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (env_dir / READY_MARKER).is_file():
                log(f"Reusing environment {env_dir}")
                return False
            if env_dir.exists():
                log(f"Removing the incomplete environment {env_dir}")
                shutil.rmtree(env_dir)
            log(f"Creating environment {env_dir}")
            try:
                build(env_dir)
            except BaseException:
                shutil.rmtree(env_dir, ignore_errors=True)
                raise
            (env_dir / READY_MARKER).write_text("ok\n")
            return True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_tool(argv: list[str], what: str, log: LogFn, cwd: Path | None = None) -> None:
    """Run a build tool (pip, uv, conda), streaming its output to ``log``.

    Args:
        argv: The command.
        what: A few words naming the step, for messages.
        log: Receives the tool's output lines as they come.
        cwd: Working directory.

    Raises:
        ExecutionError: The tool exited non-zero (the message ends with its last lines).
    """
    log(f"{what}: {' '.join(argv)}")
    tail: collections.deque[str] = collections.deque(maxlen=10)

    def on_line(line: str) -> None:
        tail.append(line)
        log(line)

    launch = Launch(argv=argv, env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=cwd or Path.cwd())
    code = run_streaming(launch, on_line)
    if code != 0:
        detail = "\n".join(tail)
        raise ExecutionError(f"{what} failed (exit code {code}):\n{detail}")
