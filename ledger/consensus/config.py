"""The engine's settings and what it needs from its host: a payload and two clocks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .types import Block, QuorumCertificate


def system_wall_ms() -> int:
    """The host's wall clock (Unix time) in whole milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass
class Config:
    """Consensus settings; the node sets them from the chain parameters.

    Times of the pacemaker are in seconds, those of the block-time rule in milliseconds
    (docs/spec/consensus.md, "Block time").
    """

    chain: str
    base_timeout: float = 3.0
    block_interval: float = 0.2  # target spacing between blocks while work is pending
    idle_interval: float = 60.0  # at most one (heartbeat) block per idle interval
    time_precision: int = 500  # ms: the bound on the difference between honest clocks
    message_delay: int = 2000  # ms: the bound on a proposal's delivery time
    # seconds on a monotonic clock; with it the block interval is measured from when this node
    # saw the parent block (a target spacing between blocks), without it from entering the view
    clock: Callable[[], float] | None = None
    # the node's wall clock in ms: stamps its proposals and judges others' block times
    wall: Callable[[], int] = field(default=system_wall_ms)


class Payload(Protocol):
    """What the engine needs from the node: block contents and their validation."""

    def propose(self, parent: Block, height: int) -> tuple[list[bytes], dict[str, Any]]:
        """(transaction ids, header fields) for a new block on ``parent``. The fields (today
        ``exec``; each a ``{"height", ...}`` object naming the executed height it certifies)
        are merged into the header; the engine's own fields (``ENGINE_FIELDS``) win."""
        ...

    def validate(self, block: Block, parent: Block) -> None:
        """Raise ``InvalidMessage`` unless the block's transactions and header fields are
        acceptable (the engine has checked the block time)."""
        ...

    def has_work(self) -> bool:
        """True when transactions wait to be proposed."""
        ...

    def commit(self, blocks: tuple[tuple[Block, QuorumCertificate], ...]) -> None:
        """Execute newly committed blocks, synchronously, before the engine goes on (so the
        next ``validate`` sees their state). Raises ``NotReady`` when a block cannot run yet
        (bodies still on their way): the engine keeps it and retries (``retry_commit``)."""
        ...
