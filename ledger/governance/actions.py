"""The actions a passed proposal runs, one class per kind, each with ``check`` (is the action
valid now: run when proposed and again when it passes) and ``run`` (its writes). ``ACTIONS``
is the registry the proposals module dispatches through (docs/governance.md §4.1.1)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from ..codec import canonical, parse
from ..contracts import lifecycle
from ..contracts.context import Context, Refused
from ..tx import Transaction
from .admission import check_rule
from .base import (
    K_JOIN,
    K_ORGS,
    K_PARAMS,
    K_PERMS,
    K_POLICY,
    ORG_ROLES,
    BlockContext,
    GovernanceRefused,
    Reader,
    Writes,
    exact,
    get,
    node_id,
)
from .members import revoke_user
from .schedule import remove
from .views import Views
from .voting import check_policy

Proposal = Mapping[str, Any]


class Action(ABC):
    """One action kind. ``a`` is the action object of the proposal (already known to be a
    dict whose ``kind`` is this one's)."""

    kind: ClassVar[str]

    @abstractmethod
    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        """Raise ``GovernanceRefused`` unless the action may be proposed as it stands."""

    @abstractmethod
    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        """The state writes of the action once its proposal is decided."""


class Params(Action):
    kind = "params"

    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        exact(a, {"kind", "set"}, 'a params action is {"kind": "params", "set": {...}}')
        views.params(read).updated(a["set"])

    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        return {K_PARAMS: canonical(views.params(read).updated(a["set"]).wire())}


class Admit(Action):
    kind = "admit"

    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        exact(a, {"kind", "node"}, 'an admit action is {"kind": "admit", "node": id}')
        req = get(read, K_JOIN + node_id(a["node"]).encode())
        if req is None or req["status"] != "requested":
            raise GovernanceRefused(f"no open join request from {a['node']!r}")

    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        key = K_JOIN + a["node"].encode()
        return {key: canonical({**get(read, key), "status": "approved", "approved_at": bc.height})}


class Remove(Action):
    kind = "remove"

    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        if set(a) != {"kind", "node", "reason"} or not isinstance(a["reason"], str):
            raise GovernanceRefused('a remove action is {"kind": "remove", "node": id, "reason": str}')
        if node_id(a["node"]) not in views.vset(read, bc.height):
            raise GovernanceRefused(f"{a['node']!r} is not a validator")

    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        return remove(views, bc, read, views.schedule(read), views.params(read), a["node"],
                      f"removed by the supervisors: {a['reason']}")


def _org_fields(a: dict[str, Any], fields: set[str]) -> str:
    org = a.get("org")
    if set(a) != fields or not isinstance(org, str) or not 0 < len(org) <= 128:
        raise GovernanceRefused(f"an {a['kind']} action has exactly the fields {sorted(fields)}")
    return org


class OrgAdd(Action):
    kind = "org.add"

    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        _org_fields(a, {"kind", "org", "roles"})
        roles = a["roles"]
        if not isinstance(roles, list) or not roles or not set(roles) <= set(ORG_ROLES):
            raise GovernanceRefused(f"roles is a non-empty list of {ORG_ROLES}")

    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        orgs = dict(get(read, K_ORGS) or {})
        orgs[a["org"]] = {"roles": sorted(set(a["roles"])), "height": bc.height, "status": "member"}
        return {K_ORGS: canonical(orgs)}


class OrgRemove(Action):
    kind = "org.remove"

    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        org = _org_fields(a, {"kind", "org"})
        if org not in (get(read, K_ORGS) or {}):
            raise GovernanceRefused(f"{org!r} is not on the member list")

    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        orgs = dict(get(read, K_ORGS) or {})
        orgs[a["org"]] = {**orgs[a["org"]], "status": "removed", "removed_at": bc.height}
        return {K_ORGS: canonical(orgs)}


class Policy(Action):
    kind = "policy"

    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        if set(a) != {"kind", "set"} or not isinstance(a["set"], dict) or not a["set"]:
            raise GovernanceRefused('a policy action is {"kind": "policy", "set": {action kind: policy}}')
        for k, pol in a["set"].items():
            if k not in ACTION_KINDS:
                raise GovernanceRefused(f"no action kind {k!r}; known: {ACTION_KINDS}")
            check_policy(pol)

    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        pols = dict(get(read, K_POLICY) or {})
        pols.update({k: check_policy(v) for k, v in a["set"].items()})
        return {K_POLICY: canonical(pols)}


class Perms(Action):
    kind = "perms"

    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        if set(a) != {"kind", "set"} or not isinstance(a["set"], dict) or not a["set"]:
            raise GovernanceRefused('a perms action is {"kind": "perms", "set": {tx type: rule|null}}')
        for t, rule in a["set"].items():
            if not isinstance(t, str) or not 0 < len(t) <= 64:
                raise GovernanceRefused("transaction type patterns are 1-64 characters")
            if t.startswith("gov.") or t == "*":
                raise GovernanceRefused("governance itself cannot be restricted by a permission rule")
            check_rule(rule)

    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        perms = dict(get(read, K_PERMS) or {})
        for t, rule in a["set"].items():
            checked = check_rule(rule)
            if checked is None:
                perms.pop(t, None)
            else:
                perms[t] = checked
        return {K_PERMS: canonical(perms) if perms else None}


class UserRevoke(Action):
    kind = "user.revoke"

    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        if set(a) != {"kind", "account", "reason"} or not isinstance(a["reason"], str):
            raise GovernanceRefused('a user.revoke action is {"kind", "account", "reason"}')
        user = views.user(read, str(a["account"]))
        if user is None or user["status"] != "active":
            raise GovernanceRefused(f"no active user {a['account']!r}")

    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        return revoke_user(views, bc, read, str(a["account"]), "revoked by governance: " + a["reason"])


class ContractApprove(Action):
    kind = "contract.approve"

    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        exact(a, {"kind", "contract", "version"}, 'a contract.approve action is {"kind", "contract", "version"}')
        try:
            lifecycle.check_reviewable(read, a["contract"], a["version"])
        except Refused as exc:
            raise GovernanceRefused(str(exc)) from None

    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        ctx = Context(tx, bc.height, bc.time_ms, read)
        try:
            lifecycle.approve_version(ctx, a["contract"], a["version"], proposal=str(prop.get("id", "")),
                                      approvals=list(prop.get("approvals", [])))
        except Refused as exc:
            raise GovernanceRefused(str(exc)) from None
        return ctx.writes


class ContractStatus(Action):
    """Freeze, unfreeze or destroy a contract by governance (the subclasses name the kind)."""

    def check(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader) -> None:
        if set(a) != {"kind", "contract", "reason"} or not isinstance(a["reason"], str):
            raise GovernanceRefused(f'a {self.kind} action is {{"kind", "contract", "reason"}}')
        if lifecycle.contract_info(read, str(a["contract"])) is None:
            raise GovernanceRefused(f"no contract {a['contract']!r}")

    def run(self, views: Views, bc: BlockContext, a: dict[str, Any], read: Reader,
            tx: Transaction, prop: Proposal) -> Writes:
        ctx = Context(tx, bc.height, bc.time_ms, read)
        try:
            meta = dict(parse(read(lifecycle.k_meta(a["contract"])) or b"{}"))
            lifecycle.set_status(ctx, meta, self.kind.split(".", 1)[1], "governance: " + a["reason"])
        except Refused as exc:
            raise GovernanceRefused(str(exc)) from None
        return ctx.writes


class ContractFreeze(ContractStatus):
    kind = "contract.freeze"


class ContractUnfreeze(ContractStatus):
    kind = "contract.unfreeze"


class ContractDestroy(ContractStatus):
    kind = "contract.destroy"


ACTIONS: dict[str, Action] = {a.kind: a for a in (
    Params(), Admit(), Remove(), OrgAdd(), OrgRemove(), Policy(), Perms(), UserRevoke(),
    ContractApprove(), ContractFreeze(), ContractUnfreeze(), ContractDestroy())}
ACTION_KINDS = tuple(ACTIONS)
