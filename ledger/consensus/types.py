"""Consensus data: validator sets, block headers, votes, quorum and timeout certificates.

Everything here has one canonical-JSON form; what is signed is named by a ``kind`` field so
that a vote can never be replayed as a timeout or a proposal. docs/transactions.md gives the
formats for independent verifiers. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..codec import EncodingError, canonical, hexbytes
from ..crypto import InvalidKey, InvalidSignature, MalformedSignature, SM2PrivateKey, sm3
from ..crypto.keycache import KeyCache
from .errors import InvalidMessage

ZERO = bytes(32)


def _int(obj: Mapping[str, Any], name: str) -> int:
    v = obj.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InvalidMessage(f"{name} must be a non-negative integer")
    return v


def _str(obj: Mapping[str, Any], name: str) -> str:
    v = obj.get(name)
    if not isinstance(v, str) or not v:
        raise InvalidMessage(f"{name} must be a non-empty string")
    return v


def _hex(obj: Mapping[str, Any], name: str, size: int | None = None) -> bytes:
    try:
        return hexbytes(obj.get(name), name, size)
    except EncodingError as exc:
        raise InvalidMessage(str(exc)) from None


# ---------------------------------------------------------------- validators


@dataclass(frozen=True)
class Validator:
    id: str
    key: bytes  # 65-byte SM2 point
    org: str
    role: str  # "supervisor" | "consensus"

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key.hex(), "org": self.org, "role": self.role}

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> Validator:
        return cls(_str(obj, "id"), _hex(obj, "key", 65), _str(obj, "org"), _str(obj, "role"))


@dataclass(frozen=True)
class ValidatorSet:
    """An ordered set of validators; ``f = ⌊(n−1)/3⌋``, a quorum is ``n − f`` of them."""

    validators: tuple[Validator, ...]
    _by_id: dict[str, Validator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = [v.id for v in self.validators]
        if len(set(ids)) != len(ids):
            raise InvalidMessage("validator ids must be unique")
        if list(ids) != sorted(ids):
            object.__setattr__(self, "validators", tuple(sorted(self.validators, key=lambda v: v.id)))
        object.__setattr__(self, "_by_id", {v.id: v for v in self.validators})

    @property
    def n(self) -> int:
        return len(self.validators)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def quorum(self) -> int:
        return self.n - self.f

    def get(self, validator_id: str) -> Validator | None:
        return self._by_id.get(validator_id)

    def __contains__(self, validator_id: object) -> bool:
        return validator_id in self._by_id

    def leader(self, view: int) -> str:
        """Round-robin leader of ``view``."""
        return self.validators[view % self.n].id

    def wire(self) -> list[dict[str, Any]]:
        return [v.wire() for v in self.validators]

    @classmethod
    def from_wire(cls, items: Iterable[Mapping[str, Any]]) -> ValidatorSet:
        return cls(tuple(Validator.from_wire(v) for v in items))

    def digest(self) -> bytes:
        return sm3(canonical(self.wire()))


# ---------------------------------------------------------------- signing


def vote_bytes(chain: str, height: int, view: int, block: bytes) -> bytes:
    return canonical({"kind": "vote", "chain": chain, "height": height, "view": view, "block": block.hex()})


def timeout_bytes(chain: str, view: int, high_qc_view: int) -> bytes:
    return canonical({"kind": "timeout", "chain": chain, "view": view, "high_qc_view": high_qc_view})


def proposal_bytes(chain: str, block: bytes) -> bytes:
    return canonical({"kind": "proposal", "chain": chain, "block": block.hex()})


class Signer:
    """A validator's identity and key; signs consensus messages (keys never leave it)."""

    def __init__(self, validator_id: str, key: SM2PrivateKey) -> None:
        self.id = validator_id
        self._key = key

    @property
    def point(self) -> bytes:
        return self._key.public_key().point

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def check_signature(keys: KeyCache, vset: ValidatorSet, signer: str, message: bytes, sig: bytes) -> None:
    v = vset.get(signer)
    if v is None:
        raise InvalidMessage(f"{signer!r} is not a validator")
    try:
        keys.get(v.key).verify(sig, message)
    except (InvalidSignature, MalformedSignature, InvalidKey) as exc:
        raise InvalidMessage(f"signature of {signer!r} does not verify: {exc}") from None


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class QuorumCertificate:
    """``n − f`` validator signatures over one (chain, height, view, block) vote."""

    chain: str
    height: int
    view: int
    block: bytes
    sigs: tuple[tuple[str, bytes], ...]  # (validator id, DER signature), sorted by id

    @classmethod
    def genesis(cls, chain: str, genesis_hash: bytes) -> QuorumCertificate:
        return cls(chain, 0, 0, genesis_hash, ())

    @property
    def is_genesis(self) -> bool:
        return self.height == 0 and self.view == 0 and not self.sigs

    def signed_bytes(self) -> bytes:
        return vote_bytes(self.chain, self.height, self.view, self.block)

    def verify(self, vset: ValidatorSet, keys: KeyCache, genesis_hash: bytes | None = None) -> None:
        if self.is_genesis:
            if genesis_hash is not None and self.block != genesis_hash:
                raise InvalidMessage("genesis QC for another genesis block")
            return
        signers = [s for s, _ in self.sigs]
        if len(set(signers)) != len(signers):
            raise InvalidMessage("QC lists a validator twice")
        if len(signers) < vset.quorum:
            raise InvalidMessage(f"QC has {len(signers)} signatures; a quorum is {vset.quorum}")
        message = self.signed_bytes()
        for signer, sig in self.sigs:
            try:
                check_signature(keys, vset, signer, message, sig)
            except InvalidMessage as exc:  # say it is the QC that is forged, not the message
                raise InvalidMessage(f"invalid QC for height {self.height} view {self.view}: {exc}") from None

    def wire(self) -> dict[str, Any]:
        return {"chain": self.chain, "height": self.height, "view": self.view, "block": self.block.hex(),
                "sigs": [{"by": s, "sig": sig.hex()} for s, sig in self.sigs]}

    @classmethod
    def from_wire(cls, obj: Any) -> QuorumCertificate:
        if not isinstance(obj, dict):
            raise InvalidMessage("a QC is an object")
        sigs_raw = obj.get("sigs")
        if not isinstance(sigs_raw, list):
            raise InvalidMessage("QC sigs must be a list")
        sigs = []
        for item in sigs_raw:
            if not isinstance(item, dict):
                raise InvalidMessage("QC signature entries are objects")
            sigs.append((_str(item, "by"), _hex(item, "sig")))
        return cls(_str(obj, "chain"), _int(obj, "height"), _int(obj, "view"), _hex(obj, "block", 32),
                   tuple(sorted(sigs)))


@dataclass(frozen=True)
class TimeoutCertificate:
    """``n − f`` timeout messages for one view, with the highest QC they reported."""

    chain: str
    view: int
    high_qc: QuorumCertificate
    sigs: tuple[tuple[str, int, bytes], ...]  # (validator, its high_qc view, signature)

    @classmethod
    def of_timeouts(cls, chain: str, view: int, timeouts: Mapping[str, Mapping[str, Any]]) -> TimeoutCertificate:
        """The TC of verified timeout messages for ``view`` (by signer), with the highest QC
        any of them reported."""
        sigs = []
        high: QuorumCertificate | None = None
        for by, m in sorted(timeouts.items()):
            qc = QuorumCertificate.from_wire(m["high_qc"])
            sigs.append((by, qc.view, bytes.fromhex(str(m["sig"]))))
            if high is None or qc.view > high.view:
                high = qc
        if high is None:
            raise InvalidMessage("a TC needs timeout messages")
        return cls(chain, view, high, tuple(sigs))

    def verify(self, vset: ValidatorSet, keys: KeyCache, genesis_hash: bytes | None = None) -> None:
        signers = [s for s, _, _ in self.sigs]
        if len(set(signers)) != len(signers) or len(signers) < vset.quorum:
            raise InvalidMessage("TC lacks a quorum of distinct validators")
        if self.high_qc.view != max(v for _, v, _ in self.sigs):
            raise InvalidMessage("TC's high QC is not the highest one its signers reported")
        for signer, qc_view, sig in self.sigs:
            check_signature(keys, vset, signer, timeout_bytes(self.chain, self.view, qc_view), sig)
        self.high_qc.verify(vset, keys, genesis_hash)

    def wire(self) -> dict[str, Any]:
        return {"chain": self.chain, "view": self.view, "high_qc": self.high_qc.wire(),
                "sigs": [{"by": s, "qc_view": v, "sig": sig.hex()} for s, v, sig in self.sigs]}

    @classmethod
    def from_wire(cls, obj: Any) -> TimeoutCertificate:
        if not isinstance(obj, dict) or not isinstance(obj.get("sigs"), list):
            raise InvalidMessage("a TC is an object with sigs")
        sigs = []
        for item in obj["sigs"]:
            if not isinstance(item, dict):
                raise InvalidMessage("TC signature entries are objects")
            sigs.append((_str(item, "by"), _int(item, "qc_view"), _hex(item, "sig")))
        return cls(_str(obj, "chain"), _int(obj, "view"), QuorumCertificate.from_wire(obj.get("high_qc")),
                   tuple(sorted(sigs)))


# ---------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Block:
    """A proposed block: its header (what the hash covers) and its transaction ids.

    Header fields: ``chain``, ``height``, ``view``, ``parent`` (hash), ``justify`` (the QC of
    the parent), ``proposer``, ``txs`` (Merkle root of the transaction ids), ``count``,
    ``exec`` (``{"height", "root"}``: the state root after the last committed block the
    proposer knew), ``validators`` (digest of the set that votes on this block), ``time``
    (ms since the Unix epoch: the proposer's wall clock, after the parent's time and found
    timely by every honest validator that voted for it; docs/spec/consensus.md "Block time").
    """

    header: dict[str, Any]
    tx_ids: tuple[bytes, ...]
    hash: bytes = field(compare=False)

    @classmethod
    def make(cls, header: dict[str, Any], tx_ids: Sequence[bytes]) -> Block:
        return cls(header, tuple(tx_ids), sm3(canonical(header)))

    @property
    def height(self) -> int:
        return int(self.header["height"])

    @property
    def view(self) -> int:
        return int(self.header["view"])

    @property
    def parent(self) -> bytes:
        return bytes.fromhex(self.header["parent"])

    @property
    def proposer(self) -> str:
        return str(self.header["proposer"])

    @property
    def justify(self) -> QuorumCertificate:
        return QuorumCertificate.from_wire(self.header["justify"])

    def wire(self) -> dict[str, Any]:
        return {"header": self.header, "tx_ids": [t.hex() for t in self.tx_ids]}

    @classmethod
    def from_wire(cls, obj: Any) -> Block:
        if not isinstance(obj, dict) or not isinstance(obj.get("header"), dict):
            raise InvalidMessage("a block is {header, tx_ids}")
        h = obj["header"]
        for name in ("height", "view", "count", "time"):
            _int(h, name)
        _str(h, "chain")
        _str(h, "proposer")
        _hex(h, "parent", 32)
        _hex(h, "txs", 32)
        _hex(h, "validators", 32)
        ex = h.get("exec")
        if not isinstance(ex, dict):
            raise InvalidMessage("exec must be an object")
        _int(ex, "height")
        _hex(ex, "root", 32)
        QuorumCertificate.from_wire(h.get("justify"))
        ids_raw = obj.get("tx_ids")
        if not isinstance(ids_raw, list):
            raise InvalidMessage("tx_ids must be a list")
        ids = tuple(_hex({"id": t}, "id", 32) for t in ids_raw)
        if len(ids) != h["count"]:
            raise InvalidMessage("count does not match the transaction ids")
        try:
            return cls.make(h, ids)
        except EncodingError as exc:
            raise InvalidMessage(f"header is not canonical JSON: {exc}") from None


def genesis_block(chain: str, vset: ValidatorSet, app_root: bytes, time_ms: int = 0) -> Block:
    """Height 0: no parent, no QC; every node builds the same one from the genesis file."""
    header = {
        "chain": chain, "height": 0, "view": 0, "parent": bytes(32).hex(),
        "justify": {"chain": chain, "height": 0, "view": 0, "block": bytes(32).hex(), "sigs": []},
        "proposer": "genesis", "txs": sm3(b"").hex(), "count": 0,
        "exec": {"height": 0, "root": app_root.hex()}, "validators": vset.digest().hex(), "time": time_ms,
    }
    return Block.make(header, [])
