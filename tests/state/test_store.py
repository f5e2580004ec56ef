"""The stores: atomic batches, prefix iteration order, persistence, closing, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.state.abc import KVStore
from ledger.state.errors import InvalidArgument, StoreClosed, StoreError
from ledger.state.store import LMDBStore, MemoryStore, SQLiteStore, open_store

BACKENDS = ["memory", "lmdb", "sqlite"]


def make(kind: str, path: Path) -> MemoryStore | LMDBStore | SQLiteStore:
    if kind == "memory":
        return MemoryStore()
    return open_store(path, backend=kind, sync=False)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryStore | LMDBStore | SQLiteStore]:
    s = make(request.param, tmp_path / "db")
    yield s
    s.close()


def test_implements_the_protocol(store: KVStore) -> None:
    assert isinstance(store, KVStore)


def test_batch_puts_and_deletes(store: KVStore) -> None:
    store.write({b"a": b"1", b"b": b"2", b"c": b"3"})
    store.write({b"b": None, b"c": b"33", b"missing": None})
    assert store.get(b"a") == b"1"
    assert store.get(b"b") is None
    assert store.get(b"c") == b"33"
    assert store.get(b"missing") is None


def test_iterate_prefix_in_key_order(store: KVStore) -> None:
    store.write({b"p\x02": b"2", b"p\x01": b"1", b"q": b"x", b"p\xff\xff": b"3", b"o": b"y", b"p": b"0"})
    assert list(store.iterate(b"p")) == [(b"p", b"0"), (b"p\x01", b"1"), (b"p\x02", b"2"), (b"p\xff\xff", b"3")]
    assert list(store.iterate(b"p\xff")) == [(b"p\xff\xff", b"3")]
    assert list(store.iterate(b"zz")) == []


def test_bad_batch_writes_nothing(store: KVStore) -> None:
    store.write({b"keep": b"1"})
    with pytest.raises((InvalidArgument, StoreError)):
        store.write({b"new": b"1", b"": b"empty key"})
    with pytest.raises((InvalidArgument, StoreError)):
        store.write({b"new": b"1", b"k": "not bytes"})  # type: ignore[dict-item]
    assert store.get(b"new") is None and store.get(b"keep") == b"1"


def test_closed_store_refuses_calls(store: KVStore) -> None:
    store.close()
    store.close()
    with pytest.raises(StoreClosed):
        store.get(b"a")
    with pytest.raises(StoreClosed):
        store.write({b"a": b"1"})


@pytest.mark.parametrize("kind", ["lmdb", "sqlite"])
def test_data_survives_reopening(kind: str, tmp_path: Path) -> None:
    s = open_store(tmp_path / "db", backend=kind, sync=False)
    s.write({b"k%d" % i: b"v%d" % i for i in range(1000)})
    s.close()
    s = open_store(tmp_path / "db", backend=kind, sync=False)
    assert s.get(b"k999") == b"v999"
    assert len(list(s.iterate(b"k"))) == 1000
    assert s.disk_bytes() > 0
    s.close()


def test_lmdb_grows_its_map_when_full(tmp_path: Path) -> None:
    s = LMDBStore(tmp_path / "db", map_size=1 << 20, sync=False)
    s.write({b"k%d" % i: bytes(1000) for i in range(3000)})  # ~3 MB into a 1 MiB map
    assert s.get(b"k2999") == bytes(1000)
    s.close()


def test_lmdb_key_too_long_is_a_store_error(tmp_path: Path) -> None:
    s = LMDBStore(tmp_path / "db", sync=False)
    with pytest.raises(StoreError, match="keys are limited"):
        s.write({b"x" * 600: b"1"})
    s.close()


def test_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="unknown store backend"):
        open_store(tmp_path, backend="rocks")
