"""One node process: ``python -m api.node_main NODE_FOLDER`` (``rongxin node run``).

Holds an exclusive ``flock`` on ``NODE_FOLDER/lock`` for its whole life (so a second start
is refused and liveness can be read without trusting pids), opens the store, joins the peer
network over TLS, serves the HTTP API, and stops cleanly on SIGTERM or Ctrl-C. Its helper
processes (contract execution and transaction verification workers) die with it; a restart
resumes from the store.

This module stays light (standard library only at import): worker processes started with
``forkserver`` import the parent's main module again. The node itself is ``node_run``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
from pathlib import Path
from typing import IO

from ledger.errors import LedgerError


class AlreadyRunning(LedgerError):
    """Another process holds this node's folder."""


def take_lock(folder: Path) -> IO[bytes]:
    fh = open(folder / "lock", "ab")  # held for the process's life
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise AlreadyRunning(f"node {folder.name} is already running (its folder is locked)") from None
    return fh


def is_running(folder: Path) -> bool:
    """True when a live process holds the node folder's lock."""
    path = folder / "lock"
    if not path.exists():
        return False
    with open(path, "ab") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m api.node_main NODE_FOLDER", file=sys.stderr)
        return 2
    from .logs import configure  # standard library only; node_run applies operations.toml's settings

    level = os.environ.get("RONGXIN_LOG", "INFO")
    fmt = os.environ.get("RONGXIN_LOG_FORMAT", "json")
    if fmt not in ("json", "text") or level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        print("rongxin node: error: RONGXIN_LOG_FORMAT is json or text, RONGXIN_LOG DEBUG, INFO, WARNING or ERROR",
              file=sys.stderr)
        return 2
    configure(fmt, level)
    # RONGXIN_SM2_TABLES=0: verify every signature with OpenSSL's SM2 verify alone, never with
    # precomputed multiples of frequent keys (docs/crypto.md)
    tables = os.environ.get("RONGXIN_SM2_TABLES", "1")
    if tables not in ("0", "1"):
        print(f"rongxin node: error: RONGXIN_SM2_TABLES must be 0 or 1, not {tables!r}", file=sys.stderr)
        return 2
    # imported here, not at the top: a helper process started by ``forkserver`` re-imports this
    # module as its main module, and would otherwise pay for the whole node (~1 s of CPU each)
    from ledger.crypto.sm2 import use_tables
    from ledger.node.config import ConfigError

    # node_run raises the class of ``api.node_main``: under ``python -m`` this module is
    # ``__main__``, whose own ``AlreadyRunning`` is another class
    from .node_main import AlreadyRunning as Locked
    from .node_run import run

    use_tables(tables == "1")
    try:
        asyncio.run(run(Path(args[0]), tables == "1"))
    except (Locked, ConfigError) as exc:
        print(f"rongxin node: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

