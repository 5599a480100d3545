"""The ``docker`` manager: a ``docker_env`` project's command runs in a container of its image.

The project directory is mounted at ``/flowml/project`` (the working directory); the
tracking database's directory (for ``sqlite:`` URIs) and a local artifact root are mounted
at their host paths so the container logs to the same places.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flowml.projects.envs import EnvManager, Launch, LogFn, PreparedEnv
from flowml.projects.errors import EnvironmentUnavailable
from flowml.projects.spec import DockerEnv, Project

__all__ = ["CONTAINER_WORKDIR", "DockerManager", "DockerRun"]

CONTAINER_WORKDIR = "/flowml/project"
# `docker info` answers in well under a second when an engine runs; without one the client
# may wait on the socket, so it gets a bound.
ENGINE_CHECK_TIMEOUT_S = 15.0


class DockerManager(EnvManager):
    """Checks for a Docker engine and runs commands in the project's image."""

    name = "docker"

    def check(self, project: Project) -> None:
        docker = shutil.which("docker")
        if docker is None:
            raise EnvironmentUnavailable(
                f"Project {project.name!r} declares a docker_env, but the docker client is not "
                "installed (no `docker` on PATH)."
            )
        try:
            done = subprocess.run(
                [docker, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=ENGINE_CHECK_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            reason = f"`docker info` did not answer within {ENGINE_CHECK_TIMEOUT_S:g} s"
        else:
            if done.returncode == 0 and done.stdout.strip():
                return
            lines = (done.stderr or done.stdout).strip().splitlines()
            reason = lines[-1] if lines else f"`docker info` exited with {done.returncode}"
        raise EnvironmentUnavailable(
            f"Project {project.name!r} declares a docker_env, but no Docker engine is reachable "
            f"({reason}). Start Docker (or point DOCKER_HOST at an engine) and retry."
        )

    def prepare(self, project: Project, log: LogFn) -> PreparedEnv:
        self.check(project)
        assert project.docker_env is not None  # only chosen for docker_env projects
        log(f"Running in Docker image {project.docker_env.image}")
        return DockerRun(docker=shutil.which("docker") or "docker", spec=project.docker_env)


@dataclass(frozen=True)
class DockerRun(PreparedEnv):
    """``docker run --rm`` of the project's image around the command."""

    docker: str
    spec: DockerEnv
    manager: str = "docker"

    def launch(self, command: str, work_dir: Path, env: Mapping[str, str]) -> Launch:
        argv = [self.docker, "run", "--rm", "--init"]
        argv += ["-v", f"{work_dir}:{CONTAINER_WORKDIR}", "-w", CONTAINER_WORKDIR]
        for host_dir in _host_dirs(env):
            argv += ["-v", f"{host_dir}:{host_dir}"]
        for volume in self.spec.volumes:
            argv += ["-v", volume]
        child_env = dict(env)
        names = [k for k in env if k.startswith("FLOWML_")] + ["PYTHONUNBUFFERED"]
        for item in self.spec.environment:
            if isinstance(item, tuple):
                child_env[item[0]] = item[1]
                names.append(item[0])
            else:
                names.append(item)
        for name in dict.fromkeys(names):
            if name in child_env:
                argv += ["-e", name]  # the value comes from the client's environment
        argv += [self.spec.image, "bash", "-c", command]
        return Launch(argv=argv, env=child_env, cwd=work_dir)


def _host_dirs(env: Mapping[str, str]) -> list[str]:
    dirs = []
    tracking = env.get("FLOWML_TRACKING_URI", "")
    if tracking.startswith("sqlite:///"):
        database = tracking[len("sqlite:///") :].split("?", 1)[0]
        dirs.append(os.path.dirname(os.path.abspath(database)))
    artifacts = env.get("FLOWML_ARTIFACT_ROOT", "")
    if artifacts and "://" not in artifacts:
        dirs.append(artifacts)
    elif artifacts.startswith("file://"):
        dirs.append(artifacts.removeprefix("file://"))
    return [d for d in dict.fromkeys(dirs) if d]
