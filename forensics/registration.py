"""A registered work's certificate: its facts from the on-chain record (docs/works.md §3.3) and
the holder's certificate, and its proof bundle, an evidence package (docs/evidence-format.md)
whose one statement is the ``works.register`` transaction, filed (signed) by the holder who
sent it: the holder's client builds the package (``proof_package``) from what the node serves
(``GET /v1/works/{id}/proof``) and gives it to the node, which renders the PDF.

The package names no artefact (the work's file is not copied into its certificate): it proves
the transaction, its block, its receipt and who sent it, which is what the certificate states.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger.crypto import Certificate, CertificateRevocationList, SM2PrivateKey

from . import certificate
from .certificate import CertificateFacts, ConflictFact
from .package.export import Identity, export_package

__all__ = ["certificate_facts", "conflict_facts", "proof_package", "registration_certificate"]


def certificate_facts(record: dict[str, Any], holder: Certificate, chain: str) -> CertificateFacts:
    """What the certificate of the registration ``record`` (``works/w/<id>``) states."""
    a = record["attributes"]
    return CertificateFacts(
        work_id=record["work_id"], title=a["title"], work_type=a["type"], authors=tuple(a.get("authors", ())),
        creation_date=a.get("created", ""), licence=a.get("licence", ""), sm3=record["sm3"],
        holder_cn=holder.common_name, holder_org=holder.organization, chain=chain, tx_id=record["tx"],
        height=int(record["height"]), block_time_ms=int(record["time_ms"]),
        conflicts=conflict_facts(record.get("conflicts", [])))


def conflict_facts(conflicts: Sequence[dict[str, Any]]) -> tuple[ConflictFact, ...]:
    """The recorded conflicts (``works/w/<id>.conflicts`` or the receipt's ``result.conflicts``)
    as the certificate states them."""
    return tuple(ConflictFact(str(c["work_id"]), str(c["method"]), int(c["score_milli"]), str(c.get("source", "node")))
                 for c in conflicts)


def proof_package(bundle: dict[str, Any], *, holder_key: SM2PrivateKey, holder_cert: Certificate,
                  crl: CertificateRevocationList, validator_certificates: Sequence[bytes],
                  created_ms: int | None = None) -> bytes:
    """The registration's proof bundle as an evidence package filed (signed) by the holder:
    ``bundle`` is ``GET /v1/proofs`` of the ``works.register`` transaction alone."""
    with tempfile.TemporaryDirectory(prefix="rongxin-cert-") as tmp:
        pkg = export_package(Path(tmp) / "proof.zip", bundle, [[]], Identity(holder_key, holder_cert), crl,
                             sender_certificates=[holder_cert.to_pem()],
                             validator_certificates=validator_certificates, created_ms=created_ms)
        return pkg.read_bytes()


def registration_certificate(record: dict[str, Any], package: bytes, holder: Certificate, chain: str) -> bytes:
    """The certificate PDF of the registration ``record`` with ``package`` embedded."""
    return certificate.render_certificate_bytes(certificate_facts(record, holder, chain), package)
