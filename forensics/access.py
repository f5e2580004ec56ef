"""Who may read evidence and case records (docs/api.md §7): the rule every route that can
reveal them applies (state, proofs, transactions, blocks, events, evidence, cases).

An evidence record ``evidence/e/<id>`` may be read by its filer, the holder of the work it is
about, the opener and parties of the case it is attached to, and any active user of business
role ``court`` or ``regulator``. A case record ``case/c/<id>`` by its opener, its parties, the
work's holder, the filer of any evidence attached to it, courts and regulators. The
transactions that write them (``evidence.file``, ``case.open``, ``case.attach``,
``case.move``), their events (``evidence.*``, ``case.*``) and their receipts follow the record
they name; their sender may always read its own transaction. A stored file's read grants
(``blob/<sm3>/...``) follow ``rules.may_read_blob``.

Public: works registrations, block headers and QCs, transaction ids, everything else. The
limits (what a node operator sees, what the existence of an id reveals) are in docs/api.md §7.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.codec import parse
from ledger.contracts.context import account_of

from .rules import K_USER, may_read_blob

__all__ = ["PRIVATE_EVENTS", "PRIVATE_STATE", "PRIVATE_TX_TYPES", "READER_BUSINESS", "Reader", "may_read_case",
           "may_read_event", "may_read_evidence", "may_read_key", "may_read_tx", "private_key", "private_tx"]

Read = Callable[[bytes], bytes | None]
READER_BUSINESS = ("court", "regulator")
PRIVATE_TX_TYPES = frozenset({"evidence.file", "case.open", "case.attach", "case.move"})
PRIVATE_EVENTS = ("evidence.", "case.")
PRIVATE_STATE = ("evidence/", "case/", "blob/")


@dataclass(frozen=True)
class Reader:
    """Who asks: the account of a signed request's certificate and its business role."""

    account: str
    business: str | None


def _json(read: Read, key: str) -> Any:
    raw = read(key.encode())
    if raw is None:
        return None
    try:
        return parse(raw)
    except ValueError:
        return None


def _privileged(read: Read, who: Reader) -> bool:
    """An active user of business role court or regulator (by the chain's user record)."""
    if who.business not in READER_BUSINESS:
        return False
    rec = _json(read, (K_USER + who.account.encode()).decode())
    return isinstance(rec, dict) and rec.get("status") == "active" and rec.get("business") in READER_BUSINESS


def _holder(read: Read, work_id: Any) -> str | None:
    work = _json(read, f"works/w/{work_id}") if isinstance(work_id, str) else None
    return str(work["holder"]) if isinstance(work, dict) and "holder" in work else None


def _case_people(case: dict[str, Any]) -> set[str]:
    return {str(case.get("opener")), *(str(p) for p in case.get("parties") or [])}


def may_read_evidence(read: Read, ev: dict[str, Any], who: Reader) -> bool:
    works: list[Any] = ev["works"] if isinstance(ev.get("works"), list) else []  # a capture filing's works
    people = {str(ev.get("filer")), *(_holder(read, w) for w in [ev.get("work_id"), *works])}
    cids: list[Any] = ev["case_ids"] if isinstance(ev.get("case_ids"), list) else []
    for cid in [ev.get("case_id"), *cids]:
        case = _json(read, f"case/c/{cid}") if isinstance(cid, str) else None
        if isinstance(case, dict):
            people |= _case_people(case)
    return who.account in people or _privileged(read, who)


def may_read_case(read: Read, case: dict[str, Any], who: Reader) -> bool:
    if who.account in _case_people(case) or who.account == _holder(read, case.get("work_id")):
        return True
    for eid in case.get("evidence") or []:
        ev = _json(read, f"evidence/e/{eid}")
        if isinstance(ev, dict) and ev.get("filer") == who.account:
            return True
    return _privileged(read, who)


def private_key(key: str) -> bool:
    return key.startswith(PRIVATE_STATE)


def may_read_key(read: Read, key: str, who: Reader | None) -> bool:
    """Whether ``who`` (None: an unsigned request) may read state ``key``. An absent record
    is readable by any signed request (its absence is all there is to see)."""
    if not private_key(key):
        return True
    if who is None:
        return False
    parts = key.split("/")
    if parts[0] == "blob" and len(parts) >= 2:
        return may_read_blob(read, parts[1], who.account)
    rec = _json(read, key)
    if rec is None:
        return True
    if key.startswith("evidence/e/") and isinstance(rec, dict):
        return may_read_evidence(read, rec, who)
    if key.startswith("case/c/") and isinstance(rec, dict):
        return may_read_case(read, rec, who)
    return _privileged(read, who)


def private_tx(tx_type: Any) -> bool:
    return tx_type in PRIVATE_TX_TYPES


def may_read_tx(read: Read, body: Any, who: Reader | None) -> bool:
    """Whether ``who`` may read a transaction (its ``body``: type, sender, payload) and its
    receipt: any transaction but the private types; those by their sender, and by whoever
    may read the evidence or case record the payload names."""
    if not isinstance(body, dict) or not private_tx(body.get("type")):
        return True
    if who is None:
        return False
    try:
        if account_of(bytes.fromhex(str(body.get("sender")))) == who.account:
            return True
    except ValueError:
        pass
    raw = body.get("payload")
    payload: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if body["type"] == "evidence.file":
        return _record_readable(read, "evidence/e/", payload.get("evidence_id"), who)
    return _record_readable(read, "case/c/", payload.get("case_id"), who)


def _record_readable(read: Read, prefix: str, rid: Any, who: Reader) -> bool:
    rec = _json(read, prefix + rid) if isinstance(rid, str) else None
    if not isinstance(rec, dict):
        return _privileged(read, who)  # a refused filing or move: its sender and courts only
    return may_read_evidence(read, rec, who) if prefix == "evidence/e/" else may_read_case(read, rec, who)


def may_read_event(read: Read, event: dict[str, Any], who: Reader | None) -> bool:
    """An ``evidence.*`` or ``case.*`` event follows the record its data names."""
    inner = event.get("event")
    ev: dict[str, Any] = inner if isinstance(inner, dict) else event
    if not str(ev.get("type", "")).startswith(PRIVATE_EVENTS):
        return True
    if who is None:
        return False
    raw = ev.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if isinstance(data.get("evidence_id"), str):
        return _record_readable(read, "evidence/e/", data["evidence_id"], who)
    return _record_readable(read, "case/c/", data.get("case_id"), who)
