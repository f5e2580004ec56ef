"""A real local consortium (six node processes) with two committed statements, exported once
into an evidence package that the tests then verify and tamper with."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.sdk import LedgerClient, _settle, registration
from forensics.package.export import ExportError, Identity, export_package
from forensics.package.fetch import consortium_material, export_from_api, fetch_bundle, latest_block_ms
from ledger.crypto import Certificate, SM2PrivateKey, generate_private_key, sm3_file
from ledger.crypto.ca import ConsortiumCA

from ..conftest import run_rongxin


@dataclass
class Exported:
    data: Path
    pkg: Path
    root: Path
    key: SM2PrivateKey
    cert: Certificate
    ca: ConsortiumCA
    bundle: dict
    export_s: float
    refusals: list[str]
    one_call: Path


@pytest.fixture(scope="package")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    t = tmp_path_factory.mktemp("evidence")
    data = t / "c"
    proc = run_rongxin("up", "--detach", "--data", str(data), timeout=240)
    assert proc.returncode == 0, proc.stderr
    try:
        api = json.loads((data / "cluster.json").read_text())["nodes"][0]["api"]
        ca = ConsortiumCA(data / "ca")
        key = generate_private_key()
        client = LedgerClient(api, key)
        st = client.status()
        org = json.loads((data / "genesis.json").read_text())["validators"][0]["org"]
        reg = registration(ca, key, chain=st["chain"], org=org, expiry=st["height"] + 500, name="Legal Centre A")
        client.wait(client.submit(reg), 90)
        _settle(data, client.status()["height"])
        cert = Certificate.load(reg.payload["certificate"].encode())
        files = [t / "work.bin", t / "copy.txt", t / "notes.txt"]
        files[0].write_bytes(os.urandom(3 * 1024 * 1024))
        files[1].write_text("侵权复制件 copy\n" * 100)
        files[2].write_text("capture notes\n")
        hashes = [sm3_file(f).hex() for f in files]
        ids = [client.wait(client.submit(client.build("kv.set", {"key": "evidence/1", "value": f"{hashes[0]} {hashes[1]}"})), 90)["id"],
               client.wait(client.submit(client.build("kv.set", {"key": "evidence/2", "value": hashes[2]})), 90)["id"]]
        bundle = fetch_bundle(api, ids, timeout=90)
        crl, vcerts = consortium_material(data, latest_block_ms(bundle))
        refusals = []
        for bad in (["00" * 32], ["XYZ"]):
            try:
                fetch_bundle(api, bad, timeout=1)
            except ExportError as exc:
                refusals.append(str(exc))
        s = time.perf_counter()
        pkg = export_package(t / "pkg.zip", bundle, [files[:2], files[2:]], Identity(key, cert), crl,
                             sender_certificates=[cert.to_pem()], validator_certificates=vcerts)
        export_s = time.perf_counter() - s
        # the node serves the senders' certificates, its consortium's CRL and node certificates
        assert bundle["certificates"] == {key.public_key().point.hex(): cert.to_pem().decode()}
        assert bundle["crl"] and len(bundle["node_certificates"]) == 6
        one_call = export_from_api(t / "pkg2.zip", api, ids, [files[:2], files[2:]], Identity(key, cert))
    finally:
        run_rongxin("down", "--data", str(data), timeout=120)
    yield Exported(data, pkg, data / "ca" / "root.crt.pem", key, cert, ca, bundle, export_s, refusals, one_call)
