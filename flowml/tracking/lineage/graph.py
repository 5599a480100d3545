"""The lineage graph of a run, upstream and downstream: ``flowml.lineage(run_id)``.

Nodes are runs and the things they read or produced (datasets, models, artifacts); an edge
goes from what came first to what used it. Two runs are linked when an output URI of one is
an input URI of the other; for Prefect task results the URI is only glue, so those links are
drawn straight from run to run. The walk costs two queries per hop.

Example:
    >>> graph = flowml.lineage(run_id)
    >>> [run.info.run_name for run in graph.upstream_runs()]
    ['load', 'split']
    >>> print(graph.format())
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowml.exceptions import InvalidParameter
from flowml.tracking.entities import Run
from flowml.tracking.lineage import (
    INPUT,
    KIND_PREFECT_FLOW_RUN,
    KIND_PREFECT_RESULT,
    KIND_PREFECT_TASK_RUN,
    OUTPUT,
    LineageEntry,
)

if TYPE_CHECKING:
    from flowml.tracking.client import TrackingClient
    from flowml.tracking.store.base import AbstractStore

__all__ = ["LineageEdge", "LineageGraph", "LineageNode", "lineage"]

DEFAULT_DEPTH = 10
# Kinds that only name a Prefect result: they link runs but are not shown as nodes.
_GLUE_KINDS = frozenset({KIND_PREFECT_TASK_RUN, KIND_PREFECT_FLOW_RUN, KIND_PREFECT_RESULT})


@dataclass(frozen=True, slots=True)
class LineageNode:
    """A run (``kind == "run"``) or something runs read or produced."""

    id: str
    kind: str
    label: str
    uri: str | None = None
    digest: str | None = None
    run: Run | None = None


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """``source`` came first and ``target`` used (or is) it; ``name`` is the input's name."""

    source: str
    target: str
    name: str | None = None


@dataclass
class LineageGraph:
    """Runs, datasets and models around one run, with the edges between them."""

    root: str
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)

    def upstream(self) -> list[LineageNode]:
        """Every node the root run depends on, nearest first."""
        return self._walk(reverse=True)

    def downstream(self) -> list[LineageNode]:
        """Every node that depends on the root run, nearest first."""
        return self._walk(reverse=False)

    def upstream_runs(self) -> list[Run]:
        return [n.run for n in self.upstream() if n.run is not None]

    def downstream_runs(self) -> list[Run]:
        return [n.run for n in self.downstream() if n.run is not None]

    def _walk(self, reverse: bool) -> list[LineageNode]:
        distances = self._distances(reverse)
        return [
            self.nodes[n] for n in sorted(distances, key=distances.__getitem__) if n != self.root
        ]

    def _distances(self, reverse: bool) -> dict[str, int]:
        """Hops from the root against (``reverse``) or along the edges."""
        nexts: dict[str, list[str]] = defaultdict(list)
        for e in self.edges:
            a, b = (e.target, e.source) if reverse else (e.source, e.target)
            nexts[a].append(b)
        distances, frontier = {self.root: 0}, [self.root]
        while frontier:
            step = []
            for node in frontier:
                for nxt in nexts[node]:
                    if nxt not in distances:
                        distances[nxt] = distances[node] + 1
                        step.append(nxt)
            frontier = step
        return distances

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: ``{"root", "nodes": [...], "edges": [...]}``."""
        return {
            "root": self.root,
            "nodes": [
                {
                    "id": n.id,
                    "kind": n.kind,
                    "label": n.label,
                    "uri": n.uri,
                    "digest": n.digest,
                    "status": n.run.info.status if n.run else None,
                }
                for n in self.nodes.values()
            ],
            "edges": [{"source": e.source, "target": e.target, "name": e.name} for e in self.edges],
        }

    def format(self) -> str:
        """The graph as text: one ``a --> b`` line per edge, upstream (farthest first) then
        downstream (nearest first)."""
        up, down = self._distances(reverse=True), self._distances(reverse=False)
        upstream = sorted(
            (e for e in self.edges if e.target in up), key=lambda e: (-up[e.target], e.source)
        )
        downstream = sorted(
            (e for e in self.edges if e.target not in up),
            key=lambda e: (down.get(e.source, 0), e.source, e.target),
        )
        lines = [f"Lineage of {self._describe(self.root)}"]
        for title, chosen in (("Upstream", upstream), ("Downstream", downstream)):
            lines.append(f"{title}:" if chosen else f"{title}: (none)")
            for e in chosen:
                via = f" [{e.name}]" if e.name else ""
                lines.append(f"  {self._describe(e.source)} -->{via} {self._describe(e.target)}")
        return "\n".join(lines)

    def _describe(self, node_id: str) -> str:
        node = self.nodes[node_id]
        if node.run is not None:
            info = node.run.info
            return f"run {info.run_name} ({info.run_id}, {info.status})"
        return f"{node.kind} {node.label}" + (f" ({node.uri})" if node.uri != node.label else "")


def lineage(
    run_id: str, depth: int = DEFAULT_DEPTH, client: TrackingClient | None = None
) -> LineageGraph:
    """The lineage graph around a run, ``depth`` run-to-run hops each way.

    Args:
        run_id: the run in the middle.
        depth: how many hops to follow upstream and downstream.
        client: the tracking client (default: the fluent API's).

    Returns:
        A `LineageGraph`; ``graph.format()`` renders it as text.

    Raises:
        ResourceNotFound: no run has that id.
        InvalidParameter: ``depth`` is negative.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("wine.csv").write_text("alcohol,quality")
        >>> with flowml.start_run() as run:
        ...     _ = flowml.log_input("wine.csv", context="training")
        ...     _ = flowml.log_model(python_model=lambda rows: rows, name="model")
        >>> graph = flowml.lineage(run.info.run_id)
        >>> [n.label for n in graph.upstream() if n.kind == "dataset"]
        ['wine.csv']
        >>> [(n.kind, n.label) for n in graph.downstream()]
        [('model', 'model')]
    """
    if depth < 0:
        raise InvalidParameter(f"depth must be >= 0, got {depth}")
    if client is None:
        from flowml.tracking.fluent import get_client

        client = get_client()
    client.flush()
    return _Builder(client.store, depth).build(run_id)


class _Builder:
    def __init__(self, store: AbstractStore, depth: int) -> None:
        self.store = store
        self.depth = depth
        self.graph: LineageGraph | None = None
        self.edges: set[LineageEdge] = set()

    def build(self, run_id: str) -> LineageGraph:
        root = self.store.get_run(run_id)
        self.graph = LineageGraph(root=_run_node_id(run_id))
        self._add_run(root)
        for direction in (INPUT, OUTPUT):
            frontier, seen = {run_id}, {run_id}
            for _ in range(self.depth):
                found = self._hop(frontier, direction) - seen
                if not found:
                    break
                seen |= found
                frontier = found
        self.graph.edges = sorted(self.edges, key=lambda e: (e.source, e.target, e.name or ""))
        return self.graph

    def _hop(self, runs: set[str], direction: str) -> set[str]:
        """One step from ``runs`` against ``direction``: upstream follows their inputs to the
        runs that produced them, downstream their outputs to the runs that read them."""
        own = [
            e for e in self.store.search_lineage(run_ids=sorted(runs)) if e.direction == direction
        ]
        other = OUTPUT if direction == INPUT else INPUT
        matches: dict[str, list[LineageEntry]] = defaultdict(list)
        for e in self.store.search_lineage(uris=sorted({e.uri for e in own}), direction=other):
            matches[e.uri].append(e)
        reached: set[str] = set()
        for entry in own:
            peers = [p for p in matches[entry.uri] if p.run_id != entry.run_id]
            glue = entry.kind in _GLUE_KINDS
            for peer in peers:
                reached.add(_run_of(peer))
                self._ensure_run(_run_of(peer))
            if glue and not peers and direction == OUTPUT:
                continue  # a result nobody tracked has read: nothing to show
            if glue and peers:
                for peer in peers:
                    a, b = (
                        (_run_of(peer), _run_of(entry))
                        if direction == INPUT
                        else (_run_of(entry), _run_of(peer))
                    )
                    name = entry.name if direction == INPUT else peer.name
                    self.edges.add(LineageEdge(_run_node_id(a), _run_node_id(b), name))
                continue
            thing = self._add_thing(entry)
            if direction == INPUT:
                self.edges.add(LineageEdge(thing, _run_node_id(_run_of(entry)), entry.name))
                for peer in peers:
                    self.edges.add(LineageEdge(_run_node_id(_run_of(peer)), thing, None))
            else:
                self.edges.add(LineageEdge(_run_node_id(_run_of(entry)), thing, None))
                for peer in peers:
                    self.edges.add(LineageEdge(thing, _run_node_id(_run_of(peer)), peer.name))
        return reached

    def _ensure_run(self, run_id: str) -> None:
        assert self.graph is not None
        if _run_node_id(run_id) not in self.graph.nodes:
            self._add_run(self.store.get_run(run_id))

    def _add_run(self, run: Run) -> None:
        assert self.graph is not None
        node_id = _run_node_id(run.info.run_id)
        self.graph.nodes[node_id] = LineageNode(
            node_id, "run", run.info.run_name, uri=f"runs:/{run.info.run_id}", run=run
        )

    def _add_thing(self, entry: LineageEntry) -> str:
        assert self.graph is not None
        node_id = f"{entry.kind}:{entry.uri}"
        if node_id not in self.graph.nodes:
            self.graph.nodes[node_id] = LineageNode(
                node_id, entry.kind, entry.name or entry.uri, uri=entry.uri, digest=entry.digest
            )
        return node_id


def _run_of(entry: LineageEntry) -> str:
    """The run of an entry read from a store (which always fills it in)."""
    assert entry.run_id is not None
    return entry.run_id


def _run_node_id(run_id: str) -> str:
    return f"run:{run_id}"
