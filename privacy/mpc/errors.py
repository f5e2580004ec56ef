"""Every error the MPC engine raises. A run either returns the declared outputs or raises one
of these; it never returns a partial or unchecked result."""

from __future__ import annotations


class MPCError(Exception):
    """Base class of the engine's errors."""


class QueryError(MPCError):
    """The query, the party list or the schema is not acceptable (checked before any message)."""


class InputError(MPCError):
    """This party's own data breaks the declared schema (``row`` names the CSV line when known)."""

    def __init__(self, message: str, row: int | None = None, rule: str | None = None) -> None:
        super().__init__(f"row {row}: {message}" if row is not None else message)
        self.row = row
        self.rule = message if rule is None else rule  # the rule broken, without the data's values

    @property
    def public(self) -> str:
        """What may leave the party (e.g. into a public abort record): the row number and the
        rule broken, never the offending value, content id or file path."""
        return f"row {self.row}: {self.rule}" if self.row is not None else self.rule


class PartyError(MPCError):
    """The run aborted because of one party: it is unreachable, died, timed out, presented the
    wrong certificate, disagreed on the computation, or sent a malformed or out-of-range message."""

    def __init__(self, party: str, reason: str) -> None:
        super().__init__(f"party {party}: {reason}")
        self.party = party
        self.reason = reason
