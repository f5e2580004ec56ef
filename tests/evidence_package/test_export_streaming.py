"""Export streams artefacts: a 256 MiB artefact never sits in memory, and its SM3 in the
manifest is the file's (no cluster: the bundle is synthetic, export does not check proofs)."""

from __future__ import annotations

import json
import os
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from forensics.package.export import ExportError, Identity, export_package
from forensics.package.format import MANIFEST
from ledger.crypto import SM2PrivateKey, sm3_file
from ledger.crypto.ca import ConsortiumCA

SIZE = 256 * 1024 * 1024


def _bundle(sender: str, vkey: str, payload: dict, ca: ConsortiumCA | None = None) -> dict:
    attestation = ca.attest_genesis("c", bytes(32)) if ca is not None else None
    return {"chain": "c", "genesis": {"height": 0}, "genesis_attestation": attestation, "blocks": [],
            "validators": [{"from_height": 0, "set": [{"id": "v1", "key": vkey, "org": "O", "role": "consensus"}]}],
            "statements": [{"tx": {"body": {"sender": sender, "payload": payload}, "sig": ""},
                            "proof": {"tx": "00" * 32}, "receipt": {}, "receipt_proof": {}}]}


def test_large_artefact_is_streamed(tmp_path: Path) -> None:
    ca = ConsortiumCA.init(tmp_path / "ca", "Streaming Consortium")
    key, vkey = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    cert = ca.issue(kind="user", name="filer", org="O", role="user", public_key=key.public_key())
    vcert = ca.issue(kind="node", name="v1", org="O", role="consensus", public_key=vkey.public_key())
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.truncate(SIZE)
    digest = sm3_file(big).hex()
    bundle = _bundle(key.public_key().point.hex(), vkey.public_key().point.hex(), {"h": digest}, ca)
    tracemalloc.start()
    s = time.perf_counter()
    out = export_package(tmp_path / "p.zip", bundle, [[big]], Identity(key, cert), ca.crl(),
                         sender_certificates=[cert.to_pem()], validator_certificates=[vcert.to_pem()])
    took = time.perf_counter() - s
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, peak
    with zipfile.ZipFile(out) as z:
        man = json.loads(z.read(MANIFEST))
        assert man["members"]["artefacts/big.bin"] == {"sm3": digest, "size": SIZE}
        assert z.getinfo("artefacts/big.bin").file_size == SIZE
    print(f"256 MiB artefact exported in {took:.1f} s, peak Python memory {peak // 1024} KiB")
    os.unlink(out)
    bundle = _bundle(key.public_key().point.hex(), vkey.public_key().point.hex(), {"h": "00" * 32}, ca)
    with pytest.raises(ExportError, match="not named"):
        export_package(tmp_path / "q.zip", bundle, [[big]], Identity(key, cert), ca.crl(),
                       sender_certificates=[cert.to_pem()], validator_certificates=[vcert.to_pem()])
    assert not (tmp_path / "q.zip").exists()
    # a bundle without the root's attestation of its genesis makes no package
    bundle = _bundle(key.public_key().point.hex(), vkey.public_key().point.hex(), {"h": digest})
    with pytest.raises(ExportError, match="no root attestation of the genesis"):
        export_package(tmp_path / "r.zip", bundle, [[big]], Identity(key, cert), ca.crl(),
                       sender_certificates=[cert.to_pem()], validator_certificates=[vcert.to_pem()])
    assert not (tmp_path / "r.zip").exists()
