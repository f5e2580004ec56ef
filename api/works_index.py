"""A node's fingerprint index fed from the committed chain (docs/works.md §6.3), so every node
converges to the same index whichever node a work was registered through.

``ChainIndexer.catch_up`` reads the committed ``works.Registered`` events above the height the
index covers, oldest first, and adds each work's registration-side fingerprint: from the
registration this node prepared itself, else from the work's file in this node's content
store, else from the file fetched from a peer node (``GET /v1/works/{id}/file``, a request
signed with this node's key; the countersigning node is asked first). The file is stored only
if its SM3 is the one on chain. Once every work registered at or below a height is in the
index, that height is written into the index's database (``chain_height``) and becomes the
``index_height`` the node's countersignatures name. A work whose file no peer can serve stops
the index at the height below it (retried every ``RETRY_S``): the index never claims to cover
a registration it lacks. A node restarted with its index deleted rebuilds it from height 0
(reading only the events index, so the time is bounded by the number of registered works, not
of blocks).
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request

from fingerprint.errors import FingerprintError
from fingerprint.formats import Fingerprint, fingerprint_file
from forensics.contracts import work as work_record
from forensics.service import PreparedWork, WorksService, fingerprint_digest
from ledger.blobs import BlobError, LocalBlobStore
from ledger.codec import parse
from ledger.crypto import Certificate, SM2PrivateKey, sm3
from ledger.crypto.x509 import NODE_ROLES
from ledger.node.chainstore import MAX_QUERY
from ledger.node.config import ConfigError, NodeConfig, node_folders
from ledger.node.runtime import Node

from .auth import Authenticator, Hdr, request_target
from .errors import ApiError
from .signing import H_BODY, H_CERT, H_NONCE, H_SIG, H_TIME, sign_request

if TYPE_CHECKING:
    from .works_node import WorksNode

log = logging.getLogger("rongxin.api.works.index")

NOTE_HEIGHT = "chain_height"
NOTE_CHAIN = "chain"
EVENT = "works.Registered"
RETRY_S = 5.0
BACKGROUND_DELAY_S = 10.0  # the background task indexes what was committed at least this long ago
FETCH_TIMEOUT_S = 120.0


def peer_apis(consortium: Path, node_id: str) -> dict[str, str]:
    """The API address of every other node of the consortium folder (``nodes/*/node.json``)."""
    out: dict[str, str] = {}
    try:
        folders = node_folders(consortium)
    except OSError:
        return out
    for folder in folders:
        try:
            cfg = NodeConfig.load(folder)
        except (ConfigError, OSError, ValueError, KeyError):
            continue
        if cfg.id != node_id:
            out[cfg.id] = cfg.api_url()
    return out


def check_node_request(auth: Authenticator, node: Node, method: str, target: str,
                       headers: dict[str, str | None]) -> str:
    """The id of the consortium node that signed this request (docs/api-auth.md's scheme with
    a node certificate): the certificate chains to the root and is not revoked, the signature
    and nonce are good, its role is a node role and its key is that of a validator of the
    current set or of an admitted, unrevoked member node named by its common name. Otherwise
    401/403 as for any signed request (``auth_not_a_node`` for a non-node certificate)."""
    cert, _ = auth.verified(method, target, headers, sm3(b"").hex())  # a file request has no body
    nid, point = cert.common_name, cert.public_key().point
    known: bytes | None = None
    if cert.role in NODE_ROLES and not node.is_revoked(nid):
        v = node.vset_at(node.app.height + 1).get(nid)
        member = node.member(nid)
        known = v.key if v is not None else bytes.fromhex(member["key"]) if member is not None else None
    if known is None or known != point:
        raise ApiError(403, "auth_not_a_node", f"{nid} is not a node of this chain with this key")
    return nid


async def require_node(request: Request, x_rongxin_certificate: Hdr = None, x_rongxin_signature: Hdr = None,
                       x_rongxin_timestamp: Hdr = None, x_rongxin_nonce: Hdr = None,
                       x_rongxin_content_sm3: Hdr = None) -> str:
    """A route dependency: the id of the node that signed the request (``check_node_request``)."""
    headers = {H_CERT: x_rongxin_certificate, H_SIG: x_rongxin_signature, H_TIME: x_rongxin_timestamp,
               H_NONCE: x_rongxin_nonce, H_BODY: x_rongxin_content_sm3}
    return check_node_request(request.app.state.auth, request.app.state.node, request.method,
                              request_target(request), headers)


class ChainIndexer:
    """Feeds ``service``'s index from the committed ``works.Registered`` events of ``node``."""

    def __init__(self, works: WorksNode, service: WorksService, blobs: LocalBlobStore, *, node_id: str,
                 key: SM2PrivateKey, certificate: Certificate | None, peers: Callable[[], dict[str, str]]) -> None:
        self.works, self.service, self.blobs = works, service, blobs
        self.node_id, self._key, self._cert, self._peers = node_id, key, certificate, peers
        self._lock = asyncio.Lock()
        self._retry_at = 0.0
        self._seen: list[tuple[float, int]] = []  # (when first seen, committed head), for background

    # ------------------------------------------------------------ persisted height
    def load(self) -> int:
        """The height the stored index covers (0 for a new or foreign index), into the service
        (blocking: the works thread)."""
        idx = self.service.index
        chain, raw = idx.get_note(NOTE_CHAIN), idx.get_note(NOTE_HEIGHT)
        height = int(raw) if raw is not None and raw.isdigit() and chain == self.service.chain else 0
        if chain != self.service.chain:
            idx.set_note(NOTE_CHAIN, self.service.chain)
        self.service.index_height = height
        return height

    def _cover(self, height: int) -> None:
        if height > self.service.index_height:
            self.service.covered(height)
            self.service.index.set_note(NOTE_HEIGHT, str(height))

    # ------------------------------------------------------------ catching up
    def _committed_head(self) -> int:
        app = self.works.node.app
        return min(app.height, app.chain.head)

    def _events(self, start: int, head: int) -> tuple[list[dict[str, Any]], int]:
        """The registrations from ``start`` on, and the height up to which they are all read."""
        chain = self.works.node.app.chain
        evs = chain.events(EVENT, None, from_height=start, to_height=head, limit=MAX_QUERY)
        if len(evs) < MAX_QUERY:
            return evs, head
        first, last = int(evs[0]["height"]), int(evs[-1]["height"])
        if first < last:  # the page may end inside block ``last``: it is read again next
            return evs, last - 1
        # one block holds a full page: read that height's events whole (a block is bounded)
        prefix = b"Et" + EVENT.encode() + b"\0" + first.to_bytes(8, "big")
        return [dict(parse(raw)) for _k, raw in chain.store.iterate(prefix)], first

    async def refresh(self, upto: int | None = None) -> int:
        """``catch_up``, logging instead of raising: a caller then works with the height the
        index covers (which its countersignature names, so the contract judges it)."""
        try:
            return await self.catch_up(upto)
        except Exception:
            log.exception("feeding the fingerprint index from the chain failed")
            return self.service.index_height

    async def background(self) -> int:
        """The background task's ``refresh``: up to the heads committed at least
        ``BACKGROUND_DELAY_S`` ago, so that right after a registration the other nodes do not
        fetch and fingerprint its file while its own node is still answering the holder (a
        request that needs the index catches up at once)."""
        now, head = time.monotonic(), self._committed_head()
        if not self._seen or self._seen[-1][1] != head:
            self._seen.append((now, head))
        ripe = [h for t, h in self._seen if now - t >= BACKGROUND_DELAY_S]
        self._seen = ([(now - BACKGROUND_DELAY_S, max(ripe))] if ripe else []) + [
            (t, h) for t, h in self._seen if now - t < BACKGROUND_DELAY_S]
        return await self.refresh(max(ripe)) if ripe else self.service.index_height

    async def catch_up(self, upto: int | None = None) -> int:
        """Index every work committed up to the chain's head (or ``upto``, if lower); the
        height now covered."""
        async with self._lock:
            head = self._committed_head() if upto is None else min(upto, self._committed_head())
            start = self.service.index_height + 1
            while start <= head:
                evs, upto = self._events(start, head)
                for ev in evs:
                    rec = work_record(self.works.node.app.read, str(ev["event"]["data"]["work_id"]))
                    if rec is None or await self.works.call(self._index_one, rec):
                        continue
                    await self.works.call(self._cover, int(ev["height"]) - 1)
                    return self.service.index_height
                await self.works.call(self._cover, upto)
                start = upto + 1
            return self.service.index_height

    # ------------------------------------------------------------ one work (works thread)
    def _index_one(self, rec: dict[str, Any]) -> bool:
        """Add the work of registration record ``rec`` to the index; False if its file is not
        to be had now (no peer serves it)."""
        wid = str(rec["work_id"])
        if self.service.index.info(wid) is not None:
            return True
        try:
            fp = self._fingerprint(rec)
            if fp is None:
                return False
            if fingerprint_digest(fp) != rec["fingerprints"]:
                # the file is the registered one (its SM3 is); index what it gives here
                log.warning("work %s: this node's fingerprint of its file differs from the digest on chain", wid)
            self.service.confirm(PreparedWork(wid, {}, [], fp))
        except FingerprintError as exc:  # never indexable here: skipped, not waited for
            log.error("work %s (height %s) cannot be indexed: %s", wid, rec["height"], exc)
            return True
        log.info("work %s (height %s) indexed from the chain", wid, rec["height"])
        return True

    def _fingerprint(self, rec: dict[str, Any]) -> Fingerprint | None:
        wid, digest = str(rec["work_id"]), str(rec["sm3"])
        prepared = self.works.prepared_fingerprint(wid)
        if prepared is not None and prepared.sm3 == digest:
            return prepared
        if not self.blobs.has(digest) and not self._fetch(rec):
            return None
        return fingerprint_file(self.blobs.path(digest), query=False)

    def _fetch(self, rec: dict[str, Any]) -> bool:
        """Fetch the work's file from a peer into the content store; True if stored with the
        SM3 on chain."""
        now = time.monotonic()
        if self._cert is None or now < self._retry_at:
            return False
        peers = self._peers()
        first = str(rec["countersign"]["node"])
        order = ([first] if first in peers else []) + sorted(p for p in peers if p != first)
        target = f"/v1/works/{rec['work_id']}/file"
        for peer in order:
            headers = sign_request(self._key, self._cert, "GET", target)
            req = urllib.request.Request(peers[peer] + target, headers=headers, method="GET")  # noqa: S310
            try:
                with urllib.request.urlopen(req, timeout=FETCH_TIMEOUT_S) as resp:  # noqa: S310 - consortium peers
                    # claimed for the holder: kept, since the registration names it for them
                    # (blob/<sm3>/r/<holder>); a file of another SM3 is swept as an orphan
                    got, _size = self.blobs.put(resp, claim=str(rec["holder"]))
            except (urllib.error.URLError, OSError, ValueError, BlobError) as exc:
                log.info("work %s: peer %s did not serve its file: %s", rec["work_id"], peer, exc)
                continue
            if got == rec["sm3"]:
                log.info("work %s: file fetched from %s", rec["work_id"], peer)
                return True
            log.warning("work %s: peer %s served a file of SM3 %s, not %s", rec["work_id"], peer, got, rec["sm3"])
        self._retry_at = now + RETRY_S
        return False
