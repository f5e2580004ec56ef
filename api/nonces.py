"""The nonces of signed requests a node has seen (docs/api-auth.md §5): a small SQLite file in
the node's folder, so a replay is refused after a restart too. Bounded: an entry lives only
as long as its timestamp is inside the window (after that the timestamp check refuses the
request anyway), expired entries are pruned, and a full store refuses new requests (503)
rather than forgetting live nonces."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .errors import ApiError

MAX_NONCES = 1_000_000
PRUNE_EVERY = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    signer TEXT NOT NULL, nonce TEXT NOT NULL, expires INTEGER NOT NULL,
    PRIMARY KEY (signer, nonce)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_expires ON nonces (expires);
"""


class NonceStore:
    """``use(signer, nonce, expires, now)``: True the first time, False for a replay."""

    def __init__(self, path: Path | None, max_entries: int = MAX_NONCES) -> None:
        self.path = path
        self.max_entries = max_entries
        try:
            self._db = sqlite3.connect(str(path) if path is not None else ":memory:", isolation_level=None,
                                       check_same_thread=False, timeout=5)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a spent nonce is on disk before the request is served, so neither a crash nor
            # a power cut lets a request signed just before it be replayed after the restart
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._count = int(self._db.execute("SELECT COUNT(*) FROM nonces").fetchone()[0])
        except sqlite3.Error as exc:
            raise OSError(f"cannot open the nonce store {path}: {exc}") from None
        self._since_prune = 0

    def _prune(self, now: int) -> None:
        self._db.execute("DELETE FROM nonces WHERE expires < ?", (now,))
        self._count = int(self._db.execute("SELECT COUNT(*) FROM nonces").fetchone()[0])
        self._since_prune = 0

    def use(self, signer: str, nonce: str, expires: int, now: int) -> bool:
        try:
            if self._since_prune >= PRUNE_EVERY or self._count >= self.max_entries:
                self._prune(now)
            if self._count >= self.max_entries:
                raise ApiError(503, "auth_busy", "too many signed requests in the replay window; retry later")
            cur = self._db.execute("INSERT OR IGNORE INTO nonces VALUES (?, ?, ?)", (signer, nonce, expires))
        except sqlite3.Error as exc:
            raise ApiError(503, "auth_busy", f"the nonce store is unavailable: {type(exc).__name__}") from None
        if cur.rowcount != 1:
            return False
        self._count += 1
        self._since_prune += 1
        return True

    def close(self) -> None:
        self._db.close()
