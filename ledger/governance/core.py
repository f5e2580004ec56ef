"""``Governance``: the governance transaction types, the per-block hook and the views a node
needs, over the modules of this package. Each rule gets the block context as an argument."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..consensus.types import Block
from ..contracts.context import Context, TxType
from ..tx import Transaction
from . import admission, members, proposals
from .base import K_PERMS, BlockContext, GovernanceRefused, Reader, Writes, consensus_changed
from .evidence import node_evidence, offence
from .schedule import missed_turns
from .views import Views

Rule = Callable[[Views, BlockContext, Transaction, Reader], Writes]

TX_RULES: dict[str, Rule] = {
    "gov.propose": proposals.propose,
    "gov.vote": proposals.vote,
    "node.join": members.node_join,
    "node.certify": members.node_certify,
    "node.exit": members.node_exit,
    "node.evidence": node_evidence,
    "user.register": members.user_register,
    "user.revoke": members.user_revoke,
}


class Governance(Views):
    """Governance state machine and the views of it the node needs (validator set by height,
    parameters, revocations). Holds only the chain's genesis facts and pure caches."""

    PERMS_KEY = K_PERMS

    def types(self) -> dict[str, TxType]:
        """The governance transaction types: administrative, run in block order."""
        return {name: TxType(self._runner(rule), admin=True) for name, rule in TX_RULES.items()}

    def _runner(self, rule: Rule) -> Callable[[Context], None]:
        def run(ctx: Context) -> None:
            ctx.writes.update(rule(self, BlockContext(ctx.height, ctx.time_ms), ctx.tx, ctx.get))
        return run

    def begin_block(self, height: int, block: Block | None, read: Reader) -> Writes:
        """State changes before a block's transactions: missed leader turns (§7)."""
        time_ms = int(block.header.get("time", 0)) if block is not None else 0
        return missed_turns(self, BlockContext(height, time_ms, block), read)

    def permission_error(self, perms: Mapping[str, Any], tx: Transaction, read: Reader,
                         height: int) -> str | None:
        """Why the sender may not send this type under the rules ``perms`` (None: it may)."""
        return admission.permission_error(self, perms, tx, read, height)

    def admission_error(self, read: Reader, tx: Transaction, time_ms: int | None = None) -> str | None:
        """For the mempool, before admitting ``tx`` (``time_ms``: now by default): why it would
        be refused for who sent it (None: admit). An unbound key may send only the bootstrap
        types, and only when what they carry holds now: a ``user.register`` certificate valid
        for the sender, ``node.evidence`` that proves an offence."""
        now = int(time.time() * 1000) if time_ms is None else time_ms
        if self.params(read).open_admission or tx.type not in admission.BOOTSTRAP:
            return admission.sender_error(self, tx, read, now)
        try:
            if tx.type == "user.register":
                members.user_certificate(self, tx, read, now)
            elif tx.type == "node.evidence":
                offence(self, tx.payload, self.schedule(read))
        except GovernanceRefused as exc:
            return str(exc)
        return None

    def sender_error(self, read: Reader, tx: Transaction, time_ms: int) -> str | None:
        """At execution, through the path of ``permission_error``: why the sender of ``tx`` may
        not transact in a block of time ``time_ms`` (None: it may)."""
        return admission.sender_error(self, tx, read, time_ms)

    def sender_until(self, read: Reader, tx: Transaction, time_ms: int) -> tuple[str | None, int]:
        """``sender_error`` and, when it is None, the last block time (ms) it stays None for
        while no ``sys/`` key changes (0 for the bootstrap types: judge them every time)."""
        return admission.sender_until(self, tx, read, time_ms)

    @staticmethod
    def changed(writes: Mapping[bytes, bytes | None]) -> bool:
        """Whether a block's writes changed the schedule, the parameters or a node's standing:
        the node then reloads them and its peers (docs/governance.md §9)."""
        return consensus_changed(writes)
