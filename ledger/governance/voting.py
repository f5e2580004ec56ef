"""Voting policies and thresholds (``sys/policy``, docs/governance.md §2): who votes on an
action kind, as which identity, and how many approvals pass it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..contracts.context import account_of
from ..tx import Transaction
from .base import ORG_ROLES, BlockContext, GovernanceRefused, Reader
from .views import Views


def supervisor_id(views: Views, bc: BlockContext, tx: Transaction, read: Reader) -> str:
    """The id of the supervisor that signed ``tx`` (refused if none did)."""
    for v in views.supervisors(read, bc.height).validators:
        if v.key == tx.sender:
            return v.id
    raise GovernanceRefused("only a supervisor may do this")


def eligible(views: Views, bc: BlockContext, read: Reader, policy: Mapping[str, Any]) -> set[str]:
    """The voter identities a policy counts: supervisor ids, or organisation names."""
    if policy["rule"] == "supervisors":
        return {v.id for v in views.supervisors(read, bc.height).validators}
    role = policy["role"]
    return {org for org, rec in views.orgs(read, bc.height).items() if role in rec["roles"]}


def voter(views: Views, bc: BlockContext, tx: Transaction, read: Reader, policy: Mapping[str, Any]) -> str:
    """The identity the sender votes as under ``policy``."""
    if policy["rule"] == "supervisors":
        return supervisor_id(views, bc, tx, read)
    counted = eligible(views, bc, read, policy)
    for v in views.vset(read, bc.height).validators:
        if v.key == tx.sender and v.org in counted:
            return v.org
    user = views.user(read, account_of(tx.sender))
    if user is not None and user["status"] == "active" and user["role"] == "admin" and user["org"] in counted:
        return str(user["org"])
    raise GovernanceRefused(f"only a validator or an admin of an organisation counted by the policy "
                            f"{policy} may do this")


def need(policy: Mapping[str, Any], eligible_count: int) -> int:
    """Approvals needed among ``eligible_count`` voters."""
    wanted = policy["need"]
    if wanted == "majority":
        return eligible_count // 2 + 1
    if wanted == "all":
        return max(eligible_count, 1)
    return int(wanted)


def check_policy(policy: Any) -> dict[str, Any]:
    """A policy as stored, or a refusal saying what a policy looks like."""
    if not isinstance(policy, dict) or policy.get("rule") not in ("supervisors", "orgs"):
        raise GovernanceRefused('a policy is {"rule": "supervisors"|"orgs", "need": "majority"|"all"|k, '
                                '"role"?: org role}')
    allowed = {"rule", "need"} | ({"role"} if policy["rule"] == "orgs" else set())
    if set(policy) != allowed:
        raise GovernanceRefused(f"a {policy['rule']} policy has exactly the fields {sorted(allowed)}")
    wanted = policy["need"]
    if wanted not in ("majority", "all") and (isinstance(wanted, bool) or not isinstance(wanted, int)
                                               or not 1 <= wanted <= 1000):
        raise GovernanceRefused('need is "majority", "all" or a count from 1 to 1000')
    if policy["rule"] == "orgs" and policy["role"] not in ORG_ROLES:
        raise GovernanceRefused(f"role must be one of {ORG_ROLES}")
    return dict(policy)
