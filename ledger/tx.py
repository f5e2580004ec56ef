"""Transactions: canonical-JSON body, SM3 id, SM2 signature (docs/transactions.md).

Wire form (canonical JSON)::

    {"body": {"chain": str, "expiry": int, "nonce": int, "payload": object,
              "sender": hex(65-byte SM2 point), "type": str},
     "sig": hex(DER SM2 signature over canonical(body), signer ID 1234567812345678)}

The id is ``SM3(canonical(body))``. A transaction is valid for inclusion in a block at
height ``h`` only if ``h <= expiry``; a ``(sender, nonce)`` pair is used at most once on a
chain, which together with the id makes replays of committed or expired transactions fail.
This module checks form and signature only; replay and expiry are checked against the
chain by the mempool and the state machine.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .codec import EncodingError, canonical, hexbytes, parse
from .crypto import InvalidKey, InvalidSignature, MalformedSignature, SM2PrivateKey, sm3
from .crypto.keycache import KeyCache
from .errors import LedgerError

MAX_TX_BYTES = 64 * 1024
MAX_NONCE = (1 << 63) - 1
# used with fullmatch: ``$`` alone would also match before a final newline ("kv.set\n")
TYPE_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,3}")
CHAIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BODY_KEYS = {"chain", "expiry", "nonce", "payload", "sender", "type"}


class InvalidTransaction(LedgerError):
    """A transaction is malformed, oversized, wrongly signed or not for this chain."""


@dataclass(frozen=True)
class Transaction:
    chain: str
    sender: bytes
    nonce: int
    type: str
    payload: dict[str, Any]
    expiry: int
    signature: bytes
    body_bytes: bytes = field(repr=False, compare=False)
    id: bytes = field(compare=False)

    # ------------------------------------------------------------ building
    @staticmethod
    def body_of(chain: str, sender: bytes, nonce: int, type_: str, payload: dict[str, Any],
                expiry: int) -> dict[str, Any]:
        return {"chain": chain, "expiry": expiry, "nonce": nonce, "payload": payload,
                "sender": sender.hex(), "type": type_}

    @classmethod
    def build(cls, key: SM2PrivateKey, *, chain: str, type: str, payload: dict[str, Any],
              expiry: int, nonce: int | None = None) -> Transaction:
        """Make and sign a transaction; the nonce defaults to 63 random bits."""
        sender = key.public_key().point
        n = secrets.randbits(63) if nonce is None else nonce
        body = cls.body_of(chain, sender, n, type, payload, expiry)
        _check_body(body)
        body_bytes = canonical(body)
        sig = key.sign(body_bytes)
        tx = cls(chain, sender, n, type, payload, expiry, sig, body_bytes, sm3(body_bytes))
        if len(tx.encode()) > MAX_TX_BYTES:
            raise InvalidTransaction(f"transaction is {len(tx.encode())} bytes; the limit is {MAX_TX_BYTES}")
        return tx

    # ------------------------------------------------------------ wire form
    def wire(self) -> dict[str, Any]:
        return {"body": parse(self.body_bytes), "sig": self.signature.hex()}

    def encode(self) -> bytes:
        return b'{"body":' + self.body_bytes + b',"sig":"' + self.signature.hex().encode() + b'"}'

    @classmethod
    def decode(cls, data: bytes | dict[str, Any], max_bytes: int = MAX_TX_BYTES, *,
               parsed: bool = False) -> Transaction:
        """Parse the wire form (bytes or an already-parsed object). Form only: call
        ``verify_signature`` before trusting it. ``parsed``: the object came out of
        ``codec.parse``, which has checked every value has a canonical form (not checked again)."""
        if isinstance(data, bytes | bytearray):
            if len(data) > max_bytes:
                raise InvalidTransaction(f"transaction is {len(data)} bytes; the limit is {max_bytes}")
            try:
                obj = parse(bytes(data))
            except EncodingError as exc:
                raise InvalidTransaction(f"malformed transaction: {exc}") from None
            parsed = True
        else:
            obj = data
        if not isinstance(obj, dict) or set(obj) != {"body", "sig"}:
            raise InvalidTransaction('a transaction is {"body": {...}, "sig": "..."}')
        body = obj["body"]
        try:
            _check_body(body, payload=False)
            sig = hexbytes(obj["sig"], "sig")
            body_bytes = canonical(body, check=not parsed)  # checks the payload has a canonical form
            sender = hexbytes(body["sender"], "sender", 65)
        except EncodingError as exc:
            raise InvalidTransaction(f"malformed transaction: {exc}") from None
        size = len(body_bytes) + len(sig) * 2 + 18
        if size > max_bytes:
            raise InvalidTransaction(f"transaction is {size} bytes; the limit is {max_bytes}")
        return cls(body["chain"], sender, body["nonce"], body["type"], body["payload"],
                   body["expiry"], sig, body_bytes, sm3(body_bytes))

    # ------------------------------------------------------------ checks
    def verify_signature(self, keys: KeyCache | None = None) -> None:
        try:
            pub = (keys or _DEFAULT_KEYS).get(self.sender)
            pub.verify(self.signature, self.body_bytes)
        except (InvalidSignature, MalformedSignature, InvalidKey) as exc:
            raise InvalidTransaction(f"bad signature: {exc}") from None

    def check_for_chain(self, chain: str, height: int) -> None:
        """Chain id and expiry against the chain it is submitted to, at ``height``."""
        if self.chain != chain:
            raise InvalidTransaction(f"transaction is for chain {self.chain!r}, not {chain!r}")
        if self.expiry < height:
            raise InvalidTransaction(f"transaction expired at height {self.expiry} (chain is at {height})")

    @property
    def id_hex(self) -> str:
        return self.id.hex()

    @cached_property
    def nonce_key(self) -> bytes:
        """What makes ``(sender, nonce)`` single-use: SM3(sender || nonce as 8 bytes)."""
        return sm3(self.sender + self.nonce.to_bytes(8, "big"))


def _check_body(body: Any, payload: bool = True) -> None:
    if not isinstance(body, dict) or set(body) != BODY_KEYS:
        missing = BODY_KEYS - set(body) if isinstance(body, dict) else BODY_KEYS
        unknown = sorted(set(body) - BODY_KEYS)[:5] if isinstance(body, dict) else []
        raise EncodingError(f"body must have exactly {sorted(BODY_KEYS)}; missing {sorted(missing)}"
                            + (f", unknown {unknown}" if unknown else ""))
    if not isinstance(body["chain"], str) or not CHAIN_RE.fullmatch(body["chain"]):
        raise EncodingError("chain must be a short identifier")
    if not isinstance(body["type"], str) or not TYPE_RE.fullmatch(body["type"]):
        raise EncodingError("type must look like 'namespace.action' in lower case")
    for name, top in (("nonce", MAX_NONCE), ("expiry", MAX_NONCE)):
        v = body[name]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
            raise EncodingError(f"{name} must be an integer in [0, 2^63)")
    if not isinstance(body["payload"], dict):
        raise EncodingError("payload must be a JSON object")
    if payload:
        canonical(body["payload"])  # no floats, no exotic values


_DEFAULT_KEYS = KeyCache()
