"""Properties of the state tree, checked on generated states (hypothesis)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.state.proof import verify_proof
from ledger.state.smt import SparseMerkleTree
from ledger.state.store import MemoryStore

from .reference import reference_root

keys = st.binary(min_size=0, max_size=12)
values = st.binary(min_size=0, max_size=16)
states = st.dictionaries(keys, values, max_size=40)
SETTINGS = settings(max_examples=150, deadline=None)


def fresh() -> SparseMerkleTree:
    return SparseMerkleTree(MemoryStore())


@SETTINGS
@given(states, st.randoms(use_true_random=False), st.integers(min_value=1, max_value=5))
def test_root_depends_only_on_the_final_set(state: dict[bytes, bytes], rnd: random.Random,
                                            batches: int) -> None:
    one = fresh()
    one.apply(1, state)
    one.commit()
    items = list(state.items())
    rnd.shuffle(items)
    several = fresh()
    for b in range(batches):
        several.apply(b + 1, dict(items[b::batches]))
        several.commit()
    assert one.root() == several.root() == reference_root(state)


@SETTINGS
@given(states, st.dictionaries(keys, values, min_size=1, max_size=20))
def test_insert_then_delete_returns_to_the_earlier_root(state: dict[bytes, bytes],
                                                         extra: dict[bytes, bytes]) -> None:
    tree = fresh()
    tree.apply(1, state)
    tree.commit()
    before = tree.root()
    added = {k: v for k, v in extra.items() if k not in state}
    tree.apply(2, added)
    tree.commit()
    tree.apply(3, dict.fromkeys(added))
    tree.commit()
    assert tree.root() == before
    # changing values and changing them back also returns to the same root
    changed = {k: v + b"x" for k, v in state.items()}
    tree.apply(4, changed)
    tree.commit()
    assert tree.root() == reference_root(changed)
    tree.apply(5, state)
    tree.commit()
    assert tree.root() == before


@SETTINGS
@given(states, st.lists(keys, max_size=10))
def test_proofs_verify_and_fail_when_the_value_is_altered(state: dict[bytes, bytes],
                                                          probes: list[bytes]) -> None:
    tree = fresh()
    tree.apply(1, state)
    tree.commit()
    root = tree.root()
    for key in [*state, *probes]:
        value = state.get(key)
        proof = tree.prove(key)
        assert tree.get(key) == value
        assert verify_proof(root, key, value, proof)
        assert not verify_proof(root, key, (value or b"") + b"\x00", proof)
        if value is not None:
            assert not verify_proof(root, key, None, proof)


def test_root_is_the_same_under_different_hash_seeds() -> None:
    """Set and dict order vary with PYTHONHASHSEED; the root must not."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    program = (
        "from ledger.state.smt import SparseMerkleTree\n"
        "from ledger.state.store import MemoryStore\n"
        "keys = {f'k{i}' for i in range(500)}\n"
        "t = SparseMerkleTree(MemoryStore())\n"
        "print(t.apply(1, {k.encode(): k.encode() * 2 for k in keys}).hex())\n"
    )
    repo = str(Path(__file__).resolve().parents[2])
    roots = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=repo)
        out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env,
                             check=True, timeout=60)
        roots.add(out.stdout.strip())
    assert roots == {reference_root({f"k{i}".encode(): f"k{i}".encode() * 2 for i in range(500)}).hex()}
