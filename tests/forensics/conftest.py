"""A chain with governance, the nft and forensics contracts, users with business roles, a
registering node's service (blob store, fingerprint index, a validator's key) and small
generated pictures (drawn as ../shared/checks/F-evidence draws them)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fingerprint.index import LocalIndex
from forensics.contracts import types as forensics_types
from forensics.rules import manifest_message, pledge_message, sign
from forensics.service import PreparedWork, WorksService
from ledger.blobs import LocalBlobStore
from ledger.codec import canonical
from ledger.contracts.context import Context, TxType, account_of
from ledger.contracts.registry import contract_types
from ledger.crypto import SM2PrivateKey
from ledger.node.abci import OK
from ledger.node.app import LedgerApp
from ledger.state.store import MemoryStore
from tests.node.test_governance import CHAIN, World

PLEDGE = "I declare this work is my original creation."


def set_business(ctx: Context) -> None:
    """Test-only ``test.business {account, business}``: sets the field another part of issue 12
    derives from the user's certificate."""
    key = b"sys/user/" + ctx.tx.payload["account"].encode()
    rec = ctx.get_json(key)
    assert rec is not None, "register the user first"
    ctx.put_json(key, dict(rec, business=ctx.tx.payload["business"]))


def picture(seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    im = np.zeros((600, 800, 3), np.uint8)
    for _ in range(40):
        c = tuple(int(x) for x in r.integers(0, 255, 3))
        p = (int(r.integers(0, 800)), int(r.integers(0, 800)))
        if r.random() < .5:
            cv2.circle(im, p, int(r.integers(10, 120)), c, -1)
        else:
            cv2.rectangle(im, p, (p[0] + int(r.integers(20, 200)), p[1] + int(r.integers(20, 200))), c, -1)
    return cv2.GaussianBlur(im, (3, 3), 0)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("media")
    w = picture(11)
    cv2.imwrite(str(t / "work.png"), w)
    h, wd = w.shape[:2]
    c = w[int(.05 * h):, int(.05 * wd):]
    cv2.imwrite(str(t / "copy.jpg"), cv2.resize(c, None, fx=.7, fy=.7), [cv2.IMWRITE_JPEG_QUALITY, 60])
    cv2.imwrite(str(t / "other.png"), picture(12))
    (t / "empty.png").write_bytes(b"")
    return {p.stem: p for p in t.iterdir()}


class Registry(World):
    """``World`` with the forensics contracts, and a registering node ``c1``."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        handlers: dict[str, Any] = {**contract_types(), **forensics_types(self.gov),
                                    "test.business": TxType(set_business)}
        self.app = LedgerApp(MemoryStore(), handlers, governance=self.gov)
        self.service = WorksService(LocalBlobStore(tmp / "blobs"), LocalIndex(tmp / "index"), chain=CHAIN,
                                    node_id="c1", node_key=self.keys["c1"])
        self.time_ms = int(time.time() * 1000)

    def user(self, name: str, business: str | None) -> SM2PrivateKey:
        key = self.register(name)
        if business is not None:
            acct = account_of(key.public_key().point)
            assert self.run(self.tx("s1", "test.business", {"account": acct, "business": business})) == [(OK, "ok")]
        return key

    def account(self, name: str) -> str:
        return account_of(self.keys[name].public_key().point)

    def prepare(self, who: str, path: Path, title: str = "A work", **more: Any) -> PreparedWork:
        key = self.keys[who]
        from ledger.crypto import sm3_file

        sm3 = sm3_file(path).hex()
        acct = self.account(who)
        sig = sign(key, pledge_message(CHAIN, acct, sm3, PLEDGE))
        more.setdefault("index_height", self.app.height)  # this test's index follows every registration
        return self.service.register_work(path, holder=acct, holder_key=key.public_key().point,
                                          attributes={"title": title, "type": "picture", "authors": [who]},
                                          pledge=PLEDGE, pledge_signature=sig, **more)

    def submit(self, who: str, type_: str, payload: dict[str, Any]) -> tuple[int, str]:
        return self.run(self.tx(who, type_, payload))[0]

    def registered(self, who: str, path: Path, title: str = "A work") -> PreparedWork:
        prep = self.prepare(who, path, title)
        assert self.submit(who, "works.register", prep.payload) == (OK, "ok")
        self.service.confirm(prep)
        return prep

    def read(self, key: bytes) -> Any:
        from ledger.codec import parse

        raw = self.app.read(key)
        return None if raw is None else parse(raw)

    def filing(self, who: str, files: list[Path], work_id: str, **case: Any) -> dict[str, Any]:
        prep = self.service.file_evidence(files, work_id, filer=self.account(who), created_ms=self.time_ms,
                                          capture={"method": "downloaded copy", "source": "https://example.org/x"})
        payload: dict[str, Any] = {"evidence_id": prep.evidence_id, "manifest": prep.manifest,
                                   "signature": sign(self.keys[who], manifest_message(prep.manifest))}
        if case:
            payload["case"] = case
        return payload


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    r = Registry(tmp_path)
    r.user("holder", "holder")
    r.user("holder2", "holder")
    r.user("legal", "legal")
    r.user("court", "court")
    r.user("nobody", None)
    return r


__all__ = ["PLEDGE", "Registry", "canonical", "media", "picture", "reg"]
