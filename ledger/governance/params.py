"""The chain parameters on chain (``sys/params``): integers only, each with bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

from .base import GovernanceRefused


@dataclass(frozen=True)
class ChainParams:
    """The consensus and admission parameters on chain (integers only: canonical JSON has no
    floats). docs/governance.md §11 gives the meaning and the bounds of each."""

    block_interval_ms: int = 200
    idle_interval_ms: int = 60_000
    base_timeout_ms: int = 3000
    max_block_txs: int = 2000
    max_block_bytes: int = 4 * 1024 * 1024
    exit_delay: int = 10
    missed_turns_limit: int = 100
    max_call_fuel: int = 50_000_000
    max_block_fuel: int = 30_000_000_000
    time_precision_ms: int = 500
    message_delay_ms: int = 2000
    open_admission: int = 0

    BOUNDS: ClassVar[dict[str, tuple[int, int]]] = {
        "block_interval_ms": (0, 60_000), "idle_interval_ms": (10, 3_600_000),
        "base_timeout_ms": (100, 600_000), "max_block_txs": (1, 100_000),
        "max_block_bytes": (1024, 16 * 1024 * 1024), "exit_delay": (3, 1_000_000),
        "missed_turns_limit": (1, 1_000_000),
        "max_call_fuel": (1000, 10_000_000_000), "max_block_fuel": (1000, 1_000_000_000_000),
        "time_precision_ms": (1, 60_000), "message_delay_ms": (1, 600_000), "open_admission": (0, 1),
    }

    def wire(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def with_stored(self, raw: Mapping[str, Any]) -> ChainParams:
        """These parameters overridden by stored ones (``sys/params``): a name this version
        does not know is ignored, a missing one keeps its value here (the genesis value, for
        a chain whose ``sys/params`` was written before the parameter existed)."""
        known = {f.name for f in fields(self)}
        return replace(self, **{k: int(v) for k, v in raw.items() if k in known})

    def updated(self, changes: Mapping[str, Any]) -> ChainParams:
        if not isinstance(changes, Mapping) or not changes:
            raise GovernanceRefused("params action needs a non-empty object 'set'")
        for name, value in changes.items():
            if name not in self.BOUNDS:
                raise GovernanceRefused(f"unknown parameter {name!r}; known: {sorted(self.BOUNDS)}")
            lo, hi = self.BOUNDS[name]
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise GovernanceRefused(f"{name} must be an integer in [{lo}, {hi}]")
        return replace(self, **dict(changes))
