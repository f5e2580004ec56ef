"""What a registration certificate states, checked, and the text of its QR code.

``CertificateFacts`` is filled by the works registry from the registration (attributes the
holder declared, the holder's certificate, the transaction and the block that committed it).
Identifiers and hashes are checked strictly (they are drawn in a fixed-width font and go into
the QR code); text a user wrote is taken as it is and only made drawable: control characters
become spaces, and the layout shortens what does not fit (see ``docs/certificate.md``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from .errors import InvalidFacts

SM3_HEX = re.compile(r"[0-9a-f]{64}")
# work ids and transaction ids: printable ASCII without spaces (hex in practice)
IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+/=-]{0,127}")
CHAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # docs/transactions.md, `chain`
MAX_TIME_MS = 253402271999999  # 9999-12-31T15:59:59.999Z, the last moment with a Beijing date
MAX_TEXT = 4000  # characters of one user-written value kept for layout (the rest cannot fit)
MAX_AUTHORS = 64
QR_VERSION = 1
MAX_QR_TEXT = 512  # bytes; keeps the code at version <= 15, scannable at 200 dpi
MAX_FACTS_BYTES = 1 << 20  # the stated facts as JSON (rongxin-certificate.json)
FACTS_VERSION = 2  # 2 added the conflicts; a version-1 document states none
MAX_CONFLICTS = 64
KIND = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
MAX_SCORE_MILLI = 1_000_000_000
SOURCES = ("node", "contract")

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class ConflictFact:
    """An earlier work the registration was recorded as conflicting with (docs/works.md §3.3):
    ``kind`` is the match method (``sm3`` for the same file, else the fingerprint method),
    ``score_milli`` the score × 1000, ``source`` who found it: ``node`` (the countersigned match
    result) or ``contract`` (the contract's own same-SM3 check)."""

    work_id: str
    kind: str
    score_milli: int
    source: str = "node"


@dataclass(frozen=True)
class CertificateFacts:
    """Every value the certificate shows. Times are milliseconds since 1970 (block time)."""

    work_id: str
    title: str
    work_type: str
    authors: tuple[str, ...]
    creation_date: str  # as the holder declared it
    licence: str
    sm3: str  # 64 lower-case hex digits, the work file's SM3
    holder_cn: str  # the holder certificate's common name
    holder_org: str  # the holder certificate's organisation
    chain: str
    tx_id: str
    height: int
    block_time_ms: int
    conflicts: tuple[ConflictFact, ...] = ()  # sorted by work_id


_FIELDS_V1 = ("work_id", "title", "work_type", "authors", "creation_date", "licence", "sm3", "holder_cn",
              "holder_org", "chain", "tx_id", "height", "block_time_ms")
_FIELDS = (*_FIELDS_V1, "conflicts")
_CONFLICT_FIELDS = {"kind", "score_milli", "source", "work_id"}


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidFacts(f"{name} must be text, not {type(value).__name__}")
    return _CONTROL.sub(" ", value[:MAX_TEXT])


def _match(name: str, value: object, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise InvalidFacts(f"{name} must be {what}")
    return value


def _int(name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise InvalidFacts(f"{name} must be an integer in [0, {high}]")
    return value


def _conflicts(value: object) -> tuple[ConflictFact, ...]:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise InvalidFacts("conflicts must be a list")
    if len(value) > MAX_CONFLICTS:
        raise InvalidFacts(f"at most {MAX_CONFLICTS} conflicts")
    out: list[ConflictFact] = []
    for c in value:
        if not isinstance(c, ConflictFact):
            raise InvalidFacts("each conflict must be a ConflictFact")
        if c.source not in SOURCES:
            raise InvalidFacts(f"a conflict's source is one of {', '.join(SOURCES)}")
        out.append(ConflictFact(_match("conflict work_id", c.work_id, IDENT, "1 to 128 printable ASCII characters"),
                                _match("conflict kind", c.kind, KIND, "1 to 32 of a-z, 0-9, '_', '.', '-'"),
                                _int("conflict score_milli", c.score_milli, MAX_SCORE_MILLI), c.source))
    if [c.work_id for c in out] != sorted({c.work_id for c in out}):
        raise InvalidFacts("conflicts must be sorted by work_id without repeats")
    return tuple(out)


def checked(f: CertificateFacts) -> CertificateFacts:
    """The facts with identifiers checked and user text made drawable, or ``InvalidFacts``."""
    if not isinstance(f, CertificateFacts):
        raise InvalidFacts("facts must be a CertificateFacts")
    authors = f.authors
    if isinstance(authors, str) or not isinstance(authors, tuple | list):
        raise InvalidFacts("authors must be a list of names")
    if len(authors) > MAX_AUTHORS:
        raise InvalidFacts(f"at most {MAX_AUTHORS} authors")
    return CertificateFacts(
        work_id=_match("work_id", f.work_id, IDENT, "1 to 128 printable ASCII characters, no spaces"),
        title=_text("title", f.title),
        work_type=_text("work_type", f.work_type),
        authors=tuple(_text("author", a) for a in authors),
        creation_date=_text("creation_date", f.creation_date),
        licence=_text("licence", f.licence),
        sm3=_match("sm3", f.sm3, SM3_HEX, "64 lower-case hex digits"),
        holder_cn=_text("holder_cn", f.holder_cn),
        holder_org=_text("holder_org", f.holder_org),
        chain=_match("chain", f.chain, CHAIN, "a chain id ([A-Za-z0-9][A-Za-z0-9_.-]{0,63})"),
        tx_id=_match("tx_id", f.tx_id, IDENT, "1 to 128 printable ASCII characters, no spaces"),
        height=_int("height", f.height, 2**63 - 1),
        block_time_ms=_int("block_time_ms", f.block_time_ms, MAX_TIME_MS),
        conflicts=_conflicts(f.conflicts),
    )


def facts_to_json(f: CertificateFacts) -> bytes:
    """The facts exactly as given (not shortened, controls kept), as one line of JSON with
    sorted keys, ASCII only (``\\uXXXX`` escapes), plus ``"v": 1``: the certificate's
    ``rongxin-certificate.json``, which a verifier compares with what the bundle proves."""
    checked(f)
    doc: dict[str, object] = {k: getattr(f, k) for k in _FIELDS}
    doc["authors"] = list(f.authors)
    doc["conflicts"] = [{"kind": c.kind, "score_milli": c.score_milli, "source": c.source, "work_id": c.work_id}
                        for c in f.conflicts]
    doc["v"] = FACTS_VERSION
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    if len(data) > MAX_FACTS_BYTES:
        raise InvalidFacts(f"the facts are over {MAX_FACTS_BYTES} bytes as JSON")
    return data


def facts_from_json(data: bytes) -> CertificateFacts:
    """The facts of ``facts_to_json``, checked as ``render_certificate`` checks them."""
    if len(data) > MAX_FACTS_BYTES:
        raise InvalidFacts(f"the facts are over {MAX_FACTS_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidFacts(f"the facts are not JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("v") not in (1, FACTS_VERSION):
        raise InvalidFacts(f"the facts must be a JSON object with \"v\": {FACTS_VERSION} (or 1)")
    names = _FIELDS if doc["v"] == FACTS_VERSION else _FIELDS_V1
    if set(doc) != {*names, "v"}:
        raise InvalidFacts(f"the facts must have exactly the fields {sorted({*names, 'v'})}")
    authors, raw = doc["authors"], doc.get("conflicts", [])
    if not isinstance(authors, list):
        raise InvalidFacts("authors must be a list of names")
    if not isinstance(raw, list) or len(raw) > MAX_CONFLICTS:
        raise InvalidFacts(f"conflicts must be a list of at most {MAX_CONFLICTS}")
    if not all(isinstance(c, dict) and set(c) == _CONFLICT_FIELDS for c in raw):
        raise InvalidFacts(f"each conflict must have exactly the fields {sorted(_CONFLICT_FIELDS)}")
    conflicts = tuple(ConflictFact(c["work_id"], c["kind"], c["score_milli"], c["source"]) for c in raw)
    f = CertificateFacts(**{k: doc[k] for k in _FIELDS_V1 if k != "authors"}, authors=tuple(authors),
                         conflicts=conflicts)
    checked(f)
    return f


def qr_text(f: CertificateFacts) -> str:
    """The QR code's text: one line of JSON, keys sorted, no spaces.

    ``{"chain","height","sm3","tx_id","v","work_id"}``; ``v`` is this layout's version (1).
    """
    doc = {"chain": f.chain, "height": f.height, "sm3": f.sm3, "tx_id": f.tx_id,
           "v": QR_VERSION, "work_id": f.work_id}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if len(text) > MAX_QR_TEXT:  # pragma: no cover - the patterns above bound it at ~420
        raise InvalidFacts("identifiers too long for the QR code")
    return text


def block_time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)


def utc_text(ms: int) -> str:
    """``2026-12-05 02:32:11.123 UTC``."""
    t = block_time(ms)
    return f"{t:%Y-%m-%d %H:%M:%S}.{ms % 1000:03d} UTC"


def beijing_text(ms: int) -> str:
    """``2026-12-05 10:32:11.123 (UTC+08:00)``: China Standard Time has no daylight saving."""
    t = block_time(ms).astimezone(BEIJING)
    return f"{t:%Y-%m-%d %H:%M:%S}.{ms % 1000:03d} (UTC+08:00)"
