"""The local content store: streamed atomic puts, verified reads, the size limit, crashes and
concurrent writers, on real files."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest

from ledger.blobs import BlobCorrupt, BlobNotFound, BlobTooLarge, InvalidBlobName, LocalBlobStore
from ledger.crypto import sm3_hex


class Chunks(io.RawIOBase):
    """A stream of ``n`` pseudo-random bytes that never exists in memory at once; records the
    largest read asked of it."""

    def __init__(self, n: int, seed: int = 1) -> None:
        self.left = n
        self.seed = seed
        self.biggest = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.biggest = max(self.biggest, size)
        k = self.left if size < 0 else min(size, self.left)
        self.left -= k
        self.seed = (self.seed * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.seed.to_bytes(8, "little") * (k // 8 + 1))[:k]


def test_put_streams_in_bounded_chunks_and_reads_back_verified(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b", chunk_bytes=4096)
    src = Chunks(100_000 + 7)
    name, size = store.put(src)
    assert size == 100_007 and src.biggest == 4096
    path = store.path(name)
    assert path.parent.parent.name == name[:2] and path.parent.name == name[2:4]
    data = path.read_bytes()
    assert sm3_hex(data) == name
    assert store.has(name) and store.stat(name).size == size
    with store.open(name) as r:
        parts = list(r)
    assert b"".join(parts) == data and max(len(p) for p in parts) == 4096
    assert store.read(name) == data
    assert list((tmp_path / "b" / "tmp").iterdir()) == []


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    a = store.put_bytes(b"hello")
    assert store.put_bytes(b"hello") == a == (sm3_hex(b"hello"), 5)
    assert sum(1 for p in tmp_path.rglob("*") if p.is_file()) == 1


def test_size_limit_refuses_and_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, max_bytes=10_000, chunk_bytes=1000)
    with pytest.raises(BlobTooLarge, match="10000"):
        store.put(Chunks(10_001))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    name, size = store.put(Chunks(10_000))
    assert size == 10_000 and store.has(name)


def test_corruption_is_detected_on_read(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, chunk_bytes=64)
    name, _ = store.put_bytes(b"x" * 1000)
    path = store.path(name)
    os.chmod(path, 0o644)
    raw = bytearray(path.read_bytes())
    raw[500] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(BlobCorrupt), store.open(name) as r:
        for _ in r:
            pass
    with pytest.raises(BlobCorrupt):
        store.read(name)
    path.write_bytes(bytes(raw[:999]))  # truncated
    with pytest.raises(BlobCorrupt):
        store.read(name)


def test_crash_leftovers_are_ignored_and_cleaned(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    name = sm3_hex(b"half")
    left = tmp_path / "tmp" / "put-dead.part"
    left.write_bytes(b"ha")  # a writer died mid-copy: never visible under the blob's name
    old = time.time() - 7200
    os.utime(left, (old, old))
    fresh = tmp_path / "tmp" / "put-live.part"
    fresh.write_bytes(b"h")  # a writer still running: left alone
    assert not store.has(name)
    with pytest.raises(BlobNotFound):
        store.open(name)
    LocalBlobStore(tmp_path)  # opening the store cleans stale leftovers
    assert not left.exists() and fresh.exists()
    assert store.clean(0) == 1 and not fresh.exists()
    assert store.put_bytes(b"half")[0] == name and store.read(name) == b"half"


def test_concurrent_puts_of_the_same_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, chunk_bytes=1 << 12)
    results: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def put() -> None:
        try:
            results.append(store.put(Chunks(300_000, seed=9)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1 and len(results) == 8
    name, size = results[0]
    assert len(store.read(name)) == size == 300_000
    assert list((tmp_path / "tmp").iterdir()) == []


def test_bad_names_and_missing_blobs(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    for bad in ("../etc/passwd", "AB" * 32, "a" * 63, ""):
        with pytest.raises(InvalidBlobName):
            store.has(bad)
    with pytest.raises(BlobNotFound):
        store.stat("0" * 64)
    name, _ = store.put_bytes(b"y" * 100)
    with pytest.raises(BlobTooLarge):
        store.read(name, max_bytes=99)


def test_claimed_uploads_are_kept_once_referenced_and_swept_when_never(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    named: set[tuple[str, str]] = set()
    a, _ = store.put_bytes(b"kept", claim="alice")
    b, _ = store.put_bytes(b"orphan", claim="bob")
    c, _ = store.put_bytes(b"unclaimed")  # a put without a claim is kept, never swept
    assert store.claims() == sorted([a, b])
    named.add((a, "alice"))
    refer = lambda sm3, who: (sm3, who) in named  # noqa: E731
    assert store.sweep(refer, 60) == 0 and store.claims() == [b]  # alice's settled; bob's too young
    old = time.time() - 120
    os.utime(tmp_path / "b" / "claims" / b / "bob", (old, old))
    store.put_bytes(b"orphan", claim="carol")  # a second, recent claim keeps it a while longer
    assert store.sweep(refer, 60) == 0 and store.has(b)
    os.utime(tmp_path / "b" / "claims" / b / "carol", (old, old))
    assert store.sweep(refer, 60) == 1
    assert not store.has(b) and store.has(a) and store.has(c) and store.claims() == []
    store.put_bytes(b"kept", claim="mallory")  # kept for good: a new claim does not make it sweepable
    assert store.claims() == [] and store.sweep(refer, 0) == 0 and store.has(a)
    with pytest.raises(ValueError, match="a claim is an account"):
        store.put_bytes(b"x", claim="../etc")
