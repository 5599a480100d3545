"""The trace store of an ``http(s)://`` tracking URI: traces written and read through
``flowml server`` (``/api/2.0/flowml/traces/*``, see `flowml.server.traces`).

Same methods as `flowml.tracing.store.SqlTraceStore`, so the background writer, the
fluent API (``get_trace``, ``search_traces``, ``log_feedback``...) and ``flowml.genai``
work against a server as against a database. Outages are retried and raised as
`StoreError` by the tracking client's HTTP transport.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowml.tracing import entities as e
from flowml.tracing.wire import assessment_to_json, info_from_json, trace_from_json, trace_to_json
from flowml.tracking.entities import PagedList
from flowml.tracking.store.rest_http import DEFAULT_MAX_RETRY_SECONDS, HttpTransport

__all__ = ["RestTraceStore"]

_BASE = "/api/2.0/flowml/traces"
#: Traces per write request (a batch of the background writer may hold more).
WRITE_CHUNK = 100


class RestTraceStore:
    """Traces held by a tracking server.

    Args:
        uri: the server's URL (``http://host:port``).
        max_retry_seconds: how long an unreachable server is retried before `StoreError`.
    """

    def __init__(self, uri: str, *, max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS) -> None:
        self.uri = uri.rstrip("/")
        self.http = HttpTransport(self.uri, max_retry_seconds=max_retry_seconds)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.http.json("POST", _BASE + path, body)

    def write_traces(self, batch: Sequence[e.Trace]) -> None:
        for start in range(0, len(batch), WRITE_CHUNK):
            chunk = batch[start : start + WRITE_CHUNK]
            self._post("/write", {"traces": [trace_to_json(t) for t in chunk]})

    def get_trace(self, trace_id: str) -> e.Trace:
        """Raises: ResourceNotFound: no such trace."""
        return trace_from_json(self._post("/get", {"trace_id": trace_id})["trace"])

    def get_trace_info(self, trace_id: str) -> e.TraceInfo:
        """Raises: ResourceNotFound: no such trace."""
        return self.get_trace(trace_id).info

    def get_trace_infos(self, trace_ids: Sequence[str]) -> dict[str, e.TraceInfo]:
        reply = self._post("/infos", {"trace_ids": list(trace_ids)})
        infos = [info_from_json(i) for i in reply.get("infos", [])]
        return {i.trace_id: i for i in infos}

    def get_spans(self, trace_ids: Sequence[str]) -> dict[str, list[e.Span]]:
        return {t: self.get_trace(t).data.spans for t in trace_ids}

    def search(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        *,
        include_spans: bool = False,
    ) -> PagedList[e.Trace]:
        reply = self._post(
            "/search",
            {
                "experiment_ids": [str(x) for x in experiment_ids],
                "filter": filter_string,
                "order_by": list(order_by or []),
                "max_results": max_results,
                "page_token": page_token,
                "include_spans": include_spans,
            },
        )
        traces = [trace_from_json(t) for t in reply.get("traces", [])]
        return PagedList(traces, reply.get("next_page_token") or None)

    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[e.TraceInfo]:
        page = self.search(experiment_ids, filter_string, order_by, max_results, page_token)
        return PagedList([t.info for t in page], page.token)

    def create_assessment(self, assessment: e.Assessment) -> e.Assessment:
        self.create_assessments([assessment])
        return assessment

    def create_assessments(self, batch: Sequence[e.Assessment]) -> None:
        if batch:
            self._post("/assessments", {"assessments": [assessment_to_json(a) for a in batch]})

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        self._post("/tags/set", {"trace_id": trace_id, "key": key, "value": value})

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        self._post("/tags/delete", {"trace_id": trace_id, "key": key})

    def delete_traces(
        self,
        *,
        older_than_ms: int,
        experiment_ids: Sequence[str] | None = None,
        max_traces: int | None = None,
    ) -> int:
        """Delete traces that started before ``older_than_ms`` (retention); returns how many.

        With auth on, the user needs MANAGE on each of ``experiment_ids`` (none named: every
        experiment, which only an admin may do).
        """
        body: dict[str, Any] = {"older_than_ms": older_than_ms}
        if experiment_ids:
            body["experiment_ids"] = [str(x) for x in experiment_ids]
        if max_traces is not None:
            body["max_traces"] = max_traces
        return int(self._post("/delete", body).get("traces_deleted", 0))

    def count_traces(self, experiment_ids: Sequence[str] | None = None) -> int:
        body = {"experiment_ids": [str(x) for x in experiment_ids or []]}
        return int(self._post("/count", body).get("count", 0))
