"""One block's pending writes: read-through, nested snapshots, revert, the batch it yields."""

from __future__ import annotations

import pytest

from ledger.state.errors import InvalidArgument
from ledger.state.smt import SparseMerkleTree
from ledger.state.store import MemoryStore

from .buffer import StateBuffer
from .reference import reference_root


def test_snapshots_nest_and_revert_only_their_own_writes() -> None:
    tree = SparseMerkleTree(MemoryStore())
    tree.apply(1, {b"a": b"1", b"b": b"2"})
    tree.commit()
    buf = StateBuffer(tree)
    assert buf.base_version == 1 and buf.get(b"a") == b"1"
    buf.set(b"a", b"10")
    outer = buf.snapshot()
    buf.delete(b"b")
    buf.set(b"c", b"3")
    inner = buf.snapshot()
    buf.set(b"a", b"100")
    buf.delete(b"c")
    assert (buf.get(b"a"), buf.get(b"b"), buf.get(b"c")) == (b"100", None, None)
    buf.revert(inner)
    assert (buf.get(b"a"), buf.get(b"b"), buf.get(b"c")) == (b"10", None, b"3")
    buf.revert(outer)
    assert (buf.get(b"a"), buf.get(b"b"), buf.get(b"c")) == (b"10", b"2", None)
    assert buf.updates() == {b"a": b"10"}
    with pytest.raises(InvalidArgument):
        buf.revert(inner)  # already reverted past it
    buf.delete(b"b")
    root = tree.apply(2, buf.updates())
    assert root == reference_root({b"a": b"10"})


def test_buffer_reads_the_version_it_was_opened_on_and_refuses_bad_types() -> None:
    tree = SparseMerkleTree(MemoryStore())
    tree.apply(1, {b"k": b"old"})
    tree.commit()
    buf = StateBuffer(tree)
    tree.apply(2, {b"k": b"staged"})  # a staged version does not leak into the buffer's reads
    assert buf.get(b"k") == b"old"
    with pytest.raises(InvalidArgument):
        buf.set(b"k", "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        buf.delete("k")  # type: ignore[arg-type]
