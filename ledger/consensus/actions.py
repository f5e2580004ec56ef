"""What the engine asks its host to do: the actions an event returns, carried out in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .types import Block, QuorumCertificate


@dataclass(frozen=True)
class Broadcast:
    message: dict[str, Any]


@dataclass(frozen=True)
class SendTo:
    target: str
    message: dict[str, Any]


@dataclass(frozen=True)
class Persist:
    """Must be durable before any later action of the same batch is carried out."""

    highest_voted_view: int
    high_qc: QuorumCertificate


@dataclass(frozen=True)
class Committed:
    """Blocks newly committed, in height order, each with the QC that certifies it."""

    blocks: tuple[tuple[Block, QuorumCertificate], ...]


@dataclass(frozen=True)
class SetTimer:
    """Arm the timer of this kind (replacing the one armed before); when it fires, call
    ``Engine.on_timer(kind, view)``. The engine never cancels a timer: one that fires for a
    view it has left is ignored."""

    kind: str  # "view" | "propose"
    view: int
    delay: float  # seconds


@dataclass(frozen=True)
class Fetch:
    block: bytes
    peer: str


@dataclass(frozen=True)
class Evidence:
    kind: str  # "double-proposal" | "double-vote"
    offender: str
    view: int
    first: dict[str, Any]
    second: dict[str, Any]


Action = Broadcast | SendTo | Persist | Committed | SetTimer | Fetch | Evidence
