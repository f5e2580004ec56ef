"""SM2 keys, signatures (GB/T 32918.2) and public-key encryption (GB/T 32918.4).

Signing computes ``e = SM3(Z || M)`` here, with ``Z`` derived from the signer ID (default
``1234567812345678``) and the public key, then has libcrypto sign the digest. Computing
``e`` on our side lets a file of any size be signed in constant memory and caches ``Z``
per key and ID. Signatures are DER ``SEQUENCE { r INTEGER, s INTEGER }`` (GB/T 35276);
ciphertexts are DER ``SEQUENCE { x, y, hash, ciphertext }`` (GM/T 0009), convertible to the
raw ``C1 || C3 || C2`` layout of GB/T 32918.4-2016.

Keys are read and written as PKCS#8 (optionally password-encrypted), SEC1 and
SubjectPublicKeyInfo, in PEM or DER: the formats OpenSSL 3 reads and writes.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from asn1crypto import algos, core

from . import _libcrypto as C
from .errors import (
    BackendError,
    DecryptionError,
    InvalidKey,
    InvalidSignature,
    KeyPasswordError,
    MalformedSignature,
    UnsupportedAlgorithm,
)
from .sm3 import SM3, sm3

DEFAULT_SIGNER_ID = b"1234567812345678"

log = logging.getLogger(__name__)

# Verification with precomputed multiples of the public key (``C.PointTable``, 2.4x faster
# than OpenSSL's SM2 verify here) for keys that sign often: a key's table is built at its
# third verification (building costs about 1.6 plain verifications) and the most recently
# used tables are kept (about 80 KiB each). A new table's first answer is checked against
# OpenSSL's own SM2 verify; a disagreement (never seen) retires the table path for good.
TABLE_AFTER_USES = 2
TABLES_KEPT = 512
_tables: OrderedDict[bytes, C.PointTable] = OrderedDict()
_tables_lock = threading.Lock()
_tables_enabled = True

# GB/T 32918.5-2017 recommended curve sm2p256v1
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

CURVE_OID = "1.2.156.10197.1.301"
SM2_WITH_SM3_OID = "1.2.156.10197.1.501"
EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"

_CURVE_PARAMS = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))
# SubjectPublicKeyInfo prefix for an uncompressed SM2 point (id-ecPublicKey, sm2p256v1)
_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
# PKCS#8 PrivateKeyInfo wrapping a SEC1 ECPrivateKey with only the 32-byte scalar
_PKCS8_PREFIX = bytes.fromhex(
    "3041020100301306072a8648ce3d020106082a811ccf5501822d042730250201010420"
)

KEY_CIPHERS = ("SM4-CBC", "AES-256-CBC")
DEFAULT_KEY_CIPHER = "SM4-CBC"


def _check_signer_id(signer_id: bytes) -> bytes:
    if not isinstance(signer_id, bytes | bytearray):
        raise TypeError("signer ID must be bytes")
    if len(signer_id) * 8 > 0xFFFF:
        raise UnsupportedAlgorithm(f"signer ID of {len(signer_id)} bytes is longer than 8191")
    return bytes(signer_id)


def compute_z(point: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
    """``Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)`` for a 65-byte point."""
    sid = _check_signer_id(signer_id)
    return sm3((len(sid) * 8).to_bytes(2, "big") + sid + _CURVE_PARAMS + point[1:])


# ---------------------------------------------------------------- signature encoding


def encode_signature(r: int, s: int) -> bytes:
    """DER ``SEQUENCE { r, s }`` as GB/T 35276 specifies."""
    if not (0 < r < N and 0 < s < N):
        raise MalformedSignature("signature values r and s must lie in [1, n-1]")
    return bytes(algos.DSASignature({"r": r, "s": s}).dump())


def _der_int(der: bytes, at: int) -> tuple[int, int]:
    """One minimal, positive DER INTEGER of at most 33 bytes at ``der[at]``: (value, next offset)."""
    if at + 2 > len(der) or der[at] != 0x02:
        raise MalformedSignature("not a DER SM2 signature: expected an INTEGER")
    n = der[at + 1]
    start, end = at + 2, at + 2 + n
    if not 1 <= n <= 33 or end > len(der):
        raise MalformedSignature("not a DER SM2 signature: bad INTEGER length")
    if der[start] & 0x80:
        raise MalformedSignature("signature values r and s must lie in [1, n-1]")
    if n > 1 and der[start] == 0 and not der[start + 1] & 0x80:
        raise MalformedSignature("signature is not in canonical DER")
    return int.from_bytes(der[start:end], "big"), end


def decode_signature(der: bytes) -> tuple[int, int]:
    """Strict DER decoding of ``SEQUENCE { r INTEGER, s INTEGER }``: trailing bytes, long-form
    or wrong lengths, non-minimal integers or values outside ``[1, n-1]`` raise
    ``MalformedSignature``. (A SM2 signature is at most 72 bytes, so every length is short
    form.)"""
    der = bytes(der)
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise MalformedSignature("not a DER SM2 signature: expected SEQUENCE { r, s } with exact length")
    r, at = _der_int(der, 2)
    s, at = _der_int(der, at)
    if at != len(der):
        raise MalformedSignature("not a DER SM2 signature: trailing bytes inside the SEQUENCE")
    if not (0 < r < N and 0 < s < N):
        raise MalformedSignature("signature values r and s must lie in [1, n-1]")
    return r, s


def signature_to_raw(der: bytes) -> bytes:
    """DER signature to the 64-byte ``r || s`` form some tools use."""
    r, s = decode_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def signature_from_raw(raw: bytes) -> bytes:
    if len(raw) != 64:
        raise MalformedSignature(f"raw signature must be 64 bytes, got {len(raw)}")
    return encode_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


# ---------------------------------------------------------------- ciphertext encoding


class _SM2Cipher(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto declares structures this way
        ("x", core.Integer),
        ("y", core.Integer),
        ("hash", core.OctetString),
        ("ciphertext", core.OctetString),
    ]


def ciphertext_to_c1c3c2(der: bytes) -> bytes:
    """GM/T 0009 DER ciphertext to the raw ``04 || x || y || C3 || C2`` layout."""
    try:
        c = _SM2Cipher.load(bytes(der), strict=True)
        x, y = int(c["x"].native), int(c["y"].native)
        c3, c2 = bytes(c["hash"].native), bytes(c["ciphertext"].native)
    except (ValueError, TypeError) as exc:
        raise DecryptionError(f"not an SM2 ciphertext: {exc}") from None
    if not (0 <= x < P and 0 <= y < P) or len(c3) != 32:
        raise DecryptionError("SM2 ciphertext fields out of range")
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big") + c3 + c2


def ciphertext_from_c1c3c2(raw: bytes) -> bytes:
    """Raw ``04 || x || y || C3 || C2`` (GB/T 32918.4-2016) to GM/T 0009 DER."""
    if len(raw) < 97 or raw[0] != 4:
        raise DecryptionError("raw SM2 ciphertext must start with an uncompressed point")
    x, y = int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:65], "big")
    return bytes(
        _SM2Cipher({"x": x, "y": y, "hash": raw[65:97], "ciphertext": raw[97:]}).dump()
    )


# ---------------------------------------------------------------- keys


def _is_encrypted(data: bytes) -> bool:
    if b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data:
        return True
    try:  # DER EncryptedPrivateKeyInfo: SEQUENCE { AlgorithmIdentifier, OCTET STRING }
        parsed = core.Sequence.load(data, strict=True)
        return len(parsed) == 2 and isinstance(parsed[1], core.OctetString)
    except (ValueError, TypeError):
        return False


def _require_sm2(key: C.PKey, what: str) -> C.PKey:
    if key.is_a("SM2"):
        return key
    kind = "an EC key on another curve" if key.is_a("EC") else "not an elliptic-curve key"
    raise UnsupportedAlgorithm(f"{what} is {kind}, not an SM2 key")


class SM2PublicKey:
    """An SM2 public key: verifies signatures and encrypts to its holder."""

    __slots__ = ("_pkey", "_point", "_uses", "_verifier", "_z")

    def __init__(self, pkey: C.PKey, point: bytes) -> None:
        self._pkey = pkey
        self._point = point
        self._z: dict[bytes, bytes] = {}
        self._verifier: C.Verifier | None = None
        self._uses = 0

    # construction
    @classmethod
    def from_point(cls, point: bytes) -> SM2PublicKey:
        """From a 65-byte uncompressed point ``04 || x || y`` or 64-byte ``x || y``."""
        point = bytes(point)
        if len(point) == 64:
            point = b"\x04" + point
        if len(point) != 65 or point[0] != 4:
            raise InvalidKey(f"an SM2 public point is 65 bytes starting 04, got {len(point)} bytes")
        return cls.load(_SPKI_PREFIX + point)

    @classmethod
    def load(cls, data: bytes) -> SM2PublicKey:
        """From PEM or DER SubjectPublicKeyInfo."""
        if not data or not data.strip():
            raise InvalidKey("public key file is empty")
        pkey = C.decode(bytes(data), C.EVP_PKEY_PUBLIC_KEY, None)
        if pkey is None:
            raise InvalidKey("not a PEM or DER SubjectPublicKeyInfo public key")
        _require_sm2(pkey, "the public key")
        if not C.key_check(pkey, private=False):
            raise InvalidKey("public key point is not a valid point of the SM2 curve")
        return cls(pkey, pkey.octet_param("encoded-pub-key"))

    @classmethod
    def load_file(cls, path: str | Path) -> SM2PublicKey:
        return cls.load(Path(path).read_bytes())

    # serialisation
    @property
    def point(self) -> bytes:
        """The uncompressed point ``04 || x || y`` (65 bytes)."""
        return self._point

    def to_der(self) -> bytes:
        return _SPKI_PREFIX + self._point

    def to_pem(self) -> bytes:
        return C.encode(self._pkey, C.EVP_PKEY_PUBLIC_KEY, "PEM", "SubjectPublicKeyInfo")

    def key_id(self) -> str:
        """SM3 of the point, hex: a short stable name for this key."""
        return sm3(self._point).hex()

    # signer-ID digest
    def z(self, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        sid = bytes(signer_id)
        z = self._z.get(sid)
        if z is None:
            z = compute_z(self._point, sid)
            if len(self._z) < 16:
                self._z[sid] = z
        return z

    def hasher(self, signer_id: bytes = DEFAULT_SIGNER_ID) -> SM3:
        """An SM3 already fed with ``Z``: update it with the message, then sign its digest."""
        return SM3(self.z(signer_id))

    def message_digest(self, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        """``e = SM3(Z || M)``."""
        return sm3(self.z(signer_id) + bytes(message))

    # operations
    def verify_digest(self, signature: bytes, digest: bytes) -> None:
        if len(digest) != 32:
            raise ValueError("an SM2 digest is 32 bytes")
        r, s = decode_signature(signature)
        digest = bytes(digest)
        self._uses += 1
        if self._uses > TABLE_AFTER_USES and _tables_enabled:
            table, fresh = _table_for(self._point)
            if table is not None:
                ok = table.verify(digest, r.to_bytes(32, "big"), s.to_bytes(32, "big"))
                if ok is not None and (not fresh or ok == self._verify_plain(digest, signature)):
                    if not ok:
                        raise InvalidSignature("SM2 signature does not verify for this key and signer ID")
                    return
                if ok is not None:
                    _retire_tables(self._point)
        if not self._verify_plain(digest, signature):
            raise InvalidSignature("SM2 signature does not verify for this key and signer ID")

    def _verify_plain(self, digest: bytes, signature: bytes) -> bool:
        """OpenSSL's own SM2 verification of a digest."""
        if self._verifier is None:
            self._verifier = C.Verifier(self._pkey)
        return self._verifier.verify(digest, bytes(signature))

    def verify(
        self, signature: bytes, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID
    ) -> None:
        """Raise ``InvalidSignature`` (or ``MalformedSignature``) unless it verifies."""
        self.verify_digest(signature, self.message_digest(message, signer_id))

    def is_valid_signature(
        self, signature: bytes, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID
    ) -> bool:
        try:
            self.verify(signature, message, signer_id)
        except (InvalidSignature, MalformedSignature):
            return False
        return True

    def encrypt(self, plaintext: bytes) -> bytes:
        """SM2 public-key encryption; returns GM/T 0009 DER."""
        if not plaintext:
            raise ValueError("SM2 cannot encrypt an empty message")
        return C.encrypt(self._pkey, bytes(plaintext))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and hmac.compare_digest(self._point, other._point)

    def __hash__(self) -> int:
        return hash(self._point)

    def __repr__(self) -> str:
        return f"SM2PublicKey({self.key_id()[:16]}…)"


class SM2PrivateKey:
    """An SM2 private key. Its scalar is never printed or logged."""

    __slots__ = ("_pkey", "_public")

    def __init__(self, pkey: C.PKey) -> None:
        self._pkey = pkey
        self._public = SM2PublicKey(pkey, pkey.octet_param("encoded-pub-key"))

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        return cls(C.generate("SM2"))

    @classmethod
    def from_scalar(cls, d: int | bytes) -> SM2PrivateKey:
        value = int.from_bytes(d, "big") if isinstance(d, bytes | bytearray) else int(d)
        if not 1 <= value <= N - 2:
            raise InvalidKey("an SM2 private key lies in [1, n-2]")
        return cls.load(_PKCS8_PREFIX + value.to_bytes(32, "big"), password=None)

    @classmethod
    def load(cls, data: bytes, password: bytes | None = None) -> SM2PrivateKey:
        """From PEM or DER: PKCS#8, encrypted PKCS#8 (with ``password``) or SEC1."""
        data = bytes(data)
        if not data.strip():
            raise InvalidKey("private key file is empty")
        encrypted = _is_encrypted(data)
        if encrypted and password is None:
            raise KeyPasswordError("the private key is encrypted: a password is needed")
        pkey = C.decode(data, C.EVP_PKEY_KEYPAIR, password if encrypted else None)
        if pkey is None:
            if encrypted:
                raise KeyPasswordError("wrong password for the encrypted private key")
            raise InvalidKey("not a PEM or DER private key (PKCS#8 or SEC1)")
        _require_sm2(pkey, "the private key")
        if not C.key_check(pkey, private=True):
            raise InvalidKey("private key fails its consistency check")
        return cls(pkey)

    @classmethod
    def load_file(cls, path: str | Path, password: bytes | None = None) -> SM2PrivateKey:
        return cls.load(Path(path).read_bytes(), password)

    def public_key(self) -> SM2PublicKey:
        return self._public

    def scalar(self) -> bytes:
        """The 32-byte private scalar. Handle as a secret."""
        return self._pkey.bn_param("priv", 32)

    def to_pem(self, password: bytes | None = None, cipher: str = DEFAULT_KEY_CIPHER) -> bytes:
        return self._encode("PEM", password, cipher)

    def to_der(self, password: bytes | None = None, cipher: str = DEFAULT_KEY_CIPHER) -> bytes:
        return self._encode("DER", password, cipher)

    def _encode(self, kind: str, password: bytes | None, cipher: str) -> bytes:
        if password is None:
            return C.encode(self._pkey, C.EVP_PKEY_KEYPAIR, kind, "PrivateKeyInfo")
        if cipher not in KEY_CIPHERS:
            raise UnsupportedAlgorithm(f"key cipher must be one of {', '.join(KEY_CIPHERS)}")
        if not password:
            raise KeyPasswordError("an empty password does not protect a key")
        return C.encode(
            self._pkey, C.EVP_PKEY_KEYPAIR, kind, "PrivateKeyInfo", cipher, password
        )

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign ``e`` (32 bytes) directly; the nonce comes from OpenSSL's DRBG."""
        if len(digest) != 32:
            raise ValueError("an SM2 digest is 32 bytes")
        return C.sign_digest(self._pkey, bytes(digest))

    def sign(self, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        """DER SM2 signature of ``message`` under ``signer_id``."""
        return self.sign_digest(self._public.message_digest(message, signer_id))

    def sign_chunks(
        self, chunks: Iterable[bytes], signer_id: bytes = DEFAULT_SIGNER_ID
    ) -> bytes:
        h = self._public.hasher(signer_id)
        for chunk in chunks:
            h.update(chunk)
        return self.sign_digest(h.digest())

    def sign_stream(
        self, stream: BinaryIO, signer_id: bytes = DEFAULT_SIGNER_ID, chunk: int = 1 << 20
    ) -> bytes:
        return self.sign_chunks(iter(lambda: stream.read(chunk), b""), signer_id)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt GM/T 0009 DER (or raw ``C1 || C3 || C2``) ciphertext."""
        data = bytes(ciphertext)
        if data[:1] == b"\x04":
            data = ciphertext_from_c1c3c2(data)
        else:
            ciphertext_to_c1c3c2(data)  # validates the structure with a clear error
        try:
            out = C.decrypt(self._pkey, data)
        except BackendError as exc:  # pragma: no cover - init failures only
            raise DecryptionError(str(exc)) from None
        if out is None:
            raise DecryptionError("SM2 ciphertext does not decrypt with this key (tampered?)")
        return out

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public={self._public.key_id()[:16]}…)"


def generate_private_key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


def load_private_key(data: bytes, password: bytes | None = None) -> SM2PrivateKey:
    return SM2PrivateKey.load(data, password)


def load_public_key(data: bytes) -> SM2PublicKey:
    return SM2PublicKey.load(data)


def use_tables(enabled: bool) -> None:
    """Switch verification with precomputed tables on or off for this process (benchmarks
    use it to measure OpenSSL's plain SM2 verification; it is on by default)."""
    global _tables_enabled
    with _tables_lock:
        _tables_enabled = enabled
        if not enabled:
            _tables.clear()


def _table_for(point: bytes) -> tuple[C.PointTable | None, bool]:
    """The precomputed table of ``point`` (built now if missing) and whether it is new."""
    with _tables_lock:
        table = _tables.get(point)
        if table is not None:
            _tables.move_to_end(point)
            return table, False
    try:
        table = C.PointTable(point)
    except BackendError as exc:
        log.warning("no precomputed table for an SM2 key, plain verification instead: %s", exc)
        return None, False
    with _tables_lock:
        _tables[point] = table
        while len(_tables) > TABLES_KEPT:
            _tables.popitem(last=False)
    return table, True


def _retire_tables(point: bytes) -> None:
    global _tables_enabled
    log.error("precomputed-table SM2 verification disagreed with OpenSSL for key %s; "
              "verifying with OpenSSL alone from now on", sm3(point).hex()[:16])
    with _tables_lock:
        _tables_enabled = False
        _tables.clear()
