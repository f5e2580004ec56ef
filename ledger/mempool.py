"""The mempool: verified transactions waiting for a block, bounded and fair across senders.

- Admission refuses duplicates, replays (an id or a ``(sender, nonce)`` already committed,
  asked through ``is_committed``/``nonce_used``), expired transactions and, when full, the
  newcomer (never an admitted one). A sender may hold at most ``per_sender`` pending
  transactions, so one busy account cannot crowd out the others.
- ``take`` builds a block's batch round-robin across senders (arrival order within a
  sender), skipping ids already in uncommitted blocks, up to a count and a byte budget;
  expired transactions met on the way are dropped.
- The signature is checked by the caller before ``add`` (once per node; see ``crypto.keycache.KeyCache``).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable

from .tx import InvalidTransaction, Transaction


class MempoolFull(InvalidTransaction):
    """No room: the submitter should retry later."""


class Mempool:
    def __init__(
        self,
        *,
        capacity: int = 100_000,
        per_sender: int = 20_000,
        is_committed: Callable[[bytes], bool] = lambda _id: False,
        nonce_used: Callable[[bytes], bool] = lambda _key: False,
    ) -> None:
        self.capacity = capacity
        self.per_sender = per_sender
        self.is_committed = is_committed
        self.nonce_used = nonce_used
        self._by_id: dict[bytes, Transaction] = {}
        self._nonces: set[bytes] = set()
        self._queues: OrderedDict[bytes, deque[bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._by_id

    def get(self, tx_id: bytes) -> Transaction | None:
        return self._by_id.get(tx_id)

    def add(self, tx: Transaction, height: int) -> None:
        """Admit a transaction whose signature the caller verified; raise with a reason."""
        if tx.id in self._by_id:
            raise InvalidTransaction("already pending")
        if self.is_committed(tx.id):
            raise InvalidTransaction("already committed")
        if tx.expiry < height:
            raise InvalidTransaction(f"transaction expired at height {tx.expiry}")
        key = tx.nonce_key
        if key in self._nonces or self.nonce_used(key):
            raise InvalidTransaction(f"nonce {tx.nonce} of this sender is already used")
        queue = self._queues.get(tx.sender)
        if queue is not None and len(queue) >= self.per_sender:
            raise MempoolFull(f"this sender already has {self.per_sender} pending transactions")
        if len(self._by_id) >= self.capacity:
            raise MempoolFull(f"mempool is full ({self.capacity} transactions); retry later")
        self._by_id[tx.id] = tx
        self._nonces.add(key)
        if queue is None:
            queue = self._queues[tx.sender] = deque()
        queue.append(tx.id)

    def take(self, max_count: int, max_bytes: int, height: int,
             exclude: Collection[bytes] = ()) -> list[Transaction]:
        """A batch for a block at ``height``, round-robin across senders."""
        out: list[Transaction] = []
        size = 0
        cursors = {s: 0 for s in self._queues}
        active = list(self._queues)
        expired: list[bytes] = []
        while active and len(out) < max_count:
            still = []
            for sender in active:
                queue = self._queues[sender]
                i = cursors[sender]
                while i < len(queue):
                    tx = self._by_id[queue[i]]
                    i += 1
                    if tx.expiry < height:
                        expired.append(tx.id)
                        continue
                    if tx.id in exclude:
                        continue
                    n = len(tx.body_bytes) + 2 * len(tx.signature)
                    if size + n > max_bytes:
                        i = len(queue)
                        break
                    out.append(tx)
                    size += n
                    break
                cursors[sender] = i
                if i < len(queue):
                    still.append(sender)
                if len(out) >= max_count:
                    break
            active = still
        self.remove(expired)
        return out

    def remove(self, tx_ids: Iterable[bytes]) -> None:
        """Forget transactions (committed, or expired)."""
        for tx_id in tx_ids:
            tx = self._by_id.pop(tx_id, None)
            if tx is None:
                continue
            self._nonces.discard(tx.nonce_key)
            queue = self._queues.get(tx.sender)
            if queue is not None:
                try:
                    queue.remove(tx_id)
                except ValueError:
                    pass
                if not queue:
                    del self._queues[tx.sender]

    def senders(self) -> int:
        return len(self._queues)
