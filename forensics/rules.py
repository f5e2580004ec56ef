"""What the forensics system contracts share: argument checks, the user records they consult,
the messages signed off chain (the holder's pledge, the node's countersignature, the legal
centre's manifest) and the state keys. docs/works.md is the specification.

A signed message here is the canonical JSON (ledger/codec.py) of an object carrying a
``purpose`` string, signed with SM2 (signer ID ``1234567812345678``) over SM3; signatures are
DER, written as lowercase hex. The purpose makes a signature for one use useless for another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ledger.codec import canonical, parse
from ledger.contracts.args import TokenRefused, describe, fields, integer, quoted, text
from ledger.contracts.context import Context, account_of
from ledger.crypto import CryptoError, SM2PrivateKey
from ledger.crypto.keycache import KeyCache

__all__ = [
    "FormRefused",
    "countersign_message",
    "hex_digest",
    "id_of",
    "k_reader",
    "manifest_message",
    "may_read_blob",
    "pledge_message",
    "sign",
    "upload_message",
    "user_business",
    "verify",
]

PLEDGE_PURPOSE = "rongxin/works.pledge/1"
COUNTERSIGN_PURPOSE = "rongxin/works.match/2"
MANIFEST_PURPOSE = "rongxin/evidence.manifest/1"
UPLOAD_PURPOSE = "rongxin/evidence.upload/1"
HEX64 = re.compile(r"[0-9a-f]{64}")
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
SIG_HEX = re.compile(r"(?:[0-9a-f]{2}){8,80}")
MAX_SCORE_MILLI = 1_000_000_000
K_USER = b"sys/user/"

_KEYS = KeyCache(4096)


class FormRefused(TokenRefused):
    """A forensics transaction is refused; the message goes into its receipt."""


# ---------------------------------------------------------------- argument checks
def id_of(value: Any, name: str) -> str:
    """A work, evidence or case id: 1-128 of ``A-Z a-z 0-9 _ . : -``, starting with a letter
    or digit (the ``nft/1`` token id rule, so a work id is also its certificate's id)."""
    if not isinstance(value, str):
        raise FormRefused(f"{name} must be a string, not {describe(value)}")
    if not ID_RE.fullmatch(value):
        raise FormRefused(f"{name} must be 1-128 characters of A-Z, a-z, 0-9, '_', '.', ':' and '-' "
                          f"starting with a letter or digit, got {quoted(value)}")
    return value


def hex_digest(value: Any, name: str) -> str:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise FormRefused(f"{name} must be an SM3 digest: 64 lowercase hex digits")
    return value


def signature_hex(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not SIG_HEX.fullmatch(value):
        raise FormRefused(f"{name} must be a DER signature in lowercase hex")
    return bytes.fromhex(value)


def score_milli(value: Any, name: str) -> int:
    return integer(value, name, 0, MAX_SCORE_MILLI)


def obj(value: Any, name: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """``fields`` with the field's name in the refusal."""
    if not isinstance(value, dict):
        raise FormRefused(f"{name} must be a JSON object, not {describe(value)}")
    try:
        return fields(value, required, optional)
    except TokenRefused as exc:
        raise FormRefused(f"{name}: {exc}") from None


def str_list(value: Any, name: str, max_items: int, max_bytes: int, min_items: int = 0) -> list[str]:
    if not isinstance(value, list):
        raise FormRefused(f"{name} must be a list of strings, not {describe(value)}")
    if not min_items <= len(value) <= max_items:
        raise FormRefused(f"{name} must hold {min_items} to {max_items} items, got {len(value)}")
    return [text(v, f"{name}[{i}]", max_bytes) for i, v in enumerate(value)]


# ---------------------------------------------------------------- users
def user_business(ctx: Context, account: str) -> str | None:
    """The ``business`` role of an active user record ``sys/user/<account>`` (None: no such
    active user, or a record without the field)."""
    rec = ctx.get_json(K_USER + account.encode())
    if not isinstance(rec, dict) or rec.get("status") != "active":
        return None
    business = rec.get("business")
    return business if isinstance(business, str) else None


def require_business(ctx: Context, business: str, what: str) -> str:
    """The sender's account, if it is an active user of business role ``business``."""
    acct = account_of(ctx.sender)
    have = user_business(ctx, acct)
    if have != business:
        shown = "no business role" if have is None else f"business role {have!r}"
        raise FormRefused(f"only a user of business role {business!r} may {what}; {acct} has {shown}")
    return acct


def require_certified(ctx: Context, business: str, what: str) -> str:
    """``require_business``, and the sender's certificate valid at this block's time by the
    chain's own record of it (``sys/user/<account>``: ``status`` active, i.e. not revoked on
    chain, and ``not_after`` not before the block time): the time is the block's, never one
    the sender names."""
    acct = require_business(ctx, business, what)
    rec = ctx.get_json(K_USER + acct.encode())
    not_after = rec.get("not_after") if isinstance(rec, dict) else None
    if not isinstance(not_after, int) or isinstance(not_after, bool):
        raise FormRefused(f"{acct}'s user record names no certificate expiry")
    if ctx.time_ms > not_after:
        raise FormRefused(f"{acct}'s certificate expired at {not_after} ms, before this block's time {ctx.time_ms} ms")
    return acct


# ---------------------------------------------------------------- who may read a stored file
BLOB_READER_BUSINESS = ("court", "regulator")


def k_reader(sm3: str, account: str) -> bytes:
    """``blob/<sm3>/r/<account>``: ``account`` may read the stored file ``sm3`` (written by
    ``works.register`` for the holder and by ``evidence.file`` for the filer and the work's
    holder); value ``{"as": "holder" | "filer", "height"}``."""
    return f"blob/{sm3}/r/{account}".encode()


def grant_reader(ctx: Context, sm3: str, account: str, as_: str) -> None:
    if ctx.get(k_reader(sm3, account)) is None:
        ctx.put_json(k_reader(sm3, account), {"as": as_, "height": ctx.height})


def may_read_blob(read: Callable[[bytes], bytes | None], sm3: str, account: str) -> bool:
    """Whether ``account`` may read the stored file ``sm3`` (``GET /v1/blobs/{sm3}``): it
    registered a work with that file, or filed it as evidence, or holds the work the evidence
    is about, or it is an active user of business role ``court`` or ``regulator``."""
    if read(k_reader(sm3, account)) is not None:
        return True
    raw = read(K_USER + account.encode())
    if raw is None:
        return False
    rec = parse(raw)
    return isinstance(rec, dict) and rec.get("status") == "active" and rec.get("business") in BLOB_READER_BUSINESS


# ---------------------------------------------------------------- signed messages
def pledge_message(chain: str, holder: str, sm3: str, pledge: str) -> bytes:
    """What the holder signs: it declares the file with this SM3 hash its original work."""
    return canonical({"chain": chain, "holder": holder, "pledge": pledge, "purpose": PLEDGE_PURPOSE,
                      "sm3": sm3})


def countersign_message(chain: str, holder: str, work_id: str, sm3: str, size: int, media_type: str,
                        fingerprints: str, conflicts: list[dict[str, Any]], index_height: int) -> bytes:
    """What the registering node signs: the file it received, every earlier work it matched and
    the chain height its fingerprint index covered when it matched (docs/works.md §3.6)."""
    return canonical({"chain": chain, "conflicts": conflicts, "fingerprints": fingerprints, "holder": holder,
                      "index_height": index_height, "media_type": media_type, "purpose": COUNTERSIGN_PURPOSE,
                      "sm3": sm3, "size": size, "work_id": work_id})


def manifest_message(manifest: dict[str, Any]) -> bytes:
    """What the legal centre signs: the manifest with the purpose added."""
    return canonical({"manifest": manifest, "purpose": MANIFEST_PURPOSE})


def upload_message(chain: str, filer: str, evidence_id: str, artefacts: list[dict[str, Any]]) -> bytes:
    """What the node that received a legal centre's upload signs: these files (SM3 and size,
    in the manifest's order) came from ``filer`` for filing ``evidence_id``. Without it a
    filing could name any stored file and so gain the right to read it (docs/works.md §4.2)."""
    return canonical({"artefacts": [{"sm3": a["sm3"], "size": a["size"]} for a in artefacts], "chain": chain,
                      "evidence_id": evidence_id, "filer": filer, "purpose": UPLOAD_PURPOSE})


def sign(key: SM2PrivateKey, message: bytes) -> str:
    return key.sign(message).hex()


def verify(point: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is an SM2 signature of ``message`` by the key ``point``."""
    try:
        return _KEYS.get(point).is_valid_signature(signature, message)
    except CryptoError:
        return False
