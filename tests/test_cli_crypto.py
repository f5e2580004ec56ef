"""The `rongxin` command as a user runs it: real processes, real files, documented exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ID = "1234567812345678"


def _no_traceback(proc) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_every_command_has_help(rx) -> None:
    for args in (["--help"], ["keygen", "--help"], ["sign", "--help"], ["verify-sig", "--help"],
                 ["ca", "--help"], ["ca", "init", "--help"], ["ca", "issue", "--help"],
                 ["ca", "revoke", "--help"], ["ca", "crl", "--help"], ["ca", "verify", "--help"],
                 ["ca", "list", "--help"], ["selftest", "--help"], ["bench", "crypto", "--help"]):
        proc = rx(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "Usage:" in proc.stdout


def test_keygen_sign_verify_round_trip_with_openssl(rx, openssl, tmp_path: Path) -> None:
    key, pub, msg, sig = (tmp_path / n for n in ("k.pem", "p.pem", "m.bin", "s.der"))
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    proc = rx("keygen", "--out", str(key), "--pub", str(pub), "--password-file", str(pw), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["encrypted"] is True and len(out["key_id"]) == 64
    assert key.stat().st_mode & 0o777 == 0o600
    openssl("pkey", "-in", str(key), "-passin", "pass:s3cret", "-noout")
    msg.write_bytes(os.urandom(5000))
    proc = rx("sign", "--key", str(key), "--password-file", str(pw), str(msg), "--out", str(sig))
    assert proc.returncode == 0, proc.stderr
    openssl("dgst", "-sm3", "-verify", str(pub), "-sigopt", f"distid:{ID}", "-signature", str(sig), str(msg))
    assert rx("verify-sig", "--pub", str(pub), str(msg), str(sig)).returncode == 0
    proc = rx("verify-sig", "--pub", str(pub), str(msg), str(sig), "--id", "another-id", "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["valid"] is False


def test_custom_signer_id_round_trip(rx, openssl, tmp_path: Path) -> None:
    openssl("genpkey", "-algorithm", "SM2", "-out", str(tmp_path / "k.pem"))
    openssl("pkey", "-in", str(tmp_path / "k.pem"), "-pubout", "-out", str(tmp_path / "p.pem"))
    (tmp_path / "m").write_bytes(b"evidence manifest")
    assert rx("sign", "--key", str(tmp_path / "k.pem"), str(tmp_path / "m"), "--out", str(tmp_path / "s"),
              "--id", "court@example").returncode == 0
    openssl("dgst", "-sm3", "-verify", str(tmp_path / "p.pem"), "-sigopt", "distid:court@example",
            "-signature", str(tmp_path / "s"), str(tmp_path / "m"))
    assert rx("verify-sig", "--pub", str(tmp_path / "p.pem"), str(tmp_path / "m"), str(tmp_path / "s"),
              "--id", "court@example").returncode == 0
    assert rx("verify-sig", "--pub", str(tmp_path / "p.pem"), str(tmp_path / "m"),
              str(tmp_path / "s")).returncode == 1


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("garbage-pub", "public key"),
        ("missing-pub", "no such file"),
        ("garbage-sig", "not a DER SM2 signature"),
        ("empty-sig", "not a DER SM2 signature"),
        ("missing-file", "no such file"),
        ("folder-as-pub", "directory"),
        ("p256-pub", "not an SM2 key"),
    ],
)
def test_verify_sig_unusable_input_exits_2_without_traceback(rx, openssl, tmp_path: Path, case: str,
                                                             expect: str) -> None:
    openssl("genpkey", "-algorithm", "SM2", "-out", str(tmp_path / "k.pem"))
    openssl("pkey", "-in", str(tmp_path / "k.pem"), "-pubout", "-out", str(tmp_path / "p.pem"))
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(tmp_path / "e.pem"))
    openssl("pkey", "-in", str(tmp_path / "e.pem"), "-pubout", "-out", str(tmp_path / "e.pub"))
    (tmp_path / "m").write_bytes(b"x")
    openssl("dgst", "-sm3", "-sign", str(tmp_path / "k.pem"), "-sigopt", f"distid:{ID}",
            "-out", str(tmp_path / "s"), str(tmp_path / "m"))
    (tmp_path / "garbage").write_text("garbage\n")
    (tmp_path / "empty").write_bytes(b"")
    pub, msg, sig = str(tmp_path / "p.pem"), str(tmp_path / "m"), str(tmp_path / "s")
    args = {
        "garbage-pub": [str(tmp_path / "garbage"), msg, sig],
        "missing-pub": [str(tmp_path / "nope.pem"), msg, sig],
        "garbage-sig": [pub, msg, str(tmp_path / "garbage")],
        "empty-sig": [pub, msg, str(tmp_path / "empty")],
        "missing-file": [pub, str(tmp_path / "nope"), sig],
        "folder-as-pub": [str(tmp_path), msg, sig],
        "p256-pub": [str(tmp_path / "e.pub"), msg, sig],
    }[case]
    proc = rx("verify-sig", "--pub", args[0], args[1], args[2])
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert expect in proc.stderr
    _no_traceback(proc)


def test_sign_bad_input(rx, tmp_path: Path) -> None:
    assert rx("keygen", "--out", str(tmp_path / "k.pem"), "--pub", str(tmp_path / "p.pem"),
              "--password-file", str(_pw(tmp_path, "right"))).returncode == 0
    (tmp_path / "m").write_bytes(b"x")
    cases = [
        (["--key", str(tmp_path / "k.pem")], "password is needed"),
        (["--key", str(tmp_path / "k.pem"), "--password-file", str(_pw(tmp_path, "wrong"))], "wrong password"),
        (["--key", str(tmp_path / "p.pem")], "not a PEM or DER private key"),
    ]
    for extra, expect in cases:
        proc = rx("sign", *extra, str(tmp_path / "m"), "--out", str(tmp_path / "s"))
        assert proc.returncode == 2 and expect in proc.stderr, proc.stderr
        _no_traceback(proc)
    assert not (tmp_path / "s").exists()
    # refusing to overwrite a key keeps the existing one intact
    before = (tmp_path / "k.pem").read_bytes()
    proc = rx("keygen", "--out", str(tmp_path / "k.pem"), "--pub", str(tmp_path / "p2.pem"))
    assert proc.returncode == 2 and "refusing to overwrite" in proc.stderr
    assert (tmp_path / "k.pem").read_bytes() == before
    proc = rx("sign", "--bogus-option")
    assert proc.returncode == 2
    _no_traceback(proc)


def _pw(tmp_path: Path, value: str) -> Path:
    p = tmp_path / f"pw-{value}"
    p.write_text(value + "\n")
    return p


def test_ca_commands_issue_revoke_verify(rx, openssl, tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    proc = rx("ca", "init", "--dir", str(ca), "--name", "Test Consortium", "--json")
    assert proc.returncode == 0, proc.stderr
    root = json.loads(proc.stdout)["root"]
    proc = rx("ca", "issue", "--dir", str(ca), "--kind", "node", "--name", "validator-1", "--org", "Org A",
              "--role", "consensus", "--new-key", str(tmp_path / "v1.key"), "--out", str(tmp_path / "v1.crt"),
              "--json")
    assert proc.returncode == 0, proc.stderr
    issued = json.loads(proc.stdout)
    assert issued["role"] == "consensus" and issued["organization"] == "Org A"
    openssl("verify", "-vfyopt", f"distid:{ID}", "-CAfile", root, str(tmp_path / "v1.crt"))
    crl = str(ca / "crl.pem")
    ok = rx("ca", "verify", "--root", root, "--crl", crl, str(tmp_path / "v1.crt"), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["valid"] is True
    # a certificate works as --pub for verify-sig
    (tmp_path / "m").write_bytes(b"block 7")
    assert rx("sign", "--key", str(tmp_path / "v1.key"), str(tmp_path / "m"), "--out", str(tmp_path / "s")).returncode == 0
    assert rx("verify-sig", "--pub", str(tmp_path / "v1.crt"), str(tmp_path / "m"), str(tmp_path / "s")).returncode == 0
    proc = rx("ca", "revoke", "--dir", str(ca), "--cert", str(tmp_path / "v1.crt"), "--reason", "key_compromise", "--json")
    assert proc.returncode == 0, proc.stderr
    bad = rx("ca", "verify", "--root", root, "--crl", crl, str(tmp_path / "v1.crt"), "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["error"] == "CertificateRevoked"
    listing = json.loads(rx("ca", "list", "--dir", str(ca), "--json").stdout)
    assert listing["certificates"][0]["reason"] == "key_compromise"
    # a CRL published with --out is the same document
    assert rx("ca", "crl", "--dir", str(ca), "--out", str(tmp_path / "crl2.pem")).returncode == 0
    assert rx("ca", "verify", "--root", root, "--crl", str(tmp_path / "crl2.pem"), str(tmp_path / "v1.crt")).returncode == 1


def test_ca_verify_expired_foreign_and_malformed(rx, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert rx("ca", "init", "--dir", str(tmp_path / name), "--name", "Same Name").returncode == 0
    assert rx("ca", "issue", "--dir", str(tmp_path / "b"), "--kind", "user", "--name", "u", "--org", "O",
              "--new-key", str(tmp_path / "u.key"), "--out", str(tmp_path / "u.crt"), "--days", "1").returncode == 0
    root_a = str(tmp_path / "a" / "root.crt.pem")
    root_b = str(tmp_path / "b" / "root.crt.pem")
    foreign = rx("ca", "verify", "--root", root_a, str(tmp_path / "u.crt"))
    assert foreign.returncode == 1 and "did not make" in foreign.stdout
    later = rx("ca", "verify", "--root", root_b, "--at", "2099-01-01T00:00:00", str(tmp_path / "u.crt"))
    assert later.returncode == 1 and "expired" in later.stdout
    (tmp_path / "junk.crt").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    junk = rx("ca", "verify", "--root", root_b, str(tmp_path / "junk.crt"))
    assert junk.returncode == 2 and "certificate" in junk.stderr
    _no_traceback(junk)
    bad_at = rx("ca", "verify", "--root", root_b, "--at", "yesterday", str(tmp_path / "u.crt"))
    assert bad_at.returncode == 2
    wrong_dir = rx("ca", "issue", "--dir", str(tmp_path / "nowhere"), "--kind", "user", "--name", "u",
                   "--org", "O", "--pub", str(tmp_path / "u.crt"), "--out", str(tmp_path / "x.crt"))
    assert wrong_dir.returncode == 2 and "not a CA folder" in wrong_dir.stderr
    _no_traceback(wrong_dir)


def test_selftest_json_reports_every_known_answer(rx) -> None:
    proc = rx("selftest", "--json", "--seconds", "0.05")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["passed"] is True
    names = {c["name"] for c in out["checks"]}
    assert {"SM3 GB/T 32905-2016 A.1", "SM2 verify standard signature", "SM2 decrypt standard ciphertext"} <= names
    assert out["speed"]["SM2 verify"] > 0
