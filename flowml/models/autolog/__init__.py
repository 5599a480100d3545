"""Autologging: library training calls record themselves into flowml runs.

``flowml.autolog()`` enables every integration whose library is installed (today:
scikit-learn, `flowml.models.autolog.sklearn`); ``flowml.autolog(disable=True)`` restores
every method any integration patched. Runs are found through the tracking layer's run
stack, so inside a ``flowml.tracked_task`` the task's own run receives what ``fit`` logs;
nothing here imports Prefect.

Example:
    >>> import flowml
    >>> flowml.autolog()
    >>> RandomForestClassifier().fit(X, y)
    >>> flowml.autolog(disable=True)
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence

__all__ = ["autolog"]

# integration name -> (the library it patches, flowml's module for it)
INTEGRATIONS: dict[str, tuple[str, str]] = {
    "sklearn": ("sklearn", "flowml.models.autolog.sklearn"),
}


def autolog(
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    log_traces: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: dict[str, str] | None = None,
    exclude_flavors: Sequence[str] | None = None,
) -> None:
    """Enable (or disable) autologging for every installed library flowml integrates.

    Args:
        log_input_examples: save the first training rows with each model (MLflow: False).
        log_model_signatures: infer each model's signature.
        log_models: log fitted models.
        log_datasets: record training data as run inputs.
        log_traces: accepted for MLflow's signature (no integration here traces).
        disable: restore every patched method of every integration.
        exclusive: never log into runs the user started.
        disable_for_unsupported_versions: accepted for MLflow's signature.
        silent: do not report autologging's own problems.
        extra_tags: tags added to every autologged run.
        exclude_flavors: integrations to leave alone (``["sklearn"]``).

    Raises:
        InvalidParameter: an unknown name in ``exclude_flavors``.

    Example:
        >>> from sklearn.linear_model import LinearRegression
        >>> flowml.autolog(log_models=False, exclude_flavors=[])
        >>> with flowml.start_run() as run:
        ...     _ = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
        >>> "training_score" in flowml.get_run(run.info.run_id).data.metrics
        True
        >>> flowml.autolog(disable=True)
    """
    del log_traces
    excluded = set(exclude_flavors or ())
    unknown = excluded - set(INTEGRATIONS)
    if unknown:
        from flowml.exceptions import InvalidParameter

        raise InvalidParameter(
            f"Unknown autolog flavor(s) {sorted(unknown)}; known: {sorted(INTEGRATIONS)}"
        )
    for name, (library, module_name) in INTEGRATIONS.items():
        if name in excluded:
            continue
        if disable:
            importlib.import_module(module_name).autolog(disable=True)
            continue
        if importlib.util.find_spec(library) is None:
            continue  # not installed: nothing to patch
        importlib.import_module(module_name).autolog(
            log_input_examples=log_input_examples,
            log_model_signatures=log_model_signatures,
            log_models=log_models,
            log_datasets=log_datasets,
            exclusive=exclusive,
            disable_for_unsupported_versions=disable_for_unsupported_versions,
            silent=silent,
            extra_tags=extra_tags,
        )
