"""``rongxin keygen | sign | verify-sig | ca … | selftest``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ledger.crypto import (
    Certificate,
    CertificateRevocationList,
    InvalidKey,
    SM2PrivateKey,
    SM2PublicKey,
    verify_certificate,
)
from ledger.crypto.ca import DEFAULT_CRL_DAYS, DEFAULT_LEAF_DAYS, DEFAULT_ROOT_DAYS, KINDS, ConsortiumCA
from ledger.crypto.errors import CertificateError
from ledger.crypto.sm2 import DEFAULT_KEY_CIPHER, DEFAULT_SIGNER_ID, KEY_CIPHERS, decode_signature
from ledger.crypto.x509 import BUSINESS_ROLES, REVOCATION_REASONS, ROLES, info_dict

from .errors import NEGATIVE, NEGATIVE_ERRORS, OK, InputError
from .io import emit, open_input, read_input, read_password, table, write_output

JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
PASSWORD_FILE = click.option(
    "--password-file", type=click.Path(dir_okay=False),
    help="File holding the key's password (first line; trailing newline ignored).",
)
SIGNER_ID = click.option(
    "--id", "signer_id", default=DEFAULT_SIGNER_ID.decode(), show_default=True,
    help="SM2 signer ID (distinguishing identifier) that enters Z.",
)


def _signer_id(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 8191:
        raise InputError("signer ID longer than 8191 bytes")
    return raw


def load_public_or_cert(path: str) -> SM2PublicKey:
    """A public key from a SubjectPublicKeyInfo file or from a certificate."""
    data = read_input(path, "public key")
    if b"BEGIN CERTIFICATE" in data:
        return Certificate.load(data).public_key()
    try:
        return SM2PublicKey.load(data)
    except InvalidKey as exc:
        raise InvalidKey(f"public key {path}: {exc}") from None


def load_private(path: str, password_file: str | None) -> SM2PrivateKey:
    data = read_input(path, "private key")
    try:
        return SM2PrivateKey.load(data, read_password(password_file))
    except InvalidKey as exc:  # includes wrong or missing passwords
        raise type(exc)(f"private key {path}: {exc}") from None


# ------------------------------------------------------------------ keys and signatures


@click.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Private key file (PKCS#8 PEM).")
@click.option("--pub", required=True, type=click.Path(dir_okay=False), help="Public key file (SubjectPublicKeyInfo PEM).")
@PASSWORD_FILE
@click.option("--cipher", type=click.Choice(KEY_CIPHERS), default=DEFAULT_KEY_CIPHER,
              show_default=True, help="Cipher protecting the key when a password is given.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@JSON
def keygen(out: str, pub: str, password_file: str | None, cipher: str, force: bool, as_json: bool) -> None:
    """Generate an SM2 key pair (readable by OpenSSL 3)."""
    password = read_password(password_file)
    for p in (out, pub):
        if Path(p).exists() and not force:
            raise InputError(f"{p} already exists; refusing to overwrite it (use --force)")
    key = SM2PrivateKey.generate()
    write_output(out, key.to_pem(password, cipher), secret=True, force=force)
    write_output(pub, key.public_key().to_pem(), force=force)
    emit({"private_key": out, "public_key": pub, "key_id": key.public_key().key_id(),
          "encrypted": password is not None}, as_json,
         f"wrote {out} and {pub} (key id {key.public_key().key_id()[:16]}…)")


@click.command()
@click.option("--key", required=True, type=click.Path(dir_okay=False), help="SM2 private key (PEM or DER).")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the DER signature.")
@SIGNER_ID
@PASSWORD_FILE
@click.option("--force", is_flag=True, help="Overwrite an existing signature file.")
@JSON
def sign(key: str, file: str, out: str, signer_id: str, password_file: str | None,
         force: bool, as_json: bool) -> None:
    """Sign FILE with SM2-with-SM3; writes a DER signature (GB/T 35276)."""
    sid = _signer_id(signer_id)
    private = load_private(key, password_file)
    try:
        with open_input(file, "file to sign") as fh:
            signature = private.sign_stream(fh, sid)
    except OSError as exc:
        raise InputError(f"file to sign {file}: {exc.strerror}") from None
    write_output(out, signature, force=force)
    emit({"signature": out, "signer_id": signer_id, "key_id": private.public_key().key_id()},
         as_json, f"wrote {out}")


@click.command("verify-sig")
@click.option("--pub", required=True, type=click.Path(dir_okay=False),
              help="SM2 public key (SubjectPublicKeyInfo PEM/DER) or a certificate.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("signature", type=click.Path(dir_okay=False))
@SIGNER_ID
@JSON
def verify_sig(pub: str, file: str, signature: str, signer_id: str, as_json: bool) -> int:
    """Verify a DER SM2 signature of FILE. Exit 0 valid, 1 invalid, 2 unusable input."""
    sid = _signer_id(signer_id)
    public = load_public_or_cert(pub)
    sig = read_input(signature, "signature")
    decode_signature(sig)  # malformed → MalformedSignature → exit 2
    h = public.hasher(sid)
    try:
        with open_input(file, "signed file") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise InputError(f"signed file {file}: {exc.strerror}") from None
    valid = True
    reason = "signature verifies"
    try:
        public.verify_digest(sig, h.digest())
    except NEGATIVE_ERRORS as exc:
        valid, reason = False, str(exc)
    emit({"valid": valid, "reason": reason, "signer_id": signer_id}, as_json,
         "valid" if valid else f"INVALID: {reason}")
    return OK if valid else NEGATIVE


# ------------------------------------------------------------------ CA


@click.group()
def ca() -> None:
    """The consortium certificate authority (SM2-with-SM3 X.509, flat root → leaf)."""


CA_DIR = click.option("--dir", "folder", required=True, type=click.Path(file_okay=False),
                      help="The CA folder.")


@ca.command("init")
@CA_DIR
@click.option("--name", required=True, help="Consortium name (the root's organisation).")
@PASSWORD_FILE
@click.option("--days", default=DEFAULT_ROOT_DAYS, show_default=True, type=click.IntRange(1, 36500))
@JSON
def ca_init(folder: str, name: str, password_file: str | None, days: int, as_json: bool) -> None:
    """Create a consortium root CA in a new folder."""
    authority = ConsortiumCA.init(folder, name, read_password(password_file), days)
    root = authority.root
    emit({"dir": folder, "root": str(Path(folder) / "root.crt.pem"), "crl": str(Path(folder) / "crl.pem"),
          "fingerprint": root.fingerprint, "not_after": root.not_after.isoformat()},
         as_json, f"consortium {name!r}: root certificate {Path(folder) / 'root.crt.pem'}")


@ca.command("issue")
@CA_DIR
@click.option("--kind", type=click.Choice(KINDS), required=True, help="What the certificate is for.")
@click.option("--name", required=True, help="Holder's name (the certificate's CN).")
@click.option("--org", default="", help="Holder's organisation (O); an org certificate uses --name.")
@click.option("--role", type=click.Choice(ROLES), help="Node role (supervisor|consensus|full) or user role (admin|user).")
@click.option("--business", type=click.Choice(BUSINESS_ROLES),
              help="A user's business role (holder, legal, court, platform, regulator); none by default.")
@click.option("--pub", type=click.Path(dir_okay=False), help="Holder's SM2 public key; or use --new-key.")
@click.option("--new-key", type=click.Path(dir_okay=False), help="Generate the holder's key pair into this file.")
@click.option("--new-key-password-file", type=click.Path(dir_okay=False), help="Password for --new-key.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Certificate file (PEM).")
@click.option("--days", default=DEFAULT_LEAF_DAYS, show_default=True, type=click.IntRange(1, 36500))
@PASSWORD_FILE
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@JSON
def ca_issue(folder: str, kind: str, name: str, org: str, role: str | None, business: str | None,
             pub: str | None, new_key: str | None, new_key_password_file: str | None, out: str, days: int,
             password_file: str | None, force: bool, as_json: bool) -> None:
    """Issue a certificate to an organisation, a node or a user."""
    if (pub is None) == (new_key is None):
        raise InputError("give exactly one of --pub and --new-key")
    if business is not None and kind != "user":
        raise InputError("--business is for user certificates (--kind user)")
    if Path(out).exists() and not force:
        raise InputError(f"{out} already exists; refusing to overwrite it (use --force)")
    authority = ConsortiumCA(folder, read_password(password_file))
    holder_key: SM2PrivateKey | None = None
    if pub is not None:
        public = load_public_or_cert(pub)
    else:
        assert new_key is not None
        if Path(new_key).exists() and not force:
            raise InputError(f"{new_key} already exists; refusing to overwrite it (use --force)")
        holder_key = SM2PrivateKey.generate()
        public = holder_key.public_key()
    cert = authority.issue(kind=kind, name=name, org=org, role=role, public_key=public, days=days,
                          business=business)
    if holder_key is not None and new_key is not None:
        write_output(new_key, holder_key.to_pem(read_password(new_key_password_file)),
                     secret=True, force=force)
    write_output(out, cert.to_pem(), force=force)
    emit({"certificate": out, **info_dict(cert.info())}, as_json,
         f"issued {out}: CN={cert.common_name} O={cert.organization} OU={cert.role}"
         f"{' business=' + business if business else ''} serial {cert.serial:x}")


@ca.command("revoke")
@CA_DIR
@click.option("--serial", help="Serial number (hex) of the certificate to revoke.")
@click.option("--cert", "cert_file", type=click.Path(dir_okay=False), help="Or the certificate file itself.")
@click.option("--reason", type=click.Choice(REVOCATION_REASONS), default="unspecified", show_default=True)
@PASSWORD_FILE
@JSON
def ca_revoke(folder: str, serial: str | None, cert_file: str | None, reason: str,
              password_file: str | None, as_json: bool) -> None:
    """Revoke a certificate and publish a new CRL (crl.pem in the CA folder)."""
    if (serial is None) == (cert_file is None):
        raise InputError("give exactly one of --serial and --cert")
    if cert_file is not None:
        number = Certificate.load(read_input(cert_file, "certificate")).serial
    else:
        try:
            number = int(str(serial), 16)
        except ValueError:
            raise InputError(f"serial {serial!r} is not a hexadecimal number") from None
    authority = ConsortiumCA(folder, read_password(password_file))
    crl = authority.revoke(number, reason)
    emit({"revoked": format(number, "x"), "reason": reason, "crl": str(Path(folder) / "crl.pem"),
          "crl_number": crl.number}, as_json, f"revoked {number:x}; CRL {crl.number} published")


@ca.command("crl")
@CA_DIR
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the CRL here.")
@click.option("--days", default=DEFAULT_CRL_DAYS, show_default=True, type=click.IntRange(1, 3650),
              help="Days until the next update is due.")
@PASSWORD_FILE
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@JSON
def ca_crl(folder: str, out: str | None, days: int, password_file: str | None, force: bool,
           as_json: bool) -> None:
    """Sign and publish a fresh CRL."""
    authority = ConsortiumCA(folder, read_password(password_file))
    crl = authority.publish_crl(days)
    if out:
        write_output(out, crl.to_pem(), force=force)
    emit({"crl": out or str(Path(folder) / "crl.pem"), "number": crl.number,
          "revoked": sorted(format(s, "x") for s in crl.revocations()),
          "next_update": crl.next_update.isoformat() if crl.next_update else None},
         as_json, f"CRL {crl.number} with {len(crl.revocations())} revocations")


@ca.command("verify")
@click.option("--root", required=True, type=click.Path(dir_okay=False), help="Consortium root certificate.")
@click.option("--crl", "crl_file", type=click.Path(dir_okay=False), help="CRL signed by the root.")
@click.option("--at", "at", help="Verify as of this ISO 8601 time (default: now).")
@click.argument("cert_file", type=click.Path(dir_okay=False))
@JSON
def ca_verify(root: str, crl_file: str | None, at: str | None, cert_file: str, as_json: bool) -> int:
    """Verify a certificate up to the root, with expiry and revocation.
    Exit 0 valid, 1 invalid (untrusted, expired, revoked), 2 unusable input."""
    when = None
    if at:
        try:
            when = dt.datetime.fromisoformat(at)
        except ValueError:
            raise InputError(f"--at {at!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    root_cert = Certificate.load(read_input(root, "root certificate"))
    cert = Certificate.load(read_input(cert_file, "certificate"))
    crl = CertificateRevocationList.load(read_input(crl_file, "CRL")) if crl_file else None
    try:
        info = verify_certificate(cert, root_cert, crl, when)
    except NEGATIVE_ERRORS as exc:
        emit({"valid": False, "reason": str(exc), "error": type(exc).__name__}, as_json,
             f"INVALID: {exc}")
        return NEGATIVE
    except CertificateError:
        raise
    emit({"valid": True, **info_dict(info)}, as_json,
         f"valid: CN={info.common_name} O={info.organization} OU={info.role}")
    return OK


@ca.command("list")
@CA_DIR
@JSON
def ca_list(folder: str, as_json: bool) -> None:
    """List every certificate the CA issued, with its revocation status."""
    authority = ConsortiumCA(folder)
    rows = authority.list()
    if as_json:
        emit({"consortium": authority.consortium, "certificates": rows}, True)
        return
    print(table([(str(r["serial"])[:12], str(r["kind"]), str(r["common_name"]), str(r["organization"]),
                  str(r["role"]), "revoked" if r["revoked_at"] else "valid") for r in rows],
                ("serial", "kind", "name", "org", "role", "status")))


# ------------------------------------------------------------------ self-test


@click.command()
@click.option("--full", is_flag=True, help="Also run the 1,000,000-round SM4 example (a few seconds).")
@click.option("--seconds", default=0.5, show_default=True, type=click.FloatRange(0.05, 30),
              help="Time per speed figure.")
@JSON
def selftest(full: bool, seconds: float, as_json: bool) -> int:
    """National-crypto known-answer tests (GB/T standards) and a short speed report."""
    from ledger.crypto.selftest import backend_description, run_known_answer_tests, speed_report

    checks = run_known_answer_tests(full=full)
    speeds = speed_report(seconds)
    passed = all(c.ok for c in checks)
    if as_json:
        emit({"passed": passed, "backend": backend_description(),
              "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
              "speed": {s.name: round(s.value, 1) for s in speeds}}, True)
    else:
        print(f"Rongxin national-crypto self-test — {backend_description()}\n")
        print(table([(c.name, "ok" if c.ok else "FAIL", c.detail) for c in checks],
                    ("known-answer test", "result", "detail")))
        print()
        print(table([(s.name, f"{s.value:,.1f}", s.unit) for s in speeds], ("operation", "speed", "unit")))
        print(f"\n{'all known-answer tests pass' if passed else 'SELF-TEST FAILED'}")
    return OK if passed else NEGATIVE


def register(group: click.Group) -> None:
    for cmd in (keygen, sign, verify_sig, ca, selftest):
        group.add_command(cmd)
