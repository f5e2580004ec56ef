"""The party's always-on listener (``privacy.mpc.Listener``, used by ``rongxin mpc serve``):
runs side by side on one port, links that arrive before their run are parked, not refused."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.crypto.tls import tls_context
from privacy.mpc import Listener, TLSFiles
from privacy.mpc.transport import MAX_PARKED, _write_hello
from tests.privacy.mpc_kit import Cluster

pytestmark = pytest.mark.slow
PARTY = "tests.privacy.listener_party"


def _expected(data: dict[str, dict], ids: list[str], column: str) -> dict[str, int]:
    return {i: sum(rows.get(i, {}).get(column, 0) for rows in data.values()) for i in ids}


def _run(c: Cluster, runs: dict[str, list[dict]], timeout: float) -> dict[str, dict]:
    configs = {}
    for pid in c.ids:
        cfg = c.config(pid, {}, timeout=timeout)
        cfg["runs"] = runs[pid]
        configs[pid] = cfg
    return c.results(c.launch(configs, module=PARTY), timeout=120)


def test_two_computations_run_side_by_side_on_each_partys_one_port(tmp_path: Path) -> None:
    """Two computations started at once by every party, each party on its single registered
    port: both end with the plaintext's totals (a listener per run could not bind the port
    twice)."""
    c = Cluster.create(tmp_path, 3)
    ids, data = c.random_data(21, 40)
    runs = [{"computation_id": "views", "query": {"op": "sum", "column": "views", "ids": ids}, "delay": 0},
            {"computation_id": "likes", "query": {"op": "sum", "column": "likes", "ids": ids}, "delay": 0}]
    res = _run(c, {p: runs for p in c.ids}, timeout=20)
    for pid in c.ids:
        for cid, column in (("views", "views"), ("likes", "likes")):
            r = res[pid][cid]
            assert r["ok"], (pid, cid, r)
            assert {k: int(v) for k, v in r["outputs"]["totals"].items()} == _expected(data, ids, column)


def test_a_party_starting_its_run_3_s_after_its_peers_still_computes(tmp_path: Path) -> None:
    """platform-a (which accepts every other party's link) starts its run 3 s after the others,
    after another computation on the same port: the others' links wait at its listener and the
    run succeeds (end to end; the hand-over itself: the next tests)."""
    c = Cluster.create(tmp_path, 3)
    ids, data = c.random_data(22, 30)
    late = {"computation_id": "late", "query": {"op": "sum", "column": "views", "ids": ids}}
    first = {"computation_id": "first", "query": {"op": "sum", "column": "likes", "ids": ids}, "delay": 0}
    runs = {"platform-a": [first, {**late, "delay": 3}],
            "platform-b": [first, {**late, "delay": 0}],
            "platform-c": [first, {**late, "delay": 0}]}
    res = _run(c, runs, timeout=10)
    for pid in c.ids:
        assert res[pid]["late"]["ok"], (pid, res[pid])
        got = {k: int(v) for k, v in res[pid]["late"]["outputs"]["totals"].items()}
        assert got == _expected(data, ids, "views")


@contextlib.contextmanager
def _listening(c: Cluster, timeout: float) -> Iterator[Listener]:
    """platform-a's always-on listener, stopped on exit."""
    d = c.root / "platform-a"
    assert c.ca is not None
    lst = Listener("platform-a", "127.0.0.1", c.ports["platform-a"],
                   TLSFiles(d / "tls.crt", d / "tls.key", c.ca.folder / "transport-ca.crt.pem"), timeout)
    lst.start()
    try:
        yield lst
    finally:
        lst.stop()


async def _dial(c: Cluster, hello_to: str, cid: str = "never-started") -> tuple[asyncio.StreamReader,
                                                                                 asyncio.StreamWriter]:
    assert c.ca is not None
    d = c.root / "platform-b"
    ctx = tls_context(False, d / "tls.crt", d / "tls.key", c.ca.folder / "transport-ca.crt.pem")
    reader, writer = await asyncio.open_connection("127.0.0.1", c.ports["platform-a"], ssl=ctx)
    _write_hello(writer, cid, "platform-b", hello_to)
    await writer.drain()
    return reader, writer


def test_a_malformed_hello_closes_the_link_and_the_listener_goes_on(tmp_path: Path) -> None:
    """A hello of deeply nested JSON (json raises RecursionError) or garbage closes that link;
    the next link is still parked."""
    from privacy.mpc.transport import KIND_HELLO, header

    c = Cluster.create(tmp_path, 3)
    with _listening(c, timeout=30) as lst:
        async def scenario() -> None:
            assert c.ca is not None
            d = c.root / "platform-b"
            ctx = tls_context(False, d / "tls.crt", d / "tls.key", c.ca.folder / "transport-ca.crt.pem")
            for body in (b"[" * 4000 + b"]" * 4000, b"\xff\xfe not json"):
                reader, writer = await asyncio.open_connection("127.0.0.1", c.ports["platform-a"], ssl=ctx)
                writer.write(header(KIND_HELLO, 0, len(body)) + body)
                await writer.drain()
                assert await _closed_within(reader, 3.0)
                writer.close()
            reader, writer = await _dial(c, "platform-a", cid="after")
            assert not await _closed_within(reader, 0.5)
            assert _parked(lst) == 1
            writer.close()

        asyncio.run(scenario())


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), seconds) == b""
    except TimeoutError:
        return False
    except (ConnectionError, OSError):
        return True


def test_the_listener_parks_a_link_for_its_timeout_then_closes_it(tmp_path: Path) -> None:
    c = Cluster.create(tmp_path, 3)
    with _listening(c, timeout=1.5):
        async def scenario() -> None:
            reader, writer = await _dial(c, "platform-a")
            assert not await _closed_within(reader, 0.7)  # parked: open, no answer
            assert await _closed_within(reader, 3.0)  # closed once its timeout passed
            writer.close()
            stranger, w2 = await _dial(c, "platform-c")  # a hello for another party: closed at once
            assert await _closed_within(stranger, 1.0)
            w2.close()

        asyncio.run(scenario())


def test_a_parked_link_is_handed_to_its_run_when_the_run_attaches(tmp_path: Path) -> None:
    c = Cluster.create(tmp_path, 3)
    got: list[dict] = []
    with _listening(c, timeout=30) as lst:
        async def scenario() -> None:
            _reader, writer = await _dial(c, "platform-a", cid="x")
            await asyncio.sleep(0.3)
            assert _parked(lst) == 1

            async def attach() -> None:
                lst.attach("y", lambda r, w, hello: got.append({"run": "y", **hello}))
                lst.attach("x", lambda r, w, hello: got.append({"run": "x", **hello}))

            asyncio.run_coroutine_threadsafe(attach(), lst.loop).result()
            assert got == [{"run": "x", "computation_id": "x", "from": "platform-b", "to": "platform-a"}]
            assert _parked(lst) == 0
            writer.close()

        asyncio.run(scenario())


def test_the_listener_parks_at_most_max_parked_links(tmp_path: Path) -> None:
    c = Cluster.create(tmp_path, 3)
    with _listening(c, timeout=30) as lst:
        async def scenario() -> None:
            links = [await _dial(c, "platform-a", cid=f"c{k}") for k in range(MAX_PARKED + 1)]
            assert await _closed_within(links[0][0], 3.0)  # the oldest made room
            assert not await _closed_within(links[-1][0], 0.3)
            for _r, w in links:
                w.close()

        asyncio.run(scenario())
        assert _parked(lst) <= MAX_PARKED


def _parked(lst: Listener) -> int:
    """How many links wait at ``lst`` (read on its loop)."""

    async def count() -> int:
        return lst.parked()

    return int(asyncio.run_coroutine_threadsafe(count(), lst.loop).result())


def test_a_port_in_use_is_a_clear_error_of_the_party_process(tmp_path: Path) -> None:
    """``rongxin mpc serve`` on a port another process holds: exit 3 (the environment) naming
    the address, before anything is filed, no traceback."""
    from api.identities import _on_disk
    from ledger.crypto.ca import ConsortiumCA
    from tests.conftest import run_rongxin

    ca = ConsortiumCA.init(tmp_path / "ca", "X")
    _on_disk(tmp_path, ca, "platform-a", "platform", "P")
    csv = tmp_path / "a.csv"
    csv.write_text("content_id,views,likes\nw1,1,2\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_rongxin("mpc", "serve", "--as", str(tmp_path / "identities" / "platform-a"), "--api",
                        "http://127.0.0.1:9", "--data", str(csv), "--listen", f"127.0.0.1:{port}", timeout=60)
    assert r.returncode == 3, r.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
