"""Read-only views of governance state: parameters, the validator schedule, members, users,
policies and permission rules. Everything here is a pure function of the state read."""

from __future__ import annotations

from typing import Any

from ..codec import parse
from ..consensus.types import ValidatorSet
from ..crypto import Certificate
from ..crypto.keycache import KeyCache
from .base import (
    K_NODE,
    K_ORGS,
    K_PARAMS,
    K_PERMS,
    K_POLICY,
    K_PROPOSAL,
    K_REVOKED,
    K_USER,
    K_VALIDATORS,
    Reader,
    get,
)
from .params import ChainParams

Schedule = list[tuple[int, ValidatorSet]]
DEFAULT_POLICY = {"rule": "supervisors", "need": "majority"}


def parse_schedule(raw: bytes) -> Schedule:
    return [(int(h), ValidatorSet.from_wire(vs)) for h, vs in parse(raw)["schedule"]]


def vset_in(schedule: Schedule, height: int) -> ValidatorSet:
    """The set of the last schedule entry whose ``from_height`` is at most ``height``."""
    current = schedule[0][1]
    for from_height, vset in schedule:
        if from_height <= height:
            current = vset
        else:
            break
    return current


class Views:
    """The genesis facts of a chain and the views of its governance state."""

    def __init__(self, chain: str, genesis_vset: ValidatorSet, genesis_params: ChainParams,
                 root_certificate: bytes | None) -> None:
        self.chain = chain
        self.genesis_vset = genesis_vset
        self.genesis_params = genesis_params
        self.root = Certificate.load(root_certificate) if root_certificate else None
        self.keys = KeyCache()
        self._parsed: dict[tuple[bytes, bytes], Any] = {}  # pure decodings, by state key and value

    def _decode(self, key: bytes, read: Reader, make: Any) -> Any:
        raw = read(key)
        if raw is None:
            return None
        hit = self._parsed.get((key, raw))
        if hit is None:
            if len(self._parsed) > 64:
                self._parsed.clear()
            hit = self._parsed[(key, raw)] = make(raw)
        return hit

    vset_in = staticmethod(vset_in)

    def params(self, read: Reader) -> ChainParams:
        p = self._decode(K_PARAMS, read, lambda raw: self.genesis_params.with_stored(parse(raw)))
        return self.genesis_params if p is None else p

    def schedule(self, read: Reader) -> Schedule:
        s = self._decode(K_VALIDATORS, read, parse_schedule)
        return [(0, self.genesis_vset)] if s is None else list(s)

    def vset(self, read: Reader, height: int) -> ValidatorSet:
        return vset_in(self.schedule(read), height)

    def supervisors(self, read: Reader, height: int) -> ValidatorSet:
        return ValidatorSet(tuple(v for v in self.vset(read, height).validators if v.role == "supervisor"))

    def revoked(self, read: Reader, node: str) -> dict[str, Any] | None:
        raw = get(read, K_REVOKED + node.encode())
        return None if raw is None else dict(raw)

    def member(self, read: Reader, node: str) -> dict[str, Any] | None:
        raw = get(read, K_NODE + node.encode())
        return None if raw is None else dict(raw)

    def user(self, read: Reader, account: str) -> dict[str, Any] | None:
        raw = get(read, K_USER + account.encode())
        return None if raw is None else dict(raw)

    def read_proposal(self, read: Reader, pid: str) -> dict[str, Any]:
        raw = get(read, K_PROPOSAL + pid.encode())
        return {} if raw is None else dict(raw)

    def policy(self, read: Reader, kind: str) -> dict[str, Any]:
        return dict((get(read, K_POLICY) or {}).get(kind, DEFAULT_POLICY))

    def perms(self, read: Reader) -> dict[str, Any]:
        return dict(get(read, K_PERMS) or {})

    def orgs(self, read: Reader, height: int | None = None) -> dict[str, dict[str, Any]]:
        """Member organisations: those on record plus every organisation running a validator
        of the set at ``height`` (None: the newest scheduled set)."""
        schedule = self.schedule(read)
        vset = schedule[-1][1] if height is None else vset_in(schedule, height)
        out: dict[str, dict[str, Any]] = {}
        for v in vset.validators:
            out.setdefault(v.org, {"roles": [], "height": 0})
            # every validator runs a consensus node; supervisors also supervise
            out[v.org]["roles"] = sorted({*out[v.org]["roles"], v.role, "consensus"})
        for org, rec in (get(read, K_ORGS) or {}).items():
            if rec.get("status", "member") == "member":
                merged = sorted(set(out.get(org, {}).get("roles", [])) | set(rec["roles"]))
                out[org] = {**rec, "roles": merged}
        return out
