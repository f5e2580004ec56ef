"""Consortium governance as system transactions (REQUIREMENTS L2-L4).

Everything here is state in the SM3 sparse Merkle tree under ``sys/``, so every node derives
the same validator set and parameters for every height, and a light client can prove them:

=============================  ===========================================================
key                            value (canonical JSON)
=============================  ===========================================================
``sys/params``                 the consensus parameters changed by governance (ms, counts)
``sys/validators``             ``{"schedule": [[from_height, [validator...]], ...]}``
``sys/proposal/<tx id>``       a supervisors' proposal: action, approvals, expiry, status
``sys/join/<node id>``         a join request and where it stands
``sys/node/<node id>``         an admitted node: org, role, key, certificate, address
``sys/revoked/<node id>``      an exited or evicted node: key, height, reason
``sys/missed``                 consecutive missed leader turns per validator
``sys/evidence/<id>/<view>``   an offence already punished (evidence counts once)
``sys/orgs``                   member organisations: ``{org: {"roles", "height"}}``
``sys/user/<account>``         a user bound to a certificate: org, role (admin|user), status
``sys/policy``                 voting policy per action kind (absent: supervisors' majority)
``sys/perms``                  who may send each transaction type (absent: anyone)
=============================  ===========================================================

Transaction types (the payload of a signed transaction, docs/governance.md):

- ``gov.propose {"action", "ttl"}`` and ``gov.vote {"proposal", "approve"?}`` by the voters of
  the action's voting policy: ``{"rule": "supervisors", "need": "majority"|"all"|k}`` counts
  supervisor validators, ``{"rule": "orgs", "role": r, "need": ...}`` counts organisations
  (those running validators for ``r = "consensus"``, else those holding role ``r``), each
  voting through a validator key or an admin user of its own. An action runs when enough
  voters approved it before its expiry; it is rejected once it can no longer pass.
  Actions: ``params``, ``admit`` (approve a join request), ``remove`` (force a validator
  out), ``org.add`` / ``org.remove``, ``policy``, ``perms``, ``user.revoke``,
  ``contract.approve`` (the review of a user-contract version), ``contract.freeze`` /
  ``contract.unfreeze`` / ``contract.destroy``.
- ``user.register {"certificate"}`` by the key the consortium CA certified for a user of a
  member organisation; ``user.revoke {"account", "reason"}`` by that user or an admin of its
  organisation.
- ``node.join`` by the joining node's own key; ``node.certify`` by a supervisor once the
  request is approved, carrying the certificate the consortium CA issued (verified here
  against the root certificate of the genesis, at the block's time) and the height from
  which the node votes.
- ``node.exit`` by the validator itself (active exit).
- ``node.evidence`` by anyone: two proposals or two votes signed by one validator for
  different blocks in the same view. Passive exit also follows ``missed_turns_limit``
  consecutive leader turns without a block of its own in the chain.

Every change to the validator set takes effect at a stated height at least
``exit_delay`` blocks after the block that decides it, on every node alike; exits and
evictions also revoke the node, after which every peer refuses its links.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

from ..codec import EncodingError, canonical, hexbytes, parse
from ..consensus.errors import InvalidMessage
from ..consensus.types import Block, Validator, ValidatorSet, check_signature, proposal_bytes, vote_bytes
from ..contracts import lifecycle
from ..contracts.context import Context, Refused, TxType, account_of, handler_from_writes
from ..crypto import Certificate, CryptoError, sm3, verify_certificate
from ..crypto.keycache import KeyCache
from ..tx import Transaction

Reader = Callable[[bytes], bytes | None]

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

ACTION_KINDS = ("params", "admit", "remove", "org.add", "org.remove", "policy", "perms", "user.revoke",
                "contract.approve", "contract.freeze", "contract.unfreeze", "contract.destroy")
DEFAULT_POLICY = {"rule": "supervisors", "need": "majority"}
ORG_ROLES = ("supervisor", "consensus", "media", "platform", "legal", "court", "regulator")

MIN_VALIDATORS = 4  # below this a BFT set tolerates no fault: removals stop there
DEFAULT_TTL = 1000
MAX_TTL = 1_000_000
ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


class GovernanceRefused(Refused):
    """A governance transaction is refused; the message goes into its receipt."""


@dataclass(frozen=True)
class ChainParams:
    """The consensus parameters on chain (integers only: canonical JSON has no floats)."""

    block_interval_ms: int = 200
    idle_interval_ms: int = 1000
    base_timeout_ms: int = 3000
    max_block_txs: int = 2000
    max_block_bytes: int = 4 * 1024 * 1024
    exit_delay: int = 10
    missed_turns_limit: int = 100
    max_call_fuel: int = 50_000_000
    max_block_fuel: int = 30_000_000_000

    BOUNDS: ClassVar[dict[str, tuple[int, int]]] = {
        "block_interval_ms": (0, 60_000), "idle_interval_ms": (10, 600_000),
        "base_timeout_ms": (100, 600_000), "max_block_txs": (1, 100_000),
        "max_block_bytes": (1024, 16 * 1024 * 1024), "exit_delay": (3, 1_000_000),
        "missed_turns_limit": (1, 1_000_000),
        "max_call_fuel": (1000, 10_000_000_000), "max_block_fuel": (1000, 1_000_000_000_000),
    }

    def wire(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

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


@dataclass
class BlockContext:
    """What a governance handler knows about the block being executed."""

    height: int
    time_ms: int
    block: Block | None
    changed: bool = False  # the block touched the validator schedule, params or revocations
    effective: int = 0  # height from which the last scheduled validator-set change applies


def _get(read: Reader, key: bytes) -> Any:
    raw = read(key)
    return None if raw is None else parse(raw)


def _node_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not set(value) <= ID_CHARS:
        raise GovernanceRefused("node ids are 1-64 characters of a-z, 0-9, '-', '_' and '.'")
    return value


class Governance:
    """Governance state machine and the views of it the node needs (validator set by height,
    parameters, revocations)."""

    PERMS_KEY = K_PERMS

    def __init__(self, chain: str, genesis_vset: ValidatorSet, genesis_params: ChainParams,
                 root_certificate: bytes | None) -> None:
        self.chain = chain
        self.genesis_vset = genesis_vset
        self.genesis_params = genesis_params
        self.root = Certificate.load(root_certificate) if root_certificate else None
        self.keys = KeyCache()
        self.ctx = BlockContext(0, 0, None)

    # ------------------------------------------------------------ views
    def params(self, read: Reader) -> ChainParams:
        raw = _get(read, K_PARAMS)
        return self.genesis_params if raw is None else ChainParams(**raw)

    def schedule(self, read: Reader) -> list[tuple[int, ValidatorSet]]:
        raw = _get(read, K_VALIDATORS)
        if raw is None:
            return [(0, self.genesis_vset)]
        return [(int(h), ValidatorSet.from_wire(vs)) for h, vs in raw["schedule"]]

    @staticmethod
    def vset_in(schedule: list[tuple[int, ValidatorSet]], height: int) -> ValidatorSet:
        current = schedule[0][1]
        for from_height, vset in schedule:
            if from_height <= height:
                current = vset
            else:
                break
        return current

    def revoked(self, read: Reader, node_id: str) -> dict[str, Any] | None:
        raw = _get(read, K_REVOKED + node_id.encode())
        return None if raw is None else dict(raw)

    def member(self, read: Reader, node_id: str) -> dict[str, Any] | None:
        raw = _get(read, K_NODE + node_id.encode())
        return None if raw is None else dict(raw)

    def types(self) -> dict[str, TxType]:
        """The governance transaction types: administrative, run in block order."""
        return {name: TxType(handler_from_writes(fn), admin=True) for name, fn in self.handlers().items()}

    def handlers(self) -> dict[str, Callable[[Transaction, Reader], Mapping[bytes, bytes | None]]]:
        return {"gov.propose": self.propose, "gov.vote": self.vote, "node.join": self.join,
                "node.certify": self.certify, "node.exit": self.exit, "node.evidence": self.evidence,
                "user.register": self.user_register, "user.revoke": self.user_revoke}

    def orgs(self, read: Reader) -> dict[str, dict[str, Any]]:
        """Member organisations: those on record plus every organisation running a validator."""
        out: dict[str, dict[str, Any]] = {}
        for v in self.vset_in(self.schedule(read), self.ctx.height).validators:
            out.setdefault(v.org, {"roles": [], "height": 0})
            # every validator runs a consensus node; supervisors also supervise
            out[v.org]["roles"] = sorted({*out[v.org]["roles"], v.role, "consensus"})
        for org, rec in (_get(read, K_ORGS) or {}).items():
            if rec.get("status", "member") == "member":
                merged = sorted(set(out.get(org, {}).get("roles", [])) | set(rec["roles"]))
                out[org] = {**rec, "roles": merged}
        return out

    def read_proposal(self, read: Reader, pid: str) -> dict[str, Any]:
        raw = _get(read, K_PROPOSAL + pid.encode())
        return {} if raw is None else dict(raw)

    def user(self, read: Reader, account: str) -> dict[str, Any] | None:
        raw = _get(read, K_USER + account.encode())
        return None if raw is None else dict(raw)

    def policy(self, read: Reader, kind: str) -> dict[str, Any]:
        return dict((_get(read, K_POLICY) or {}).get(kind, DEFAULT_POLICY))

    def perms(self, read: Reader) -> dict[str, Any]:
        return dict(_get(read, K_PERMS) or {})

    def permission_error(self, perms: Mapping[str, Any], tx: Transaction, read: Reader) -> str | None:
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
        vset = self.vset_in(self.schedule(read), self.ctx.height)
        validator = next((v for v in vset.validators if v.key == tx.sender), None)
        if validator is not None and rule.get("validators"):
            return None
        user = self.user(read, account)
        if user is not None and user["status"] == "active":
            if user["role"] in rule.get("roles", ()) or user["org"] in rule.get("orgs", ()):
                return None
        return f"permission denied: {account} may not send {tx.type} transactions"

    # ------------------------------------------------------------ block hook
    def begin_block(self, height: int, block: Block | None, read: Reader) -> dict[bytes, bytes | None]:
        """Missed leader turns: the leaders of the views between this block's QC and this
        block proposed nothing that made it into the chain."""
        time_ms = int(block.header.get("time", 0)) if block is not None else 0
        self.ctx = BlockContext(height, time_ms, block)
        if block is None:
            return {}
        schedule = self.schedule(read)
        vset = self.vset_in(schedule, height)
        params = self.params(read)
        missed: dict[str, int] = dict(_get(read, K_MISSED) or {})
        before = dict(missed)
        justify_view = int(block.header["justify"]["view"])
        gap = range(justify_view + 1, block.view)
        for view in list(gap)[-vset.n * params.missed_turns_limit:]:
            leader = vset.leader(view)
            missed[leader] = missed.get(leader, 0) + 1
        missed.pop(block.proposer, None)
        writes: dict[bytes, bytes | None] = {}
        for vid, count in sorted(missed.items()):
            if count >= params.missed_turns_limit and vid in vset and self.revoked(read, vid) is None:
                try:
                    writes.update(self._remove(read, schedule, params, vid,
                                               f"missed {count} leader turns in a row", staged=writes))
                    missed.pop(vid)
                except GovernanceRefused:
                    pass  # the set is at its minimum: keep counting, remove when it can
        if missed != before:
            writes[K_MISSED] = canonical(missed) if missed else None
        return writes

    # ------------------------------------------------------------ helpers
    def _supervisors(self, read: Reader) -> ValidatorSet:
        vset = self.vset_in(self.schedule(read), self.ctx.height)
        return ValidatorSet(tuple(v for v in vset.validators if v.role == "supervisor"))

    def _supervisor_id(self, tx: Transaction, read: Reader) -> str:
        for v in self._supervisors(read).validators:
            if v.key == tx.sender:
                return v.id
        raise GovernanceRefused("only a supervisor may do this")

    def _threshold(self, read: Reader) -> int:
        return self._supervisors(read).n // 2 + 1

    def _eligible(self, read: Reader, policy: Mapping[str, Any]) -> set[str]:
        """The voter identities a policy counts: supervisor ids, or organisation names."""
        if policy["rule"] == "supervisors":
            return {v.id for v in self._supervisors(read).validators}
        role = policy["role"]
        return {org for org, rec in self.orgs(read).items() if role in rec["roles"]}

    def _voter(self, tx: Transaction, read: Reader, policy: Mapping[str, Any]) -> str:
        """The identity the sender votes as under ``policy``."""
        if policy["rule"] == "supervisors":
            return self._supervisor_id(tx, read)
        eligible = self._eligible(read, policy)
        for v in self.vset_in(self.schedule(read), self.ctx.height).validators:
            if v.key == tx.sender and v.org in eligible:
                return v.org
        user = self.user(read, account_of(tx.sender))
        if user is not None and user["status"] == "active" and user["role"] == "admin" and user["org"] in eligible:
            return str(user["org"])
        raise GovernanceRefused(f"only a validator or an admin of an organisation counted by the policy "
                                f"{policy} may do this")

    @staticmethod
    def _need(policy: Mapping[str, Any], eligible: int) -> int:
        need = policy["need"]
        if need == "majority":
            return eligible // 2 + 1
        if need == "all":
            return max(eligible, 1)
        return int(need)

    @staticmethod
    def _check_policy(policy: Any) -> dict[str, Any]:
        if not isinstance(policy, dict) or policy.get("rule") not in ("supervisors", "orgs"):
            raise GovernanceRefused('a policy is {"rule": "supervisors"|"orgs", "need": "majority"|"all"|k, '
                                    '"role"?: org role}')
        allowed = {"rule", "need"} | ({"role"} if policy["rule"] == "orgs" else set())
        if set(policy) != allowed:
            raise GovernanceRefused(f"a {policy['rule']} policy has exactly the fields {sorted(allowed)}")
        need = policy["need"]
        if need not in ("majority", "all") and (isinstance(need, bool) or not isinstance(need, int)
                                                 or not 1 <= need <= 1000):
            raise GovernanceRefused('need is "majority", "all" or a count from 1 to 1000')
        if policy["rule"] == "orgs" and policy["role"] not in ORG_ROLES:
            raise GovernanceRefused(f"role must be one of {ORG_ROLES}")
        return dict(policy)

    @staticmethod
    def _check_rule(rule: Any) -> dict[str, Any] | None:
        if rule is None:
            return None
        if not isinstance(rule, dict) or not rule or set(rule) - {"roles", "orgs", "accounts", "validators"}:
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

    def _contract_ctx(self, read: Reader, tx: Transaction | None) -> Context:
        assert tx is not None
        return Context(tx, self.ctx.height, self.ctx.time_ms, read)

    def _schedule_change(self, read: Reader, schedule: list[tuple[int, ValidatorSet]], from_height: int,
                         change: Callable[[ValidatorSet], ValidatorSet],
                         staged: Mapping[bytes, bytes | None] | None = None) -> dict[bytes, bytes | None]:
        if staged and K_VALIDATORS in staged:
            raw = staged[K_VALIDATORS]
            assert raw is not None
            schedule = [(int(h), ValidatorSet.from_wire(vs)) for h, vs in parse(raw)["schedule"]]
        last_from, last = schedule[-1]
        new = change(last)
        at = max(from_height, last_from)
        kept = [(h, vs) for h, vs in schedule if h < at]
        kept.append((at, new))
        # sets that can no longer matter (a later one took effect before the current height)
        while len(kept) > 2 and kept[1][0] <= self.ctx.height - 1000:
            kept.pop(0)
        self.ctx.changed = True
        self.ctx.effective = at
        return {K_VALIDATORS: canonical({"schedule": [[h, vs.wire()] for h, vs in kept]})}

    def _remove(self, read: Reader, schedule: list[tuple[int, ValidatorSet]], params: ChainParams, vid: str,
                reason: str, staged: Mapping[bytes, bytes | None] | None = None) -> dict[bytes, bytes | None]:
        current = self.vset_in(schedule, self.ctx.height)
        target = current.get(vid)
        if target is None:
            raise GovernanceRefused(f"{vid!r} is not a validator")

        def without(vs: ValidatorSet) -> ValidatorSet:
            rest = tuple(v for v in vs.validators if v.id != vid)
            if len(rest) < MIN_VALIDATORS:
                raise GovernanceRefused(f"removing {vid!r} would leave {len(rest)} validators; "
                                        f"the minimum is {MIN_VALIDATORS}")
            return ValidatorSet(rest)

        if self.revoked(read, vid) is not None:
            raise GovernanceRefused(f"{vid!r} is already leaving the validator set")
        writes = self._schedule_change(read, schedule, self.ctx.height + params.exit_delay, without, staged)
        writes[K_REVOKED + vid.encode()] = canonical({"key": target.key.hex(), "height": self.ctx.height,
                                                      "effective": self.ctx.effective, "reason": reason})
        member = self.member(read, vid)
        if member is not None:
            member["status"] = "revoked"
            writes[K_NODE + vid.encode()] = canonical(member)
        return writes

    # ------------------------------------------------------------ proposals
    def _check_action(self, action: Any, read: Reader) -> None:
        if not isinstance(action, dict) or not isinstance(action.get("kind"), str):
            raise GovernanceRefused('an action is an object with a "kind"')
        kind = action["kind"]
        if kind == "params":
            if set(action) != {"kind", "set"}:
                raise GovernanceRefused('a params action is {"kind": "params", "set": {...}}')
            self.params(read).updated(action["set"])
        elif kind == "admit":
            if set(action) != {"kind", "node"}:
                raise GovernanceRefused('an admit action is {"kind": "admit", "node": id}')
            req = _get(read, K_JOIN + _node_id(action["node"]).encode())
            if req is None or req["status"] != "requested":
                raise GovernanceRefused(f"no open join request from {action['node']!r}")
        elif kind == "remove":
            if set(action) != {"kind", "node", "reason"} or not isinstance(action["reason"], str):
                raise GovernanceRefused('a remove action is {"kind": "remove", "node": id, "reason": str}')
            if _node_id(action["node"]) not in self.vset_in(self.schedule(read), self.ctx.height):
                raise GovernanceRefused(f"{action['node']!r} is not a validator")
        elif kind in ("org.add", "org.remove"):
            fields_ = {"kind", "org", "roles"} if kind == "org.add" else {"kind", "org"}
            org = action.get("org")
            if set(action) != fields_ or not isinstance(org, str) or not 0 < len(org) <= 128:
                raise GovernanceRefused(f"an {kind} action has exactly the fields {sorted(fields_)}")
            if kind == "org.add":
                roles = action["roles"]
                if not isinstance(roles, list) or not roles or not set(roles) <= set(ORG_ROLES):
                    raise GovernanceRefused(f"roles is a non-empty list of {ORG_ROLES}")
            elif org not in (_get(read, K_ORGS) or {}):
                raise GovernanceRefused(f"{org!r} is not on the member list")
        elif kind == "policy":
            if set(action) != {"kind", "set"} or not isinstance(action["set"], dict) or not action["set"]:
                raise GovernanceRefused('a policy action is {"kind": "policy", "set": {action kind: policy}}')
            for k, pol in action["set"].items():
                if k not in ACTION_KINDS:
                    raise GovernanceRefused(f"no action kind {k!r}; known: {ACTION_KINDS}")
                self._check_policy(pol)
        elif kind == "perms":
            if set(action) != {"kind", "set"} or not isinstance(action["set"], dict) or not action["set"]:
                raise GovernanceRefused('a perms action is {"kind": "perms", "set": {tx type: rule|null}}')
            for t, rule in action["set"].items():
                if not isinstance(t, str) or not 0 < len(t) <= 64:
                    raise GovernanceRefused("transaction type patterns are 1-64 characters")
                if t.startswith("gov.") or t == "*":
                    raise GovernanceRefused("governance itself cannot be restricted by a permission rule")
                self._check_rule(rule)
        elif kind == "user.revoke":
            if set(action) != {"kind", "account", "reason"} or not isinstance(action["reason"], str):
                raise GovernanceRefused('a user.revoke action is {"kind", "account", "reason"}')
            user = self.user(read, str(action["account"]))
            if user is None or user["status"] != "active":
                raise GovernanceRefused(f"no active user {action['account']!r}")
        elif kind == "contract.approve":
            if set(action) != {"kind", "contract", "version"}:
                raise GovernanceRefused('a contract.approve action is {"kind", "contract", "version"}')
            try:
                lifecycle.check_reviewable(read, action["contract"], action["version"])
            except Refused as exc:
                raise GovernanceRefused(str(exc)) from None
        elif kind in ("contract.freeze", "contract.unfreeze", "contract.destroy"):
            if set(action) != {"kind", "contract", "reason"} or not isinstance(action["reason"], str):
                raise GovernanceRefused(f'a {kind} action is {{"kind", "contract", "reason"}}')
            if lifecycle.contract_info(read, str(action["contract"])) is None:
                raise GovernanceRefused(f"no contract {action['contract']!r}")
        else:
            raise GovernanceRefused(f"unknown action kind {kind!r}; known: {', '.join(ACTION_KINDS)}")

    def _run(self, action: dict[str, Any], read: Reader, tx: Transaction | None = None,
             prop: Mapping[str, Any] | None = None) -> dict[bytes, bytes | None]:
        kind = action["kind"]
        if kind == "org.add":
            orgs = dict(_get(read, K_ORGS) or {})
            orgs[action["org"]] = {"roles": sorted(set(action["roles"])), "height": self.ctx.height,
                                   "status": "member"}
            return {K_ORGS: canonical(orgs)}
        if kind == "org.remove":
            orgs = dict(_get(read, K_ORGS) or {})
            orgs[action["org"]] = {**orgs[action["org"]], "status": "removed", "removed_at": self.ctx.height}
            return {K_ORGS: canonical(orgs)}
        if kind == "policy":
            pols = dict(_get(read, K_POLICY) or {})
            pols.update({k: self._check_policy(v) for k, v in action["set"].items()})
            return {K_POLICY: canonical(pols)}
        if kind == "perms":
            perms = dict(_get(read, K_PERMS) or {})
            for t, rule in action["set"].items():
                checked = self._check_rule(rule)
                if checked is None:
                    perms.pop(t, None)
                else:
                    perms[t] = checked
            return {K_PERMS: canonical(perms) if perms else None}
        if kind == "user.revoke":
            return self._revoke_user(read, str(action["account"]), "revoked by governance: " + action["reason"])
        if kind.startswith("contract."):
            ctx = self._contract_ctx(read, tx)
            try:
                if kind == "contract.approve":
                    lifecycle.approve_version(ctx, action["contract"], action["version"],
                                              proposal=str((prop or {}).get("id", "")),
                                              approvals=list((prop or {}).get("approvals", [])))
                else:
                    meta = dict(parse(read(lifecycle.k_meta(action["contract"])) or b"{}"))
                    lifecycle.set_status(ctx, meta, kind.split(".", 1)[1], "governance: " + action["reason"])
            except Refused as exc:
                raise GovernanceRefused(str(exc)) from None
            return ctx.writes
        if kind == "params":
            new = self.params(read).updated(action["set"])
            self.ctx.changed = True
            return {K_PARAMS: canonical(new.wire())}
        if kind == "admit":
            key = K_JOIN + action["node"].encode()
            req = dict(_get(read, key))
            req["status"] = "approved"
            req["approved_at"] = self.ctx.height
            return {key: canonical(req)}
        schedule, params = self.schedule(read), self.params(read)
        return self._remove(read, schedule, params, action["node"], f"removed by the supervisors: {action['reason']}")

    def propose(self, tx: Transaction, read: Reader) -> Mapping[bytes, bytes | None]:
        p = tx.payload
        if set(p) - {"action", "ttl"} or "action" not in p:
            raise GovernanceRefused('gov.propose payload is {"action": {...}, "ttl": blocks}')
        action = p["action"]
        if not isinstance(action, dict) or action.get("kind") not in ACTION_KINDS:
            raise GovernanceRefused(f"unknown action kind; an action is an object whose kind is one of {', '.join(ACTION_KINDS)}")
        policy = self.policy(read, action["kind"])
        who = self._voter(tx, read, policy)
        ttl = p.get("ttl", DEFAULT_TTL)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
            raise GovernanceRefused(f"ttl must be an integer number of blocks in [1, {MAX_TTL}]")
        self._check_action(action, read)
        pid = tx.id.hex()
        prop = {"id": pid, "action": action, "policy": policy, "proposer": who, "approvals": [who],
                "rejections": [], "height": self.ctx.height, "expiry": self.ctx.height + ttl, "status": "open"}
        return self._maybe_run(K_PROPOSAL + pid.encode(), prop, read, tx)

    def vote(self, tx: Transaction, read: Reader) -> Mapping[bytes, bytes | None]:
        pid = tx.payload.get("proposal")
        approve = tx.payload.get("approve", True)
        if set(tx.payload) - {"proposal", "approve"} or not isinstance(pid, str) or not isinstance(approve, bool):
            raise GovernanceRefused('gov.vote payload is {"proposal": id, "approve"?: true|false}')
        key = K_PROPOSAL + pid.encode()
        prop = _get(read, key)
        if prop is None:
            raise GovernanceRefused(f"no proposal {pid}")
        prop = dict(prop)
        policy = prop.get("policy", DEFAULT_POLICY)
        who = self._voter(tx, read, policy)
        if prop["status"] != "open":
            raise GovernanceRefused(f"proposal {pid} is {prop['status']}")
        if self.ctx.height > prop["expiry"]:
            raise GovernanceRefused(f"proposal {pid} expired at height {prop['expiry']}")
        if who in prop["approvals"] or who in prop.get("rejections", []):
            raise GovernanceRefused(f"{who} already voted on proposal {pid}")
        side = "approvals" if approve else "rejections"
        prop[side] = sorted([*prop.get(side, []), who])
        return self._maybe_run(key, prop, read, tx)

    def _maybe_run(self, key: bytes, prop: dict[str, Any], read: Reader,
                   tx: Transaction | None = None) -> dict[bytes, bytes | None]:
        writes: dict[bytes, bytes | None] = {}
        policy = prop.get("policy", DEFAULT_POLICY)
        eligible = self._eligible(read, policy)
        need = self._need(policy, len(eligible))
        if len(set(prop["approvals"]) & eligible) >= need:
            self._check_action(prop["action"], read)  # still valid now?
            writes.update(self._run(prop["action"], read, tx, prop))
            prop["status"] = "executed"
            prop["executed_at"] = self.ctx.height
        elif len(set(prop.get("rejections", [])) & eligible) > len(eligible) - need:
            prop["status"] = "rejected"
            prop["rejected_at"] = self.ctx.height
        writes[key] = canonical(prop)
        return writes

    # ------------------------------------------------------------ users
    def _verified_certificate(self, pem: str) -> Certificate:
        """A certificate issued by the genesis root, valid at the block's time."""
        if self.root is None:
            raise GovernanceRefused("this chain has no root certificate in its genesis")
        try:
            cert = Certificate.load(pem.encode())
            at = dt.datetime.fromtimestamp(self.ctx.time_ms / 1000, tz=dt.UTC)
            verify_certificate(cert, self.root, at=at)
        except (CryptoError, OverflowError, OSError, ValueError) as exc:
            raise GovernanceRefused(f"certificate refused: {exc}") from None
        return cert

    def user_register(self, tx: Transaction, read: Reader) -> Mapping[bytes, bytes | None]:
        p = tx.payload
        if set(p) != {"certificate"} or not isinstance(p["certificate"], str) or len(p["certificate"]) > 16_384:
            raise GovernanceRefused('user.register payload is {"certificate": PEM}')
        cert = self._verified_certificate(p["certificate"])
        if cert.public_key().point != tx.sender:
            raise GovernanceRefused("the certificate is not for the key that signed this transaction")
        if cert.role not in ("admin", "user"):
            raise GovernanceRefused(f"a user certificate has role admin or user, not {cert.role!r}")
        org = cert.organization
        if org not in self.orgs(read):
            raise GovernanceRefused(f"{org!r} is not a member organisation of this consortium")
        account = account_of(tx.sender)
        old = self.user(read, account)
        if old is not None and old["status"] == "active":
            raise GovernanceRefused(f"{account} is already registered")
        if old is not None and old.get("serial") == format(cert.serial, "x"):
            raise GovernanceRefused("this certificate was revoked here; register with a new one")
        rec = {"account": account, "key": tx.sender.hex(), "name": cert.common_name, "org": org,
               "role": cert.role, "certificate": cert.fingerprint, "serial": format(cert.serial, "x"),
               "height": self.ctx.height, "status": "active"}
        return {K_USER + account.encode(): canonical(rec)}

    def _revoke_user(self, read: Reader, account: str, reason: str) -> dict[bytes, bytes | None]:
        user = self.user(read, account)
        if user is None or user["status"] != "active":
            raise GovernanceRefused(f"no active user {account!r}")
        user.update(status="revoked", revoked_at=self.ctx.height, reason=reason)
        return {K_USER + account.encode(): canonical(user)}

    def user_revoke(self, tx: Transaction, read: Reader) -> Mapping[bytes, bytes | None]:
        p = tx.payload
        if set(p) != {"account", "reason"} or not isinstance(p["account"], str) or not isinstance(p["reason"], str):
            raise GovernanceRefused('user.revoke payload is {"account", "reason"}')
        target = self.user(read, p["account"])
        if target is None:
            raise GovernanceRefused(f"no user {p['account']!r}")
        me = account_of(tx.sender)
        actor = self.user(read, me)
        if me != p["account"] and not (actor is not None and actor["status"] == "active"
                                       and actor["role"] == "admin" and actor["org"] == target["org"]):
            raise GovernanceRefused("only the user or an admin of its organisation may revoke it")
        return self._revoke_user(read, p["account"], f"by {me}: {p['reason']}")

    # ------------------------------------------------------------ membership
    def join(self, tx: Transaction, read: Reader) -> Mapping[bytes, bytes | None]:
        p = tx.payload
        if set(p) != {"id", "org", "role", "address"}:
            raise GovernanceRefused('node.join payload is {"id", "org", "role", "address": [host, port]}')
        nid = _node_id(p["id"])
        if p["role"] not in ("consensus", "full") or not isinstance(p["org"], str) or not p["org"]:
            raise GovernanceRefused("a joining node's role is 'consensus' or 'full', with its organisation")
        addr = p["address"]
        if (not isinstance(addr, list) or len(addr) != 2 or not isinstance(addr[0], str)
                or isinstance(addr[1], bool) or not isinstance(addr[1], int) or not 0 < addr[1] < 65536):
            raise GovernanceRefused("address is [host, port]")
        if (nid in self.vset_in(self.schedule(read), self.ctx.height) or self.member(read, nid) is not None
                or self.revoked(read, nid) is not None):
            raise GovernanceRefused(f"node id {nid!r} is taken")
        old = _get(read, K_JOIN + nid.encode())
        if old is not None and old["status"] in ("requested", "approved"):
            raise GovernanceRefused(f"a join request for {nid!r} is already {old['status']}")
        req = {"id": nid, "org": p["org"], "role": p["role"], "address": addr, "key": tx.sender.hex(),
               "height": self.ctx.height, "status": "requested"}
        return {K_JOIN + nid.encode(): canonical(req)}

    def certify(self, tx: Transaction, read: Reader) -> Mapping[bytes, bytes | None]:
        self._supervisor_id(tx, read)
        p = tx.payload
        if set(p) != {"node", "certificate", "from_height"}:
            raise GovernanceRefused('node.certify payload is {"node", "certificate": PEM, "from_height"}')
        nid = _node_id(p["node"])
        req = _get(read, K_JOIN + nid.encode())
        if req is None or req["status"] != "approved":
            raise GovernanceRefused(f"the join request of {nid!r} is not approved")
        if not isinstance(p["certificate"], str) or len(p["certificate"]) > 16_384:
            raise GovernanceRefused("certificate must be a PEM string")
        cert = self._verified_certificate(p["certificate"])
        if cert.common_name != nid or cert.public_key().point.hex() != req["key"] or cert.role != req["role"]:
            raise GovernanceRefused("the certificate's name, key or role differs from the join request")
        from_height = p["from_height"]
        params = self.params(read)
        earliest = self.ctx.height + params.exit_delay
        if isinstance(from_height, bool) or not isinstance(from_height, int) or from_height < earliest:
            raise GovernanceRefused(f"from_height must be an integer >= {earliest} (height + exit_delay)")
        writes: dict[bytes, bytes | None] = {}
        member = {"id": nid, "org": req["org"], "role": req["role"], "key": req["key"],
                  "address": req["address"], "certificate": cert.fingerprint, "serial": format(cert.serial, "x"),
                  "from_height": from_height, "status": "validator" if req["role"] != "full" else "full"}
        writes[K_NODE + nid.encode()] = canonical(member)
        req = dict(req)
        req["status"] = "certified"
        writes[K_JOIN + nid.encode()] = canonical(req)
        if req["role"] != "full":
            joining = Validator(nid, bytes.fromhex(req["key"]), req["org"], req["role"])
            writes.update(self._schedule_change(
                read, self.schedule(read), from_height,
                lambda vs: ValidatorSet((*vs.validators, joining))))
            member["from_height"] = self.ctx.effective  # later than asked if another change is pending
            writes[K_NODE + nid.encode()] = canonical(member)
        self.ctx.changed = True
        return writes

    def exit(self, tx: Transaction, read: Reader) -> Mapping[bytes, bytes | None]:
        if set(tx.payload) != {"node"}:
            raise GovernanceRefused('node.exit payload is {"node": id}')
        nid = _node_id(tx.payload["node"])
        schedule = self.schedule(read)
        v = self.vset_in(schedule, self.ctx.height).get(nid)
        if v is None:
            raise GovernanceRefused(f"{nid!r} is not a validator")
        if v.key != tx.sender:
            raise GovernanceRefused("only the validator itself may announce its exit")
        return self._remove(read, schedule, self.params(read), nid, "active exit")

    def evidence(self, tx: Transaction, read: Reader) -> Mapping[bytes, bytes | None]:
        p = tx.payload
        if set(p) != {"kind", "a", "b"} or p["kind"] not in ("double-proposal", "double-vote"):
            raise GovernanceRefused('node.evidence payload is {"kind": "double-proposal"|"double-vote", "a", "b"}')
        schedule = self.schedule(read)
        try:
            offender, view, height = self._check_evidence(p["kind"], p["a"], p["b"], schedule)
        except (InvalidMessage, EncodingError, KeyError, TypeError, ValueError) as exc:
            raise GovernanceRefused(f"evidence does not prove an offence: {exc}") from None
        seen = K_EVIDENCE + f"{offender}/{view}".encode()
        if read(seen) is not None:
            raise GovernanceRefused(f"this offence of {offender!r} in view {view} is already punished")
        if offender not in self.vset_in(schedule, self.ctx.height) or self.revoked(read, offender):
            raise GovernanceRefused(f"{offender!r} is no longer a validator")
        writes = self._remove(read, schedule, self.params(read), offender,
                              f"{p['kind']} in view {view} at height {height}")
        writes[seen] = canonical({"height": self.ctx.height, "tx": tx.id.hex()})
        return writes

    def _check_evidence(self, kind: str, a: Any, b: Any,
                        schedule: list[tuple[int, ValidatorSet]]) -> tuple[str, int, int]:
        """Two messages signed by one validator for two different blocks in one view (a
        validator proposes, and votes, at most once per view). Hashes are compared as bytes
        after strict decoding, so two spellings of one hash are never "different blocks"."""
        if kind == "double-proposal":
            # each side is {"header": block header, "sig": proposal signature}: the block hash
            # is SM3 of the canonical header, so the transaction ids are not needed
            if not isinstance(a, dict) or not isinstance(b, dict) or set(a) != {"header", "sig"} or set(b) != {"header", "sig"}:
                raise InvalidMessage('each proposal is {"header": {...}, "sig": hex}')
            ha, hb = a["header"], b["header"]
            if not isinstance(ha, dict) or not isinstance(hb, dict):
                raise InvalidMessage("a proposal header must be an object")
            if ha["proposer"] != hb["proposer"] or ha["view"] != hb["view"]:
                raise InvalidMessage("the two proposals differ in proposer or view")
            if ha["chain"] != self.chain or hb["chain"] != self.chain:
                raise InvalidMessage("a proposal is for another chain")
            hash_a, hash_b = sm3(canonical(ha)), sm3(canonical(hb))
            if hash_a == hash_b:
                raise InvalidMessage("the two proposals are the same block")
            proposer, view = str(ha["proposer"]), int(ha["view"])
            for h, side in ((hash_a, a), (hash_b, b)):
                vset = self.vset_in(schedule, int(side["header"]["height"]))
                check_signature(self.keys, vset, proposer, proposal_bytes(self.chain, h), hexbytes(side["sig"], "sig"))
            return proposer, view, int(ha["height"])
        if not isinstance(a, dict) or not isinstance(b, dict):
            raise InvalidMessage("each vote is an object")
        if a["by"] != b["by"] or a["view"] != b["view"]:
            raise InvalidMessage("the two votes differ in voter or view")
        block_a, block_b = hexbytes(a["block"], "block", 32), hexbytes(b["block"], "block", 32)
        if block_a == block_b:
            raise InvalidMessage("the two votes are for the same block")
        view = int(a["view"])
        for v, blk in ((a, block_a), (b, block_b)):
            height = int(v["height"])
            check_signature(self.keys, self.vset_in(schedule, height), str(v["by"]),
                            vote_bytes(self.chain, height, view, blk), hexbytes(v["sig"], "sig"))
        return str(a["by"]), view, int(a["height"])
