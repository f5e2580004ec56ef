"""Proposals (``sys/proposal/<tx id>``): ``gov.propose`` and ``gov.vote`` under the voting
policy of the action's kind; an action runs when enough voters approved it before its expiry
and is rejected once it can no longer pass (docs/governance.md §2, §4.1-§4.2)."""

from __future__ import annotations

from typing import Any

from ..codec import canonical
from ..tx import Transaction
from .actions import ACTION_KINDS, ACTIONS
from .base import DEFAULT_TTL, K_PROPOSAL, MAX_TTL, BlockContext, GovernanceRefused, Reader, Writes, get
from .views import DEFAULT_POLICY, Views
from .voting import eligible, need, voter


def check_action(views: Views, bc: BlockContext, action: Any, read: Reader) -> None:
    if not isinstance(action, dict) or not isinstance(action.get("kind"), str):
        raise GovernanceRefused('an action is an object with a "kind"')
    handler = ACTIONS.get(action["kind"])
    if handler is None:
        raise GovernanceRefused(f"unknown action kind {action['kind']!r}; known: {', '.join(ACTION_KINDS)}")
    handler.check(views, bc, action, read)


def _tally(views: Views, bc: BlockContext, key: bytes, prop: dict[str, Any], read: Reader,
           tx: Transaction) -> Writes:
    """Record ``prop``; run its action if it has passed, close it if it can no longer pass."""
    writes: Writes = {}
    policy = prop.get("policy", DEFAULT_POLICY)
    voters = eligible(views, bc, read, policy)
    needed = need(policy, len(voters))
    if len(set(prop["approvals"]) & voters) >= needed:
        check_action(views, bc, prop["action"], read)  # still valid now?
        writes.update(ACTIONS[prop["action"]["kind"]].run(views, bc, prop["action"], read, tx, prop))
        prop["status"] = "executed"
        prop["executed_at"] = bc.height
    elif len(set(prop.get("rejections", [])) & voters) > len(voters) - needed:
        prop["status"] = "rejected"
        prop["rejected_at"] = bc.height
    writes[key] = canonical(prop)
    return writes


def propose(views: Views, bc: BlockContext, tx: Transaction, read: Reader) -> Writes:
    p = tx.payload
    if set(p) - {"action", "ttl"} or "action" not in p:
        raise GovernanceRefused('gov.propose payload is {"action": {...}, "ttl": blocks}')
    action = p["action"]
    if not isinstance(action, dict) or action.get("kind") not in ACTION_KINDS:
        raise GovernanceRefused(f"unknown action kind; an action is an object whose kind is one of "
                                f"{', '.join(ACTION_KINDS)}")
    policy = views.policy(read, action["kind"])
    who = voter(views, bc, tx, read, policy)
    ttl = p.get("ttl", DEFAULT_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
        raise GovernanceRefused(f"ttl must be an integer number of blocks in [1, {MAX_TTL}]")
    check_action(views, bc, action, read)
    pid = tx.id.hex()
    prop = {"id": pid, "action": action, "policy": policy, "proposer": who, "approvals": [who],
            "rejections": [], "height": bc.height, "expiry": bc.height + ttl, "status": "open"}
    return _tally(views, bc, K_PROPOSAL + pid.encode(), prop, read, tx)


def vote(views: Views, bc: BlockContext, tx: Transaction, read: Reader) -> Writes:
    pid = tx.payload.get("proposal")
    approve = tx.payload.get("approve", True)
    if set(tx.payload) - {"proposal", "approve"} or not isinstance(pid, str) or not isinstance(approve, bool):
        raise GovernanceRefused('gov.vote payload is {"proposal": id, "approve"?: true|false}')
    key = K_PROPOSAL + pid.encode()
    prop = get(read, key)
    if prop is None:
        raise GovernanceRefused(f"no proposal {pid}")
    prop = dict(prop)
    who = voter(views, bc, tx, read, prop.get("policy", DEFAULT_POLICY))
    if prop["status"] != "open":
        raise GovernanceRefused(f"proposal {pid} is {prop['status']}")
    if bc.height > prop["expiry"]:
        raise GovernanceRefused(f"proposal {pid} expired at height {prop['expiry']}")
    if who in prop["approvals"] or who in prop.get("rejections", []):
        raise GovernanceRefused(f"{who} already voted on proposal {pid}")
    side = "approvals" if approve else "rejections"
    prop[side] = sorted([*prop.get(side, []), who])
    return _tally(views, bc, key, prop, read, tx)
