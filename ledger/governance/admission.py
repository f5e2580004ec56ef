"""Who may send what: per-type permission rules (``sys/perms``, docs/governance.md §4.8) and
the consortium's admission rule (§4.10): by default only a signing subject bound to a valid,
unrevoked consortium certificate transacts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..contracts.context import account_of
from ..tx import Transaction
from .base import GovernanceRefused, Reader
from .views import Views

RULE_FIELDS = frozenset({"roles", "orgs", "accounts", "validators"})


def check_rule(rule: Any) -> dict[str, Any] | None:
    """A permission rule as stored (None deletes a rule), or a refusal."""
    if rule is None:
        return None
    if not isinstance(rule, dict) or not rule or set(rule) - RULE_FIELDS:
        raise GovernanceRefused('a permission rule is {"roles"?, "orgs"?, "accounts"?, "validators"?} or null')
    for field in ("roles", "orgs", "accounts"):
        value = rule.get(field, [])
        if not isinstance(value, list) or len(value) > 1000 or not all(isinstance(x, str) for x in value):
            raise GovernanceRefused(f"{field} must be a list of strings")
    if not set(rule.get("roles", [])) <= {"admin", "user"}:
        raise GovernanceRefused("roles are 'admin' and 'user'")
    if not isinstance(rule.get("validators", False), bool):
        raise GovernanceRefused("validators must be true or false")
    return {k: (sorted(set(v)) if isinstance(v, list) else v) for k, v in rule.items()}


def permission_error(views: Views, perms: Mapping[str, Any], tx: Transaction, read: Reader,
                     height: int) -> str | None:
    """Why the sender may not send a transaction of this type (None: it may). Rules are
    looked up by exact type, then ``<prefix>.*``, then ``*``; no rule means open."""
    rule = perms.get(tx.type)
    if rule is None and "." in tx.type:
        rule = perms.get(tx.type.split(".", 1)[0] + ".*")
    if rule is None:
        rule = perms.get("*")
    if rule is None:
        return None
    account = account_of(tx.sender)
    if account in rule.get("accounts", ()):
        return None
    validator = next((v for v in views.vset(read, height).validators if v.key == tx.sender), None)
    if validator is not None and rule.get("validators"):
        return None
    user = views.user(read, account)
    if user is not None and user["status"] == "active":
        if user["role"] in rule.get("roles", ()) or user["org"] in rule.get("orgs", ()):
            return None
    return f"permission denied: {account} may not send {tx.type} transactions"
