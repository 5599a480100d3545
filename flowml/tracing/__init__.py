"""GenAI tracing: spans on OpenTelemetry's SDK, stored with the runs they happened in.

- `fluent`: ``trace``, ``start_span``, ``update_current_trace``, ``get_trace``,
  ``search_traces``; `assessments`: ``log_feedback``, ``log_expectation``;
- `provider` (the OTel wiring), `spans` (live spans), `writer` (background writes),
  `convert` (OTel spans -> MLflow trace JSON), `otlp` (OTLP/HTTP payloads in);
- `store` and `schema`: traces in the SQL tracking database; `search`: the filter grammar;
- `summary`: a run's traces in figures; `autolog/`: client integrations (``openai``).

This layer sits above the registry and below models: it imports `flowml.tracking`, and
higher layers (tasks, serving, the server) record and read traces through it.
"""
