"""The environment files of a model: requirements.txt, python_env.yaml and conda.yaml.

Requirements pin the exact installed version of every distribution a flavor needs, so
``pip install -r requirements.txt`` rebuilds the environment the model was saved in. The
two YAML files are laid out as MLflow writes them, so ``mlflow models serve`` with the
``virtualenv`` or ``conda`` environment manager can rebuild it too.

That server runs ``uvicorn mlflow.pyfunc.scoring_server.app:app`` *inside* the rebuilt
environment, which it builds from ``python_env.yaml`` and ``requirements.txt`` alone
(``--install-mlflow`` is off by default), so MLflow itself must be listed: MLflow writes
``mlflow==<its version>`` first in every model it saves. flowml does the same with
`MLFLOW_SERVING_REQUIREMENT` (the installed MLflow's exact version when there is one, else
the MLflow 3 releases from the one flowml is tested against). flowml itself is not listed:
its models load in MLflow without it. ``pip_requirements=`` replaces the whole list, this
line included.
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from flowml.exceptions import InvalidParameter

__all__ = [
    "CONDA_ENV_FILE",
    "MLFLOW_SERVING_REQUIREMENT",
    "PYTHON_ENV_FILE",
    "REQUIREMENTS_FILE",
    "mlflow_requirement",
    "pinned_requirements",
    "read_requirements",
    "write_environment",
]

REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_ENV_FILE = "conda.yaml"
CONDA_ENV_NAME = "flowml-env"

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# The MLflow that serves flowml's models when MLflow is not installed here: the MLflow 3
# release flowml's interoperability tests run against, or any later MLflow 3.
MLFLOW_SERVING_REQUIREMENT = "mlflow>=3.17,<4"
_MLFLOW_DISTRIBUTIONS = {"mlflow", "mlflow-skinny"}


def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_requirements(
    distributions: Iterable[str],
    extra: Sequence[str] | None = None,
    override: Sequence[str] | None = None,
) -> list[str]:
    """``name==version`` lines for the installed `distributions`, plus `extra` lines.

    Args:
        distributions: Distribution names the flavor needs (e.g. ``scikit-learn``);
            missing ones are skipped.
        extra: Requirement lines appended as given (``extra_pip_requirements``); a line
            naming a distribution already pinned replaces the pin.
        override: When given, used instead of everything else (``pip_requirements``).

    Returns:
        The requirement lines, without duplicates, in a stable order.

    Raises:
        InvalidParameter: a line is not a requirement.
    """
    if override is not None:
        return _validated(override)
    lines: dict[str, str] = {}
    for dist in distributions:
        version = installed_version(dist)
        if version is not None:
            lines[_canonical(dist)] = f"{dist}=={version}"
    for line in _validated(extra or ()):
        if line.startswith(("-r", "-c", "--")):
            lines[line] = line
        else:
            lines[_canonical(_requirement_name(line))] = line
    if not _MLFLOW_DISTRIBUTIONS & set(lines):
        return [mlflow_requirement(), *lines.values()]
    return list(lines.values())


def mlflow_requirement() -> str:
    """The requirement line that lets MLflow's own scoring server run the model."""
    version = installed_version("mlflow")
    return f"mlflow=={version}" if version else MLFLOW_SERVING_REQUIREMENT


def _requirement_name(line: str) -> str:
    match = _NAME.match(line)
    if match is None:
        raise InvalidParameter(f"Not a pip requirement: {line!r}")
    return match.group(1)


def _validated(lines: Sequence[str]) -> list[str]:
    if isinstance(lines, str):
        raise InvalidParameter("Requirements must be a list of lines, not one string")
    out = []
    for line in lines:
        text = str(line).strip()
        if not text.startswith(("-r", "-c", "--")):
            _requirement_name(text)
        out.append(text)
    return out


def _python_env(python_version: str) -> dict[str, object]:
    build = [
        f"{name}=={version}" if (version := installed_version(name)) else name
        for name in ("pip", "setuptools")
    ]
    return {
        "python": python_version,
        "build_dependencies": [*build, "wheel"],
        "dependencies": [f"-r {REQUIREMENTS_FILE}"],
    }


def _conda_env(python_version: str, requirements: Sequence[str]) -> dict[str, object]:
    pip = installed_version("pip")
    return {
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={python_version}",
            f"pip<={pip}" if pip else "pip",
            {"pip": list(requirements)},
        ],
        "name": CONDA_ENV_NAME,
    }


def write_environment(path: str | Path, requirements: Sequence[str]) -> dict[str, str]:
    """Write requirements.txt, python_env.yaml and conda.yaml into model directory `path`.

    Returns:
        The ``env`` block of the ``python_function`` flavor, naming both YAML files.
    """
    root = Path(path)
    python_version = platform.python_version()
    body = "\n".join(requirements)
    (root / REQUIREMENTS_FILE).write_text(body + "\n" if body else "", encoding="utf-8")
    (root / PYTHON_ENV_FILE).write_text(
        yaml.safe_dump(_python_env(python_version), sort_keys=False), encoding="utf-8"
    )
    (root / CONDA_ENV_FILE).write_text(
        yaml.safe_dump(_conda_env(python_version, requirements), sort_keys=False),
        encoding="utf-8",
    )
    return {"conda": CONDA_ENV_FILE, "virtualenv": PYTHON_ENV_FILE}


def read_requirements(path: str | Path) -> list[str]:
    """The requirement lines of the model at `path` (empty when it has no requirements.txt)."""
    target = Path(path) / REQUIREMENTS_FILE
    if not target.is_file():
        return []
    lines = target.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
