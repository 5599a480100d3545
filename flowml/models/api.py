"""``save_model``, ``log_model`` and ``load_model``: the public face of flowml models.

A model directory is written to a staging directory next to its target and moved into
place only once complete, so a failed save (a bad option, an unserialisable input
example...) leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flowml.exceptions import InvalidParameter, InvalidState, ResourceAlreadyExists
from flowml.models.environment import pinned_requirements, write_environment
from flowml.models.flavors.base import Flavor
from flowml.models.flavors.registry import flavor_for_model, get_flavor
from flowml.models.input_example import save_input_example
from flowml.models.mlmodel import PYFUNC_FLAVOR, Model, ModelInfo
from flowml.models.pyfunc import PyFuncModel, load_pyfunc
from flowml.models.schema import ModelSignature
from flowml.models.uri import download_to_local

__all__ = ["load_model", "load_native", "log_model", "save_model"]

_log = logging.getLogger(__name__)

LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"
MODELS_TAG = "flowml.models"
CODE_DIR = "code"
_TAG_LIMIT = 8000


def _pick_flavor(model: Any, python_model: Any, flavor: str | None) -> tuple[Any, Flavor]:
    if (model is None) == (python_model is None):
        raise InvalidParameter("Give exactly one of `model` or `python_model`")
    if python_model is not None:
        from flowml.models.flavors.python_model import as_python_model

        return as_python_model(python_model), get_flavor(PYFUNC_FLAVOR)
    if flavor is not None:
        chosen = get_flavor(flavor)
        if not chosen.can_save(model):
            raise InvalidParameter(
                f"The {flavor!r} flavor cannot save a {type(model).__qualname__}"
            )
        return model, chosen
    return model, flavor_for_model(model)


def _copy_code(code_paths: Sequence[str | os.PathLike[str]], target: Path) -> None:
    code_dir = target / CODE_DIR
    code_dir.mkdir()
    for item in code_paths:
        source = Path(item)
        if not source.exists():
            raise InvalidParameter(f"Code path {str(item)!r} does not exist")
        if source.is_dir():
            shutil.copytree(
                source, code_dir / source.name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, code_dir / source.name)


def _infer_signature(
    flavor: Flavor, model: Any, target: Path, mlmodel: Model, example: Any
) -> ModelSignature:
    from flowml.models.signature import infer_schema

    inputs = infer_schema(example)
    outputs = None
    try:
        prediction = flavor.predictor(model, target, mlmodel).predict(example, {})
        outputs = infer_schema(prediction)
    except Exception as exc:  # a model that cannot score its own example keeps no outputs
        _log.info("Not inferring the output schema: predicting the input example failed: %s", exc)
    return ModelSignature(inputs=inputs, outputs=outputs)


def _dir_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _write_model(
    model: Any,
    flavor: Flavor,
    target: Path,
    *,
    signature: ModelSignature | None,
    input_example: Any,
    pip_requirements: Sequence[str] | None,
    extra_pip_requirements: Sequence[str] | None,
    code_paths: Sequence[str | os.PathLike[str]] | None,
    metadata: Mapping[str, Any] | None,
    options: dict[str, Any],
    run_id: str | None = None,
    artifact_path: str | None = None,
) -> Model:
    mlmodel = Model(run_id=run_id, artifact_path=artifact_path)
    if metadata:
        mlmodel.extra["metadata"] = dict(metadata)
    flavor.save(model, target, mlmodel, **options)
    if code_paths:
        _copy_code(code_paths, target)
        for conf in mlmodel.flavors.values():
            if "code" in conf or conf is mlmodel.flavors.get(PYFUNC_FLAVOR):
                conf["code"] = CODE_DIR
    if signature is not None and not isinstance(signature, ModelSignature):
        raise InvalidParameter(
            f"signature must be a ModelSignature (see flowml.infer_signature), "
            f"got {type(signature).__name__}"
        )
    if input_example is not None:
        mlmodel.saved_input_example_info = save_input_example(target, input_example)
        if signature is None:
            signature = _infer_signature(flavor, model, target, mlmodel, input_example)
    mlmodel.signature = signature
    requirements = pinned_requirements(
        flavor.requirements(model, **options), extra_pip_requirements, pip_requirements
    )
    mlmodel.flavors[PYFUNC_FLAVOR]["env"] = write_environment(target, requirements)
    mlmodel.model_size_bytes = _dir_size(target)
    mlmodel.save(target)
    return mlmodel


def save_model(
    model: Any = None,
    path: str | os.PathLike[str] | None = None,
    *,
    python_model: Any = None,
    flavor: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    metadata: Mapping[str, Any] | None = None,
    **flavor_options: Any,
) -> Model:
    """Save a model as an MLmodel directory that flowml and MLflow both load.

    Args:
        model: A library model (e.g. a scikit-learn estimator); its flavor is detected.
        path: A local directory that does not exist yet, or is empty.
        python_model: Instead of `model`: a `PythonModel` or a function
            ``f(model_input) -> predictions``.
        flavor: Force a flavor by name instead of detecting it.
        signature: Inputs/outputs/params (see `flowml.infer_signature`); inferred from
            `input_example` when omitted.
        input_example: An example input, saved as ``input_example.json`` and
            ``serving_input_example.json``.
        pip_requirements: Requirement lines replacing the inferred ones.
        extra_pip_requirements: Requirement lines added to the inferred ones.
        code_paths: Local files or directories copied into ``code/`` and put on
            ``sys.path`` when the model loads.
        metadata: Free-form metadata stored in the MLmodel file.
        **flavor_options: Flavor options, e.g. ``serialization_format`` and
            ``pyfunc_predict_fn`` for scikit-learn, ``artifacts`` and ``model_config`` for
            custom models.

    Returns:
        The MLmodel metadata written.

    Raises:
        ResourceAlreadyExists: `path` exists and is not an empty directory.
        InvalidParameter: no flavor fits the model, or an argument is invalid.

    Example:
        >>> import flowml
        >>> flowml.save_model(python_model=lambda df: df * 2, path="double")  # doctest: +SKIP
        >>> flowml.load_model("double").predict([1, 2])  # doctest: +SKIP
    """
    if path is None:
        raise InvalidParameter("save_model needs a `path`")
    target = Path(path).expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ResourceAlreadyExists(f"Cannot save a model to {target}: it exists and is not empty")
    native, chosen = _pick_flavor(model, python_model, flavor)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    try:
        mlmodel = _write_model(
            native,
            chosen,
            staging,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            code_paths=code_paths,
            metadata=metadata,
            options=flavor_options,
        )
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return mlmodel


def _registry_register() -> Callable[..., Any]:
    import importlib

    try:
        client_class = importlib.import_module("flowml.registry").RegistryClient
    except (ImportError, AttributeError):
        raise InvalidState(
            "registered_model_name needs the model registry (flowml.registry.RegistryClient), "
            "which this installation does not provide"
        ) from None
    return client_class().register_model


def _run_for_logging(run_id: str | None) -> tuple[str, Any]:
    from flowml.tracking import fluent

    if run_id is not None:
        client = fluent.get_client()
        client.get_run(run_id)  # fails early, before anything is written, when it is unknown
        return run_id, client
    # The fluent API's rule: log to the active run, starting one when there is none.
    return fluent.run_for_logging()


def _append_tag(client: Any, run_id: str, key: str, entry: dict[str, Any]) -> None:
    existing = client.get_run(run_id).data.tags.get(key)
    try:
        entries = json.loads(existing) if existing else []
    except json.JSONDecodeError:
        entries = []
    if not isinstance(entries, list):
        entries = []
    entries.append(entry)
    value = json.dumps(entries)
    while len(value) > _TAG_LIMIT and len(entries) > 1:
        entries.pop(0)  # the tag keeps the most recent models that fit MLflow's size limit
        value = json.dumps(entries)
    client.set_tag(run_id, key, value)


def _record_lineage(client: Any, run_id: str, model_uri: str, name: str) -> None:
    # The run's lineage names the model it produced (beside the MLflow-style tags).
    from flowml.tracking.inputs import record_output
    from flowml.tracking.lineage import KIND_MODEL

    record_output(run_id, KIND_MODEL, model_uri, name=name, client=client)


def log_model(
    model: Any = None,
    name: str = "model",
    *,
    python_model: Any = None,
    flavor: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    run_id: str | None = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    metadata: Mapping[str, Any] | None = None,
    **flavor_options: Any,
) -> ModelInfo:
    """Save a model into a run's artifacts under `name` and record it on the run.

    The run gets MLflow's ``mlflow.log-model.history`` tag, flowml's ``flowml.models`` tag
    (JSON lists, one entry per logged model) and a ``model`` output in its lineage.

    Args:
        model: The model (see `save_model`).
        name: The artifact path inside the run (``"model"``).
        python_model: Instead of `model`, a custom `PythonModel` or function.
        flavor: Force a flavor by name.
        signature: Inputs/outputs/params; inferred from `input_example` when omitted.
        input_example: An example input saved with the model.
        registered_model_name: Also register the model under this name (needs the
            registry); the version is in the returned info.
        run_id: Log to this run instead of the active one (one is started when there is
            no active run, as for every fluent logging call).
        pip_requirements: See `save_model`.
        extra_pip_requirements: See `save_model`.
        code_paths: See `save_model`.
        metadata: See `save_model`.
        **flavor_options: See `save_model`.

    Returns:
        A `ModelInfo` whose ``model_uri`` is ``runs:/<run_id>/<name>``.

    Raises:
        InvalidParameter: bad arguments (nothing is logged).
        ResourceNotFound: `run_id` does not exist.
        InvalidState: `registered_model_name` without a registry.

    Example:
        >>> info = flowml.log_model(clf, "model", input_example=X.head())  # doctest: +SKIP
        >>> flowml.load_model(info.model_uri).predict(X)  # doctest: +SKIP
    """
    from flowml.tracking.artifacts import safe_artifact_path

    artifact_path = safe_artifact_path(name)
    if not artifact_path:
        raise InvalidParameter("log_model needs a non-empty `name`")
    register = _registry_register() if registered_model_name else None
    native, chosen = _pick_flavor(model, python_model, flavor)
    run_id, client = _run_for_logging(run_id)
    with tempfile.TemporaryDirectory(prefix="flowml-model-") as tmp:
        local = Path(tmp) / "model"
        local.mkdir()
        mlmodel = _write_model(
            native,
            chosen,
            local,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            code_paths=code_paths,
            metadata=metadata,
            options=flavor_options,
            run_id=run_id,
            artifact_path=artifact_path,
        )
        client.log_artifacts(run_id, str(local), artifact_path=artifact_path)
    model_uri = f"runs:/{run_id}/{artifact_path}"
    history = {
        "run_id": run_id,
        "artifact_path": artifact_path,
        "utc_time_created": mlmodel.utc_time_created,
        "model_uuid": mlmodel.model_uuid,
        "flavors": {
            k: {ck: cv for ck, cv in conf.items() if ck != "config"}
            for k, conf in mlmodel.flavors.items()
        },
    }
    _append_tag(client, run_id, LOG_MODEL_HISTORY_TAG, history)
    summary = {
        "name": artifact_path,
        "model_uri": model_uri,
        "model_uuid": mlmodel.model_uuid,
        "flavors": sorted(mlmodel.flavors),
    }
    _append_tag(client, run_id, MODELS_TAG, summary)
    _record_lineage(client, run_id, model_uri, artifact_path)
    version = None
    if register is not None:
        registered = register(model_uri, registered_model_name)
        version = getattr(registered, "version", None)
    return ModelInfo(
        name=artifact_path,
        model_uri=model_uri,
        run_id=run_id,
        flavors=mlmodel.flavors,
        signature=mlmodel.signature,
        model_uuid=mlmodel.model_uuid,
        utc_time_created=mlmodel.utc_time_created,
        artifact_uri=client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + artifact_path,
        registered_model_version=int(version) if version is not None else None,
        metadata=dict(metadata or {}),
    )


def load_model(model_uri: str, dst_path: str | None = None) -> PyFuncModel:
    """Load any flowml or MLflow model as a `PyFuncModel`.

    Loading a model runs pickle, which can execute any code the model's author put in
    it (and puts the model's ``code`` directory first on ``sys.path``): load only models
    you trust, as with MLflow. The URI and every file the MLmodel names are confined to
    the run's (or model's) artifacts, but a trusted location does not make the pickle
    inside it safe.

    Args:
        model_uri: A local path, any fsspec URL, ``runs:/<run_id>/<path>`` or (with the
            registry) ``models:/<name>/<version|stage>`` / ``models:/<name>@<alias>``.
        dst_path: Where to download a remote model (a temporary directory by default).

    Returns:
        The model; call ``.predict(data, params=None)``.

    Raises:
        ResourceNotFound: nothing at the URI, no MLmodel file, or no flavor that loads it.
        InvalidParameter: a malformed URI or MLmodel file; a ``runs:/`` or ``models:/``
            URI, or an MLmodel entry (``data``, ``pickled_model``, ``python_model``,
            ``code``, ``artifacts``), that points outside the run's or the model's files.
            These are checked before any file is read.

    Example:
        >>> model = flowml.load_model("runs:/0123abcd/model")  # doctest: +SKIP
        >>> model.predict(df)  # doctest: +SKIP
    """
    return load_pyfunc(download_to_local(model_uri, dst_path))


def load_native(model_uri: str, flavor_name: str, dst_path: str | None = None) -> Any:
    """The native object of flavor `flavor_name` saved at `model_uri`.

    Loading a model runs pickle, which can execute any code: load only models you trust.

    Raises:
        ResourceNotFound: the model has no such flavor, or nothing is at the URI.
        InvalidParameter: the URI or an MLmodel entry points outside the run's or the
            model's files (checked before anything is read).
    """
    local = Path(download_to_local(model_uri, dst_path))
    mlmodel = Model.load(local)
    mlmodel.check_paths(local)
    mlmodel.flavor(flavor_name)
    return get_flavor(flavor_name).load(local, mlmodel)
