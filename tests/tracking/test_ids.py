"""Run ids cut from a pool of OS randomness are UUID 4s, unique, and a forked child never
repeats its parent's."""

from __future__ import annotations

import os
import uuid

import pytest

from flowml.tracking import ids


def test_ids_are_version_4_uuids_in_hex_and_unique():
    made = [ids.new_id() for _ in range(3 * ids.POOL_BYTES // 16 + 5)]  # several refills
    assert len(set(made)) == len(made)
    for value in made[:50]:
        parsed = uuid.UUID(hex=value)
        assert value == parsed.hex and len(value) == 32
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_ids():
    ids.new_id()  # the parent's pool holds ids not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, "".join(ids.new_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = "".join(ids.new_id() for _ in range(10))
    child_ids = {child[i : i + 32] for i in range(0, len(child), 32)}
    assert len(child_ids) == 10
    assert not child_ids & {parent[i : i + 32] for i in range(0, len(parent), 32)}
