"""The messages nodes exchange, each with the validator that checks its shape before any
handler sees it (a table, in the manner of indy-plenum's services and validators).

Every message is a canonical JSON object with a ``type``:

===============  ============================================  ==========================
type             fields                                         handled by
===============  ============================================  ==========================
``proposal``     ``block``, ``sig``, ``tc`` (or null)           gossip (bodies), engine
``vote``         ``height``, ``view``, ``block``, ``by``, ``sig``  engine
``timeout``      ``view``, ``high_qc``, ``by``, ``sig``         engine
``txs``          ``txs``: list of signed transactions           gossip
``get_txs``      ``ids``: list of hex ids (at most 10,000)      gossip
``get_block``    ``hash``: hex                                  gossip
``block``        ``block``                                      gossip → engine
``get_chain``    ``from`` >= 1, ``count`` >= 1                  sync
``chain``        ``items``: list of ``{block, qc, txs}``        sync
===============  ============================================  ==========================

A validator raises ``InvalidMessage``; the node logs the message as ignored and goes on.
The wire frame that carries a message is specified in docs/spec/consensus.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..consensus.errors import InvalidMessage
from ..tx import Transaction

__all__ = ["MAX_GET_TXS", "VALIDATORS", "txs_message", "validate"]

MAX_GET_TXS = 10_000


def txs_message(txs: list[Transaction]) -> bytes:
    """``canonical({"txs": [...], "type": "txs"})`` built from each transaction's own
    canonical bytes, without decoding and re-encoding them (the gossip hot path)."""
    return b'{"txs":[' + b",".join(t.encode() for t in txs) + b'],"type":"txs"}'


def _need(msg: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in msg:
        raise InvalidMessage(f"{msg.get('type', 'message')} lacks {name!r}")
    value = msg[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InvalidMessage(f"{msg.get('type', 'message')}: field {name!r} has the wrong type")
    return value


def _hex_list(msg: dict[str, Any], name: str, limit: int) -> None:
    items = _need(msg, name, list)
    if len(items) > limit or not all(isinstance(x, str) for x in items):
        raise InvalidMessage(f"{msg.get('type')}: {name!r} must be a list of at most {limit} hex strings")


def _proposal(msg: dict[str, Any]) -> None:
    block = _need(msg, "block", dict)
    _need(block, "tx_ids", list)
    _need(block, "header", dict)
    _need(msg, "sig", str)


def _vote(msg: dict[str, Any]) -> None:
    for name in ("height", "view"):
        _need(msg, name, int)
    for name in ("block", "by", "sig"):
        _need(msg, name, str)


def _timeout(msg: dict[str, Any]) -> None:
    _need(msg, "view", int)
    _need(msg, "high_qc", dict)
    for name in ("by", "sig"):
        _need(msg, name, str)


def _txs(msg: dict[str, Any]) -> None:
    _need(msg, "txs", list)


def _get_txs(msg: dict[str, Any]) -> None:
    _hex_list(msg, "ids", MAX_GET_TXS)


def _get_block(msg: dict[str, Any]) -> None:
    _need(msg, "hash", str)


def _block(msg: dict[str, Any]) -> None:
    _need(msg, "block", dict)


def _get_chain(msg: dict[str, Any]) -> None:
    if _need(msg, "from", int) < 1 or _need(msg, "count", int) < 1:
        raise InvalidMessage("get_chain needs integer from >= 1 and count >= 1")


def _chain(msg: dict[str, Any]) -> None:
    items = _need(msg, "items", list)
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("txs"), list):
            raise InvalidMessage("chain items must be objects {block, qc, txs}")


VALIDATORS: dict[str, Callable[[dict[str, Any]], None]] = {
    "proposal": _proposal, "vote": _vote, "timeout": _timeout, "txs": _txs, "get_txs": _get_txs,
    "get_block": _get_block, "block": _block, "get_chain": _get_chain, "chain": _chain,
}


def validate(msg: Any) -> str:
    """The message's type, after its validator accepted it."""
    if not isinstance(msg, dict):
        raise InvalidMessage("is not an object")
    kind = msg.get("type")
    check = VALIDATORS.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise InvalidMessage(f"unknown message type {kind!r}")
    check(msg)
    return str(kind)
