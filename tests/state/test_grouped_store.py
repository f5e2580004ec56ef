"""GroupedStore: batches inside a group are read back at once and reach the store as one
atomic commit when the group ends (also when it ends by an exception)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from ledger.state.store import GroupedStore, LMDBStore, MemoryStore


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.commits = 0

    def write(self, batch: object) -> None:
        self.commits += 1
        super().write(batch)  # type: ignore[arg-type]


def test_group_reads_its_own_writes_and_commits_once() -> None:
    inner = CountingStore()
    store = GroupedStore(inner)
    store.write({b"a": b"1"})  # outside a group: straight through
    assert inner.commits == 1
    with store.group():
        store.write({b"b": b"2", b"a": None})
        store.write({b"c": b"3"})
        with store.group():  # nested groups join the outer one
            store.write({b"b": b"22"})
        assert inner.commits == 1
        assert store.get(b"a") is None and store.get(b"b") == b"22" and store.get(b"c") == b"3"
        assert inner.get(b"b") is None  # nothing reached the store yet
    assert inner.commits == 2
    assert (inner.get(b"a"), inner.get(b"b"), inner.get(b"c")) == (None, b"22", b"3")


def test_flush_inside_a_group_makes_earlier_batches_durable() -> None:
    inner = CountingStore()
    store = GroupedStore(inner)
    with store.group():
        store.write({b"k": b"v"})
        store.flush()
        assert inner.get(b"k") == b"v"
        store.write({b"k2": b"v2"})
    assert inner.commits == 2 and inner.get(b"k2") == b"v2"


def test_an_exception_keeps_the_complete_batches_and_iterate_sees_them(tmp_path: Path) -> None:
    store = GroupedStore(LMDBStore(tmp_path / "db"))
    with pytest.raises(RuntimeError), store.group():
        store.write({b"p/1": b"x"})
        raise RuntimeError("handler failed")
    with store.group():
        store.write({b"p/2": b"y"})
        assert [k for k, _ in store.iterate(b"p/")] == [b"p/1", b"p/2"]
    store.close()
    reopened = LMDBStore(tmp_path / "db")
    assert reopened.get(b"p/1") == b"x" and reopened.get(b"p/2") == b"y"
    reopened.close()


def test_bad_batches_are_refused_before_they_enter_the_group() -> None:
    store = GroupedStore(MemoryStore())
    with store.group():
        with pytest.raises(Exception, match="non-empty bytes"):
            store.write({"str-key": b"v"})  # type: ignore[dict-item]
        assert store.get(b"v") is None


class _SlowStore(MemoryStore):
    """A store whose commit takes a while: the window in which a flush is under way."""

    def write(self, batch: Mapping[bytes, bytes | None]) -> None:
        time.sleep(0.002)
        super().write(batch)


def test_a_reader_in_another_thread_never_misses_a_key_being_flushed() -> None:
    # the works worker reads committed state while the loop flushes a group: a key must be
    # visible in the overlay or in the store at every moment (once "the root of state
    # version 12 is missing or damaged" reached a client)
    store = GroupedStore(_SlowStore())
    written: list[bytes] = []
    misses: list[bytes] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            for key in list(written[-3:]):
                if store.get(key) is None:
                    misses.append(key)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(300):
            key = b"k%d" % i
            with store.group():
                store.write({key: b"v"})
                written.append(key)
    finally:
        done.set()
        t.join()
    assert misses == []
