"""The off-chain content store (REQUIREMENTS L8): files never go on chain, only their SM3 hash.

``BlobStore`` is the interface; ``LocalBlobStore(folder)`` keeps blobs on local disk and a
distributed object store can implement the same interface later. A blob is named by the SM3
hash of its content (64 lowercase hex digits), so the same content is stored once and a name
always means the same bytes.

Layout of a ``LocalBlobStore`` folder::

    FOLDER/ab/cd/abcd…(64 hex)     one blob (its SM3 starts with ``abcd``), read-only
    FOLDER/tmp/put-<random>.part   a write in progress (or left by a crash: ignored, cleaned)
    FOLDER/claims/<sm3>/<account>  an unconfirmed upload of blob <sm3> by <account> (mtime: when)

Writes are atomic: the stream is copied in bounded chunks into a temporary file while its SM3
and size are computed, the file is ``fsync``-ed, renamed to its name (``rename`` is atomic on
POSIX) and the shard folder is ``fsync``-ed. A crash leaves either no blob or the whole blob
under its name, never part of one; the temporary file it may leave is never served and is
removed by ``clean`` (called when the store opens). Concurrent ``put`` of the same content is
safe: each writes its own temporary file and the renames replace identical bytes.

Orphans. A put may *claim* the blob for an account (``put(stream, claim=ACCOUNT)``): the
uploader the blob is kept for only if something on the ledger comes to refer to it. A claim
is recorded (``claims/<sm3>/<account>``, its mtime the time of the put) when the put creates
the blob or the blob already has claims; a blob stored before without claims is kept already,
and a later put does not make it sweepable. ``sweep(referenced, older_than_s)`` then looks at
each claimed blob: if ``referenced(sm3, account)`` holds for one of its claims, the claims are
dropped and the blob is kept for good; otherwise, once every claim is older than
``older_than_s``, the blob and its claims are removed. Puts and sweeps of one store must not
run at the same time (the node runs both on one worker thread).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import secrets
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from .crypto import SM3
from .errors import LedgerError

__all__ = [
    "CHUNK_BYTES", "DEFAULT_MAX_BYTES", "BlobCorrupt", "BlobError", "BlobInfo", "BlobNotFound",
    "BlobReader", "BlobStore", "BlobTooLarge", "InvalidBlobName", "LocalBlobStore", "Readable",
]

CHUNK_BYTES = 1 << 20  # 1 MiB: the most a put or a read holds in memory at once
DEFAULT_MAX_BYTES = 4 << 30  # 4 GiB
STALE_TMP_S = 3600.0  # a temporary file older than this is from a dead writer
_NAME = re.compile(r"[0-9a-f]{64}")
_CLAIMANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


class Readable(Protocol):
    """What ``put`` reads from: any object with ``read(n) -> bytes`` (a file, a socket's
    stream, an upload body)."""

    def read(self, size: int = -1, /) -> bytes: ...


class BlobError(LedgerError):
    """Base of every content-store error."""


class InvalidBlobName(BlobError):
    """Not an SM3 name (64 lowercase hex digits)."""


class BlobNotFound(BlobError):
    """No blob of that name."""


class BlobTooLarge(BlobError):
    """A put went over the store's maximum size; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the maximum of {limit} bytes")
        self.limit = limit


class BlobCorrupt(BlobError):
    """A stored blob's content no longer has its SM3 hash (disk damage or tampering)."""


@dataclass(frozen=True)
class BlobInfo:
    sm3: str
    size: int


def check_name(sm3: str) -> str:
    if not isinstance(sm3, str) or not _NAME.fullmatch(sm3):
        raise InvalidBlobName("a blob name is an SM3 hash: 64 lowercase hex digits")
    return sm3


class BlobReader:
    """A verified streaming read of one blob (a context manager yielding ``bytes`` chunks).

    Streaming verification: each chunk is hashed as it is handed out; after the last chunk the
    SM3 of everything read is compared (in constant time) with the blob's name, and
    ``BlobCorrupt`` is raised at the end of the iteration if they differ, or if the size read
    differs from the size at open. A caller that must not act on unverified bytes (for example
    one that writes them somewhere) must therefore consume the whole iteration before treating
    what it received as good; ``LocalBlobStore.read`` does that for small blobs."""

    def __init__(self, fh: BinaryIO, sm3: str, size: int, chunk: int) -> None:
        self._fh = fh
        self.sm3 = sm3
        self.size = size
        self._chunk = chunk

    def __iter__(self) -> Iterator[bytes]:
        h = SM3()
        seen = 0
        while True:
            data = self._fh.read(self._chunk)
            if not data:
                break
            seen += len(data)
            h.update(data)
            yield data
        if seen != self.size or not hmac.compare_digest(h.hexdigest(), self.sm3):
            raise BlobCorrupt(f"blob {self.sm3} is corrupt: its content no longer has that SM3 hash")

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlobStore(ABC):
    """A content-addressed store keyed by SM3. Implementations must make ``put`` atomic (a blob
    is visible under its name only once complete), bound the memory a put or read uses, and
    verify content against its name on every read."""

    max_bytes: int

    @abstractmethod
    def put(self, stream: Readable, *, claim: str | None = None) -> tuple[str, int]:
        """Store everything ``stream`` yields; returns (SM3 hex, size). Raises ``BlobTooLarge``
        (nothing stored) past ``max_bytes``. ``claim``: the uploading account, for ``sweep``."""

    @abstractmethod
    def has(self, sm3: str) -> bool: ...

    @abstractmethod
    def stat(self, sm3: str) -> BlobInfo:
        """Raises ``BlobNotFound``."""

    @abstractmethod
    def open(self, sm3: str) -> BlobReader:
        """A verified streaming reader (see ``BlobReader``); raises ``BlobNotFound``."""

    def put_bytes(self, data: bytes, *, claim: str | None = None) -> tuple[str, int]:
        import io

        return self.put(io.BytesIO(data), claim=claim)

    def put_file(self, path: str | Path, *, claim: str | None = None) -> tuple[str, int]:
        with open(path, "rb") as fh:
            return self.put(fh, claim=claim)

    def read(self, sm3: str, max_bytes: int = 64 << 20) -> bytes:
        """The whole blob, verified before it is returned (at most ``max_bytes``: a larger blob
        raises ``BlobTooLarge``; stream it with ``open``)."""
        info = self.stat(sm3)
        if info.size > max_bytes:
            raise BlobTooLarge(max_bytes)
        with self.open(sm3) as reader:
            return b"".join(reader)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore(BlobStore):
    """Blobs in ``folder`` on local disk (see the module's docstring for the layout)."""

    def __init__(self, folder: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 chunk_bytes: int = CHUNK_BYTES) -> None:
        if max_bytes < 0 or chunk_bytes < 1:
            raise ValueError("max_bytes must be >= 0 and chunk_bytes >= 1")
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self.tmp = self.folder / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.clean()

    def path(self, sm3: str) -> Path:
        name = check_name(sm3)
        return self.folder / name[:2] / name[2:4] / name

    def clean(self, older_than_s: float = STALE_TMP_S) -> int:
        """Remove temporary files of writes that died (older than ``older_than_s``; 0: all, for
        a store no other process writes to). Returns how many were removed."""
        cutoff = time.time() - older_than_s
        removed = 0
        for p in self.tmp.glob("put-*.part"):
            with contextlib.suppress(FileNotFoundError):
                if older_than_s <= 0 or p.stat().st_mtime < cutoff:
                    p.unlink()
                    removed += 1
        return removed

    def put(self, stream: Readable, *, claim: str | None = None) -> tuple[str, int]:
        if claim is not None and not _CLAIMANT.fullmatch(claim):
            raise ValueError("a claim is an account: 1-128 of A-Z a-z 0-9 _ . : -")
        tmp = self.tmp / f"put-{secrets.token_hex(12)}.part"
        h = SM3()
        size = 0
        try:
            with open(tmp, "xb") as out:
                while True:
                    data = stream.read(self.chunk_bytes)
                    if not data:
                        break
                    size += len(data)
                    if size > self.max_bytes:
                        raise BlobTooLarge(self.max_bytes)
                    h.update(data)
                    out.write(data)
                out.flush()
                os.fsync(out.fileno())
            name = h.hexdigest()
            final = self.path(name)
            if final.exists() and final.stat().st_size == size:
                tmp.unlink()  # same content already stored (same name, same size)
                self._claim(name, claim, created=False)
                return name, size
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            self._claim(name, claim, created=True)
            return name, size
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def _claim(self, name: str, account: str | None, *, created: bool) -> None:
        folder = self.folder / "claims" / name
        if account is None or not (created or folder.is_dir()):
            return
        folder.mkdir(parents=True, exist_ok=True)
        (folder / account).touch()  # a new put of the same file starts its time again

    def claims(self) -> list[str]:
        """The blobs with unconfirmed claims (their SM3 names)."""
        root = self.folder / "claims"
        return sorted(p.name for p in root.iterdir() if _NAME.fullmatch(p.name)) if root.is_dir() else []

    def sweep(self, referenced: Callable[[str, str], bool], older_than_s: float) -> int:
        """Settle the claims (see the module's docstring): keep for good each blob that
        ``referenced(sm3, account)`` says one of its claimants' ledger records refers to;
        remove each other whose claims are all older than ``older_than_s``. Returns how many
        blobs were removed."""
        cutoff = time.time() - older_than_s
        removed = 0
        for name in self.claims():
            folder = self.folder / "claims" / name
            claims = [p for p in folder.iterdir() if _CLAIMANT.fullmatch(p.name)]
            if not claims or any(referenced(name, p.name) for p in claims):
                shutil.rmtree(folder, ignore_errors=True)
            elif all(p.stat().st_mtime < cutoff for p in claims):
                self.path(name).unlink(missing_ok=True)
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    def has(self, sm3: str) -> bool:
        return self.path(sm3).is_file()

    def stat(self, sm3: str) -> BlobInfo:
        try:
            st = self.path(sm3).stat()
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {sm3}") from None
        return BlobInfo(sm3, st.st_size)

    def open(self, sm3: str) -> BlobReader:
        path = self.path(sm3)
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {sm3}") from None
        return BlobReader(fh, sm3, os.fstat(fh.fileno()).st_size, self.chunk_bytes)
