"""The consortium certificate authority, kept in one folder.

Layout of a CA folder::

    root.key.pem      the root's SM2 private key (PKCS#8, encrypted when a password is set), 0600
    root.crt.pem      the self-signed consortium root certificate
    index.sqlite      every certificate issued and every revocation (the source of truth)
    crl.pem           the latest CRL (an export of the one committed in the index)
    transport-ca.*    the P-256 TLS CA for node links, its key, and the root's SM2 endorsement
    issued/SERIAL.crt.pem

Crash safety: files are written to a temporary name, flushed and renamed; the index is a
SQLite database in WAL mode updated in one transaction per operation. A crash leaves either
the old or the new state, and a certificate file without its index row is ignored. The
CRL is stored in the index in the same transaction as the revocation it carries;
``crl.pem`` is re-exported from there whenever the folder is opened.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..files import FileInputError, read_regular
from .attest import sign_genesis_attestation
from .errors import CAError, CertificateError, KeyPasswordError
from .names import MAX_CONSORTIUM_NAME, check_name
from .sm2 import SM2PrivateKey, SM2PublicKey
from .tls import TransportCA
from .x509 import (
    BUSINESS_ROLES,
    NODE_ROLES,
    REVOCATION_REASONS,
    USER_ROLES,
    Certificate,
    CertificateRevocationList,
    Revocation,
    build_certificate,
    build_crl,
    utcnow,
)

KINDS = ("org", "node", "user")


def _read(path: Path) -> bytes:
    """A file of the CA folder: a regular file of bounded size, else a typed ``CAError``."""
    try:
        return read_regular(path)
    except FileInputError as exc:
        raise CAError(f"CA folder file {exc}") from None
DEFAULT_ROOT_DAYS = 3650
DEFAULT_LEAF_DAYS = 825
DEFAULT_CRL_DAYS = 7


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS certs (
    serial TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    common_name TEXT NOT NULL,
    organization TEXT NOT NULL,
    role TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    pem TEXT NOT NULL,
    revoked_at TEXT,
    reason TEXT
);
"""


class ConsortiumCA:
    """Issue, revoke and publish certificates for one consortium."""

    def __init__(self, folder: str | Path, password: bytes | None = None) -> None:
        self.folder = Path(folder)
        self._password = password
        if not (self.folder / "root.crt.pem").is_file() or not (self.folder / "index.sqlite").is_file():
            raise CAError(f"{self.folder} is not a CA folder (run `rongxin ca init --dir {self.folder}`)")
        try:
            self.root = Certificate.load(_read(self.folder / "root.crt.pem"))
        except CertificateError as exc:
            raise CAError(f"the root certificate in {self.folder} is damaged: {exc}") from None
        self._key: SM2PrivateKey | None = None
        self._export_crl()

    # ------------------------------------------------------------ creation
    @classmethod
    def init(
        cls,
        folder: str | Path,
        consortium: str,
        password: bytes | None = None,
        days: int = DEFAULT_ROOT_DAYS,
    ) -> ConsortiumCA:
        folder = Path(folder)
        if (folder / "root.crt.pem").exists():
            raise CAError(f"{folder} already holds a consortium CA; refusing to overwrite it")
        if not consortium.strip():
            raise CAError("the consortium needs a name")
        check_name(consortium, "the consortium name", MAX_CONSORTIUM_NAME)
        folder.mkdir(parents=True, exist_ok=True)
        key = SM2PrivateKey.generate()
        now = utcnow()
        root = build_certificate(
            issuer_key=key, issuer=None, subject_public_key=key.public_key(),
            common_name=f"{consortium} Root CA", organization=consortium, role="root",
            not_before=now - dt.timedelta(minutes=5), not_after=now + dt.timedelta(days=days),
            is_ca=True,
        )
        atomic_write(folder / "root.key.pem", key.to_pem(password), mode=0o600)
        transport = TransportCA.create(key, root, days)
        atomic_write(folder / "transport-ca.key.pem", transport.key_pem, mode=0o600)
        atomic_write(folder / "transport-ca.crt.pem", transport.cert_pem)
        atomic_write(folder / "transport-ca.endorsement", transport.endorsement)
        with _connect(folder / "index.sqlite") as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('consortium', ?)", (consortium,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('crl_number', '0')")
        # the root certificate is written last: its presence marks a complete CA folder
        atomic_write(folder / "root.crt.pem", root.to_pem())
        ca = cls(folder, password)
        ca.publish_crl()
        return ca

    # ------------------------------------------------------------ internals
    @property
    def consortium(self) -> str:
        return self.root.organization

    def _root_key(self) -> SM2PrivateKey:
        if self._key is None:
            path = self.folder / "root.key.pem"
            try:
                key = SM2PrivateKey.load(_read(path), self._password)
            except KeyPasswordError as exc:
                raise KeyPasswordError(f"root key {path}: {exc}") from None
            if key.public_key() != self.root.public_key():
                raise CAError(f"{path} does not belong to the root certificate beside it")
            self._key = key
        return self._key

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with _connect(self.folder / "index.sqlite") as db:
            yield db

    # ------------------------------------------------------------ issue
    def issue(
        self,
        *,
        kind: str,
        name: str,
        org: str,
        public_key: SM2PublicKey,
        role: str | None = None,
        days: int = DEFAULT_LEAF_DAYS,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        business: str | None = None,
    ) -> Certificate:
        """Issue a certificate to an organisation, a node (with its role) or a user (with its
        role and, optionally, its business role: ``BUSINESS_ROLES``)."""
        if kind not in KINDS:
            raise CAError(f"kind must be one of {', '.join(KINDS)}")
        if kind == "node":
            if role not in NODE_ROLES:
                raise CAError(f"a node's role must be one of {', '.join(NODE_ROLES)}")
        elif kind == "user":
            role = role or "user"
            if role not in USER_ROLES:
                raise CAError(f"a user's role must be one of {', '.join(USER_ROLES)}")
        else:
            if role not in (None, "org"):
                raise CAError("an organisation certificate takes no role")
            role = "org"
            org = org or name
        if not name.strip() or not (org or "").strip():
            raise CAError("a certificate needs a name and an organisation")
        check_name(name, "the name (CN)")
        check_name(org, "the organisation (O)")
        assert role is not None
        if business is not None and (kind != "user" or business not in BUSINESS_ROLES):
            raise CAError(f"a business role is one of {', '.join(BUSINESS_ROLES)}, for a user certificate")
        start = not_before or utcnow() - dt.timedelta(minutes=5)
        end = not_after or start + dt.timedelta(days=days)
        if end > self.root.not_after:
            end = self.root.not_after
        cert = build_certificate(
            issuer_key=self._root_key(), issuer=self.root, subject_public_key=public_key,
            common_name=name, organization=org, role=role, not_before=start, not_after=end,
            business=business,
        )
        serial = format(cert.serial, "x")
        atomic_write(self.folder / "issued" / f"{serial}.crt.pem", cert.to_pem())
        with self._db() as db:
            db.execute(
                "INSERT INTO certs VALUES (?,?,?,?,?,?,?,?,?,NULL,NULL)",
                (serial, kind, name, org, role, cert.not_before.isoformat(),
                 cert.not_after.isoformat(), cert.fingerprint, cert.to_pem().decode()),
            )
        return cert

    # ------------------------------------------------------------ transport (TLS) certificates
    def transport_ca(self) -> TransportCA:
        try:
            ca = TransportCA(
                _read(self.folder / "transport-ca.key.pem"),
                _read(self.folder / "transport-ca.crt.pem"),
                _read(self.folder / "transport-ca.endorsement"),
            )
        except CAError as exc:
            raise CAError(f"{self.folder} has no usable transport CA ({exc})") from None
        ca.check_endorsed_by(self.root)
        return ca

    def issue_transport(self, node_id: str, sm2_cert: Certificate) -> tuple[bytes, bytes]:
        """A node's TLS key and certificate (PEM), bound to its SM2 certificate."""
        return self.transport_ca().issue(node_id, sm2_cert)

    # ------------------------------------------------------------ revoke / CRL
    def revoke(self, serial: int, reason: str = "unspecified") -> CertificateRevocationList:
        if reason not in REVOCATION_REASONS:
            raise CAError(f"reason must be one of {', '.join(REVOCATION_REASONS)}")
        hexserial = format(serial, "x")
        with self._db() as db:
            row = db.execute("SELECT revoked_at FROM certs WHERE serial=?", (hexserial,)).fetchone()
            if row is None:
                raise CAError(f"no certificate with serial {hexserial} was issued by this CA")
            if row[0] is not None:
                raise CAError(f"certificate {hexserial} was already revoked on {row[0]}")
            db.execute(
                "UPDATE certs SET revoked_at=?, reason=? WHERE serial=?",
                (utcnow().isoformat(), reason, hexserial),
            )
            # the CRL is signed and stored inside the same transaction, so a crash never
            # leaves a revocation in the index that no CRL carries (or the reverse)
            crl = self._publish(db, DEFAULT_CRL_DAYS)
        self._export_crl()
        return crl

    def revocations(self) -> list[Revocation]:
        with self._db() as db:
            return _revocations(db)

    def publish_crl(self, days: int = DEFAULT_CRL_DAYS) -> CertificateRevocationList:
        """Sign a new CRL with the next CRL number and write it to ``crl.pem``."""
        with self._db() as db:
            crl = self._publish(db, days)
        self._export_crl()
        return crl

    def _publish(self, db: sqlite3.Connection, days: int) -> CertificateRevocationList:
        number = int(db.execute("SELECT value FROM meta WHERE key='crl_number'").fetchone()[0]) + 1
        now = utcnow()
        crl = build_crl(
            issuer_key=self._root_key(), issuer=self.root, revoked=_revocations(db),
            number=number, this_update=now, next_update=now + dt.timedelta(days=days),
        )
        db.execute("UPDATE meta SET value=? WHERE key='crl_number'", (str(number),))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('crl', ?)", (crl.to_pem().decode(),))
        return crl

    def _export_crl(self) -> None:
        """Make ``crl.pem`` equal the CRL committed in the index (the source of truth).

        Called after every commit and on opening, so a crash between the commit and the
        file write is repaired by the next use of the folder, with no key needed.
        """
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE key='crl'").fetchone()
        if row is None:
            return
        path = self.folder / "crl.pem"
        pem = row[0].encode()
        if not path.is_file() or path.read_bytes() != pem:
            atomic_write(path, pem)

    def crl(self) -> CertificateRevocationList:
        """The latest committed CRL."""
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE key='crl'").fetchone()
        if row is None:
            raise CAError(f"{self.folder} has no CRL yet (run `rongxin ca crl --dir {self.folder}`)")
        return CertificateRevocationList.load(row[0].encode())

    # ------------------------------------------------------------ genesis
    def attest_genesis(self, chain: str, genesis_hash: bytes) -> dict[str, str]:
        """The root's attestation of genesis ``genesis_hash`` of ``chain`` (``ledger.crypto.attest``).
        The caller decides whether the genesis deserves it (``ledger.node.config``)."""
        return sign_genesis_attestation(self._root_key(), chain, genesis_hash)

    # ------------------------------------------------------------ queries
    def list(self) -> list[dict[str, object]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT serial, kind, common_name, organization, role, not_before, not_after,"
                " fingerprint, revoked_at, reason FROM certs ORDER BY not_before, serial"
            ).fetchall()
        keys = ("serial", "kind", "common_name", "organization", "role", "not_before",
                "not_after", "fingerprint", "revoked_at", "reason")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def certificate(self, serial: int) -> Certificate:
        with self._db() as db:
            row = db.execute("SELECT pem FROM certs WHERE serial=?", (format(serial, "x"),)).fetchone()
        if row is None:
            raise CAError(f"no certificate with serial {serial:x}")
        return Certificate.load(row[0].encode())

    def summary(self) -> str:
        return json.dumps({"consortium": self.consortium, "root": self.root.fingerprint})


def _revocations(db: sqlite3.Connection) -> list[Revocation]:
    rows = db.execute(
        "SELECT serial, revoked_at, reason FROM certs WHERE revoked_at IS NOT NULL"
    ).fetchall()
    return [Revocation(int(s, 16), dt.datetime.fromisoformat(t), r) for s, t, r in rows]


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise CAError(f"cannot open the CA index {path}: {exc}") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise CAError(f"the CA index {path} is damaged: {exc}") from None
    finally:
        db.close()
