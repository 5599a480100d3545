"""The model registry: registered models, versions, aliases, stages and an audit trail.

Metadata only (the files stay where the run logged them), in the tracking database.
Names load on first use, so ``import flowml.registry`` stays cheap.

Example:
    >>> from flowml.registry import RegistryClient
    >>> client = RegistryClient()
    >>> mv = client.register_model(f"runs:/{run_id}/model", "churn")
    >>> client.set_registered_model_alias("churn", "champion", mv.version)
"""

from __future__ import annotations

from flowml._lazy import lazy_exports

__all__ = [
    "AuditAction",
    "AuditEntry",
    "Gate",
    "GateContext",
    "GateResult",
    "ModelVersion",
    "ModelVersionStatus",
    "ParsedModelUri",
    "PromotionRefused",
    "RegisteredModel",
    "RegistryClient",
    "audit_context",
    "beats_champion",
    "get_registry_uri",
    "metric_at_least",
    "parse_models_uri",
    "register_model",
    "resolve_model_version",
    "resolve_models_uri",
    "search_model_versions",
    "search_registered_models",
    "set_registry_uri",
]

_EXPORTS = {
    "AuditAction": "flowml.registry.audit",
    "audit_context": "flowml.registry.audit",
    "AuditEntry": "flowml.registry.entities",
    "ModelVersion": "flowml.registry.entities",
    "ModelVersionStatus": "flowml.registry.entities",
    "RegisteredModel": "flowml.registry.entities",
    "RegistryClient": "flowml.registry.client",
    "Gate": "flowml.registry.gates",
    "GateContext": "flowml.registry.gates",
    "GateResult": "flowml.registry.gates",
    "beats_champion": "flowml.registry.gates",
    "metric_at_least": "flowml.registry.gates",
    "PromotionRefused": "flowml.registry.errors",
    "ParsedModelUri": "flowml.registry.uri",
    "parse_models_uri": "flowml.registry.uri",
    "resolve_model_version": "flowml.registry.uri",
    "resolve_models_uri": "flowml.registry.uri",
    "get_registry_uri": "flowml.registry.fluent",
    "register_model": "flowml.registry.fluent",
    "search_model_versions": "flowml.registry.fluent",
    "search_registered_models": "flowml.registry.fluent",
    "set_registry_uri": "flowml.registry.fluent",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
