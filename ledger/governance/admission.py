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


# ------------------------------------------------------------ admission (who may transact at all)
# Types an unbound key may send: what they carry is checked instead of the sender.
BOOTSTRAP = frozenset({"user.register", "node.join", "node.evidence"})


def unbound_error(views: Views, tx: Transaction, read: Reader, time_ms: int) -> str | None:
    """Why the sender is not a signing subject bound to a valid, unrevoked consortium
    certificate (None: it is): a validator or admitted consensus node of any scheduled set that
    is not revoked, or an active user whose certificate has not expired at ``time_ms``."""
    for _h, vset in views.schedule(read):
        for v in vset.validators:
            if v.key == tx.sender:
                rec = views.revoked(read, v.id)
                return None if rec is None else f"not admitted: node {v.id} was revoked at height {rec['height']}"
    account = account_of(tx.sender)
    user = views.user(read, account)
    if user is None:
        return (f"not admitted: {account} is not bound to a consortium certificate "
                f"(register the key with user.register first)")
    if user["status"] != "active":
        return f"not admitted: the certificate of user {account} was revoked"
    not_after = user.get("not_after")
    if isinstance(not_after, int) and time_ms > not_after:
        return f"not admitted: the certificate of user {account} expired at {not_after} ms"
    return None


def sender_error(views: Views, tx: Transaction, read: Reader, time_ms: int) -> str | None:
    """At execution (block time ``time_ms``): why this transaction's sender may not transact.
    The bootstrap types pass here: their own rules check what they carry."""
    if tx.type in BOOTSTRAP or views.params(read).open_admission:
        return None
    return unbound_error(views, tx, read, time_ms)
