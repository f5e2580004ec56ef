"""The consortium CA: issue → verify → revoke → verify fails, with OpenSSL as a second opinion."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from gmssl import sm2 as gm_sm2

from ledger.crypto import (
    CAError,
    Certificate,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevocationList,
    CertificateRevoked,
    CRLError,
    KeyPasswordError,
    MalformedCertificate,
    SM2PrivateKey,
    UntrustedCertificate,
    verify_certificate,
)
from ledger.crypto.ca import ConsortiumCA
from ledger.crypto.sm2 import signature_to_raw
from ledger.crypto.x509 import utcnow

DISTID = "distid:1234567812345678"


@pytest.fixture
def ca(tmp_path: Path) -> ConsortiumCA:
    return ConsortiumCA.init(tmp_path / "ca", "Rongxin Test Consortium", password=b"root-pw")


def _node(ca: ConsortiumCA, name: str = "node-1", role: str = "consensus") -> Certificate:
    return ca.issue(kind="node", name=name, org="County Media Centre A", role=role,
                    public_key=SM2PrivateKey.generate().public_key())


def test_root_certificate_profile(ca: ConsortiumCA) -> None:
    root = ca.root
    assert root.is_ca and root.is_self_signed() and root.role == "root"
    assert {"key_cert_sign", "crl_sign"} <= root.key_usage
    assert root.organization == "Rongxin Test Consortium"
    assert (ca.folder / "root.key.pem").stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in (ca.folder / "root.key.pem").read_bytes()


def test_issue_node_org_user_and_verify(ca: ConsortiumCA) -> None:
    node = _node(ca, role="supervisor")
    assert (node.role, node.organization, node.common_name) == ("supervisor", "County Media Centre A", "node-1")
    assert not node.is_ca and "digital_signature" in node.key_usage
    org = ca.issue(kind="org", name="Provincial Platform B", org="",
                   public_key=SM2PrivateKey.generate().public_key())
    assert org.role == "org" and org.organization == "Provincial Platform B"
    user = ca.issue(kind="user", name="alice", org="Copyright Legal Centre", role="admin",
                    public_key=SM2PrivateKey.generate().public_key())
    for cert in (node, org, user):
        info = verify_certificate(cert, ca.root, ca.crl())
        assert info.serial == cert.serial
    assert node.authority_key_identifier == ca.root.key_identifier


def test_issue_then_revoke_then_verify_fails(ca: ConsortiumCA) -> None:
    cert = _node(ca)
    other = _node(ca, "node-2")
    verify_certificate(cert, ca.root, ca.crl())
    crl = ca.revoke(cert.serial, "key_compromise")
    assert crl.number == 2 and cert.serial in crl.revocations()
    with pytest.raises(CertificateRevoked, match="key_compromise"):
        verify_certificate(cert, ca.root, ca.crl())
    verify_certificate(other, ca.root, ca.crl())
    with pytest.raises(CAError, match="already revoked"):
        ca.revoke(cert.serial)
    with pytest.raises(CAError, match="no certificate"):
        ca.revoke(12345)
    listed = {r["serial"]: r for r in ca.list()}
    assert listed[format(cert.serial, "x")]["reason"] == "key_compromise"
    assert listed[format(other.serial, "x")]["revoked_at"] is None


def test_expiry_and_not_yet_valid(ca: ConsortiumCA) -> None:
    now = utcnow()
    old = ca.issue(kind="user", name="bob", org="Org", public_key=SM2PrivateKey.generate().public_key(),
                   not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1))
    with pytest.raises(CertificateExpired):
        verify_certificate(old, ca.root)
    future = ca.issue(kind="user", name="carol", org="Org", public_key=SM2PrivateKey.generate().public_key(),
                      not_before=now + dt.timedelta(days=2), not_after=now + dt.timedelta(days=30))
    with pytest.raises(CertificateNotYetValid):
        verify_certificate(future, ca.root)
    verify_certificate(future, ca.root, at=now + dt.timedelta(days=3))


def test_certificate_from_another_root_is_untrusted(ca: ConsortiumCA, tmp_path: Path) -> None:
    impostor = ConsortiumCA.init(tmp_path / "evil", "Rongxin Test Consortium")
    forged = impostor.issue(kind="node", name="node-1", org="County Media Centre A", role="consensus",
                            public_key=SM2PrivateKey.generate().public_key())
    with pytest.raises(UntrustedCertificate, match="did not make"):
        verify_certificate(forged, ca.root)
    elsewhere = ConsortiumCA.init(tmp_path / "other", "Another Consortium")
    cert = _node(elsewhere)
    with pytest.raises(UntrustedCertificate, match="issued by"):
        verify_certificate(cert, ca.root)
    # a leaf presented as the root is refused too
    with pytest.raises(UntrustedCertificate):
        verify_certificate(cert, cert)


def test_crl_from_another_root_or_stale_is_refused(ca: ConsortiumCA, tmp_path: Path) -> None:
    cert = _node(ca)
    impostor = ConsortiumCA.init(tmp_path / "evil", "Rongxin Test Consortium")
    with pytest.raises(CRLError, match="does not verify"):
        verify_certificate(cert, ca.root, impostor.crl())
    with pytest.raises(CRLError, match="stale"):
        verify_certificate(cert, ca.root, ca.crl(), at=utcnow() + dt.timedelta(days=8))


def test_tampered_certificate_bytes(ca: ConsortiumCA) -> None:
    cert = _node(ca)
    der = bytearray(cert.der)
    idx = der.find(b"node-1")
    der[idx] ^= 0x20  # "Node-1": same structure, different signed content
    with pytest.raises(UntrustedCertificate):
        verify_certificate(Certificate(bytes(der)), ca.root)
    with pytest.raises(MalformedCertificate):
        Certificate.load(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(MalformedCertificate):
        Certificate.load(cert.der[:-10])
    with pytest.raises(MalformedCertificate):
        Certificate.load(b"")
    with pytest.raises(CRLError):
        CertificateRevocationList.load(b"not a crl")


def test_openssl_accepts_our_chain_and_refuses_a_foreign_one(ca: ConsortiumCA, tmp_path: Path, openssl) -> None:
    cert = _node(ca)
    (tmp_path / "root.pem").write_bytes(ca.root.to_pem())
    (tmp_path / "leaf.pem").write_bytes(cert.to_pem())
    out = openssl("verify", "-vfyopt", DISTID, "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "leaf.pem"))
    assert out.stdout.strip().endswith("OK")
    foreign = _node(ConsortiumCA.init(tmp_path / "evil", "Rongxin Test Consortium"))
    (tmp_path / "foreign.pem").write_bytes(foreign.to_pem())
    bad = openssl("verify", "-vfyopt", DISTID, "-CAfile", str(tmp_path / "root.pem"),
                  str(tmp_path / "foreign.pem"), check=False)
    assert bad.returncode != 0
    text = openssl("x509", "-in", str(tmp_path / "leaf.pem"), "-noout", "-subject").stdout
    assert "OU = consensus" in text and "O = County Media Centre A" in text
    # the CRL parses in OpenSSL and lists the serial (OpenSSL 3.0 cannot check its SM2 signature)
    ca.revoke(cert.serial)
    (tmp_path / "crl.pem").write_bytes(ca.crl().to_pem())
    crl_text = openssl("crl", "-in", str(tmp_path / "crl.pem"), "-noout", "-text").stdout
    assert format(cert.serial, "X")[:8] in crl_text.replace(":", "").upper()


def test_crl_signature_checks_out_in_an_independent_implementation(ca: ConsortiumCA) -> None:
    from asn1crypto import crl as asn1_crl

    _node(ca)
    crl = ca.crl()
    parsed = asn1_crl.CertificateList.load(crl.der)
    tbs = parsed["tbs_cert_list"].dump()
    raw = signature_to_raw(bytes(parsed["signature"].native)).hex()
    gm = gm_sm2.CryptSM2(private_key=None, public_key="")
    gm.public_key = ca.root.public_key().point[1:].hex()  # past gmssl's lstrip("04") bug
    assert gm.verify_with_sm3(raw, tbs)
    assert not gm.verify_with_sm3(raw, tbs + b"\x00")


def test_ca_folder_errors(tmp_path: Path, ca: ConsortiumCA) -> None:
    with pytest.raises(CAError, match="already holds"):
        ConsortiumCA.init(ca.folder, "again")
    with pytest.raises(CAError, match="not a CA folder"):
        ConsortiumCA(tmp_path / "nowhere")
    locked = ConsortiumCA(ca.folder, password=b"wrong")
    with pytest.raises(KeyPasswordError):
        _node(locked)
    with pytest.raises(CAError, match="role"):
        ca.issue(kind="node", name="n", org="o", role="admin", public_key=SM2PrivateKey.generate().public_key())


CRASH_WORKER = """
import sys
from ledger.crypto import SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA
ca = ConsortiumCA(sys.argv[1])
i = 0
while True:
    cert = ca.issue(kind="user", name=f"user-{i}", org="Org",
                    public_key=SM2PrivateKey.generate().public_key())
    if i % 3 == 0:
        ca.revoke(cert.serial)
    print(i, flush=True)
    i += 1
"""


def test_killed_mid_operation_the_ca_stays_consistent(tmp_path: Path) -> None:
    import random
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "ca"
    ConsortiumCA.init(folder, "Crash Consortium")
    rng = random.Random(7)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", CRASH_WORKER, str(folder)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # it is issuing
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ca = ConsortiumCA(folder)
        crl = ca.crl()
        assert (folder / "crl.pem").read_bytes() == crl.to_pem()  # re-exported on open
        revoked_in_index = {r.serial for r in ca.revocations()}
        # every indexed certificate verifies and has its file; every revocation is on the CRL
        for row in ca.list():
            cert = ca.certificate(int(str(row["serial"]), 16))
            assert (folder / "issued" / f"{row['serial']}.crt.pem").read_bytes() == cert.to_pem()
            if cert.serial in revoked_in_index:
                with pytest.raises(CertificateRevoked):
                    verify_certificate(cert, ca.root, crl)
            else:
                verify_certificate(cert, ca.root, crl)
        assert set(crl.revocations()) == revoked_in_index
    assert len(ConsortiumCA(folder).list()) > 0
