"""The works registry, system contract ``works/1``: ``works.register`` records a work and mints
its ``nft/1`` copyright certificate to the holder. ``types(views)`` gives the forensics
transaction types (this contract and ``forensics.cases``) for ``LedgerApp``; docs/works.md is
the specification.

State (values canonical JSON):

=================================  ===========================================================
``works/w/<work_id>``              the registration record
``works/sm3/<sm3>/<work_id>``      ``{"height"}``: works registered with this file hash
``works/sm3/<sm3>``                ``{"height", "work_id"}``: the first work with this file hash
``works/latest``                   ``{"height", "work_id"}``: the latest registration
``nft/copyright/...``              the certificate class and tokens (ledger/contracts/nft.py)
=================================  ===========================================================

The registering node's countersignature binds the match result (the conflicts) to the file,
so a holder cannot drop a conflict: the contract verifies it and checks that the key is a
node of an organisation allowed to register works. By default every validator of the set at
the block's height and every certified member node (``sys/node/<id>``) that is not revoked is
allowed; the governance ``perms`` action narrows this with a rule under the pseudo-type
``works.countersign`` (``{"orgs": [...], "accounts": [...], "validators": bool}``): the node is
then allowed only if its organisation or its account is listed, or it is a validator and
``validators`` is true.

The countersignature names the chain height its node's fingerprint index covered
(``index_height``) and expires: the contract refuses one from a height at or above the block's,
more than ``COUNTERSIGN_MAX_AGE`` blocks old, or older than the latest registration (which the
index then did not cover). Exact duplicates need no index: a work whose SM3 already has a
``works/sm3/<sm3>`` entry gets a conflict with that first work, found by the contract itself
(``"source": "contract"``) when the node's list lacks it. docs/works.md §3.2, §3.6.
"""

from __future__ import annotations

import re
from typing import Any

from ledger.codec import canonical, parse
from ledger.contracts import nft
from ledger.contracts.args import integer, text
from ledger.contracts.context import Context, TxType, account_of
from ledger.crypto import sm3_hex
from ledger.governance.views import Views

from .rules import (
    FormRefused,
    countersign_message,
    grant_reader,
    hex_digest,
    id_of,
    obj,
    pledge_message,
    require_business,
    score_milli,
    signature_hex,
    str_list,
    verify,
)

__all__ = ["CERT_CLASS", "COUNTERSIGN_MAX_AGE", "COUNTERSIGN_RULE", "K_LATEST", "MAX_CONFLICTS", "SYSTEM_ACCOUNT", "TEMPLATE", "k_work", "types",
           "work"]

TEMPLATE = "works/1"
CERT_CLASS = "copyright"
SYSTEM_ACCOUNT = "contract:Works"  # upper case: no user contract can have this account
COUNTERSIGN_RULE = "works.countersign"
MAX_CONFLICTS = 32
COUNTERSIGN_MAX_AGE = 600  # blocks: a countersignature older than this is refused
K_LATEST = b"works/latest"
MAX_SIZE = (1 << 53) - 1
MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
DATE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")
NODE_ID = re.compile(r"[a-z0-9_.-]{1,64}")
K_NODE = b"sys/node/"
K_REVOKED = b"sys/revoked/"
K_PERMS = b"sys/perms"


def k_work(work_id: str) -> bytes:
    return f"works/w/{work_id}".encode()


def k_by_sm3(sm3: str, work_id: str) -> bytes:
    return f"works/sm3/{sm3}/{work_id}".encode()


def k_first_by_sm3(sm3: str) -> bytes:
    return f"works/sm3/{sm3}".encode()


def work(read: Any, work_id: str) -> dict[str, Any] | None:
    """The registration record of ``work_id`` (``read``: a state reader), or None."""
    raw = read(k_work(id_of(work_id, "work_id")))
    return None if raw is None else dict(parse(raw))


# ---------------------------------------------------------------- payload checks
def _attributes(value: Any) -> dict[str, Any]:
    a = obj(value, "attributes", ("title", "type"), ("authors", "created", "licence"))
    out: dict[str, Any] = {"title": text(a["title"], "attributes.title", 256),
                           "type": text(a["type"], "attributes.type", 64),
                           "authors": str_list(a.get("authors", []), "attributes.authors", 32, 128),
                           "licence": text(a.get("licence", ""), "attributes.licence", 1024, 0)}
    created = a.get("created", "")
    if created != "" and (not isinstance(created, str) or not DATE.fullmatch(created)):
        raise FormRefused("attributes.created must be a date YYYY-MM-DD or empty")
    out["created"] = created
    return out


def _conflicts(value: Any, work_id: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise FormRefused("conflicts must be a list")
    if len(value) > MAX_CONFLICTS:
        raise FormRefused(f"at most {MAX_CONFLICTS} conflicts, got {len(value)}")
    out: list[dict[str, Any]] = []
    for i, c in enumerate(value):
        c = obj(c, f"conflicts[{i}]", ("work_id", "score_milli", "method"))
        out.append({"method": text(c["method"], f"conflicts[{i}].method", 32),
                    "score_milli": score_milli(c["score_milli"], f"conflicts[{i}].score_milli"),
                    "work_id": id_of(c["work_id"], f"conflicts[{i}].work_id")})
    ids: list[str] = [c["work_id"] for c in out]
    if ids != sorted(set(ids)):
        raise FormRefused("conflicts must be sorted by work_id without repeats")
    if work_id in ids:
        raise FormRefused("a work cannot conflict with itself")
    return out


def _payload(p: Any) -> dict[str, Any]:
    """The payload checked field by field in the order of docs/works.md §3.1."""
    a = obj(p, "payload", ("work_id", "sm3", "size", "media_type", "attributes", "pledge", "fingerprints",
                           "conflicts", "countersign"))
    out: dict[str, Any] = {"work_id": id_of(a["work_id"], "work_id"), "sm3": hex_digest(a["sm3"], "sm3"),
                           "size": integer(a["size"], "size", 1, MAX_SIZE)}
    media = a["media_type"]
    if not isinstance(media, str) or not MEDIA_TYPE.fullmatch(media):
        raise FormRefused("media_type must be a lowercase type/subtype such as image/png")
    out["media_type"] = media
    out["attributes"] = _attributes(a["attributes"])
    pledge = obj(a["pledge"], "pledge", ("text", "signature"))
    out["pledge"] = {"text": text(pledge["text"], "pledge.text", 2048),
                     "signature": signature_hex(pledge["signature"], "pledge.signature")}
    out["fingerprints"] = hex_digest(a["fingerprints"], "fingerprints")
    out["conflicts"] = _conflicts(a["conflicts"], out["work_id"])
    cs = obj(a["countersign"], "countersign", ("node", "signature", "index_height"))
    if not isinstance(cs["node"], str) or not NODE_ID.fullmatch(cs["node"]):
        raise FormRefused("countersign.node must be a node id (1-64 of a-z, 0-9, '-', '_' and '.')")
    out["countersign"] = {"index_height": integer(cs["index_height"], "countersign.index_height", 0, MAX_SIZE),
                          "node": cs["node"], "signature": signature_hex(cs["signature"], "countersign.signature")}
    return out


# ---------------------------------------------------------------- the countersigning node
def node_key(views: Views, ctx: Context, node: str) -> tuple[bytes, str, bool]:
    """(key, organisation, is a validator now) of node ``node``, if it may countersign."""
    if ctx.get(K_REVOKED + node.encode()) is not None:
        raise FormRefused(f"node {node} was revoked; it may not countersign")
    validator = views.vset(ctx.get, ctx.height).get(node)
    if validator is not None:
        return validator.key, validator.org, True
    member = ctx.get_json(K_NODE + node.encode())
    if not isinstance(member, dict) or member.get("status") not in ("validator", "full"):
        raise FormRefused(f"countersign.node {node} is not a node of this chain")
    return bytes.fromhex(member["key"]), str(member["org"]), False


def check_countersigner(views: Views, ctx: Context, node: str) -> bytes:
    key, org, is_validator = node_key(views, ctx, node)
    perms = ctx.get_json(K_PERMS) or {}
    rule = perms.get(COUNTERSIGN_RULE)
    if isinstance(rule, dict):
        allowed = (org in rule.get("orgs", ()) or account_of(key) in rule.get("accounts", ())
                   or (is_validator and bool(rule.get("validators"))))
        if not allowed:
            raise FormRefused(f"node {node} of organisation {org!r} is not allowed to register works "
                              f"(permission rule {COUNTERSIGN_RULE})")
    return key


# ---------------------------------------------------------------- the certificate
def _ensure_class(ctx: Context) -> None:
    meta = ctx.get_json(nft.k_class(CERT_CLASS))
    if meta is None:
        meta = {"class": CERT_CLASS, "height": ctx.height, "minters": [], "name": "Copyright registration certificates",
                "owner": SYSTEM_ACCOUNT, "template": nft.TEMPLATE, "transferable": True}
        ctx.put_json(nft.k_class(CERT_CLASS), meta)
        ctx.emit("nft.ClassCreated", [CERT_CLASS, SYSTEM_ACCOUNT], meta)
    elif meta["owner"] != SYSTEM_ACCOUNT:
        raise FormRefused(f"nft class {CERT_CLASS} is not owned by the works registry")


def _mint(ctx: Context, wid: str, holder: str, meta_hash: str) -> None:
    _ensure_class(ctx)
    child = ctx.child(SYSTEM_ACCOUNT)
    nft.mint(child, {"class": CERT_CLASS, "id": wid, "meta_hash": meta_hash, "to": holder, "uri": f"works:{wid}"})
    ctx.absorb(child)


# ---------------------------------------------------------------- works.register
def check_fresh(ctx: Context, index_height: int) -> None:
    """Refuse a countersignature whose index is from this block or later, more than
    ``COUNTERSIGN_MAX_AGE`` blocks old, or older than the latest registration."""
    if index_height >= ctx.height:
        raise FormRefused(f"countersign.index_height {index_height} is not below this block's height {ctx.height}")
    age = ctx.height - index_height
    if age > COUNTERSIGN_MAX_AGE:
        raise FormRefused(f"the countersignature has expired: its index covers height {index_height}, {age} blocks "
                          f"before this block (at most {COUNTERSIGN_MAX_AGE}); prepare the registration again")
    latest = ctx.get_json(K_LATEST)
    if isinstance(latest, dict) and int(latest["height"]) > index_height:
        raise FormRefused(f"the countersignature's index covers height {index_height}, but work {latest['work_id']} "
                          f"was registered at height {latest['height']}; prepare the registration again")


def with_duplicate(ctx: Context, sm3: str, conflicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conflicts to record: the countersigned ones, plus the first work with the same SM3
    (``works/sm3/<sm3>``) when they lack it, marked ``"source": "contract"``."""
    first = ctx.get_json(k_first_by_sm3(sm3))
    if not isinstance(first, dict) or any(c["work_id"] == first["work_id"] for c in conflicts):
        return conflicts
    found = {"method": "sm3", "score_milli": 1000, "source": "contract", "work_id": str(first["work_id"])}
    return sorted([*conflicts, found], key=lambda c: str(c["work_id"]))


def register(views: Views, ctx: Context) -> None:
    holder = require_business(ctx, "holder", "register works")
    p = _payload(ctx.tx.payload)
    wid = p["work_id"]
    if not verify(ctx.sender, p["pledge"]["signature"],
                  pledge_message(ctx.tx.chain, holder, p["sm3"], p["pledge"]["text"])):
        raise FormRefused("the originality pledge is not signed by the sender")
    cs = p["countersign"]
    key = check_countersigner(views, ctx, cs["node"])
    msg = countersign_message(ctx.tx.chain, holder, wid, p["sm3"], p["size"], p["media_type"], p["fingerprints"],
                              p["conflicts"], cs["index_height"])
    if not verify(key, cs["signature"], msg):
        raise FormRefused(f"the countersignature is not node {cs['node']}'s signature of this match result")
    if ctx.get(k_work(wid)) is not None:
        raise FormRefused(f"work {wid} is already registered")
    for c in p["conflicts"]:
        if ctx.get(k_work(c["work_id"])) is None:
            raise FormRefused(f"conflict {c['work_id']} is not a registered work")
    check_fresh(ctx, cs["index_height"])
    conflicts = with_duplicate(ctx, p["sm3"], p["conflicts"])
    payload_hash = sm3_hex(canonical(ctx.tx.payload))
    rec = {"attributes": p["attributes"], "certificate": {"class": CERT_CLASS, "id": wid},
           "conflicts": conflicts, "countersign": {"index_height": cs["index_height"], "node": cs["node"],
                                                   "signature": cs["signature"].hex()},
           "fingerprints": p["fingerprints"], "height": ctx.height, "holder": holder,
           "media_type": p["media_type"], "payload_sm3": payload_hash,
           "pledge": {"signature": p["pledge"]["signature"].hex(), "text": p["pledge"]["text"]},
           "size": p["size"], "sm3": p["sm3"], "template": TEMPLATE, "time_ms": ctx.time_ms,
           "tx": ctx.tx.id.hex(), "work_id": wid}
    ctx.put_json(k_work(wid), rec)
    ctx.put_json(k_by_sm3(p["sm3"], wid), {"height": ctx.height})
    if ctx.get(k_first_by_sm3(p["sm3"])) is None:
        ctx.put_json(k_first_by_sm3(p["sm3"]), {"height": ctx.height, "work_id": wid})
    ctx.put_json(K_LATEST, {"height": ctx.height, "work_id": wid})
    grant_reader(ctx, p["sm3"], holder, "holder")
    _mint(ctx, wid, holder, payload_hash)
    ctx.emit("works.Registered", [wid, holder, p["sm3"]],
             {"conflicts": len(conflicts), "holder": holder, "sm3": p["sm3"], "work_id": wid}, checked=True)
    for c in conflicts:
        ctx.emit("works.Conflict", [wid, c["work_id"]], dict(c, work_id=wid, earlier=c["work_id"]), checked=True)
    ctx.result = {"certificate": {"class": CERT_CLASS, "id": wid}, "conflicts": conflicts, "work_id": wid}


def types(views: Views) -> dict[str, TxType]:
    """The forensics transaction types (``works.*``, ``evidence.*``, ``case.*``) over the chain's
    governance views (``Governance`` is one): add them to the node's handlers beside
    ``standard_types()``. They run in block order (they read governance state)."""
    from .cases import case_types

    return {"works.register": TxType(lambda ctx: register(views, ctx)), **case_types(views)}
