"""The hashing rules of the state tree and its proofs, with the pure verifier.

Owns how state keys, values, leaves and inner nodes of the compact sparse Merkle tree are
hashed, the ``Proof`` object, its canonical JSON form and ``verify_proof``. Must not touch
storage: a court or another chain verifies with this module (or ``docs/spec/state.md``)
alone. The tree shape is in ``smt``.

Hashing (``||`` is concatenation, all hashes are 32-byte SM3 digests):

- ``key_hash = SM3(key)``; bit ``i`` of a key hash is bit ``7 - i % 8`` of byte ``i // 8``
  (most significant first); 0 goes left, 1 goes right.
- ``value_hash = SM3(value)``
- leaf ``= SM3(0x02 || key_hash || value_hash)``
- inner node ``= SM3(0x03 || left || right)``
- an empty subtree (and the empty tree's root) is 32 zero bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.codec import EncodingError, canonical, parse
from ledger.crypto import sm3

from .errors import MalformedProof

HASH_SIZE = 32
KEY_BITS = 256
LEAF_TAG = b"\x02"
NODE_TAG = b"\x03"
EMPTY_HASH = bytes(HASH_SIZE)
PROOF_FORMAT = "rongxin-smt-proof/1"


def key_hash(key: bytes) -> bytes:
    """``SM3(key)``: where a state key lives in the tree."""
    return sm3(key)


def value_hash(value: bytes) -> bytes:
    return sm3(value)


def leaf_node_hash(key_hash_: bytes, value_hash_: bytes) -> bytes:
    return sm3(LEAF_TAG + key_hash_ + value_hash_)


def inner_node_hash(left: bytes, right: bytes) -> bytes:
    return sm3(NODE_TAG + left + right)


def bit(h: bytes, i: int) -> int:
    """Bit ``i`` of a 32-byte hash, most significant bit of byte 0 first."""
    return (h[i >> 3] >> (7 - (i & 7))) & 1


def common_prefix_bits(a: bytes, b: bytes) -> int:
    """How many leading bits ``a`` and ``b`` share."""
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return len(a) * 8 - x.bit_length()


@dataclass(frozen=True, slots=True)
class ProofLeaf:
    """The leaf a proof's path ends at: the key's own leaf, or another key's leaf."""

    key_hash: bytes
    value_hash: bytes


@dataclass(frozen=True, slots=True)
class Proof:
    """A path from the root towards ``SM3(key)``.

    ``siblings[i]`` is the hash of the sibling of the path's node at depth ``i + 1`` (so
    ``siblings[0]`` is a child of the root). ``leaf`` is the leaf at the end of the path,
    or ``None`` when the path ends at an empty subtree.
    """

    siblings: tuple[bytes, ...]
    leaf: ProofLeaf | None

    def to_json_obj(self) -> dict[str, Any]:
        leaf = None if self.leaf is None else {
            "key_hash": self.leaf.key_hash.hex(), "value_hash": self.leaf.value_hash.hex()}
        return {"format": PROOF_FORMAT, "leaf": leaf, "siblings": [s.hex() for s in self.siblings]}

    def to_json(self) -> bytes:
        """Canonical JSON: sorted keys, lowercase hex, no whitespace."""
        return canonical(self.to_json_obj())

    @classmethod
    def from_json(cls, data: bytes | str | dict[str, Any]) -> Proof:
        """Parse the canonical JSON form; raises ``MalformedProof`` with what is wrong."""
        obj: Any = data
        if isinstance(data, bytes | str):
            try:
                obj = parse(data)
            except EncodingError as exc:
                raise MalformedProof(f"a proof must be canonical-JSON-compatible JSON: {exc}") from None
        if not isinstance(obj, dict) or set(obj) != {"format", "leaf", "siblings"}:
            raise MalformedProof('a proof is a JSON object with exactly "format", "leaf" and "siblings"')
        if obj["format"] != PROOF_FORMAT:
            raise MalformedProof(f"unknown proof format {obj['format']!r}; expected {PROOF_FORMAT!r}")
        siblings = obj["siblings"]
        if not isinstance(siblings, list) or len(siblings) > KEY_BITS:
            raise MalformedProof(f'"siblings" must be a list of at most {KEY_BITS} hashes')
        leaf_obj = obj["leaf"]
        leaf = None
        if leaf_obj is not None:
            if not isinstance(leaf_obj, dict) or set(leaf_obj) != {"key_hash", "value_hash"}:
                raise MalformedProof('"leaf" must be null or an object with "key_hash" and "value_hash"')
            leaf = ProofLeaf(_hash_from_hex(leaf_obj["key_hash"]), _hash_from_hex(leaf_obj["value_hash"]))
        return cls(tuple(_hash_from_hex(s) for s in siblings), leaf)


def _hash_from_hex(text: object) -> bytes:
    if not isinstance(text, str) or len(text) != 2 * HASH_SIZE or text != text.lower():
        raise MalformedProof("a hash in a proof must be 64 lowercase hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise MalformedProof("a hash in a proof must be 64 lowercase hex digits") from None


def root_from_proof(key: bytes, value: bytes | None, proof: Proof) -> bytes | None:
    """The root ``proof`` leads to for ``key`` holding ``value`` (``None``: absent), or ``None``."""
    siblings: Sequence[bytes] = proof.siblings
    depth = len(siblings)
    if depth > KEY_BITS or any(len(s) != HASH_SIZE for s in siblings):
        return None
    kh = key_hash(key)
    leaf = proof.leaf
    if value is not None:
        if leaf is None or leaf.key_hash != kh or leaf.value_hash != value_hash(value):
            return None
        current = leaf_node_hash(leaf.key_hash, leaf.value_hash)
    elif leaf is None:
        current = EMPTY_HASH
    else:
        if len(leaf.key_hash) != HASH_SIZE or len(leaf.value_hash) != HASH_SIZE:
            return None
        if leaf.key_hash == kh or common_prefix_bits(leaf.key_hash, kh) < depth:
            return None
        current = leaf_node_hash(leaf.key_hash, leaf.value_hash)
    for i in range(depth - 1, -1, -1):
        if bit(kh, i):
            current = inner_node_hash(siblings[i], current)
        else:
            current = inner_node_hash(current, siblings[i])
    return current


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Proof) -> bool:
    """Whether ``proof`` shows that, in the state with ``root``, ``key`` holds ``value``.

    ``value=None`` asks for a non-membership proof (the key is absent). Pure; returns
    ``False`` on any mismatch or malformed input and never raises for those.
    """
    if not isinstance(proof, Proof) or not isinstance(root, bytes | bytearray):
        return False
    try:
        computed = root_from_proof(bytes(key), None if value is None else bytes(value), proof)
    except (TypeError, ValueError, IndexError):
        return False
    return computed is not None and computed == bytes(root)
