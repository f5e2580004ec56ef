"""Proposer-based block time (as CometBFT's PBTS): how a leader stamps a block and when a
validator finds a proposed time timely. Pure functions of integers (milliseconds).

The guarantees these rules give are derived in docs/spec/consensus.md ("Block time").
"""

from __future__ import annotations


def stamp(now_ms: int, parent_time: int) -> int | None:
    """The time a leader whose wall clock reads ``now_ms`` puts in a block on a parent
    stamped ``parent_time``: its clock, or ``None`` while its clock is not past the parent's
    time (the leader then waits until it is; it never stamps a time its clock has not reached)."""
    return now_ms if now_ms > parent_time else None


def untimely(time_ms: int, parent_time: int, received_ms: int, precision: int, message_delay: int) -> str | None:
    """Why a validator that received a proposal at ``received_ms`` (its own wall clock) must
    not vote for it, or ``None`` when its time is timely: after the parent's time and within
    ``received − message_delay − precision ≤ time ≤ received + precision``."""
    if time_ms <= parent_time:
        return f"block time {time_ms} is not after its parent's time {parent_time}"
    low, high = received_ms - message_delay - precision, received_ms + precision
    if not low <= time_ms <= high:
        return (f"block time {time_ms} is outside [{low}, {high}]: received at {received_ms} "
                f"(offset {time_ms - received_ms:+d} ms), precision {precision} ms, message delay {message_delay} ms")
    return None
