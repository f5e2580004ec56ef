"""Write an evidence package (docs/evidence-format.md) from a node's proof bundle.

``export_package`` takes the bundle that ``ledger.node.bundle.proof_bundle`` builds (or
``GET /v1/proofs`` serves), the artefact files of each statement, the filer's key and
certificate, the CRL in force, the certificates of the senders and genesis validators and the
consortium root's attestation of the genesis (the bundle's ``genesis_attestation``), and
writes the zip in one pass: artefacts are streamed from their files through SM3 into the zip
(never held in memory), then the JSON members, the manifest and its SM2 signature.
"""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.crypto import SM3, Certificate, CertificateRevocationList, SM2PrivateKey, sm3

from . import format as pf


class ExportError(Exception):
    """The inputs cannot make a package (a missing certificate, an artefact the tx does not name)."""


@dataclass(frozen=True)
class Identity:
    """The filer: its SM2 key and the consortium certificate of that key."""

    key: SM2PrivateKey
    certificate: Certificate


def _safe_name(path: Path, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", path.name).lstrip("._-")[:100] or "artefact"
    name, i = base, 1
    while pf.ARTEFACT_DIR + name in taken:
        i += 1
        name = f"{i}-{base}"
    return pf.ARTEFACT_DIR + name


def _write_file(zf: zipfile.ZipFile, name: str, src: Path) -> dict[str, Any]:
    h, size = SM3(), 0
    with src.open("rb") as f, zf.open(name, "w", force_zip64=True) as out:
        while chunk := f.read(pf.CHUNK):
            h.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size > pf.MAX_ARTEFACT_BYTES:
        raise ExportError(f"{src} is over the artefact limit of {pf.MAX_ARTEFACT_BYTES} bytes")
    return {"sm3": h.hexdigest(), "size": size}


def _write(zf: zipfile.ZipFile, name: str, data: bytes, members: dict[str, Any]) -> None:
    zf.writestr(name, data)
    h = SM3()
    h.update(data)
    members[name] = {"sm3": h.hexdigest(), "size": len(data)}


def _by_key(pems: Sequence[bytes]) -> dict[str, Certificate]:
    out = {}
    for pem in pems:
        for c in Certificate.load_all(pem):
            out[c.public_key().point.hex()] = c
    return out


def _write_statements(zf: zipfile.ZipFile, stmts: Sequence[dict[str, Any]], artefacts: Sequence[Sequence[str | Path]],
                      senders: dict[str, Certificate], members: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Stream each statement's artefacts into ``zf``; the manifest's and statements.json's entries."""
    man_stmts, st_docs = [], []
    for st, files in zip(stmts, artefacts, strict=True):
        cert = senders.get(st["tx"]["body"]["sender"])
        if cert is None:
            raise ExportError(f"no certificate for the sender of transaction {st['proof']['tx']}")
        names = []
        for f in files:
            name = _safe_name(Path(f), set(members))
            members[name] = _write_file(zf, name, Path(f))
            named = pf.named_artefacts(st["tx"]["body"].get("type"), st["tx"]["body"]["payload"])
            got = members[name]
            if got["sm3"] not in named or named[got["sm3"]] not in (None, got["size"]):
                raise ExportError(f"{f}: its SM3 and size are not named by transaction {st['proof']['tx']}")
            names.append(name)
        man_stmts.append({"artefacts": names, "tx": st["proof"]["tx"]})
        st_docs.append({**st, "certificate": cert.der.hex()})
    return man_stmts, st_docs


def export_package(out: str | Path, bundle: dict[str, Any], artefacts: Sequence[Sequence[str | Path]],
                   filer: Identity | Certificate, crl: CertificateRevocationList | None = None, *,
                   sender_certificates: Sequence[bytes] = (), validator_certificates: Sequence[bytes] = (),
                   created_ms: int | None = None, genesis_attestation: dict[str, str] | None = None,
                   timestamp: tuple[bytes, bytes] | None = None) -> Path:
    """Write the package for ``bundle``'s statements to ``out``; ``artefacts[i]`` are the files
    of statement ``i`` (each file's SM3 must appear in that transaction's payload). The CRL and
    the certificates default to those the bundle carries (``GET /v1/proofs``). ``filer`` as a
    bare certificate writes every member but ``manifest.sig``: the holder of its key signs
    ``manifest.json`` and adds ``manifest.sig`` (``sign_package``), e.g. a node exporting for
    a user whose key it does not hold. ``genesis_attestation`` defaults to the bundle's; a
    package cannot be made without one (a court's verifier would refuse it). ``timestamp``
    (token DER, TSA certificate DER) adds the optional members of docs/evidence-format.md §11."""
    cert = filer if isinstance(filer, Certificate) else filer.certificate
    attestation = genesis_attestation if genesis_attestation is not None else bundle.get("genesis_attestation")
    if not isinstance(attestation, dict):
        raise ExportError("no root attestation of the genesis: the node serves none (its consortium folder has no "
                          "genesis.attestation.json; `rongxin up` on the folder makes one)")
    if crl is None:
        if not isinstance(bundle.get("crl"), str):
            raise ExportError("no CRL: the node serves none and none was given")
        crl = CertificateRevocationList.load(bundle["crl"].encode())
    sender_certificates = [*sender_certificates, *(p.encode() for p in (bundle.get("certificates") or {}).values())]
    validator_certificates = [*validator_certificates, *(p.encode() for p in bundle.get("node_certificates") or [])]
    stmts = bundle["statements"]
    if sum(len(a) for a in artefacts) > pf.MAX_ARTEFACTS - (len(pf.OPTIONAL) if timestamp else 0):
        raise ExportError(f"a package holds at most {pf.MAX_ARTEFACTS} artefacts")
    if len(artefacts) != len(stmts):
        raise ExportError(f"{len(stmts)} statements but artefact lists for {len(artefacts)}")
    senders = _by_key(sender_certificates)
    vcerts = _by_key(validator_certificates)
    genesis_set = bundle["validators"][0]["set"]
    missing = [v["id"] for v in genesis_set if v["key"] not in vcerts]
    if missing:
        raise ExportError(f"no certificate for genesis validators {missing}")
    out = Path(out)
    members: dict[str, Any] = {}
    tmp = out.with_name(out.name + ".part")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            man_stmts, st_docs = _write_statements(zf, stmts, artefacts, senders, members)
            history = [dict(bundle["validators"][0],
                            certificates=[vcerts[v["key"]].der.hex() for v in genesis_set])]
            history += bundle["validators"][1:]
            _write(zf, pf.FILER_CERT, cert.der, members)
            _write(zf, pf.CRL, crl.der, members)
            _write(zf, pf.GENESIS, pf.canonical({"attestation": attestation, "header": bundle["genesis"]}), members)
            _write(zf, pf.VALIDATORS, pf.canonical({"history": history}), members)
            _write(zf, pf.BLOCKS, pf.canonical({"blocks": bundle["blocks"]}), members)
            _write(zf, pf.STATEMENTS, pf.canonical({"statements": st_docs}), members)
            if timestamp is not None:
                _write(zf, pf.TIMESTAMP_TOKEN, timestamp[0], members)
                _write(zf, pf.TIMESTAMP_CERT, timestamp[1], members)
            manifest = pf.canonical({
                "chain": bundle["chain"], "created_ms": created_ms if created_ms is not None else int(time.time() * 1000),
                "filer": {"certificate": cert.fingerprint}, "format": pf.FORMAT,
                "genesis": sm3(pf.canonical(bundle["genesis"])).hex(), "members": members, "statements": man_stmts})
            zf.writestr(pf.MANIFEST, manifest)
            if isinstance(filer, Identity):
                zf.writestr(pf.SIGNATURE, filer.key.sign(manifest))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return out


def sign_package(path: str | Path, filer: Identity) -> None:
    """Add ``manifest.sig`` to a package written for ``filer``'s certificate without a
    signature: the filer's SM2 signature over the bytes of ``manifest.json``. Refuses a package
    already signed or made out to another certificate."""
    with zipfile.ZipFile(path, "a") as zf:
        names = set(zf.namelist())
        if pf.SIGNATURE in names:
            raise ExportError("the package is already signed")
        if pf.MANIFEST not in names:
            raise ExportError("the package has no manifest.json")
        info = zf.getinfo(pf.MANIFEST)
        if info.file_size > pf.MAX_JSON_BYTES:
            raise ExportError("manifest.json is over its size limit")
        manifest = zf.read(pf.MANIFEST)
        try:
            fp = pf.parse_canonical(manifest)["filer"]["certificate"]
        except (pf.NotCanonical, ValueError, KeyError, TypeError):
            raise ExportError("manifest.json is not a package manifest") from None
        if fp != filer.certificate.fingerprint:
            raise ExportError("the package is made out to another filer certificate")
        zf.writestr(pf.SIGNATURE, filer.key.sign(manifest))
