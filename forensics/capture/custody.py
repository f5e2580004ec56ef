"""Artefacts hashed with SM3 as they are written, and the custody log (JSON lines).

Every line of the custody log is canonical JSON (ledger.codec) of ``{"seq", "time",
"elapsed_ms", "step", "prev", ...details}``: ``time`` is the node clock (UTC, ISO 8601 with
microseconds), ``elapsed_ms`` counts from the start of the capture on the monotonic clock and
``prev`` is the SM3 (hex) of the previous line's bytes without its newline (64 zeros on the
first line), so that a removed or edited line shows. docs/capture.md §5.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path
from typing import Any, BinaryIO

from ledger.codec import canonical
from ledger.crypto import SM3, sm3_hex

from .types import ROLES, Artefact

__all__ = ["Artefacts", "CustodyLog", "HashingWriter", "iso_time", "plain"]

CHUNK = 1 << 20


def iso_time(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plain(obj: Any, depth: int = 0) -> Any:
    """``obj`` in a form canonical JSON accepts: floats become decimal strings (milli-precision),
    bytes become hex, tuples lists, other objects their ``str``; nesting is cut at 24 levels."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return format(obj, ".3f") if math.isfinite(obj) else str(obj)
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).hex()
    if depth > 24:
        return "…"
    if isinstance(obj, dict):
        return {str(k): plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v, depth + 1) for v in obj]
    return str(obj)


class HashingWriter:
    """A new file opened for writing that digests with SM3 and counts every byte it writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: BinaryIO = open(path, "xb")
        self._h = SM3()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = self._fh.write(data)
        self._h.update(memoryview(data)[:n])
        self.size += n
        return n

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> str:
        if not self._fh.closed:
            self._fh.close()
        return self._h.hexdigest()


class Artefacts:
    """The artefacts of one capture under ``out_dir``, in the order they were completed."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.items: list[Artefact] = []

    def _made(self, name: str, sm3: str, size: int, media_type: str, role: str) -> Artefact:
        if role not in ROLES:
            raise ValueError(f"unknown artefact role {role!r}")
        art = Artefact(name=name, path=self.out_dir / name, sm3=sm3, size=size, media_type=media_type, role=role)
        self.items.append(art)
        return art

    def writer(self, name: str) -> HashingWriter:
        path = self.out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return HashingWriter(path)

    def done(self, w: HashingWriter, media_type: str, role: str) -> Artefact:
        digest = w.close()
        return self._made(str(w.path.relative_to(self.out_dir)), digest, w.size, media_type, role)

    def add_bytes(self, name: str, data: bytes, media_type: str, role: str) -> Artefact:
        w = self.writer(name)
        w.write(data)
        return self.done(w, media_type, role)

    def add_file(self, name: str, source: Path, media_type: str, role: str) -> Artefact:
        """Move a file another program wrote (ffmpeg, the browser's HAR) into place, hashing
        it in one streaming pass as it is copied."""
        w = self.writer(name)
        try:
            with open(source, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    w.write(chunk)
        finally:
            digest = w.close()
        source.unlink(missing_ok=True)
        return self._made(name, digest, w.size, media_type, role)


class CustodyLog:
    """Append-only JSON-lines log of every step of a capture, itself an artefact."""

    def __init__(self, artefacts: Artefacts, name: str = "custody.jsonl") -> None:
        self._artefacts = artefacts
        self._w = artefacts.writer(name)
        self._t0 = time.monotonic()
        self._seq = 0
        self._prev = "0" * 64
        self.entries: list[dict[str, Any]] = []
        self.closed = False

    def step(self, step: str, **details: Any) -> dict[str, Any]:
        entry = {key: plain(value) for key, value in details.items()}
        entry.update(seq=self._seq, time=iso_time(time.time()), step=step, prev=self._prev,
                     elapsed_ms=int((time.monotonic() - self._t0) * 1000))
        line = canonical(entry)
        if not self.closed:
            self._w.write(line + b"\n")
            self._w.flush()
        self._prev = sm3_hex(line)
        self._seq += 1
        self.entries.append(entry)
        return entry

    def failures(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e.get("failure")]

    def close(self) -> Artefact:
        self.step("custody log closed", lines=self._seq + 1)
        self.closed = True
        return self._artefacts.done(self._w, "application/x-ndjson", "custody")
