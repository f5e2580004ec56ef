"""The upload route's body reader (``api.routes.evidence.receive_files``) and its parameters:
a body split into files at the announced sizes whatever the chunking, its SM3 over the whole
stream, never held in memory (256 MiB through a bounded peak), and refused when it is longer
or shorter than announced."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.errors import ApiError
from api.routes.evidence import parse_files, receive_files
from ledger.crypto import SM3, sm3


class Body:
    """What the reader uses of a request: ``stream()``, chunks of ``chunk`` bytes of ``data``
    (or ``total`` pseudo-random bytes made on the fly)."""

    def __init__(self, data: bytes = b"", chunk: int = 7, total: int = 0) -> None:
        self.data, self.chunk, self.total = data, chunk, total

    async def stream(self) -> AsyncIterator[bytes]:
        if self.total:
            block = hashlib.shake_256(b"seed").digest(self.chunk)
            for _ in range(self.total // self.chunk):
                yield block
            return
        for i in range(0, len(self.data), self.chunk):
            yield self.data[i:i + self.chunk]


def test_a_body_is_split_at_the_sizes_whatever_the_chunks(tmp_path: Path) -> None:
    parts = [os.urandom(10), os.urandom(1), os.urandom(33)]
    body = b"".join(parts)
    for chunk in (1, 7, 10, 11, 44, 1000):
        folder = tmp_path / str(chunk)
        folder.mkdir()
        files = [(len(p), f"f{i}.bin") for i, p in enumerate(parts)]
        paths, digest = asyncio.run(receive_files(Body(body, chunk), folder, files))  # type: ignore[arg-type]
        assert [p.read_bytes() for p in paths] == parts
        assert digest == sm3(body).hex()


def test_longer_or_shorter_bodies_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ApiError, match="longer"):
        asyncio.run(receive_files(Body(b"x" * 11), tmp_path, [(10, "a")]))  # type: ignore[arg-type]
    with pytest.raises(ApiError, match="shorter"):
        asyncio.run(receive_files(Body(b"x" * 9), tmp_path, [(10, "b")]))  # type: ignore[arg-type]


def test_a_large_upload_streams_through_a_bounded_memory_peak(tmp_path: Path) -> None:
    chunk, total = 1 << 16, 256 << 20
    tracemalloc.start()
    try:
        paths, digest = asyncio.run(receive_files(Body(chunk=chunk, total=total), tmp_path,  # type: ignore[arg-type]
                                                  [(total - 5, "big.bin"), (5, "tail.bin")]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [p.stat().st_size for p in paths] == [total - 5, 5]
    assert peak < 8 << 20, peak  # a few chunks, never the body
    h = SM3()
    for p in paths:
        with p.open("rb") as f:
            while b := f.read(1 << 20):
                h.update(b)
    assert h.hexdigest() == digest


@pytest.mark.parametrize(("specs", "code"), [
    ([], "invalid_request"), (["12"], "invalid_request"), (["x:a.png"], "invalid_request"),
    (["0:a.png"], "empty_file"), (["5:../a.png"], "invalid_request"), (["5:a/b"], "invalid_request"),
    (["5:."], "invalid_request"), (["5:a.png", "6:a.png"], "invalid_request"), (["5:" + "n" * 256], "invalid_request"),
    (["1:a"] * 65, "invalid_request"),
])
def test_bad_file_parameters(specs: list[str], code: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_files(specs)
    assert (err.value.status, err.value.code) == (400, code)


def test_good_file_parameters() -> None:
    assert parse_files(["5:a.png", "12:copy: 2.jpg"]) == [(5, "a.png"), (12, "copy: 2.jpg")]
