"""The writes of one block before they reach the state tree, with nested snapshots (used by the
tests only: the node's application stages writes in ``ledger.contracts.context.Context``).

Owns ``StateBuffer``: a read-through overlay over one committed version of an
``AuthenticatedState`` that records sets and deletes in a journal, so that a transaction
(or a contract call inside it) can ``snapshot`` and ``revert`` its own writes, as py-evm's
state does. ``updates()`` is the batch to hand to ``AuthenticatedState.apply``. Must not
write to the tree or the store itself.
"""

from __future__ import annotations

from typing import cast

from ledger.state.abc import AuthenticatedState
from ledger.state.errors import InvalidArgument

_ABSENT = object()


class StateBuffer:
    """Pending writes over ``state`` at ``version`` (default: its last committed version)."""

    def __init__(self, state: AuthenticatedState, version: int | None = None) -> None:
        self._state = state
        self._version = state.version if version is None else version
        self._writes: dict[bytes, bytes | None] = {}
        self._journal: list[tuple[bytes, object]] = []  # (key, previous pending entry or _ABSENT)

    @property
    def base_version(self) -> int:
        return self._version

    def get(self, key: bytes) -> bytes | None:
        """The value as this block sees it: its own pending writes first, then the tree."""
        if key in self._writes:
            return self._writes[key]
        return self._state.get(key, self._version)

    def _record(self, key: bytes, value: bytes | None) -> None:
        if not isinstance(key, bytes):
            raise InvalidArgument(f"state keys must be bytes, got {type(key).__name__}")
        self._journal.append((key, self._writes.get(key, _ABSENT)))
        self._writes[key] = value

    def set(self, key: bytes, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise InvalidArgument(f"state values must be bytes, got {type(value).__name__}")
        self._record(key, value)

    def delete(self, key: bytes) -> None:
        self._record(key, None)

    def snapshot(self) -> int:
        """A point to ``revert`` to later; snapshots nest."""
        return len(self._journal)

    def revert(self, snapshot: int) -> None:
        """Undo every write made since ``snapshot`` was taken."""
        if not 0 <= snapshot <= len(self._journal):
            raise InvalidArgument(f"snapshot {snapshot} is unknown or already reverted past")
        while len(self._journal) > snapshot:
            key, previous = self._journal.pop()
            if previous is _ABSENT:
                del self._writes[key]
            else:
                self._writes[key] = cast("bytes | None", previous)

    def updates(self) -> dict[bytes, bytes | None]:
        """The block's net writes (``None`` deletes), for ``AuthenticatedState.apply``."""
        return dict(self._writes)
