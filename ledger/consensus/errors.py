"""Errors of the consensus engine."""

from __future__ import annotations

from ..errors import LedgerError


class ConsensusError(LedgerError):
    """Base of consensus errors."""


class InvalidMessage(ConsensusError):
    """A consensus message is malformed, unsigned, wrongly signed or breaks a rule; it is
    ignored and logged, never acted on."""


class SafetyViolation(ConsensusError):
    """The local node was asked to do something that could break safety (a bug)."""


class NotReady(ConsensusError):
    """The payload cannot execute a committed block yet (e.g. transaction bodies are still on
    their way); the engine keeps the block and retries it with the next commit."""
