"""Admission verdicts remembered across blocks (a node-local cache, never part of consensus).

Whether a sender may transact (``Governance.sender_until``) depends only on the ``sys/``
state (validator schedule, revocations, users, parameters) and on the time, through the
user certificate's expiry alone. So a "yes" read from committed state at height ``h`` holds
for every time up to its ``until`` for as long as no block writes a ``sys/`` key. Under load
a node sees the same few thousand senders block after block; looking each one up again per
block (schedule, user record, parameters: ~30 us) was a few percent of a validator's CPU.

Rules, each keeping the answer exactly what a fresh look-up would give:
- only "yes" verdicts are carried across blocks; a refusal is remembered until the next
  commit only (the mempool) or within one block (execution);
- the cache belongs to one committed height; a commit that wrote any ``sys/`` key, or a
  height change this class did not see, empties it;
- within a block, verdicts are shared with the cache only until the first transaction (or
  ``begin_block``) writes a ``sys/`` key; after that the block looks senders up against its
  own staged state, as before;
- the bootstrap types are judged every time (what they carry is what is checked).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..governance.admission import BOOTSTRAP
from ..tx import Transaction

if TYPE_CHECKING:
    from ..governance import Governance

Reader = Callable[[bytes], bytes | None]
MAX_SENDERS = 100_000  # beyond this the cache starts again (bounded memory)


class Admissions:
    def __init__(self) -> None:
        self._until: dict[bytes, int] = {}  # sender -> admitted at every time up to this (ms)
        self._height = -1  # the committed height the verdicts were read at
        self._refused: dict[bytes, str] = {}  # mempool refusals at ``_height``

    def _at(self, height: int) -> None:
        if height != self._height or len(self._until) > MAX_SENDERS:
            self._until.clear()
            self._refused.clear()
            self._height = height

    # ------------------------------------------------------------ mempool
    def mempool(self, gov: Governance, read: Reader, tx: Transaction, height: int) -> str | None:
        """``gov.admission_error(read, tx)`` now, for committed state at ``height``."""
        if tx.type in BOOTSTRAP:
            return gov.admission_error(read, tx)
        self._at(height)
        now = int(time.time() * 1000)
        until = self._until.get(tx.sender)
        if until is not None and now <= until:
            return None
        refused = self._refused.get(tx.sender)
        if refused is not None:
            return refused
        error, until = gov.sender_until(read, tx, now)
        if error is not None:
            self._refused[tx.sender] = error
        elif until > 0:
            self._until[tx.sender] = until
        return error

    # ------------------------------------------------------------ execution
    def block(self, height: int, shared: bool) -> BlockAdmissions:
        """The verdicts of block ``height``; ``shared``: no ``sys/`` key is staged yet."""
        return BlockAdmissions(self, height, shared)

    def committed(self, height: int, carried: dict[bytes, int] | None) -> None:
        """Block ``height`` is committed; ``carried``: its fresh "yes" verdicts, or None when
        it wrote a ``sys/`` key (then nothing read before it is kept)."""
        if carried is None or self._height != height - 1:
            self._until.clear()
        if carried is not None:  # read from the state at height - 1, which no sys/ write changed
            self._until.update(carried)
        self._refused.clear()
        self._height = height


class BlockAdmissions:
    """One block's sender verdicts (``Governance.sender_until`` at the block's time)."""

    def __init__(self, cache: Admissions, height: int, shared: bool) -> None:
        self.cache = cache
        self.height = height
        self.shared = shared  # no sys/ key staged so far in this block
        self.use_cache = shared and cache._height == height - 1  # the cache holds the parent's verdicts
        self.memo: dict[bytes, tuple[str | None, int]] = {}

    def error(self, gov: Governance, read: Reader, tx: Transaction, time_ms: int) -> str | None:
        if tx.type in BOOTSTRAP:
            return gov.sender_error(read, tx, time_ms)
        if self.use_cache:
            until = self.cache._until.get(tx.sender)
            if until is not None and time_ms <= until:
                return None
        try:
            return self.memo[tx.sender][0]
        except KeyError:
            verdict = self.memo[tx.sender] = gov.sender_until(read, tx, time_ms)
            return verdict[0]

    def sys_written(self) -> None:
        """A transaction of this block wrote a ``sys/`` key: forget what was read before it."""
        self.shared = self.use_cache = False
        self.memo.clear()

    def carried(self) -> dict[bytes, int] | None:
        """What the committed block hands on (None: it wrote a ``sys/`` key)."""
        if not self.shared:
            return None
        return {sender: until for sender, (error, until) in self.memo.items() if error is None and until > 0}
