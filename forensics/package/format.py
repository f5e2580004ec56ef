"""The evidence package format (docs/evidence-format.md): member names, limits, canonical JSON
and a bounded zip reader. Shared by the exporter and the offline verifier; depends on the
standard library alone so that a court's expert can read it with the verifier.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

FORMAT = "rongxin-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FILER_CERT = "filer.der"
CRL = "crl.der"
GENESIS = "chain/genesis.json"
VALIDATORS = "chain/validators.json"
BLOCKS = "chain/blocks.json"
STATEMENTS = "statements.json"
ARTEFACT_DIR = "artefacts/"
FIXED = (MANIFEST, SIGNATURE, FILER_CERT, CRL, GENESIS, VALIDATORS, BLOCKS, STATEMENTS)
HASHED = tuple(n for n in FIXED if n not in (MANIFEST, SIGNATURE))  # listed in the manifest
# optional, both or neither: an RFC 3161 token on the filing's manifest and its TSA's certificate (§11)
TIMESTAMP_TOKEN = "timestamp/manifest.tsr"  # noqa: S105 (a member name)
TIMESTAMP_CERT = "timestamp/tsa.der"
OPTIONAL = (TIMESTAMP_TOKEN, TIMESTAMP_CERT)

MAX_MEMBERS = 1024
MAX_ARTEFACTS = MAX_MEMBERS - len(FIXED)  # less two with a time stamp
MAX_JSON_BYTES = 32 * 1024 * 1024
MAX_SMALL_BYTES = 64 * 1024  # the signature, certificate and CRL members
MAX_ARTEFACT_BYTES = 4 * 1024 ** 3
MAX_TOTAL_BYTES = 16 * 1024 ** 3
MAX_RATIO = 200  # uncompressed / compressed, for members over RATIO_FLOOR bytes
RATIO_FLOOR = 1024 * 1024
ARTEFACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
CHUNK = 1 << 20
MAX_DEPTH = 32


class PackageUnreadable(Exception):
    """Not a package at all: not a zip, a bomb, a bad name, too many or too large members."""


class NotCanonical(ValueError):
    """A JSON member that is not exactly canonical JSON."""


def _no_float(text: str) -> Any:
    raise NotCanonical(f"float {text}")


def _no_dup(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise NotCanonical(f"duplicate key {k!r}")
        out[k] = v
    return out


def canonical(obj: Any) -> bytes:
    """Canonical JSON (docs/transactions.md §1) of a value holding no floats."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _depth(obj: Any, d: int = 0) -> int:
    if isinstance(obj, dict):
        return max((_depth(v, d + 1) for v in obj.values()), default=d)
    if isinstance(obj, list):
        return max((_depth(v, d + 1) for v in obj), default=d)
    return d


def parse_canonical(data: bytes) -> Any:
    """Parse ``data``, refusing anything whose bytes are not its canonical encoding."""
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_dup, parse_float=_no_float,
                           parse_constant=_no_float)
        if _depth(value) > MAX_DEPTH:
            raise NotCanonical(f"nested deeper than {MAX_DEPTH}")
        if canonical(value) != data:
            raise NotCanonical("not in canonical form (key order, spacing or escapes)")
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise NotCanonical(str(exc)) from None
    return value


_HEX_RUN = re.compile(r"[0-9a-f]+")


def named_hashes(obj: Any, depth: int = 0) -> set[str]:
    """Every maximal run of lowercase hex digits in the strings of ``obj`` (keys excluded): an
    artefact is named by a payload when its SM3 hex is one of these runs."""
    out: set[str] = set()
    if isinstance(obj, str):
        out.update(_HEX_RUN.findall(obj))
    elif isinstance(obj, dict) and depth < MAX_DEPTH:
        for v in obj.values():
            out |= named_hashes(v, depth + 1)
    elif isinstance(obj, list) and depth < MAX_DEPTH:
        for v in obj:
            out |= named_hashes(v, depth + 1)
    return out


def named_artefacts(tx_type: Any, payload: Any) -> dict[str, int | None]:
    """The files a transaction names, SM3 hex -> size (None: the payload states no size).

    - ``evidence.file``: exactly the manifest's artefact list, ``payload.manifest.artefacts[i]``
      ``.sm3`` and ``.size``; a hash anywhere else in the filing (capture facts, notes, the
      case) names nothing;
    - ``works.register``: exactly ``payload.sm3`` with ``payload.size``;
    - any other type: every maximal run of lowercase hex in its payload's strings
      (``named_hashes``), sizes not stated.

    A payload of the wrong shape names nothing."""
    if tx_type in ("evidence.file", "works.register"):
        if not isinstance(payload, dict):
            return {}
        if tx_type == "works.register":
            items: Any = [payload]
        else:
            manifest = payload.get("manifest")
            items = manifest.get("artefacts") if isinstance(manifest, dict) else None
            if not isinstance(items, list):
                return {}
        out: dict[str, int | None] = {}
        for a in items:
            if isinstance(a, dict) and isinstance(a.get("sm3"), str) and type(a.get("size")) is int:
                out[a["sm3"]] = a["size"]
        return out
    return dict.fromkeys(named_hashes(payload))


def member_limit(name: str) -> int:
    if name.startswith(ARTEFACT_DIR):
        return MAX_ARTEFACT_BYTES
    return MAX_SMALL_BYTES if name in (SIGNATURE, FILER_CERT, CRL, *OPTIONAL) else MAX_JSON_BYTES


def check_name(name: str) -> None:
    """A member name the layout allows; anything else makes the package unreadable."""
    if name in FIXED or name in OPTIONAL:
        return
    if name.startswith(ARTEFACT_DIR) and ARTEFACT_NAME.fullmatch(name[len(ARTEFACT_DIR):]):
        if name[len(ARTEFACT_DIR):] not in (".", ".."):
            return
    raise PackageUnreadable(f"member name {name[:80]!r} is outside the package layout")


@dataclass
class Package:
    """An opened package: its bounded member list; members are read on demand."""

    zf: zipfile.ZipFile
    sizes: dict[str, int]

    def read(self, name: str) -> bytes:
        """The whole member (for the JSON, signature, certificate and CRL members)."""
        return b"".join(self.chunks(name))

    def chunks(self, name: str) -> Iterator[bytes]:
        """The member's bytes in chunks, stopping at its declared size and limit."""
        limit = min(self.sizes[name], member_limit(name))
        got = 0
        try:
            with self.zf.open(name) as f:
                while True:
                    b = f.read(CHUNK)
                    if not b:
                        break
                    got += len(b)
                    if got > limit:
                        raise PackageUnreadable(f"member {name} holds more than it declares or its limit")
                    yield b
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
            raise PackageUnreadable(f"member {name} cannot be read: {exc}") from None
        except Exception as exc:  # zlib.error and kin from a damaged stream
            if isinstance(exc, PackageUnreadable):
                raise
            raise PackageUnreadable(f"member {name} cannot be read: {type(exc).__name__}") from None

    def close(self) -> None:
        self.zf.close()


def open_package(source: str | Path | IO[bytes]) -> Package:
    """Open a package and check its central directory: names, count, sizes, ratios."""
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise PackageUnreadable(f"not a zip archive: {exc}") from None
    infos = zf.infolist()
    try:
        if len(infos) > MAX_MEMBERS:
            raise PackageUnreadable(f"{len(infos)} members; the limit is {MAX_MEMBERS}")
        sizes: dict[str, int] = {}
        total = 0
        for info in infos:
            check_name(info.filename)
            if info.filename in sizes:
                raise PackageUnreadable(f"member {info.filename} appears twice")
            if info.flag_bits & 0x1:
                raise PackageUnreadable(f"member {info.filename} is encrypted")
            if info.file_size > member_limit(info.filename):
                raise PackageUnreadable(f"member {info.filename} is over its limit of {member_limit(info.filename)} bytes")
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise PackageUnreadable(f"member {info.filename} expands over {MAX_RATIO} times (a zip bomb)")
            total += info.file_size
            sizes[info.filename] = info.file_size
        if total > MAX_TOTAL_BYTES:
            raise PackageUnreadable(f"members total {total} bytes; the limit is {MAX_TOTAL_BYTES}")
    except PackageUnreadable:
        zf.close()
        raise
    return Package(zf, sizes)
