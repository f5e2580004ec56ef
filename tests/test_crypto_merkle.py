"""The transaction Merkle tree: RFC 6962 shape with SM3, proofs for every leaf, tampering."""

from __future__ import annotations

import hashlib

import pytest

from ledger.crypto.errors import MerkleIndexError
from ledger.crypto.merkle import (
    EMPTY_ROOT,
    inclusion_proof,
    inclusion_proofs,
    leaf_hash,
    merkle_root,
    merkle_root_of_hashes,
    verify_inclusion,
)


def H(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def ref_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 MTH, written from the RFC, with SM3."""
    n = len(leaves)
    if n == 0:
        return H(b"")
    if n == 1:
        return H(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return H(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [f"tx-{i}".encode() for i in range(n)]


def test_empty_tree_root_is_sm3_of_empty_string() -> None:
    assert merkle_root([]) == EMPTY_ROOT == H(b"")
    assert EMPTY_ROOT.hex() == "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"


def test_one_two_and_three_leaves_match_hand_computation() -> None:
    a, b, c = b"a", b"b", b"c"
    la, lb, lc = H(b"\x00a"), H(b"\x00b"), H(b"\x00c")
    assert merkle_root([a]) == la
    assert merkle_root([a, b]) == H(b"\x01" + la + lb)
    # three leaves: split at 2, so the root is node(node(a, b), c) -- c is not duplicated
    assert merkle_root([a, b, c]) == H(b"\x01" + H(b"\x01" + la + lb) + lc)
    # five leaves: node(node(node(a,b), node(c,d)), e)
    d, e = b"d", b"e"
    ld, le = H(b"\x00d"), H(b"\x00e")
    left = H(b"\x01" + H(b"\x01" + la + lb) + H(b"\x01" + lc + ld))
    assert merkle_root([a, b, c, d, e]) == H(b"\x01" + left + le)


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    # a leaf whose data looks like two child hashes does not collide with the inner node
    la, lb = leaf_hash(b"a"), leaf_hash(b"b")
    assert merkle_root([la + lb]) != merkle_root([b"a", b"b"])


@pytest.mark.parametrize("n", range(1, 70))
def test_root_matches_rfc6962_reference(n: int) -> None:
    leaves = leaves_of(n)
    assert merkle_root(leaves) == ref_mth(leaves)
    assert merkle_root_of_hashes([H(b"\x00" + x) for x in leaves]) == ref_mth(leaves)


@pytest.mark.parametrize("n", range(1, 34))
def test_every_inclusion_proof_matches_reference_and_verifies(n: int) -> None:
    leaves = leaves_of(n)
    root = merkle_root(leaves)
    proofs = inclusion_proofs(leaves, list(range(n)))
    for i, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, i)
        assert proof == ref_path(i, leaves) == proofs[i]
        assert verify_inclusion(leaf, i, n, proof, root)
        assert verify_inclusion(H(b"\x00" + leaf), i, n, proof, root, prehashed=True)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 16, 33])
def test_tampered_proofs_fail(n: int) -> None:
    leaves = leaves_of(n)
    root = merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, i)
        assert not verify_inclusion(leaf + b"!", i, n, proof, root)
        assert not verify_inclusion(leaf, i, n, proof, H(root))
        # a tree size whose path for this index is longer is refused (RFC 9162 end check);
        # tree_size itself must come from an authenticated source such as the block header
        assert not verify_inclusion(leaf, i, 4 * n + 1, proof, root)
        if n > 1:
            assert not verify_inclusion(leaf, (i + 1) % n, n, proof, root)
            assert not verify_inclusion(leaf, i, n, proof[:-1], root)
            for j in range(len(proof)):
                bad = list(proof)
                bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
                assert not verify_inclusion(leaf, i, n, bad, root)
        assert not verify_inclusion(leaf, i, n, [*proof, root], root)
        # data passed as if it were the leaf hash is not accepted
        assert not verify_inclusion(leaf, i, n, proof, root, prehashed=True)


def test_verify_rejects_malformed_input_without_raising() -> None:
    leaves = leaves_of(4)
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, 1)
    assert not verify_inclusion(leaves[1], -1, 4, proof, root)
    assert not verify_inclusion(leaves[1], 4, 4, proof, root)
    assert not verify_inclusion(leaves[1], 1, 0, [], root)
    assert not verify_inclusion(leaves[1], 1, 4, [p[:31] for p in proof], root)


def test_inclusion_proof_index_out_of_range_is_refused() -> None:
    with pytest.raises(MerkleIndexError, match="outside a tree of 3 leaves"):
        inclusion_proof(leaves_of(3), 3)
    with pytest.raises(MerkleIndexError):
        inclusion_proof([], 0)


def test_ten_thousand_leaves_give_the_reference_root() -> None:
    leaves = [i.to_bytes(4, "big") * 8 for i in range(10_000)]
    assert merkle_root(leaves) == ref_mth(leaves)
    proof = inclusion_proof(leaves, 9_999)
    assert verify_inclusion(leaves[9_999], 9_999, 10_000, proof, merkle_root(leaves))


def test_the_vectors_published_in_docs_spec_state_md() -> None:
    abcde = [b"a", b"b", b"c", b"d", b"e"]
    assert ref_mth([b"a"]).hex() == "c688f41bcd570f9651ccb215058a545f66f52ab4eac2968896e1637af9443d8c"
    assert ref_mth(abcde[:3]).hex() == "2706e4e4d41c1ed9c3fe7f7822bf360a67abcc052cc2c00022c1313ec3ded965"
    assert merkle_root(abcde).hex() == ref_mth(abcde).hex() == \
        "59d4ece8d4b1eb417ba6b83c5af20b91288413c61a2be15fb64e311c584aa5e8"
    assert [p.hex() for p in inclusion_proof(abcde, 2)] == [
        "28fd620986d700effe942161aa92c1e632ca00dd3dcbd60ad0d3b4545015b4fe",
        "2c537e31416ae684fd8a1552a3bcd5a452274e02a45d67c856405b3a1108ee90",
        "1f4f47b21853d45f95bdafd22808211cefac5ae984e82d4438449f525e63b243",
    ]
