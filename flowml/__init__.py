"""flowml: the machine-learning lifecycle, native to Prefect 3.

Tracking, projects, packaged models and a model registry with MLflow's verbs,
URIs and file formats. Everything here is imported lazily: ``import flowml``
loads neither Prefect, SQLAlchemy nor pandas until a name that needs them is used.

Example:
    >>> import flowml
    >>> with flowml.start_run(run_name="baseline"):
    ...     flowml.log_param("lr", 0.01)
    ...     flowml.log_metric("acc", 0.93)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowml._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # tracking: client and entities
    "TrackingClient": "flowml.tracking.client",
    "Experiment": "flowml.tracking.entities",
    "Metric": "flowml.tracking.entities",
    "Param": "flowml.tracking.entities",
    "Run": "flowml.tracking.entities",
    "RunStatus": "flowml.tracking.entities",
    "RunTag": "flowml.tracking.entities",
    "ViewType": "flowml.tracking.entities",
    # tracking: fluent API
    "ActiveRun": "flowml.tracking.fluent",
    "active_run": "flowml.tracking.fluent",
    "delete_run": "flowml.tracking.fluent",
    "end_run": "flowml.tracking.fluent",
    "last_active_run": "flowml.tracking.fluent",
    "log_figure": "flowml.tracking.fluent_artifacts",
    "log_image": "flowml.tracking.fluent_artifacts",
    "log_table": "flowml.tracking.fluent_artifacts",
    "flush": "flowml.tracking.fluent",
    "get_artifact_uri": "flowml.tracking.fluent_artifacts",
    "get_metric_history": "flowml.tracking.fluent",
    "get_run": "flowml.tracking.fluent",
    "get_tracking_uri": "flowml.tracking.fluent",
    "log_artifact": "flowml.tracking.fluent_artifacts",
    "log_artifacts": "flowml.tracking.fluent_artifacts",
    "log_dict": "flowml.tracking.fluent_artifacts",
    "log_metric": "flowml.tracking.fluent",
    "log_metrics": "flowml.tracking.fluent",
    "log_param": "flowml.tracking.fluent",
    "log_params": "flowml.tracking.fluent",
    "log_text": "flowml.tracking.fluent_artifacts",
    "restore_run": "flowml.tracking.fluent",
    "search_experiments": "flowml.tracking.fluent",
    "search_runs": "flowml.tracking.fluent",
    "set_experiment": "flowml.tracking.fluent",
    "set_tag": "flowml.tracking.fluent",
    "set_tags": "flowml.tracking.fluent",
    "set_tracking_uri": "flowml.tracking.fluent",
    "start_run": "flowml.tracking.fluent",
    "create_experiment": "flowml.tracking.fluent_experiments",
    "delete_experiment": "flowml.tracking.fluent_experiments",
    "get_experiment": "flowml.tracking.fluent_experiments",
    "get_experiment_by_name": "flowml.tracking.fluent_experiments",
    "set_experiment_tag": "flowml.tracking.fluent_experiments",
    "set_experiment_tags": "flowml.tracking.fluent_experiments",
    # lineage
    "lineage": "flowml.tracking.lineage.graph",
    "log_input": "flowml.tracking.lineage.inputs",
    # Prefect integration (imports Prefect on first use)
    "progress": "flowml.tasks.progress",
    "tracked_flow": "flowml.tasks.decorators",
    "tracked_task": "flowml.tasks.decorators",
    # models
    "autolog": "flowml.models.autolog",
    "ModelInfo": "flowml.models.mlmodel",
    "ModelSignature": "flowml.models.schema",
    "PyFuncModel": "flowml.models.pyfunc",
    "PythonModel": "flowml.models.python_model",
    "PythonModelContext": "flowml.models.python_model",
    "infer_signature": "flowml.models.signature",
    "load_model": "flowml.models.api",
    "log_model": "flowml.models.api",
    "save_model": "flowml.models.api",
    # tracing (OpenTelemetry loads on first use)
    "AssessmentSource": "flowml.tracing.entities",
    "SpanType": "flowml.tracing.entities",
    "Trace": "flowml.tracing.entities",
    "delete_trace_tag": "flowml.tracing.fluent",
    "get_current_active_span": "flowml.tracing.fluent",
    "get_last_active_trace_id": "flowml.tracing.fluent",
    "get_trace": "flowml.tracing.fluent",
    "log_expectation": "flowml.tracing.assessments",
    "log_feedback": "flowml.tracing.assessments",
    "search_traces": "flowml.tracing.fluent",
    "set_trace_tag": "flowml.tracing.fluent",
    "start_span": "flowml.tracing.fluent",
    "trace": "flowml.tracing.fluent",
    "update_current_trace": "flowml.tracing.fluent",
    # evaluation
    "EvaluationResult": "flowml.evaluation.result",
    "MetricThreshold": "flowml.evaluation.thresholds",
    "ModelValidationFailed": "flowml.evaluation.thresholds",
    "evaluate": "flowml.evaluation.evaluate",
    # registry
    "RegistryClient": "flowml.registry.client",
    "get_registry_uri": "flowml.registry.fluent",
    "register_model": "flowml.registry.fluent",
    "search_model_versions": "flowml.registry.fluent",
    "search_registered_models": "flowml.registry.fluent",
    "set_registry_uri": "flowml.registry.fluent",
}

# submodules reachable as attributes (flowml.exceptions, flowml.testing, ...)
_SUBMODULES = {
    "exceptions",
    "settings",
    "data",
    "tracking",
    "models",
    "registry",
    "tracing",
    "projects",
    "tasks",
    "evaluation",
    "genai",
    "testing",
}
# flavor modules reachable as flowml.<flavor> (flowml.sklearn.load_model gives the estimator)
_FLAVOR_MODULES = {
    "sklearn": "flowml.models.flavors.sklearn",
    "pyfunc": "flowml.models.pyfunc",
    "openai": "flowml.tracing.autolog.openai",  # flowml.openai.autolog()
}

# The public names, written out so that linters and type checkers see them (a test checks
# that the list matches _LAZY).
__all__ = [
    "ActiveRun",
    "AssessmentSource",
    "EvaluationResult",
    "Experiment",
    "Metric",
    "MetricThreshold",
    "ModelInfo",
    "ModelSignature",
    "ModelValidationFailed",
    "Param",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "RegistryClient",
    "Run",
    "RunStatus",
    "RunTag",
    "SpanType",
    "Trace",
    "TrackingClient",
    "ViewType",
    "__version__",
    "active_run",
    "autolog",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_trace_tag",
    "end_run",
    "evaluate",
    "flush",
    "get_artifact_uri",
    "get_current_active_span",
    "get_experiment",
    "get_experiment_by_name",
    "get_last_active_trace_id",
    "get_metric_history",
    "get_registry_uri",
    "get_run",
    "get_trace",
    "get_tracking_uri",
    "infer_signature",
    "last_active_run",
    "lineage",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_expectation",
    "log_feedback",
    "log_figure",
    "log_image",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "progress",
    "register_model",
    "restore_run",
    "save_model",
    "search_experiments",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "search_traces",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_registry_uri",
    "set_tag",
    "set_tags",
    "set_trace_tag",
    "set_tracking_uri",
    "start_run",
    "start_span",
    "trace",
    "tracked_flow",
    "tracked_task",
    "update_current_trace",
]

__getattr__, __dir__ = lazy_exports(
    __name__, _LAZY, globals(), {**{n: f"flowml.{n}" for n in _SUBMODULES}, **_FLAVOR_MODULES}
)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from flowml.evaluation.evaluate import evaluate
    from flowml.evaluation.result import EvaluationResult
    from flowml.evaluation.thresholds import MetricThreshold, ModelValidationFailed
    from flowml.models.api import load_model, log_model, save_model
    from flowml.models.autolog import autolog
    from flowml.models.mlmodel import ModelInfo
    from flowml.models.pyfunc import PyFuncModel
    from flowml.models.python_model import PythonModel, PythonModelContext
    from flowml.models.schema import ModelSignature
    from flowml.models.signature import infer_signature
    from flowml.registry.client import RegistryClient
    from flowml.registry.fluent import (
        get_registry_uri,
        register_model,
        search_model_versions,
        search_registered_models,
        set_registry_uri,
    )
    from flowml.tasks.decorators import tracked_flow, tracked_task
    from flowml.tasks.progress import progress
    from flowml.tracing.assessments import log_expectation, log_feedback
    from flowml.tracing.entities import AssessmentSource, SpanType, Trace
    from flowml.tracing.fluent import (
        delete_trace_tag,
        get_current_active_span,
        get_last_active_trace_id,
        get_trace,
        search_traces,
        set_trace_tag,
        start_span,
        trace,
        update_current_trace,
    )
    from flowml.tracking.client import TrackingClient
    from flowml.tracking.entities import Experiment, Metric, Param, Run, RunStatus, RunTag, ViewType
    from flowml.tracking.fluent import (
        ActiveRun,
        active_run,
        delete_run,
        end_run,
        flush,
        get_metric_history,
        get_run,
        get_tracking_uri,
        last_active_run,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        restore_run,
        search_experiments,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )
    from flowml.tracking.fluent_artifacts import (
        get_artifact_uri,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_image,
        log_table,
        log_text,
    )
    from flowml.tracking.fluent_experiments import (
        create_experiment,
        delete_experiment,
        get_experiment,
        get_experiment_by_name,
        set_experiment_tag,
        set_experiment_tags,
    )
    from flowml.tracking.lineage.graph import lineage
    from flowml.tracking.lineage.inputs import log_input
