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


FOREVER_MS = 2**63 - 1  # "until" of a verdict no block time can outlast


def unbound_error(views: Views, tx: Transaction, read: Reader, time_ms: int) -> str | None:
    """Why the sender is not a signing subject bound to a valid, unrevoked consortium
    certificate (None: it is): a validator or admitted consensus node of any scheduled set that
    is not revoked, or an active user whose certificate has not expired at ``time_ms``."""
    return admitted_until(views, tx, read, time_ms)[0]


def admitted_until(views: Views, tx: Transaction, read: Reader, time_ms: int) -> tuple[str | None, int]:
    """``unbound_error`` with how long a "None" answer lasts: ``(None, until_ms)`` means the
    sender is admitted at every time up to ``until_ms`` for as long as the ``sys/`` state it
    was read from is unchanged (the certificate's expiry is the only time in the rule)."""
    for _h, vset in views.schedule(read):
        for v in vset.validators:
            if v.key == tx.sender:
                rec = views.revoked(read, v.id)
                if rec is None:
                    return None, FOREVER_MS
                return f"not admitted: node {v.id} was revoked at height {rec['height']}", 0
    account = account_of(tx.sender)
    user = views.user(read, account)
    if user is None:
        return (f"not admitted: {account} is not bound to a consortium certificate "
                f"(register the key with user.register first)"), 0
    if user["status"] != "active":
        return f"not admitted: the certificate of user {account} was revoked", 0
    not_after = user.get("not_after")
    if isinstance(not_after, int):
        if time_ms > not_after:
            return f"not admitted: the certificate of user {account} expired at {not_after} ms", 0
        return None, not_after
    return None, FOREVER_MS


def sender_error(views: Views, tx: Transaction, read: Reader, time_ms: int) -> str | None:
    """At execution (block time ``time_ms``): why this transaction's sender may not transact.
    The bootstrap types pass here: their own rules check what they carry."""
    return sender_until(views, tx, read, time_ms)[0]


def sender_until(views: Views, tx: Transaction, read: Reader, time_ms: int) -> tuple[str | None, int]:
    """``sender_error`` with how long a "None" answer lasts (see ``admitted_until``)."""
    if tx.type in BOOTSTRAP:
        return None, 0  # judged each time, by what it carries: never remembered
    if views.params(read).open_admission:
        return None, FOREVER_MS
    return admitted_until(views, tx, read, time_ms)
