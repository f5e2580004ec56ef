"""The node runs the forensics contracts' own checks before it stores a file or submits a
transaction, so a request the contract would refuse is answered 4xx with the contract's reason
and leaves nothing behind (docs/works.md §6.2). Nothing here is a second copy of a rule: each
function runs the contract code itself (``contracts.register``, ``cases.check_filing``, any
handler) in a scratch ``Context`` over the committed state, whose writes are dropped.

The answer is the contract's verdict *now*: the state may change before the transaction is
executed (another filing takes the evidence id, the holder is revoked), and the contract has
the last word. The governance permission rules (docs/governance.md §4.8) are checked first,
as the block does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ledger.codec import canonical
from ledger.contracts.context import Context, Reader, Refused, TxType
from ledger.crypto import sm3
from ledger.governance.admission import permission_error
from ledger.governance.views import Views
from ledger.tx import Transaction

from .cases import check_filing
from .contracts import register
from .rules import FormRefused

__all__ = ["check_registration", "check_unsigned_filing", "contract_refusal"]


def _unsigned(chain: str, sender: bytes, type_: str, payload: dict[str, Any], height: int) -> Transaction:
    """A transaction as the contract sees it, before its sender signed it (no signature; the
    handlers never read it: the block checked it)."""
    body = canonical(Transaction.body_of(chain, sender, 0, type_, payload, height))
    return Transaction(chain, sender, 0, type_, payload, height, b"", body, sm3(body))


def _permitted(views: Views, read: Reader, tx: Transaction, height: int) -> None:
    perms = views.perms(read)
    denied = permission_error(views, perms, tx, read, height) if perms else None
    if denied is not None:
        raise FormRefused(denied)


@contextmanager
def _as_form_refused() -> Iterator[None]:
    """Any refusal of the contract code (``FormRefused``, or an argument check's
    ``TokenRefused``) as ``FormRefused`` with the same reason."""
    try:
        yield
    except FormRefused:
        raise
    except Refused as exc:
        raise FormRefused(str(exc) or type(exc).__name__) from None


def check_registration(views: Views, read: Reader, *, chain: str, holder: bytes, payload: dict[str, Any],
                       height: int, time_ms: int) -> None:
    """Raise ``FormRefused`` (the receipt's reason) if ``works.register`` of ``payload`` by the
    key ``holder`` would be refused at ``height`` over the state ``read``: every check of
    docs/works.md §3.2, run by ``contracts.register`` itself."""
    tx = _unsigned(chain, holder, "works.register", payload, height)
    with _as_form_refused():
        _permitted(views, read, tx, height)
        register(views, Context(tx, height, time_ms, read))


def check_unsigned_filing(views: Views, read: Reader, *, chain: str, filer: bytes, evidence_id: str,
                          manifest: dict[str, Any], height: int, time_ms: int) -> None:
    """Raise ``FormRefused`` if ``evidence.file`` of this manifest by the key ``filer`` would be
    refused, but for the filer's signature (not made yet) and the ``case`` (not chosen yet):
    ``cases.check_filing(signed=False)``."""
    tx = _unsigned(chain, filer, "evidence.file", {"evidence_id": evidence_id, "manifest": manifest}, height)
    with _as_form_refused():
        _permitted(views, read, tx, height)
        check_filing(views, Context(tx, height, time_ms, read), signed=False)


def contract_refusal(views: Views, types: Mapping[str, TxType], read: Reader, tx: Transaction, *, height: int,
                     time_ms: int) -> str | None:
    """Why the signed ``tx`` would be refused at ``height`` (its receipt's ``info``), or None:
    the permission rules, then the handler of its type run in full."""
    try:
        _permitted(views, read, tx, height)
        ttype = types.get(tx.type)
        if ttype is None:
            return f"unknown transaction type {tx.type!r}"
        ttype.run(Context(tx, height, time_ms, read))
    except Refused as exc:
        return str(exc) or type(exc).__name__
    return None
