"""The state tree: known roots, proofs of membership and absence, versions, pruning, reopening."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.state.errors import (
    HeightOutOfOrder,
    InvalidArgument,
    MalformedProof,
    PendingChanges,
    VersionNotFound,
)
from ledger.state.proof import Proof, ProofLeaf, verify_proof
from ledger.state.smt import SparseMerkleTree
from ledger.state.store import LMDBStore, MemoryStore

from .reference import ZERO, H, bit, inner, leaf, reference_root


def keys_split_at_bit0() -> tuple[bytes, bytes, bytes]:
    """Three keys: two whose hash starts with bit 0 (differing at bit 1), one starting with 1."""
    zero0 = zero1 = one = None
    i = 0
    while zero0 is None or zero1 is None or one is None:
        k = f"key{i}".encode()
        h = H(k)
        if bit(h, 0) == 1:
            one = one or k
        elif bit(h, 1) == 0:
            zero0 = zero0 or k
        else:
            zero1 = zero1 or k
        i += 1
    return zero0, zero1, one


def test_empty_tree_root_is_zero_and_proves_absence() -> None:
    tree = SparseMerkleTree(MemoryStore())
    assert tree.root() == ZERO
    assert tree.get(b"a") is None
    proof = tree.prove(b"a")
    assert proof == Proof((), None)
    assert verify_proof(ZERO, b"a", None, proof)
    assert not verify_proof(ZERO, b"a", b"1", proof)


def test_known_roots_by_hand() -> None:
    a, b, c = keys_split_at_bit0()  # H(a) = 00..., H(b) = 01..., H(c) = 1...
    tree = SparseMerkleTree(MemoryStore())
    # one key: the root is the leaf itself
    r1 = tree.apply(1, {a: b"1"})
    tree.commit()
    assert r1 == H(b"\x02" + H(a) + H(b"1"))
    # a and c split at bit 0: one inner node over the two leaves
    r2 = tree.apply(2, {c: b"3"})
    tree.commit()
    assert r2 == H(b"\x03" + H(b"\x02" + H(a) + H(b"1")) + H(b"\x02" + H(c) + H(b"3")))
    # b joins a under the left child, splitting at bit 1
    r3 = tree.apply(3, {b: b"2"})
    tree.commit()
    left = H(b"\x03" + H(b"\x02" + H(a) + H(b"1")) + H(b"\x02" + H(b) + H(b"2")))
    assert r3 == H(b"\x03" + left + H(b"\x02" + H(c) + H(b"3")))
    # deleting c leaves the left subtree as the root: inner nodes with one empty child collapse
    # only when the other child is a leaf
    r4 = tree.apply(4, {c: None})
    tree.commit()
    assert r4 == H(b"\x03" + left + ZERO)
    # deleting b collapses everything back to a's leaf
    r5 = tree.apply(5, {b: None})
    tree.commit()
    assert r5 == r1
    # membership proof of a in version 3, by hand
    proof = tree.prove(a, 3)
    assert proof.siblings == (H(b"\x02" + H(c) + H(b"3")), H(b"\x02" + H(b) + H(b"2")))
    assert proof.leaf == ProofLeaf(H(a), H(b"1"))
    assert verify_proof(r3, a, b"1", proof)


def test_two_keys_sharing_a_long_prefix_build_a_chain() -> None:
    # find two keys whose hashes share the first 3 bits
    base = b"k0"
    other = next(f"k{i}".encode() for i in range(1, 10_000)
                 if all(bit(H(f"k{i}".encode()), j) == bit(H(base), j) for j in range(3))
                 and bit(H(f"k{i}".encode()), 3) != bit(H(base), 3))
    tree = SparseMerkleTree(MemoryStore())
    root = tree.apply(1, {base: b"x", other: b"y"})
    lb, lo = leaf(H(base), H(b"x")), leaf(H(other), H(b"y"))
    node = inner(lb, lo) if bit(H(base), 3) == 0 else inner(lo, lb)
    for depth in (2, 1, 0):
        node = inner(node, ZERO) if bit(H(base), depth) == 0 else inner(ZERO, node)
    assert root == node
    assert len(tree.prove(base).siblings) == 4


def build(n: int, store: MemoryStore | LMDBStore | None = None) -> tuple[SparseMerkleTree, dict[bytes, bytes]]:
    tree = SparseMerkleTree(store if store is not None else MemoryStore())
    state = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(n)}
    tree.apply(tree.version + 1, state)
    tree.commit()
    return tree, state


def test_membership_and_non_membership_proofs() -> None:
    tree, state = build(300)
    root = tree.root()
    assert root == reference_root(state)
    for key, value in state.items():
        proof = tree.prove(key)
        assert tree.get(key) == value
        assert verify_proof(root, key, value, proof)
        assert not verify_proof(root, key, value + b"!", proof)
        assert not verify_proof(root, key, None, proof)
        assert not verify_proof(root, key + b"?", value, proof)
    ended_at_leaf = ended_empty = 0
    for i in range(300):
        key = f"absent-{i}".encode()
        proof = tree.prove(key)
        assert tree.get(key) is None
        assert verify_proof(root, key, None, proof)
        assert not verify_proof(root, key, b"", proof)
        if proof.leaf is None:
            ended_empty += 1
        else:
            ended_at_leaf += 1
    assert ended_at_leaf and ended_empty  # both kinds of absence proof were exercised


def test_tampered_proofs_fail() -> None:
    tree, _state = build(64)
    root = tree.root()
    key = b"key-7"
    proof = tree.prove(key)
    assert verify_proof(root, key, b"value-7", proof)
    for i in range(len(proof.siblings)):
        sib = list(proof.siblings)
        sib[i] = bytes([sib[i][0] ^ 0x80]) + sib[i][1:]
        assert not verify_proof(root, key, b"value-7", Proof(tuple(sib), proof.leaf))
    assert not verify_proof(root, key, b"value-7", Proof(proof.siblings[1:], proof.leaf))
    assert not verify_proof(root, key, b"value-7", Proof((*proof.siblings, ZERO), proof.leaf))
    assert not verify_proof(root, key, b"value-7", Proof(proof.siblings, None))
    # a membership proof of another key does not prove this key absent
    other = tree.prove(b"key-8")
    assert not verify_proof(root, key, None, other)
    # an absence proof that swaps in another key's leaf with a different prefix fails
    absent = tree.prove(b"nope")
    assert verify_proof(root, b"nope", None, absent)
    assert not verify_proof(root, b"nope", None, Proof(absent.siblings, other.leaf))
    assert not verify_proof(root, key, b"value-7", "not a proof")  # type: ignore[arg-type]


def test_proof_json_is_canonical_and_round_trips() -> None:
    tree, _ = build(10)
    proof = tree.prove(b"key-3")
    text = proof.to_json()
    obj = json.loads(text)
    assert text == json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    assert obj["format"] == "rongxin-smt-proof/1"
    assert obj["leaf"] == {"key_hash": H(b"key-3").hex(), "value_hash": H(b"value-3").hex()}
    assert all(isinstance(s, str) and len(s) == 64 for s in obj["siblings"])
    assert Proof.from_json(text) == proof
    assert Proof.from_json(text.decode()) == proof
    absent = tree.prove(b"zz")
    assert Proof.from_json(absent.to_json()) == absent


@pytest.mark.parametrize("bad", [
    b"[]", b"{}", b"not json",
    b'{"format":"x","leaf":null,"siblings":[]}',
    b'{"format":"rongxin-smt-proof/1","leaf":null,"siblings":["00"]}',
    b'{"format":"rongxin-smt-proof/1","leaf":{"key_hash":"00"},"siblings":[]}',
    b'{"format":"rongxin-smt-proof/1","leaf":null,"siblings":["' + b"A" * 64 + b'"]}',
    b'{"format":"rongxin-smt-proof/1","leaf":null,"siblings":[], "extra": 1}',
])
def test_malformed_proof_json_is_refused(bad: bytes) -> None:
    with pytest.raises(MalformedProof):
        Proof.from_json(bad)


def test_versioned_reads_see_each_height() -> None:
    tree = SparseMerkleTree(MemoryStore())
    history: list[tuple[bytes, dict[bytes, bytes]]] = [(ZERO, {})]
    state: dict[bytes, bytes] = {}
    for h in range(1, 8):
        updates: dict[bytes, bytes | None] = {f"k{i}".encode(): f"{h}".encode() for i in range(h, h + 5)}
        updates[f"k{h - 1}".encode()] = None
        root = tree.apply(h, updates)
        tree.commit()
        for k, v in updates.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
        assert root == reference_root(state)
        history.append((root, dict(state)))
    for h, (root, snapshot) in enumerate(history):
        assert tree.root(h) == root
        for i in range(14):
            k = f"k{i}".encode()
            assert tree.get(k, h) == snapshot.get(k)
            assert verify_proof(root, k, snapshot.get(k), tree.prove(k, h))
    with pytest.raises(VersionNotFound, match=r"keeps versions 0\.\.7"):
        tree.get(b"k1", 8)


def test_staging_rules() -> None:
    tree = SparseMerkleTree(MemoryStore())
    with pytest.raises(HeightOutOfOrder, match="next state version is 1, not 2"):
        tree.apply(2, {})
    with pytest.raises(PendingChanges):
        tree.commit()
    staged = tree.apply(1, {b"a": b"1"})
    assert tree.get(b"a") == b"1"  # the staged version is readable
    assert tree.root() == staged and tree.version == 0
    with pytest.raises(PendingChanges):
        tree.apply(2, {})
    tree.rollback()
    assert tree.get(b"a") is None and tree.root() == ZERO
    again = tree.apply(1, {b"b": b"2"})
    assert again == reference_root({b"b": b"2"})
    tree.commit()
    assert tree.get(b"b") == b"2" and tree.get(b"a") is None
    with pytest.raises(InvalidArgument):
        tree.apply(2, {"str": b"x"})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument):
        tree.apply(2, {b"k": 3})  # type: ignore[dict-item]
    tree.apply(2, {})
    with pytest.raises(InvalidArgument, match="reserved prefix"):
        tree.commit({b"TNxx": b"1"})


def test_empty_block_keeps_the_root() -> None:
    tree, _state = build(20)
    root = tree.root()
    assert tree.apply(2, {}) == root
    tree.commit()
    # deleting a key that does not exist, or setting a value to itself, changes nothing
    assert tree.apply(3, {b"nope": None, b"key-1": b"value-1"}) == root
    tree.commit()
    assert tree.root(3) == tree.root(1)


def test_rollback_after_cache_use_does_not_leak_nodes() -> None:
    tree, state = build(100)
    tree.apply(2, {f"x{i}".encode(): b"1" for i in range(50)})
    tree.rollback()
    root = tree.apply(2, {f"y{i}".encode(): b"2" for i in range(50)})
    tree.commit()
    state.update({f"y{i}".encode(): b"2" for i in range(50)})
    assert root == reference_root(state)
    assert all(tree.get(f"x{i}".encode()) is None for i in range(50))


def test_prune_keeps_retained_versions_whole(tmp_path: Path) -> None:
    store = LMDBStore(tmp_path / "db", sync=False)
    tree = SparseMerkleTree(store)
    history = []
    state: dict[bytes, bytes] = {}
    for h in range(1, 13):
        updates = {f"k{(h * 7 + i) % 60}".encode(): f"{h}-{i}".encode() for i in range(15)}
        tree.apply(h, updates)
        tree.commit()
        state.update(updates)
        history.append(dict(state))
    nodes_before = sum(1 for _ in store.iterate(b"TN"))
    deleted = tree.prune(keep_last=4)
    nodes_after = sum(1 for _ in store.iterate(b"TN"))
    assert deleted > 0 and nodes_after == nodes_before - deleted
    assert tree.oldest_version == 9
    for h in range(1, 9):
        with pytest.raises(VersionNotFound):
            tree.get(b"k1", h)
    for h in range(9, 13):
        snapshot = history[h - 1]
        root = tree.root(h)
        assert root == reference_root(snapshot)
        for i in range(62):
            k = f"k{i}".encode()
            assert tree.get(k, h) == snapshot.get(k)
            assert verify_proof(root, k, snapshot.get(k), tree.prove(k, h))
    assert tree.prune(keep_last=4) == 0  # nothing more to do
    # pruning survives reopening, and the tree keeps growing correctly afterwards
    store.close()
    store = LMDBStore(tmp_path / "db", sync=False)
    tree = SparseMerkleTree(store)
    assert tree.oldest_version == 9 and tree.version == 12
    tree.apply(13, {b"new": b"1"})
    tree.commit()
    state[b"new"] = b"1"
    assert tree.root() == reference_root(state)
    with pytest.raises(InvalidArgument):
        tree.prune(0)
    store.close()


def test_reopened_store_resumes_at_last_commit(tmp_path: Path) -> None:
    store = LMDBStore(tmp_path / "db")
    tree, _state = build(50, store)
    tree.apply(2, {b"staged": b"lost"})  # staged, never committed
    root1 = tree.root(1)
    store.close()
    store = LMDBStore(tmp_path / "db")
    tree = SparseMerkleTree(store)
    assert tree.version == 1 and tree.root() == root1
    assert tree.get(b"staged") is None
    assert tree.get(b"key-3") == b"value-3"
    store.close()


def test_the_vectors_published_in_docs_spec_state_md() -> None:
    """The figures in docs/spec/state.md, recomputed by the naive reference and by the tree."""
    state = {b"alice": b"100", b"bob": b"250", b"carol": b"7"}
    assert reference_root({b"alice": b"100"}).hex() == \
        "114391ee6de50dc7e9c26d210f7d7b63d1ee26ead5173f3f8aa73e5d3f8c7924"
    assert reference_root(state).hex() == "8006de68856b799a1a8cde3ebe87c0afa819a8766e528f54c4aeae5260713a2f"
    tree = SparseMerkleTree(MemoryStore())
    root = tree.apply(1, state)
    assert root == reference_root(state)
    bob = (b'{"format":"rongxin-smt-proof/1","leaf":{"key_hash":"f6860dfd05ee2d65375b1e83e81df9f48890abb278e81c3c'
           b'b6c9e5be9fde8fb3","value_hash":"59a59dca49749faeeaad3ab918ab3785719a659d5c537ce04387a13dd7f5e702"},'
           b'"siblings":["' + b"0" * 64 + b'","fea1334047c990c2c84d6fca6c293a7f2d71353949f4c3e5d29f87e7ed7eb870","'
           + b"0" * 64 + b'","' + b"0" * 64 + b'","114391ee6de50dc7e9c26d210f7d7b63d1ee26ead5173f3f8aa73e5d3f8c7924"]}')
    dave = (b'{"format":"rongxin-smt-proof/1","leaf":null,'
            b'"siblings":["63d6925c178d4b714ac9a505189d136601932153b87a8866b1221da19726298b"]}')
    assert tree.prove(b"bob").to_json() == bob
    assert tree.prove(b"dave").to_json() == dave
    assert verify_proof(root, b"bob", b"250", Proof.from_json(bob))
    assert verify_proof(root, b"dave", None, Proof.from_json(dave))


def test_latest_value_cache_follows_commits_rollbacks_and_deletes() -> None:
    """Reads of the last committed version are served from a cache filled by reads and by
    commits: it must always answer what a walk from the root answers."""
    import random

    rnd = random.Random(7)
    store = MemoryStore()
    tree = SparseMerkleTree(store, cache_nodes=64)  # small: eviction happens too
    state: dict[bytes, bytes] = {}
    keys = [f"c{i}".encode() for i in range(120)]
    for h in range(1, 40):
        for k in rnd.sample(keys, 20):  # reads fill the cache, absent keys too
            assert tree.get(k) == state.get(k)
        updates: dict[bytes, bytes | None] = {}
        for k in rnd.sample(keys, 15):
            updates[k] = None if rnd.random() < 0.3 else f"{h}".encode()
        if rnd.random() < 0.25:  # a staged version that is rolled back leaves no trace
            tree.apply(h, {k: b"rolled-back" for k in rnd.sample(keys, 10)})
            assert all(tree.get(k) == b"rolled-back" for k in keys if tree.get(k) == b"rolled-back")
            tree.rollback()
        tree.apply(h, updates)
        for k, v in updates.items():  # the staged version is what a reader sees until commit
            assert tree.get(k) == v
        assert tree.get(keys[0], h - 1) == state.get(keys[0])  # older versions walk the tree
        tree.commit()
        for k, v in updates.items():
            if v is None:
                state.pop(k, None)
            else:
                state[k] = v
        fresh = SparseMerkleTree(store)  # no cache: walks from the root
        for k in keys:
            assert tree.get(k) == state.get(k) == fresh.get(k)
