"""The binary Merkle tree over an ordered list, such as a block's transactions.

Owns the RFC 6962 (Certificate Transparency) tree shape with SM3 as the hash:
``leaf = SM3(0x00 || data)``, ``node = SM3(0x01 || left || right)``, a tree of ``n > 1``
leaves splits at the largest power of two below ``n``, and the empty tree's root is
``SM3("")``. Owns inclusion proofs (audit paths, leaf side first) and their pure verifier,
usable offline by a court verifier. Must not touch storage or know what a leaf means.

Building is bottom-up: pair neighbours on each level and carry an unpaired last node up
unchanged, which yields exactly the RFC 6962 split tree in ``n - 1`` node hashes.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import MerkleIndexError
from .sm3 import sm3

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
EMPTY_ROOT = sm3(b"")


def leaf_hash(data: bytes) -> bytes:
    """``SM3(0x00 || data)``: the hash of one leaf."""
    return sm3(LEAF_PREFIX + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SM3(0x01 || left || right)``: the hash of an inner node."""
    return sm3(NODE_PREFIX + left + right)


def _levels(hashes: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first and the one-element root level last."""
    levels = [hashes]
    level = hashes
    while len(level) > 1:
        nxt = [sm3(NODE_PREFIX + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            nxt.append(level[-1])
        levels.append(nxt)
        level = nxt
    return levels


def _leaf_hashes(leaves: Sequence[bytes]) -> list[bytes]:
    return [sm3(LEAF_PREFIX + bytes(data)) for data in leaves]


def merkle_root_of_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root over leaves given by their leaf hashes (``leaf_hash`` of each datum)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return _levels(list(leaf_hashes))[-1][0]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root of the tree whose leaves are ``leaves`` in order (``SM3("")`` if none)."""
    if not leaves:
        return EMPTY_ROOT
    return _levels(_leaf_hashes(leaves))[-1][0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index``: sibling hashes from the leaf level up to the root."""
    if not 0 <= index < len(leaves):
        raise MerkleIndexError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
    return inclusion_proofs(leaves, [index])[0]


def inclusion_proofs(leaves: Sequence[bytes], indices: Sequence[int]) -> list[list[bytes]]:
    """Audit paths of several leaves, building the tree once."""
    for index in indices:
        if not 0 <= index < len(leaves):
            raise MerkleIndexError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
    levels = _levels(_leaf_hashes(leaves))
    proofs = []
    for index in indices:
        path: list[bytes] = []
        i = index
        for level in levels[:-1]:
            sibling = i ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            i >>= 1
        proofs.append(path)
    return proofs


def root_from_inclusion_proof(leaf_hash_: bytes, index: int, tree_size: int,
                              proof: Sequence[bytes]) -> bytes | None:
    """The root that ``proof`` leads to from ``leaf_hash_``, or ``None`` if it cannot fit.

    RFC 9162 section 2.1.3.2, with SM3 and the prefixes above.
    """
    if not 0 <= index < tree_size or len(leaf_hash_) != HASH_SIZE:
        return None
    fn = index
    sn = tree_size - 1
    r = leaf_hash_
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = sm3(NODE_PREFIX + p + r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sm3(NODE_PREFIX + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return r


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes,
                     *, prehashed: bool = False) -> bool:
    """Whether ``proof`` shows ``leaf`` at ``index`` in the tree of ``tree_size`` leaves with ``root``.

    ``leaf`` is the leaf's data, or its ``leaf_hash`` when ``prehashed`` is true. Pure: no
    storage, no clock; never raises on malformed input, it returns ``False``.
    """
    try:
        lh = bytes(leaf) if prehashed else leaf_hash(bytes(leaf))
        computed = root_from_inclusion_proof(lh, int(index), int(tree_size), [bytes(p) for p in proof])
    except (TypeError, ValueError):
        return False
    return computed is not None and computed == bytes(root)
