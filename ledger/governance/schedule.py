"""The validator schedule: ``sys/validators`` is ``{"schedule": [[from_height, set], ...]}``.
Changes take effect at a stated height at least ``exit_delay`` blocks after the deciding
block; removals also revoke the node at once (``sys/revoked/<id>``). Missed leader turns
(``sys/missed``) evict a validator that stops producing blocks (docs/governance.md §6-§8)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..codec import canonical
from ..consensus.types import ValidatorSet
from .base import (
    K_MISSED,
    K_NODE,
    K_REVOKED,
    K_VALIDATORS,
    MIN_VALIDATORS,
    BlockContext,
    GovernanceRefused,
    Reader,
    Writes,
    get,
)
from .params import ChainParams
from .views import Schedule, Views, parse_schedule, vset_in

PRUNE_AFTER = 1000  # blocks after which a superseded schedule entry is forgotten


def schedule_change(bc: BlockContext, schedule: Schedule, from_height: int,
                    change: Callable[[ValidatorSet], ValidatorSet],
                    staged: Mapping[bytes, bytes | None] | None = None) -> tuple[Writes, int]:
    """Apply ``change`` to the newest set from ``from_height`` (or the newest entry's height
    if later); returns the write and the height it takes effect."""
    if staged and K_VALIDATORS in staged:
        raw = staged[K_VALIDATORS]
        assert raw is not None
        schedule = parse_schedule(raw)
    last_from, last = schedule[-1]
    new = change(last)
    at = max(from_height, last_from)
    kept = [(h, vs) for h, vs in schedule if h < at]
    kept.append((at, new))
    # sets that can no longer matter (a later one took effect before the current height)
    while len(kept) > 2 and kept[1][0] <= bc.height - PRUNE_AFTER:
        kept.pop(0)
    return {K_VALIDATORS: canonical({"schedule": [[h, vs.wire()] for h, vs in kept]})}, at


def remove(views: Views, bc: BlockContext, read: Reader, schedule: Schedule, params: ChainParams, vid: str,
           reason: str, staged: Mapping[bytes, bytes | None] | None = None) -> Writes:
    """Revoke validator ``vid`` now and take it out of the set ``exit_delay`` blocks later."""
    target = vset_in(schedule, bc.height).get(vid)
    if target is None:
        raise GovernanceRefused(f"{vid!r} is not a validator")

    def without(vs: ValidatorSet) -> ValidatorSet:
        rest = tuple(v for v in vs.validators if v.id != vid)
        if len(rest) < MIN_VALIDATORS:
            raise GovernanceRefused(f"removing {vid!r} would leave {len(rest)} validators; "
                                    f"the minimum is {MIN_VALIDATORS}")
        return ValidatorSet(rest)

    if views.revoked(read, vid) is not None:
        raise GovernanceRefused(f"{vid!r} is already leaving the validator set")
    writes, effective = schedule_change(bc, schedule, bc.height + params.exit_delay, without, staged)
    writes[K_REVOKED + vid.encode()] = canonical({"key": target.key.hex(), "height": bc.height,
                                                  "effective": effective, "reason": reason})
    member = views.member(read, vid)
    if member is not None:
        member["status"] = "revoked"
        writes[K_NODE + vid.encode()] = canonical(member)
    return writes


def missed_turns(views: Views, bc: BlockContext, read: Reader) -> Writes:
    """Before a block's transactions: the leaders of the views between its QC and it proposed
    nothing that made it into the chain; a count reaching the limit evicts (§7)."""
    block = bc.block
    if block is None:
        return {}
    schedule = views.schedule(read)
    vset = vset_in(schedule, bc.height)
    params = views.params(read)
    missed: dict[str, int] = dict(get(read, K_MISSED) or {})
    before = dict(missed)
    justify_view = int(block.header["justify"]["view"])
    gap = range(justify_view + 1, block.view)
    for view in list(gap)[-vset.n * params.missed_turns_limit:]:
        leader = vset.leader(view)
        missed[leader] = missed.get(leader, 0) + 1
    missed.pop(block.proposer, None)
    writes: Writes = {}
    for vid, count in sorted(missed.items()):
        if count >= params.missed_turns_limit and vid in vset and views.revoked(read, vid) is None:
            try:
                writes.update(remove(views, bc, read, schedule, params, vid,
                                     f"missed {count} leader turns in a row", staged=writes))
                missed.pop(vid)
            except GovernanceRefused:
                pass  # the set is at its minimum: keep counting, remove when it can
    if missed != before:
        writes[K_MISSED] = canonical(missed) if missed else None
    return writes
