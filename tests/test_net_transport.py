"""Real TLS links over loopback (IPv4 and IPv6): who is admitted, who is refused, heartbeats."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ledger.crypto import SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA
from ledger.crypto.errors import UntrustedCertificate
from ledger.crypto.tls import check_endorsement, tls_context
from ledger.net.transport import MESSAGE, PeerNetwork, frame
from tests.ports import free_port


def _materials(tmp: Path, ca: ConsortiumCA, node_id: str) -> dict[str, Path]:
    cert = ca.issue(kind="node", name=node_id, org="Org", role="consensus",
                    public_key=SM2PrivateKey.generate().public_key())
    key_pem, cert_pem = ca.issue_transport(node_id, cert)
    d = tmp / node_id
    d.mkdir()
    (d / "tls.key").write_bytes(key_pem)
    (d / "tls.crt").write_bytes(cert_pem)
    return {"key": d / "tls.key", "cert": d / "tls.crt", "ca": ca.folder / "transport-ca.crt.pem",
            "fp": cert.fingerprint, "serial": cert.serial}  # type: ignore[dict-item]


def _net(m: dict, node_id: str, host: str, ports: dict[str, int], inbox: list, **kw) -> PeerNetwork:
    return PeerNetwork(
        node_id=node_id, listen=(host, ports[node_id]),
        peers={p: (host, ports[p]) for p in ports},
        server_ctx=tls_context(True, m["cert"], m["key"], m["ca"]),
        client_ctx=tls_context(False, m["cert"], m["key"], m["ca"]),
        on_message=lambda peer, payload: inbox.append((node_id, peer, payload)),
        status=lambda: {"height": 7}, heartbeat_interval=0.1, **kw)


async def _until(cond, timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def test_three_nodes_exchange_messages_and_see_each_other_online(tmp_path: Path, host: str) -> None:
    ca = ConsortiumCA.init(tmp_path / "ca", "Net Consortium")
    ids = ["n0", "n1", "n2"]
    mats = {i: _materials(tmp_path, ca, i) for i in ids}
    ports = {i: free_port(host) for i in ids}
    inbox: list = []

    async def scenario() -> None:
        nets = [_net(mats[i], i, host, ports, inbox) for i in ids]
        for n in nets:
            await n.start()
        try:
            nets[0].broadcast(b'{"hello":1}')
            nets[1].send("n2", b"direct")
            assert await _until(lambda: len(inbox) >= 3)
            assert await _until(lambda: all(len(n.online()) == 2 for n in nets))
            assert nets[0].online()["n1"]["status"]["height"] == 7
        finally:
            for n in nets:
                await n.stop()

    asyncio.run(scenario())
    assert ("n1", "n0", b'{"hello":1}') in inbox and ("n2", "n0", b'{"hello":1}') in inbox
    assert ("n2", "n1", b"direct") in inbox


def test_foreign_ca_and_revoked_node_are_refused(tmp_path: Path) -> None:
    host = "127.0.0.1"
    ca = ConsortiumCA.init(tmp_path / "ca", "Net Consortium")
    evil = ConsortiumCA.init(tmp_path / "evil", "Net Consortium")
    good = {i: _materials(tmp_path, ca, i) for i in ("a", "b")}
    (tmp_path / "x").mkdir()
    intruder = _materials(tmp_path / "x", evil, "c")
    revoked = _materials(tmp_path, ca, "d")
    ca.revoke(revoked["serial"])  # type: ignore[arg-type]
    revoked_fps = {revoked["fp"]}
    ports = {i: free_port(host) for i in ("a", "b", "c", "d")}
    inbox: list = []

    async def scenario() -> None:
        admit = lambda ident: ident.sm2_cert_fingerprint not in revoked_fps  # noqa: E731
        a = _net(good["a"], "a", host, ports, inbox, admit=admit)
        b = _net(good["b"], "b", host, ports, inbox, admit=admit)
        c = _net(intruder, "c", host, ports, inbox)
        d = _net(revoked, "d", host, ports, inbox)
        for n in (a, b, c, d):
            await n.start()
        try:
            c.broadcast(b"from the intruder")
            d.broadcast(b"from the revoked node")
            a.send("b", b"legit")
            assert await _until(lambda: ("b", "a", b"legit") in inbox)
            assert await _until(lambda: any("revoked" in why for _, why in a.refused))
            await asyncio.sleep(1.0)
        finally:
            for n in (a, b, c, d):
                await n.stop()

    asyncio.run(scenario())
    senders = {peer for _, peer, _ in inbox}
    assert senders == {"a"}, f"only the admitted node got through, not {senders}"


def test_garbage_on_the_wire_closes_only_that_link(tmp_path: Path) -> None:
    host = "127.0.0.1"
    ca = ConsortiumCA.init(tmp_path / "ca", "Net Consortium")
    mats = {i: _materials(tmp_path, ca, i) for i in ("a", "b")}
    ports = {i: free_port(host) for i in ("a", "b")}
    inbox: list = []

    async def scenario() -> None:
        a = _net(mats["a"], "a", host, ports, inbox)
        await a.start()
        try:
            ctx = tls_context(False, mats["b"]["cert"], mats["b"]["key"], mats["b"]["ca"])
            reader, writer = await asyncio.open_connection(host, ports["a"], ssl=ctx)
            writer.write(b"\xff\xff\xff\xff\x00 not a frame")
            await writer.drain()
            assert await reader.read() == b""  # a closed the bad link
            reader, writer = await asyncio.open_connection(host, ports["a"], ssl=ctx)
            writer.write(frame(MESSAGE, b"after the garbage"))
            await writer.drain()
            assert await _until(lambda: ("a", "b", b"after the garbage") in inbox)
            writer.close()
        finally:
            await a.stop()

    asyncio.run(scenario())


def test_transport_ca_must_be_endorsed_by_the_root(tmp_path: Path) -> None:
    ca = ConsortiumCA.init(tmp_path / "ca", "Net Consortium")
    other = ConsortiumCA.init(tmp_path / "other", "Net Consortium")
    t = ca.transport_ca()
    check_endorsement(t.cert_pem, t.endorsement, ca.root)
    with pytest.raises(UntrustedCertificate):
        check_endorsement(other.transport_ca().cert_pem, t.endorsement, ca.root)
    with pytest.raises(UntrustedCertificate):
        check_endorsement(t.cert_pem, t.endorsement, other.root)


def test_stop_ends_even_when_a_task_swallows_its_cancellation(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A task that ignores one cancellation (as a dial can, when Python 3.11's wait_for loses
    the cancellation of a connection completing at that moment) is cancelled again; one that
    ignores every cancellation is left behind with a warning: stop() never hangs."""
    ca = ConsortiumCA.init(tmp_path / "ca", "Net Consortium")
    m = _materials(tmp_path, ca, "n0")
    ports = {"n0": free_port("127.0.0.1")}
    ended: list[str] = []

    async def deaf(times: int, name: str) -> None:
        ignored = 0
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                ignored += 1
                if ignored > times:
                    ended.append(name)
                    raise

    async def scenario() -> None:
        net = _net(m, "n0", "127.0.0.1", ports, [])
        await net.start()
        net._tasks.append(asyncio.create_task(deaf(1, "once"), name="deaf-once"))
        stubborn = asyncio.create_task(deaf(10**9, "never"), name="deaf-always")
        net._tasks.append(stubborn)
        await asyncio.sleep(0.05)
        await asyncio.wait_for(net.stop(), 30)  # the bound is the test's, the point is that it returns
        assert not stubborn.done()
        stubborn.cancel()  # (it ignores this too: the loop's end reaps it)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        for t in asyncio.all_tasks(loop):
            t.get_coro().close()  # type: ignore[union-attr]
        loop.close()
    assert ended == ["once"]
    assert any("deaf-always" in r.getMessage() and "left behind" in r.getMessage() for r in caplog.records)
