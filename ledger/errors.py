"""The root of every error the ledger layer raises.

Sub-packages derive their own typed errors from ``LedgerError`` (``ledger.crypto.errors``,
...), so callers can catch the whole layer in one place and the API maps them to status
codes in one place.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error raised by ``ledger``; its message is meant for the user."""
