"""``ChainStore.latest_events``: the newest events of a type (and key), newest first, across
buckets of 256 heights, in an LMDB store with events far apart and several in one block."""

from __future__ import annotations

from pathlib import Path

from ledger.codec import canonical
from ledger.node.chainstore import HEAD, ChainStore
from ledger.state.store import LMDBStore


def _event_rows(type_: str, height: int, index: int, seq: int, keys: list[str]) -> dict[bytes, bytes]:
    pos = height.to_bytes(8, "big") + index.to_bytes(4, "big") + seq.to_bytes(2, "big")
    t = type_.encode() + b"\0"
    rec = canonical({"event": {"data": {"h": height, "i": index}, "keys": keys, "type": type_}, "height": height,
                     "index": index, "seq": seq, "tx": "00" * 32})
    rows = {b"Et" + t + pos: rec}
    rows.update({b"Ek" + t + k.encode() + b"\0" + pos: b"" for k in keys})
    return rows


def test_newest_first_across_buckets_and_within_a_block(tmp_path: Path) -> None:
    store = LMDBStore(tmp_path / "db")
    heights = [3, 255, 256, 700, 5000, 5000, 5000, 70_000]
    rows: dict[bytes, bytes | None] = {HEAD: (80_000).to_bytes(8, "big")}
    for i, h in enumerate(heights):
        rows.update(_event_rows("ft.Transfer", h, i, 0, ["alice"] if h % 2 else ["bob"]))
    rows.update(_event_rows("ft.Mint", 4, 0, 0, ["alice"]))
    store.write(rows)
    chain = ChainStore(store)
    every = chain.events("ft.Transfer", limit=100)
    assert [e["height"] for e in every] == heights  # oldest first
    for n in (1, 2, 3, 4, 5, 8, 50):
        assert chain.latest_events("ft.Transfer", None, n) == every[::-1][:n], n
    bob = chain.events("ft.Transfer", "bob")
    assert [e["height"] for e in bob] == [256, 700, 5000, 5000, 5000, 70_000]
    assert chain.latest_events("ft.Transfer", "bob", 4) == bob[::-1][:4]
    assert [e["height"] for e in chain.latest_events("ft.Transfer", "alice", 5)] == [255, 3]
    assert chain.latest_events("ft.Transfer", "carol", 5) == []
    assert [e["event"]["type"] for e in chain.latest_events("ft.Mint", None, 5)] == ["ft.Mint"]
    store.close()
