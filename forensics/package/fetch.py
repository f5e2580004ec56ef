"""Inputs of an export from a running consortium: the proof bundle over HTTP, and the CRL,
genesis validators' certificates and genesis attestation from a local consortium folder.

``fetch_bundle`` asks ``GET /v1/proofs`` until every transaction is committed with its receipt
certified (404 until then), reading at most ``MAX_BUNDLE_BYTES``. ``consortium_material`` reads
``DATA/ca/crl.pem`` and ``DATA/nodes/*/sm2.crt.pem`` as ``rongxin up`` lays them out;
``consortium_attestation`` reads ``DATA/genesis.attestation.json``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger.crypto import CertificateRevocationList
from ledger.files import FileInputError, read_regular

from .export import ExportError, Identity, export_package

MAX_BUNDLE_BYTES = 32 * 1024 * 1024


def fetch_bundle(api: str, tx_ids: Sequence[str], timeout: float = 60.0) -> dict[str, Any]:
    """The proof bundle of ``tx_ids`` from the node at ``api``; ``ExportError`` if it never comes."""
    url = f"{api.rstrip('/')}/v1/proofs?tx={','.join(tx_ids)}"
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - http(s) URL of a node
                body = r.read(MAX_BUNDLE_BYTES + 1)
            if len(body) > MAX_BUNDLE_BYTES:
                raise ExportError(f"the proof bundle is over {MAX_BUNDLE_BYTES} bytes")
            out = json.loads(body)
            if not isinstance(out, dict):
                raise ExportError("the node answered something other than a proof bundle")
            return out
        except urllib.error.HTTPError as exc:
            last = exc.read(4096).decode(errors="replace")
            if exc.code != 404:
                raise ExportError(f"the node refused the proof bundle: {exc.code} {last}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise ExportError(f"no proof bundle within {timeout} s: {last[:300]}")
        time.sleep(0.5)


def latest_block_ms(bundle: dict[str, Any]) -> int:
    """The latest block time (ms) in a proof bundle: a package's CRL must be at least as new."""
    return max((int(b["header"]["time"]) for b in bundle.get("blocks") or []), default=0)


def consortium_material(data: str | Path, since_ms: int | None = None) -> tuple[CertificateRevocationList, list[bytes]]:
    """The CRL the consortium CA published and the node certificates of a local consortium.
    With ``since_ms``: a CRL published (``thisUpdate``, whole seconds) at or after that time,
    as the verifier requires one no older than the statements it covers: when ``ca/crl.pem``
    is older and the folder holds the CA's root key (a local consortium), a fresh CRL is
    published; otherwise ``ExportError`` (wait for the CA's next CRL)."""
    data = Path(data)
    crl = CertificateRevocationList.load(read_regular(data / "ca" / "crl.pem", 16 * 1024 * 1024))
    if since_ms is not None and crl.this_update.timestamp() < since_ms // 1000:
        if not (data / "ca" / "root.key.pem").is_file():
            raise ExportError(f"the consortium CRL was published {crl.this_update.isoformat()}, before the statements "
                              f"({since_ms} ms): a package needs the CA's next CRL")
        from ledger.crypto.ca import ConsortiumCA

        crl = ConsortiumCA(data / "ca").publish_crl()
    certs = [read_regular(p, 64 * 1024) for p in sorted((data / "nodes").glob("*/sm2.crt.pem"))]
    if not certs:
        raise ExportError(f"no node certificates under {data / 'nodes'}")
    return crl, certs


def consortium_attestation(data: str | Path) -> dict[str, str]:
    """The root's attestation of the genesis of a local consortium (checked by the verifier)."""
    path = Path(data) / "genesis.attestation.json"
    try:
        att = json.loads(read_regular(path, 64 * 1024))
    except FileInputError as exc:
        raise ExportError(f"no genesis attestation: {exc}") from None
    except ValueError:
        raise ExportError(f"{path} is not JSON") from None
    if not isinstance(att, dict) or not all(isinstance(v, str) for v in att.values()):
        raise ExportError(f"{path} is not a genesis attestation")
    return att


def export_from_api(out: str | Path, api: str, tx_ids: Sequence[str], artefacts: Sequence[Sequence[str | Path]],
                    filer: Identity, data: str | Path | None = None, *, sender_certificates: Sequence[bytes] = (),
                    timeout: float = 60.0) -> Path:
    """One call: the bundle of ``tx_ids`` from ``api`` written as a package to ``out``
    (``export_package``). The CRL and certificates come from the bundle; ``data``, a local
    consortium folder, supplies them (and the genesis attestation) when the node serves none."""
    bundle = fetch_bundle(api, tx_ids, timeout)
    crl, vcerts = consortium_material(data, latest_block_ms(bundle)) if data is not None else (None, [])
    att = consortium_attestation(data) if data is not None and bundle.get("genesis_attestation") is None else None
    return export_package(out, bundle, artefacts, filer, crl, sender_certificates=sender_certificates,
                          validator_certificates=vcerts, genesis_attestation=att)
