"""Names in certificates: RFC 5280 lengths, no control characters, nothing that makes a printed
DN ambiguous; refused with a typed error (exit 2) when issued and when a certificate is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509

from ledger.crypto import Certificate, InvalidName, SM2PrivateKey, verify_certificate
from ledger.crypto.ca import ConsortiumCA
from ledger.crypto.names import MAX_CONSORTIUM_NAME, MAX_NAME, check_name
from ledger.crypto.sm2 import DEFAULT_SIGNER_ID
from tests.conftest import run_rongxin

BAD = {
    "comma": "County A, O=Evil",
    "plus": "a+b",
    "equals": "CN=x",
    "semicolon": "a;b",
    "quote": 'a"b',
    "backslash": "a\\b",
    "angle": "a<b>",
    "hash first": "#30",
    "leading space": " a",
    "trailing space": "a ",
    "ideographic space": "融信\u3000",
    "NUL": "a\x00b",
    "newline": "a\nb",
    "escape": "a\x1b[2Jb",
    "DEL": "a\x7fb",
    "C1 NEL": "a\x85b",
    "bidi override": "abc\u202egpj.exe",
    "bidi isolate": "a\u2066b",
    "zero width space": "a\u200bb",
    "line separator": "a\u2028b",
    "BOM": "\ufeffa",
    "lone surrogate": "a\ud800b",
    "empty": "",
    "too long": "x" * (MAX_NAME + 1),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_name_refuses(case: str) -> None:
    with pytest.raises(InvalidName):
        check_name(BAD[case], "name")


@pytest.mark.parametrize("good", ["County Media Centre A", "融信联盟·省级平台（一）", "node-1", "O'Brien & Co.",
                                  "x" * MAX_NAME, "版" * MAX_NAME, "a#b"])
def test_check_name_accepts(good: str) -> None:
    assert check_name(good, "name") == good


def test_ca_init_long_name_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    proc = run_rongxin("ca", "init", "--dir", str(tmp_path / "ca"), "--name", "x" * (MAX_CONSORTIUM_NAME + 1))
    assert proc.returncode == 2, proc.stderr
    assert f"at most {MAX_CONSORTIUM_NAME}" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "ca").exists()
    proc = run_rongxin("ca", "init", "--dir", str(tmp_path / "ca"), "--name", "x" * MAX_CONSORTIUM_NAME)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> ConsortiumCA:
    return ConsortiumCA.init(tmp_path_factory.mktemp("names") / "ca", "Names Consortium")


@pytest.mark.parametrize("field", ["--name", "--org"])
@pytest.mark.parametrize("case", ["comma", "escape", "bidi override", "too long"])
def test_ca_issue_bad_names_exit_2(authority: ConsortiumCA, tmp_path: Path, field: str, case: str) -> None:
    values = {"--name": "n1", "--org": "County A", field: BAD[case]}
    proc = run_rongxin("ca", "issue", "--dir", str(authority.folder), "--kind", "user", "--role", "user",
                       "--name", values["--name"], "--org", values["--org"],
                       "--new-key", str(tmp_path / "k"), "--out", str(tmp_path / "c"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "c").exists()


def _reissued(authority: ConsortiumCA, subject: asn1_x509.Name) -> Certificate:
    """A certificate really signed by the root, with a subject the CA would never write."""
    good = authority.issue(kind="user", name="u", org="Org", public_key=SM2PrivateKey.generate().public_key())
    cert = asn1_x509.Certificate.load(good.der)
    tbs = cert["tbs_certificate"]
    tbs["subject"] = subject
    tbs_der = tbs.dump(force=True)
    root_key = SM2PrivateKey.load((authority.folder / "root.key.pem").read_bytes())
    signed = asn1_x509.Certificate({
        "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
        "signature_algorithm": cert["signature_algorithm"],
        "signature_value": root_key.sign(tbs_der, DEFAULT_SIGNER_ID),
    })
    return Certificate(signed.dump())


def _rdn(kind: str, value: str) -> asn1_x509.RelativeDistinguishedName:
    return asn1_x509.RelativeDistinguishedName([{"type": kind, "value": {"utf8_string": value}}])


@pytest.mark.parametrize("case", ["comma", "newline", "bidi override", "too long", "two CNs", "multi-valued"])
def test_accepted_certificates_obey_the_name_rules(authority: ConsortiumCA, tmp_path: Path, case: str) -> None:
    if case == "two CNs":
        rdns = [_rdn("common_name", "alice"), _rdn("organization_name", "Org"), _rdn("common_name", "admin")]
    elif case == "multi-valued":
        both = asn1_x509.RelativeDistinguishedName([
            {"type": "common_name", "value": {"utf8_string": "alice"}},
            {"type": "organization_name", "value": {"utf8_string": "Org"}}])
        rdns = [both]
    else:
        rdns = [_rdn("common_name", BAD[case]), _rdn("organization_name", "Org"),
                _rdn("organizational_unit_name", "user")]
    cert = _reissued(authority, asn1_x509.Name(name="", value=asn1_x509.RDNSequence(rdns)))
    cert.check_signed_by(authority.root)  # the root did sign it
    with pytest.raises(InvalidName):
        verify_certificate(cert, authority.root)
    (tmp_path / "c.pem").write_bytes(cert.to_pem())
    proc = run_rongxin("ca", "verify", "--root", str(authority.folder / "root.crt.pem"), str(tmp_path / "c.pem"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_certificate_with_good_names_still_verifies(authority: ConsortiumCA) -> None:
    cert = _reissued(authority, asn1_x509.Name(name="", value=asn1_x509.RDNSequence([
        _rdn("common_name", "张三"), _rdn("organization_name", "版权法律中心"),
        _rdn("organizational_unit_name", "user")])))
    assert verify_certificate(cert, authority.root).common_name == "张三"
