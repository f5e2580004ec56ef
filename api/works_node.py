"""A node's side of the works registry (docs/api.md "Works"): its content store, fingerprint
index and ``WorksService`` under the node's folder, the registrations it has prepared and not
yet seen committed, and the certificates it renders.

Folder layout (``NODE_FOLDER/``): ``blobs/`` the content store, ``index/`` the fingerprint
index, ``works/uploads/`` uploads being received, ``works/pending/<work_id>.json`` a prepared
registration (written, ``fsync``'d, before the node answers), ``works/registered/<work_id>.json``
one the node has confirmed (its fingerprint is in the index), ``works/certificates/<id>.pdf`` the
certificate once its holder gave the signed proof.

A prepared registration becomes an index entry only once the chain holds ``works/w/<id>`` with
the holder, SM3 and fingerprint digest the node countersigned (``reconcile``): a refused or
never-submitted registration never enters the index, and one committed while the node was
down is confirmed when it starts again (a background task checks the pending ones every
second). Confirming is idempotent: an entry already in the index is not added twice. Every work on
chain, whichever node registered it, enters the index through ``ChainIndexer``
(``api/works_index.py``), which the same background task runs first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from fingerprint import warm_up
from fingerprint.formats import Fingerprint, fingerprint_file
from fingerprint.index import LocalIndex
from forensics.contracts import work as work_record
from forensics.precheck import check_registration, check_unsigned_filing, contract_refusal
from forensics.rules import FormRefused, k_reader
from forensics.service import PreparedWork, WorksService, fingerprint_digest
from ledger.blobs import LocalBlobStore
from ledger.crypto import SM3, Certificate, SM2PrivateKey
from ledger.node.runtime import Node
from ledger.tx import Transaction

from .errors import ApiError
from .works_index import ChainIndexer, peer_apis

log = logging.getLogger("rongxin.api.works")


# RONGXIN_WARM_UP=0: do not load the decoders at start (about 0.7 s of CPU per node): for a
# node that takes no registrations, and for the test suite, which starts some 150 nodes
WARM_UP_ENV = "RONGXIN_WARM_UP"


def _warm_up() -> None:
    try:
        warm_up()
    except Exception:  # a missing decoder is reported, typed, by the request that needs it
        log.warning("the fingerprint decoders could not all be loaded in advance", exc_info=True)

DEFAULT_MAX_UPLOAD = 2 * 1024 ** 3  # bytes; RONGXIN_MAX_UPLOAD_BYTES overrides
PENDING_TTL_S = 7 * 24 * 3600  # a prepared registration not on chain after this is forgotten
ORPHAN_TTL_S = PENDING_TTL_S  # an uploaded file no ledger record names after this is removed
SWEEP_EVERY_S = 600.0
RECONCILE_EVERY_S = 1.0
ENV_MAX_UPLOAD = "RONGXIN_MAX_UPLOAD_BYTES"
T = TypeVar("T")


def max_upload_bytes() -> int:
    """The configured largest upload (``RONGXIN_MAX_UPLOAD_BYTES``, default 2 GiB)."""
    raw = os.environ.get(ENV_MAX_UPLOAD, "")
    try:
        n = int(raw) if raw else DEFAULT_MAX_UPLOAD
    except ValueError:
        n = DEFAULT_MAX_UPLOAD
    return n if n > 0 else DEFAULT_MAX_UPLOAD


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + f".{secrets.token_hex(6)}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > 1 << 20:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class WorksNode:
    """The works registry of one node process (``app.state.works``)."""

    def __init__(self, node: Node, folder: Path, *, chain: str, node_id: str, key: SM2PrivateKey,
                 consortium: Path, max_upload: int | None = None) -> None:
        self.node, self.chain, self.consortium = node, chain, consortium
        self.max_upload = max_upload if max_upload is not None else max_upload_bytes()
        self.blobs = LocalBlobStore(folder / "blobs", max_bytes=self.max_upload)
        # the index's SQLite connection belongs to one thread: every use of the index (and so
        # of the service) runs in this one worker, which also serialises preparation and
        # confirmation (docs/works.md §6: no two registrations miss each other)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="works")
        self.index = self.pool.submit(LocalIndex, folder / "index").result()
        self.service = WorksService(self.blobs, self.index, chain=chain, node_id=node_id, node_key=key)
        cert_path = folder / "sm2.crt.pem"
        cert = Certificate.load(cert_path.read_bytes()) if cert_path.is_file() else None
        self.indexer = ChainIndexer(self, self.service, self.blobs, node_id=node_id, key=key, certificate=cert,
                                    peers=lambda: peer_apis(consortium, node_id))
        self.pool.submit(self.indexer.load).result()
        self.root = folder / "works"
        for sub in ("uploads", "pending", "registered", "certificates"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for stale in (self.root / "uploads").iterdir():  # uploads of a previous life
            stale.unlink(missing_ok=True)
        self._prepared: dict[str, PreparedWork] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the works worker thread (anything touching the index)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, partial(fn, *args, **kwargs))

    def prepared_fingerprint(self, work_id: str) -> Fingerprint | None:
        """The registration-side fingerprint of a registration this node prepared, if kept."""
        prep = self._prepared.get(work_id)
        return None if prep is None else prep.fingerprint

    def indexed(self, work_id: str) -> bool:
        """Whether the index holds ``work_id`` (blocking: use ``call``)."""
        return self.index.info(work_id) is not None

    # ------------------------------------------------------------ uploads
    async def receive(self, chunks: AsyncIterator[bytes], claimed_sm3: str,
                      limit: int | None = None) -> tuple[Path, str, int]:
        """Stream an upload to ``works/uploads/`` while hashing it; the file, its SM3 and size.
        413 past the configured maximum, 401 ``auth_body_mismatch`` if its SM3 is not the
        signed one, 400 ``empty_file`` for no bytes; on any error nothing is left behind."""
        path = self.root / "uploads" / f"{secrets.token_hex(12)}.part"
        h, size = SM3(), 0
        limit = self.max_upload if limit is None else limit
        try:
            with open(path, "wb") as fh:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(413, "body_too_large", f"the file is larger than {limit} bytes",
                                       {"limit": limit})
                    h.update(chunk)
                    fh.write(chunk)
            digest = h.hexdigest()
            if size == 0:
                raise ApiError(400, "empty_file", "the uploaded file is empty")
            if not secrets.compare_digest(digest, claimed_sm3):
                raise ApiError(401, "auth_body_mismatch", f"the body's SM3 is {digest}, the signed one {claimed_sm3}")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path, digest, size

    # ------------------------------------------------------------ the contracts' verdict now
    def _at(self) -> tuple[Any, Any, int, int]:
        app = self.node.app
        if app.governance is None:
            raise FormRefused("this chain has no governance: the forensics contracts do not run on it")
        return app.governance, app.read, app.height + 1, int(time.time() * 1000)

    def check_registration(self, holder_point: bytes, payload: dict[str, Any]) -> None:
        """``FormRefused`` with the contract's reason if ``works.register`` of ``payload`` by
        this holder would be refused now (``forensics.precheck``)."""
        views, read, height, now = self._at()
        check_registration(views, read, chain=self.chain, holder=holder_point, payload=payload, height=height,
                           time_ms=now)

    def check_filing(self, filer_point: bytes, evidence_id: str, manifest: dict[str, Any]) -> None:
        """``FormRefused`` if ``evidence.file`` of ``manifest`` would be refused now, but for
        the filer's signature and the case (``forensics.precheck.check_unsigned_filing``)."""
        views, read, height, now = self._at()
        check_unsigned_filing(views, read, chain=self.chain, filer=filer_point, evidence_id=evidence_id,
                              manifest=manifest, height=height, time_ms=now)

    def refusal(self, tx: Transaction) -> str | None:
        """Why the signed ``tx`` would be refused now (its receipt's reason), or None."""
        try:
            views, read, height, now = self._at()
        except FormRefused as exc:
            return str(exc)
        return contract_refusal(views, self.node.app.types, read, tx, height=height, time_ms=now)

    def sweep(self, older_than_s: float = ORPHAN_TTL_S) -> int:
        """Remove uploaded files no ledger record came to name within ``older_than_s``
        (``ledger.blobs`` claims; a claim is settled by ``blob/<sm3>/r/<uploader>``, which
        ``works.register`` writes for the holder and ``evidence.file`` for the filer). Blocking:
        run it in the works worker (``call``), which also does every put."""
        read = self.node.app.read
        removed = self.blobs.sweep(lambda sm3, account: read(k_reader(sm3, account)) is not None, older_than_s)
        if removed:
            log.info("removed %d uploaded files no ledger record named within %.0f s", removed, older_than_s)
        return removed

    # ------------------------------------------------------------ registration
    def prepare(self, path: Path, *, holder: str, holder_point: bytes, holder_cert_pem: bytes,
                attributes: dict[str, Any], pledge: str, pledge_signature: str) -> PreparedWork:
        """``WorksService.register_work`` (refused with ``FormRefused`` before the file is
        stored if the contract would refuse it now) and a durable pending record (blocking:
        run it in the works worker)."""
        prep = self.service.register_work(path, holder=holder, holder_key=holder_point, attributes=attributes,
                                           pledge=pledge, pledge_signature=pledge_signature,
                                           check=lambda payload: self.check_registration(holder_point, payload))
        p = prep.payload
        _write_json(self.root / "pending" / f"{prep.work_id}.json", {
            "work_id": prep.work_id, "holder": holder, "sm3": p["sm3"], "size": p["size"],
            "fingerprints": p["fingerprints"], "prepared_ms": int(time.time() * 1000),
            "holder_certificate": holder_cert_pem.decode()})
        self._prepared[prep.work_id] = prep
        return prep

    def _confirm(self, pending: dict[str, Any], record: dict[str, Any]) -> None:
        """Add the work's registration-side fingerprint to the index (unless it is there), then
        move its record to ``registered/`` (blocking)."""
        wid = pending["work_id"]
        if self.index.info(wid) is None:
            prep = self._prepared.get(wid)
            if prep is not None:
                self.service.confirm(prep)
            else:  # prepared before a restart: fingerprint the stored file again
                fp = fingerprint_file(self.blobs.path(pending["sm3"]), query=False)
                if fingerprint_digest(fp) != pending["fingerprints"]:
                    log.warning("work %s: the fingerprint of its file now differs from the one on chain", wid)
                self.service.confirm(PreparedWork(wid, {}, [], fp))
        _write_json(self.root / "registered" / f"{wid}.json",
                    dict(pending, tx=record.get("tx"), height=record.get("height")))
        (self.root / "pending" / f"{wid}.json").unlink(missing_ok=True)
        self._prepared.pop(wid, None)
        log.info("work %s confirmed (height %s): its fingerprint is in the index", wid, record.get("height"))

    def _drop(self, wid: str, why: str) -> None:
        (self.root / "pending" / f"{wid}.json").unlink(missing_ok=True)
        self._prepared.pop(wid, None)
        log.info("prepared registration %s dropped: %s", wid, why)

    async def reconcile(self, work_id: str) -> None:
        """Confirm or forget one prepared registration by what the committed state says."""
        async with self._lock:
            pending = _read_json(self.root / "pending" / f"{work_id}.json")
            if pending is None:
                return
            record = work_record(self.node.app.read, work_id)
            if record is None:
                if time.time() * 1000 - int(pending.get("prepared_ms", 0)) > PENDING_TTL_S * 1000:
                    self._drop(work_id, "not registered on chain in time")
                return
            if any(record.get(k) != pending.get(k) for k in ("holder", "sm3", "fingerprints")):
                self._drop(work_id, "the chain holds another registration under this id")
                return
            await self.call(self._confirm, pending, record)

    async def reconcile_all(self) -> None:
        for path in sorted((self.root / "pending").glob("*.json")):
            try:
                await self.reconcile(path.stem)
            except Exception:  # one bad record must not stop the others
                log.exception("reconciling %s failed", path.stem)

    async def _run(self) -> None:
        swept: float | None = None
        while True:
            await self.indexer.background()  # logs a failure; the next tick tries again
            await self.reconcile_all()
            if swept is None or time.monotonic() - swept > SWEEP_EVERY_S:
                swept = time.monotonic()
                try:
                    await self.call(self.sweep)
                except Exception:  # a sweep that fails is tried again later
                    log.exception("sweeping unclaimed uploads failed")
            await asyncio.sleep(RECONCILE_EVERY_S)

    def start(self) -> None:
        """Start the background reconciler (inside the node's event loop), and load the
        fingerprint decoders on the works thread meanwhile: the first registration after a
        start then costs what every later one does (it waits for that load if it comes first)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="works-reconcile")
            if os.environ.get(WARM_UP_ENV, "1") != "0":
                self.pool.submit(_warm_up)

    def registered(self, work_id: str) -> dict[str, Any] | None:
        """This node's record of a work it confirmed (holds the holder's certificate)."""
        return _read_json(self.root / "registered" / f"{work_id}.json")

    def validator_certificates(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted((self.consortium / "nodes").glob("*/sm2.crt.pem"))]

    def crl_pem(self, since_ms: int | None = None) -> bytes:
        """The consortium CRL, published at or after ``since_ms`` (``fetch.consortium_material``)."""
        from forensics.package.fetch import consortium_material

        return consortium_material(self.consortium, since_ms)[0].to_pem()



def attach_works(app: Any, node: Node, folder: Path, *, chain: str, node_id: str, key: SM2PrivateKey,
                 consortium: Path) -> WorksNode:
    """Create the node's works registry on ``app.state.works`` (``api.node_main`` calls this)."""
    works = WorksNode(node, folder, chain=chain, node_id=node_id, key=key, consortium=consortium)
    app.state.works = works
    return works
