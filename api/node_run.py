"""The node process's body (``api.node_main`` is its light entry point): store, peer network,
consensus, the HTTP API and the helper process pools, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from forensics.contracts import types as forensics_types
from ledger.contracts.parallel import ParallelExecutor
from ledger.contracts.registry import parallel_types
from ledger.crypto import Certificate, CertificateRevocationList
from ledger.crypto.errors import CryptoError
from ledger.crypto.tls import PeerIdentity, tls_context
from ledger.net.transport import PeerNetwork
from ledger.node.app import LedgerApp, standard_types
from ledger.node.config import ConfigError, Genesis, NodeConfig
from ledger.node.intake import TxIntake
from ledger.node.runtime import Node
from ledger.state.store import GroupedStore, open_store
from privacy.contracts import types as mpc_types

from . import operations
from .auth import Authenticator
from .evidence_desk import attach_evidence
from .http import create_app
from .logs import configure as configure_logs
from .node_main import take_lock
from .nonces import NonceStore
from .service import Service
from .works_node import attach_works

log = logging.getLogger("rongxin.node")


def make_admit(cfg: NodeConfig, node: Node | None = None,
               on_revoked: Callable[[str], None] | None = None) -> Callable[[PeerIdentity], bool]:
    """Admit a peer only if its link is bound to its known SM2 certificate (from the
    consortium folder, or admitted on chain) that is revoked neither by the CA's CRL nor on
    chain (exit or eviction). ``on_revoked``: told the node id of a revoked peer that tries."""
    consortium = cfg.consortium
    known: dict[str, Certificate] = {}
    for folder in (consortium / "nodes").iterdir():
        cert_file = folder / "sm2.crt.pem"
        if cert_file.is_file():
            known[folder.name] = Certificate.load(cert_file.read_bytes())

    def revoked_serials() -> set[int]:
        try:
            crl = CertificateRevocationList.load((consortium / "ca" / "crl.pem").read_bytes())
        except (OSError, CryptoError):
            return set()
        return set(crl.revocations())

    def admit(ident: PeerIdentity) -> bool:
        if node is not None and node.is_revoked(ident.node_id):
            if on_revoked is not None:
                on_revoked(ident.node_id)
            return False
        cert = known.get(ident.node_id)
        if cert is None:
            member = node.member(ident.node_id) if node is not None else None
            return member is not None and member["certificate"] == ident.sm2_cert_fingerprint
        if cert.fingerprint != ident.sm2_cert_fingerprint:
            return False
        if cert.serial in revoked_serials():
            if on_revoked is not None:
                on_revoked(ident.node_id)
            return False
        return True

    return admit


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the node's handlers stop it, and the node
    then closes its links and store before the process exits."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


def _executor() -> ParallelExecutor | None:
    """Worker processes that run contract calls ahead of block order (docs/contracts.md §6).
    ``RONGXIN_EXEC_WORKERS``: how many (default: one per CPU; 0 turns parallel execution off).
    Workers start in the background when the node starts (a start costs the machine about
    0.8 s of CPU: better at boot than in the middle of a burst of blocks) and die with the node."""
    raw = os.environ.get("RONGXIN_EXEC_WORKERS", "")
    try:
        n = int(raw) if raw else None
    except ValueError:
        raise ConfigError(f"RONGXIN_EXEC_WORKERS must be a whole number, not {raw!r}") from None
    if n is not None and n <= 0:
        return None
    # below ~50 ms of estimated work a block runs in order: cheap system-contract calls (a token
    # transfer is ~40 us) gain less than the round trip costs when every core is busy verifying
    # blocks never wait for a worker that is still starting: they run in block order meanwhile
    return ParallelExecutor(parallel_types, workers=n, min_ship_s=0.05, wait_for_start_s=0.0)


def _intake(tables: bool) -> TxIntake:
    """Where submitted transactions are decoded and their signatures verified, off the event
    loop (``ledger/node/intake.py``): by default in threads of this process (one per CPU, at
    most 4; libcrypto runs with the GIL released). ``RONGXIN_VERIFY_WORKERS=N`` uses N worker
    processes instead (they cost ~30 us more per transaction in pickling; worth it only with
    more cores than nodes), 0 verifies on the event loop as before."""
    raw = os.environ.get("RONGXIN_VERIFY_WORKERS", "")
    try:
        n = int(raw) if raw else -1
    except ValueError:
        raise ConfigError(f"RONGXIN_VERIFY_WORKERS must be a whole number, not {raw!r}") from None
    if n < 0:
        return TxIntake(workers=0, threads=min(4, os.cpu_count() or 1), tables=tables)
    return TxIntake(workers=n, tables=tables)


def _servers(http: Any, cfg: NodeConfig, folder: Path, grace_s: float) -> list[_QuietServer]:
    """The API over HTTP, and over HTTPS with the node's transport certificate when configured.
    WebSockets: the sans-I/O implementation (it waits while a client's socket is full, which
    the hub turns into dropping the client), no compression (one deflate per subscriber and
    block costs more than it saves on loopback), messages of at most 64 KiB."""
    common: dict[str, Any] = {"log_level": "warning", "log_config": None, "lifespan": "off", "access_log": False,
                              "ws": "websockets-sansio", "ws_max_size": 65536, "ws_per_message_deflate": False,
                              "timeout_graceful_shutdown": max(1, round(grace_s))}
    host, port = cfg.api
    servers = [_QuietServer(uvicorn.Config(http, host=host, port=port, **common))]
    if cfg.api_tls is not None:
        servers.append(_QuietServer(uvicorn.Config(
            http, host=cfg.api_tls[0], port=cfg.api_tls[1], ssl_certfile=str(folder / "tls.crt"),
            ssl_keyfile=str(folder / "tls.key"), **common)))
    return servers


async def run(folder: Path, tables: bool = True) -> None:
    cfg = NodeConfig.load(folder)
    ops = operations.load(folder)
    configure_logs(os.environ.get("RONGXIN_LOG_FORMAT") or ops.logging.format,
                   os.environ.get("RONGXIN_LOG") or ops.logging.level)
    genesis = Genesis.load(cfg.consortium / "genesis.json")
    lock = take_lock(folder)
    (folder / "pid").write_text(f"{os.getpid()}\n")
    # one durable commit per message handled (block commit + safety record together)
    store = GroupedStore(open_store(folder / "db"))
    executor = _executor()
    if executor is not None:
        threading.Thread(target=executor.start, name="exec-start", daemon=True).start()
    intake = _intake(tables)
    threading.Thread(target=intake.start, name="intake-start", daemon=True).start()
    try:
        gov = genesis.make_governance()
        app = LedgerApp(store, {**standard_types(), **forensics_types(gov), **mpc_types()}, governance=gov, precomputer=executor)
        node = Node(node_id=cfg.id, chain=cfg.chain, app=app, genesis=genesis.block, vset=genesis.vset,
                    signer=cfg.signer(), params=genesis.params, tx_key=cfg.key())
        node.genesis_attestation = genesis.attestation
        if genesis.attestation is None:
            log.warning("%s has no genesis attestation beside it: evidence packages cannot be exported",
                        cfg.consortium / "genesis.json")
        auth = Authenticator(node, crl_path=cfg.consortium / "ca" / "crl.pem",
                             nonces=NonceStore(folder / "nonces.sqlite"))
        tca = cfg.consortium / "ca" / "transport-ca.crt.pem"
        net = PeerNetwork(
            node_id=cfg.id, listen=cfg.listen, peers=cfg.peers,
            server_ctx=tls_context(True, folder / "tls.crt", folder / "tls.key", tca),
            client_ctx=tls_context(False, folder / "tls.crt", folder / "tls.key", tca),
            on_message=node.on_net,
            admit=make_admit(cfg, node, on_revoked=lambda nid: auth.revoked_try("node", nid)),
            status=lambda: {"height": app.chain.head, "view": node.engine.view},
        )
        node.attach(net)
        http = create_app(node, role=cfg.role, org=cfg.org, online=lambda: list(net.online()), intake=intake,
                          auth=auth, consortium=cfg.consortium, folder=folder,
                          peers=[p for p in cfg.peers if p != cfg.id], ops=ops)
        service: Service = http.state.service
        works = attach_works(http, node, folder, chain=cfg.chain, node_id=cfg.id, key=cfg.key(),
                             consortium=cfg.consortium)
        attach_evidence(http, works, folder)
        # what a capture on this node may never fetch: its own API and peer ports (docs/works.md §4.3)
        http.state.own_addresses = [cfg.api, *([cfg.api_tls] if cfg.api_tls else []), cfg.listen]
        servers = _servers(http, cfg, folder, ops.service.shutdown_grace_s)
        await net.start()
        node.start()
        works.start()
        service.start()
        log.info("node %s (%s) up: p2p %s:%d, api %s%s, height %d", cfg.id, cfg.role, *cfg.listen,
                 cfg.api_url(), f" and {cfg.api_tls_url()}" if cfg.api_tls else "", app.chain.head)
        loop = asyncio.get_running_loop()

        def stop() -> None:
            # graceful (docs/operations.md §7): requests in flight finish, then node and store stop
            log.info("node %s stopping: finishing requests in flight", cfg.id)
            service.begin_shutdown()
            for s in servers:
                s.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        try:
            await asyncio.gather(*(s.serve() for s in servers))
        finally:
            await service.stop()
            node.stop()
            await net.stop()
            auth.nonces.close()
            log.info("node %s stopped at height %d", cfg.id, app.chain.head)
    finally:
        if executor is not None:
            executor.close()
        intake.close()
        store.close()
        with contextlib.suppress(OSError):
            lock.close()
