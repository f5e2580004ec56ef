"""What every governance module shares: state keys, the refusal type, the block context and
small readers. Governance state is canonical JSON under ``sys/`` in the SM3 sparse Merkle tree
(the key table is in ``ledger/governance/__init__.py`` and docs/governance.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..codec import parse
from ..consensus.types import Block
from ..contracts.context import Refused

Reader = Callable[[bytes], bytes | None]
Writes = dict[bytes, bytes | None]

K_PARAMS = b"sys/params"
K_VALIDATORS = b"sys/validators"
K_PROPOSAL = b"sys/proposal/"
K_JOIN = b"sys/join/"
K_NODE = b"sys/node/"
K_REVOKED = b"sys/revoked/"
K_MISSED = b"sys/missed"
K_EVIDENCE = b"sys/evidence/"
K_ORGS = b"sys/orgs"
K_USER = b"sys/user/"
K_POLICY = b"sys/policy"
K_PERMS = b"sys/perms"

ORG_ROLES = ("supervisor", "consensus", "media", "platform", "legal", "court", "regulator")
MIN_VALIDATORS = 4  # below this a BFT set tolerates no fault: removals stop there
DEFAULT_TTL = 1000
MAX_TTL = 1_000_000
MAX_PEM_CHARS = 16_384
ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


class GovernanceRefused(Refused):
    """A governance transaction is refused; the message goes into its receipt."""


@dataclass(frozen=True)
class BlockContext:
    """What a governance rule knows of the block being executed; passed to every rule as an
    argument (nothing about a block is kept between calls)."""

    height: int
    time_ms: int
    block: Block | None = None


def get(read: Reader, key: bytes) -> Any:
    raw = read(key)
    return None if raw is None else parse(raw)


def node_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not set(value) <= ID_CHARS:
        raise GovernanceRefused("node ids are 1-64 characters of a-z, 0-9, '-', '_' and '.'")
    return value


def exact(payload: Mapping[str, Any], names: set[str], usage: str) -> None:
    """Refuse with ``usage`` unless ``payload`` has exactly the members ``names``."""
    if set(payload) != names:
        raise GovernanceRefused(usage)


def consensus_changed(writes: Mapping[bytes, bytes | None]) -> bool:
    """Whether a block's writes change what a node applies after it (the validator schedule,
    the chain parameters, a node admitted or revoked): docs/governance.md §9."""
    return any(k in (K_VALIDATORS, K_PARAMS) or k.startswith((K_REVOKED, K_NODE)) for k in writes)
