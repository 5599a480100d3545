"""Concurrent registrations from several processes: versions 1..N, no gaps, no duplicates."""

from __future__ import annotations

import multiprocessing as mp

from flowml.registry.store.sql import SqlRegistryStore

PROCESSES = 4
VERSIONS_PER_PROCESS = 25


def _register(uri: str, worker: int, barrier) -> list[int]:  # noqa: ANN001 - a manager proxy
    from flowml.registry.client import RegistryClient

    client = RegistryClient(registry_uri=uri, tracking_uri=uri)
    # Warm up (imports, connections) on a model of its own, so the race starts at the barrier.
    client.register_model("file:///warm-up", f"warm-up-{worker}")
    barrier.wait()
    # Every worker also races to create the model: register_model creates it when missing.
    return [
        client.register_model(
            f"file:///models/w{worker}/{i}", "contended", tags={"w": worker}
        ).version
        for i in range(VERSIONS_PER_PROCESS)
    ]


def test_concurrent_registrations_get_unique_consecutive_versions(registry_uri: str):
    SqlRegistryStore(registry_uri)  # migrate once up front, like `flowml db upgrade`
    ctx = mp.get_context("spawn")  # fresh interpreters, like separate workers
    with ctx.Manager() as manager, ctx.Pool(PROCESSES) as pool:
        barrier = manager.Barrier(PROCESSES)
        results = pool.starmap(_register, [(registry_uri, w, barrier) for w in range(PROCESSES)])
    total = PROCESSES * VERSIONS_PER_PROCESS
    numbers = sorted(v for versions in results for v in versions)
    assert numbers == list(range(1, total + 1))
    for versions in results:
        assert versions == sorted(versions)  # each worker sees its own numbers increase
    store = SqlRegistryStore(registry_uri)
    stored = store.search_model_versions("name = 'contended'", order_by=["version_number"])
    assert [mv.version for mv in stored] == list(range(1, total + 1))
    by_worker = {
        w: [mv.version for mv in stored if mv.tags["w"] == str(w)] for w in range(PROCESSES)
    }
    assert by_worker == {w: results[w] for w in range(PROCESSES)}
    log = store.get_audit_log("contended", max_results=10_000)
    assert [e.action for e in log].count("model_created") == 1
    assert sorted(e.version for e in log if e.action == "version_registered") == numbers
