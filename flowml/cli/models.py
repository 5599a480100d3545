"""``flowml models``: serve a model, and the registry's commands (list, show, versions,
register, promote, alias, archive, history, lineage).

Promotions from here run the same gates as the ``promote_model`` flow step, without Prefect:
the person typing the command is the approval.
"""

from __future__ import annotations

from typing import Annotated, Any

from cyclopts import App, Parameter

from flowml.cli._clients import registry_client
from flowml.cli._output import OutputOption, emit, format_ms, print_json, print_table
from flowml.tracking import tags as systags

__all__ = [
    "alias",
    "archive",
    "history",
    "lineage",
    "list_models",
    "promote",
    "register",
    "serve",
    "show",
    "versions",
]

app = App(name="models", help="Serve models and manage registered ones.")


@app.command
def serve(
    *,
    model_uri: Annotated[str, Parameter(name=["--model-uri", "-m"])],
    host: str = "127.0.0.1",
    port: Annotated[int, Parameter(name=["--port", "-p"])] = 5000,
    workers: Annotated[int, Parameter(name=["--workers", "-w"])] = 1,
    max_body_size: int | None = None,
    body_timeout: float | None = None,
    predict_threads: int | None = None,
    trace_sample_rate: float = 0.0,
    trace_redact: Annotated[list[str] | None, Parameter(name=["--trace-redact"])] = None,
) -> None:
    """Serve a model over HTTP with MLflow's scoring protocol (/invocations, /ping, /version).

    The model is loaded before the port is bound: an unresolvable URI stops the command
    with an error instead of starting a server that cannot answer.

    Args:
        model_uri: A local path, any fsspec URL, runs:/RUN_ID/PATH or
            models:/NAME/VERSION (also models:/NAME@ALIAS).
        host: Interface to bind (loopback by default; 0.0.0.0 exposes it).
        port: TCP port.
        workers: Worker processes, each with its own copy of the model.
        max_body_size: Largest request body in bytes, answered 413 above it
            (default FLOWML_SERVING_MAX_BODY_BYTES, else 50 MiB).
        body_timeout: Seconds a request body may stall before the server answers 408
            and closes the connection (default FLOWML_SERVING_BODY_TIMEOUT, else 30).
        predict_threads: Requests scored at once per worker, each on its own thread
            (default FLOWML_SERVING_PREDICT_THREADS, else CPUs + 4, at most 32).
        trace_sample_rate: Fraction of requests recorded as traces in the tracking store
            (0 to 1; 0, the default, records none), tagged with the model URI, name and version.
        trace_redact: A request or response field never recorded in traces (repeatable).
    """
    from flowml.models.serving.limits import limits_from_env
    from flowml.models.serving.server import serve as run_server

    limits = limits_from_env(max_body_size, body_timeout, predict_threads)
    run_server(
        model_uri,
        host=host,
        port=port,
        workers=workers,
        limits=limits,
        trace_sample_rate=trace_sample_rate,
        trace_redact=tuple(trace_redact or ()),
    )


def _version_row(mv: Any) -> list[Any]:
    return [
        mv.version,
        mv.current_stage,
        ", ".join(mv.aliases),
        mv.run_id or "",
        mv.source,
        format_ms(mv.creation_timestamp),
    ]


_VERSION_COLUMNS = ["version", "stage", "aliases", "run id", "source", "created"]


@app.command(name="list")
def list_models(
    *,
    filter: Annotated[str | None, Parameter(name=["--filter", "-f"])] = None,
    order_by: Annotated[list[str] | None, Parameter(name=["--order-by"])] = None,
    max_results: int = 100,
    output: OutputOption = "table",
) -> None:
    """List registered models (filter e.g. "name LIKE 'churn%' and tags.team = 'ml'")."""
    models = registry_client().search_registered_models(filter, max_results, order_by)
    emit(
        output,
        "Registered models",
        ["name", "latest versions", "aliases", "updated"],
        [
            [
                m.name,
                ", ".join(f"{mv.current_stage}: {mv.version}" for mv in m.latest_versions),
                ", ".join(f"{a}: {v}" for a, v in m.aliases.items()),
                format_ms(m.last_updated_timestamp),
            ]
            for m in models
        ],
        [m.to_dict() for m in models],
    )


@app.command
def show(name: str, *, output: OutputOption = "table") -> None:
    """Show a registered model: description, tags, aliases and every version."""
    from flowml.tracking.search import quote_literal

    client = registry_client()
    model = client.get_registered_model(name)
    all_versions = client.search_model_versions(
        f"name = {quote_literal(name)}", order_by=["version_number DESC"]
    )
    if output == "json":
        print_json({**model.to_dict(), "versions": [mv.to_dict() for mv in all_versions]})
        return
    print_table(
        f"Registered model {model.name}",
        ["field", "value"],
        [
            ["description", model.description or ""],
            ["created", format_ms(model.creation_timestamp)],
            ["updated", format_ms(model.last_updated_timestamp)],
            ["aliases", ", ".join(f"{a}: {v}" for a, v in model.aliases.items())],
            ["tags", ", ".join(f"{k}={v}" for k, v in sorted(model.tags.items()))],
        ],
    )
    print_table("Versions", _VERSION_COLUMNS, [_version_row(mv) for mv in all_versions])


@app.command
def versions(
    name: str,
    *,
    filter: Annotated[str | None, Parameter(name=["--filter", "-f"])] = None,
    order_by: Annotated[list[str] | None, Parameter(name=["--order-by"])] = None,
    max_results: int = 1000,
    output: OutputOption = "table",
) -> None:
    """List a model's versions, newest first (--filter adds conditions, e.g. "tags.ok = 'yes'")."""
    from flowml.tracking.search import quote_literal

    client = registry_client()
    client.get_registered_model(name)  # a clear error for an unknown model
    condition = f"name = {quote_literal(name)}" + (f" and ({filter})" if filter else "")
    found = client.search_model_versions(
        condition, max_results, order_by or ["version_number DESC"]
    )
    emit(
        output,
        f"Versions of {name}",
        _VERSION_COLUMNS,
        [_version_row(mv) for mv in found],
        [mv.to_dict() for mv in found],
    )


@app.command
def register(
    model_uri: str,
    name: str,
    *,
    tag: Annotated[list[str] | None, Parameter(name=["--tag", "-t"])] = None,
    description: str | None = None,
    reason: str | None = None,
    output: OutputOption = "table",
) -> None:
    """Register MODEL_URI (runs:/RUN_ID/PATH, models:/..., a path or URL) as a new version of NAME.

    Args:
        model_uri: Where the model is.
        name: The registered model (created when missing).
        tag: Version tags as KEY=VALUE (repeatable).
        description: The version's description.
        reason: Recorded in the audit trail.
        output: table or json.
    """
    from flowml.projects.params import parse_key_values

    version = registry_client().register_model(
        model_uri, name, parse_key_values(tag or (), "--tag"), description, reason=reason
    )
    emit(output, f"Registered {name}", _VERSION_COLUMNS, [_version_row(version)], version.to_dict())


@app.command
def promote(
    name: str,
    version: str,
    *,
    to: str = "Production",
    min_metric: Annotated[list[str] | None, Parameter(name=["--min-metric"])] = None,
    beats_champion: Annotated[list[str] | None, Parameter(name=["--beats-champion"])] = None,
    margin: float = 0.0,
    lower_is_better: bool = False,
    archive_existing: bool = True,
    reason: str | None = None,
    output: OutputOption = "table",
) -> None:
    """Promote VERSION (a number or an alias) of NAME to a stage or an alias, behind gates.

    Args:
        name: The registered model.
        version: The candidate: a version number or an alias such as challenger.
        to: A stage (Production, Staging, Archived, None) or an alias (champion).
        min_metric: Gate KEY=THRESHOLD: the candidate's metric must reach it (repeatable).
        beats_champion: Gate KEY: the candidate must beat the current holder (repeatable).
        margin: How much better than the holder --beats-champion requires.
        lower_is_better: For --beats-champion on losses and errors.
        archive_existing: Archive the versions already in a Staging/Production target.
        reason: Recorded in the audit trail.
        output: table or json.
    """
    from flowml.projects.params import parse_key_values
    from flowml.registry import gates as g
    from flowml.registry.promotion import apply_promotion, check_gates, plan_promotion, refuse

    chosen = [
        g.metric_at_least(key, _float(value, "--min-metric"))
        for key, value in parse_key_values(min_metric or (), "--min-metric").items()
    ]
    chosen += [
        g.beats_champion(k, margin=margin, higher_is_better=not lower_is_better)
        for k in beats_champion or []
    ]
    client = registry_client()
    plan = plan_promotion(client, name, version, to, archive_existing)
    results = check_gates(client, plan, chosen)
    if not all(r.passed for r in results):
        raise refuse(client, plan, results, reason)
    record = apply_promotion(client, plan, reason)
    emit(
        output,
        f"Promoted {name} version {record.version} to {record.target}",
        ["gate", "result", "detail"],
        [[r.gate, "pass" if r.passed else "fail", r.detail] for r in results],
        {**record.to_dict(), "gates": [r.to_dict() for r in results]},
    )


@app.command
def alias(
    name: str,
    alias: str,
    version: str | None = None,
    *,
    delete: bool = False,
    reason: str | None = None,
) -> None:
    """Point ALIAS at VERSION of NAME (moving it), or remove it with --delete.

    Args:
        name: The registered model.
        alias: The alias (letters, digits, _ and -; 'latest' and v<N> are reserved).
        version: The version number (not with --delete).
        delete: Remove the alias instead.
        reason: Recorded in the audit trail.
    """
    from flowml.exceptions import InvalidParameter

    client = registry_client()
    if delete:
        if version is not None:
            raise InvalidParameter("--delete takes no VERSION")
        client.delete_registered_model_alias(name, alias, reason=reason)
        print(f"Alias {alias!r} of {name!r} removed")
        return
    if version is None:
        raise InvalidParameter("Give the VERSION the alias should point at (or --delete)")
    client.set_registered_model_alias(name, alias, version, reason=reason)
    print(f"{name}@{alias} -> version {version}")


@app.command
def archive(name: str, version: str, *, reason: str | None = None) -> None:
    """Move VERSION of NAME to the Archived stage."""
    mv = registry_client().transition_model_version_stage(name, version, "Archived", reason=reason)
    print(f"{name} version {mv.version} archived")


@app.command
def history(
    name: str,
    *,
    max_results: int = 1000,
    output: OutputOption = "table",
) -> None:
    """Show NAME's audit trail: every registration, transition, alias move and deletion."""
    from flowml.exceptions import ResourceNotFound

    entries = registry_client().get_audit_log(name, max_results)
    if not entries:
        raise ResourceNotFound(f"No audit entries for a model named {name!r}")
    emit(
        output,
        f"History of {name}",
        ["when", "action", "version", "from", "to", "user", "reason", "flow run"],
        [
            [
                format_ms(e.timestamp),
                e.action + (f" {e.details['alias']}" if "alias" in e.details else ""),
                e.version,
                e.from_value,
                e.to_value,
                e.user_id,
                e.reason,
                e.flow_run_id,
            ]
            for e in entries
        ],
        [e.to_dict() for e in entries],
    )


@app.command
def lineage(
    name: str,
    version: str,
    *,
    depth: int = 10,
    output: OutputOption = "table",
) -> None:
    """Show where VERSION of NAME comes from: its run, the Prefect runs, code and input data."""
    from flowml.tracking.lineage.graph import lineage as run_lineage

    client = registry_client()
    mv = client.get_model_version(name, version)
    chain: dict[str, Any] = {"model_version": mv.to_dict(), "run": None, "graph": None}
    rows = [["model version", f"{name} v{mv.version} ({mv.current_stage})"], ["source", mv.source]]
    if mv.run_id:
        run = client.tracking.get_run(mv.run_id)
        info, run_tags = run.info, run.data.tags
        chain["run"] = run.to_dict()
        rows += [
            ["run", f"{info.run_name} ({info.run_id}, {info.status})"],
            ["experiment", info.experiment_id],
        ]
        for label, key in (
            *_PREFECT_TAGS,
            ("git commit", systags.GIT_COMMIT),
            ("code", systags.SOURCE_NAME),
        ):
            if run_tags.get(key):
                rows.append([label, run_tags[key]])
        graph = run_lineage(mv.run_id, depth=depth, client=client.tracking)
        chain["graph"] = None if graph is None else graph.to_dict()
    else:
        graph = None
        rows.append(["run", "(not recorded: the version was registered without a run)"])
    if output == "json":
        print_json(chain)
        return
    print_table(f"Lineage of {name} version {mv.version}", ["", ""], rows)
    if graph is not None:
        print(graph.format())


# (label, run tag) pairs naming the Prefect runs behind a tracked run.
_PREFECT_TAGS = (
    ("flow run", systags.PREFECT_FLOW_RUN_ID),
    ("flow", systags.PREFECT_FLOW_NAME),
    ("task run", systags.PREFECT_TASK_RUN_ID),
    ("deployment", systags.PREFECT_DEPLOYMENT_ID),
)


def _float(text: str, option: str) -> float:
    from flowml.exceptions import InvalidParameter

    try:
        return float(text)
    except ValueError:
        raise InvalidParameter(f"{option} expects KEY=NUMBER, got the value {text!r}") from None
