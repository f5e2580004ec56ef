"""Routes that take a user's signed transaction, submit it and answer once it is committed
(``POST /v1/evidence``, ``POST /v1/cases/{id}/move``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ledger.contracts.context import account_of
from ledger.node.intake import TxIntake
from ledger.node.runtime import Node
from ledger.tx import Transaction

from ..auth import Identity
from ..errors import ApiError

COMMIT_WAIT_S = 60.0
POLL_S = 0.1


async def one_tx(intake: TxIntake, raw: bytes, ident: Identity, type_: str) -> Transaction:
    """The one ``type_`` transaction of ``raw``, its signature verified, sent by the signer of
    the request."""
    checked = await intake.check(raw)
    if checked.batch or len(checked.items) != 1:
        raise ApiError(422, "invalid_request", f"the body is one {type_} transaction")
    tx, reason = checked.items[0]
    if tx is None or reason is not None:
        raise ApiError(422, "invalid_transaction", str(reason))
    if tx.type != type_:
        raise ApiError(422, "invalid_transaction", f"the transaction is a {tx.type}, not a {type_}")
    if account_of(tx.sender) != ident.account:
        raise ApiError(403, "forbidden", "the transaction's sender is not the signer of the request")
    return tx


async def submit_and_wait(node: Node, tx: Transaction, timeout: float = COMMIT_WAIT_S) -> dict[str, Any]:
    """Admit ``tx`` and wait until it is committed: ``{"height", "code", "info"}``. A refusal
    at admission is 400 ``transaction_refused``; a committed refusal (code != 0) 409
    ``transaction_failed`` with the contract's reason; no commit in ``timeout`` 504."""
    chain = node.app.chain
    if chain.tx(tx.id) is None:
        [(_, reason)] = node.submit([tx], verified=True)
        if reason is not None and reason != "already committed":
            raise ApiError(400, "transaction_refused", reason, {"id": tx.id_hex})
    deadline = time.monotonic() + timeout
    while (rec := chain.tx(tx.id)) is None:
        if time.monotonic() > deadline:
            raise ApiError(504, "not_committed", f"transaction {tx.id_hex} was not committed within {timeout:.0f} s; "
                           "it may still be", {"id": tx.id_hex})
        await asyncio.sleep(POLL_S)
    if rec.code != 0:
        raise ApiError(409, "transaction_failed", rec.info, {"id": tx.id_hex, "code": rec.code, "height": rec.height})
    return {"height": rec.height, "code": rec.code, "info": rec.info}
