"""Non-fungible tokens: the audited system template ``nft/1`` (copyright certificates,
unique certificates).

A token is ``(class, id)``. A class is created by its owner, who (with the minters it names)
mints tokens of it; each token carries the SM3 hash of its metadata and a URI. The token's
owner transfers it (or an account it approved for that token, or an operator it approved for
the whole class), grants time-bound licences to other accounts without giving up ownership,
revokes them, and burns it. Every mint, transfer, licence, revocation and burn appends an
entry to the token's provenance history. docs/tokens.md is the specification.

State (values canonical JSON):

==========================================  ===============================================
key                                         value
==========================================  ===============================================
``nft/<class>/meta``                        ``{"class", "height", "minters", "name",
                                            "owner", "template", "transferable"}``
``nft/<class>/t/<id>``                      the token: ``{"approved", "burned", "class",
                                            "history", "id", "meta_hash", "minted_height",
                                            "minted_time_ms", "minter", "owner", "uri"}``
``nft/<class>/t/<id>/h/`` + seq (8, BE)     provenance entry ``seq`` (0 = the mint)
``nft/<class>/t/<id>/lic``                  the token's licence list (absent: none)
``nft/<class>/n/<account>``                 how many live tokens of the class it owns (> 0)
``nft/<class>/op/<owner>/<operator>``       ``{"height"}``: ``operator`` may transfer every
                                            token of the class ``owner`` holds
==========================================  ===============================================

A burned token keeps its record (``"burned": true``, ``"owner": null``) and its history, so
its id can never be minted again. Licences survive transfers (the new owner is bound by
them) and end with a burn.
"""

from __future__ import annotations

import re
from typing import Any

from ..codec import parse
from .args import (
    Method,
    Predictor,
    Reader,
    TokenRefused,
    account,
    boolean,
    build_types,
    describe,
    fields,
    integer,
    predict_with,
    quoted,
    text,
)
from .context import Context, TxType

__all__ = [
    "MAX_LICENSES", "METHODS", "TEMPLATE", "TokenRefused", "active_licenses", "balance", "class_info", "history", "is_operator",
    "licenses_at", "owner", "predict", "token", "types",
]

TEMPLATE = "nft/1"
CLASS_RE = re.compile(r"[a-z][a-z0-9_-]{1,63}")
TOKEN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
META_HASH_RE = re.compile(r"[0-9a-f]{64}")
MAX_NAME_BYTES = 128
MAX_URI_BYTES = 512
MAX_SCOPE_BYTES = 128
MAX_MINTERS = 16
MAX_LICENSES = 32  # active licences per token
MAX_UNTIL = (1 << 63) - 1
MAX_SEQ = (1 << 64) - 1
#: classes a system contract creates and owns (``copyright``: the works registry's certificates,
#: forensics/contracts.py); ``nft.create_class`` refuses them so no one can take the name first
RESERVED_CLASSES = frozenset({"copyright"})


# ---------------------------------------------------------------- argument checks
def class_of(value: Any) -> str:
    if not isinstance(value, str):
        raise TokenRefused(f"class must be a string, not {describe(value)}")
    if not CLASS_RE.fullmatch(value):
        raise TokenRefused("class must be 2-64 characters of a-z, 0-9, '_' and '-' starting with a letter, "
                           f"got {quoted(value)}")
    return value


def token_id_of(value: Any) -> str:
    if not isinstance(value, str):
        raise TokenRefused(f"id must be a string, not {describe(value)}")
    if not TOKEN_ID_RE.fullmatch(value):
        raise TokenRefused("id must be 1-128 characters of A-Z, a-z, 0-9, '_', '.', ':' and '-' starting "
                           f"with a letter or digit, got {quoted(value)}")
    return value


def _minters(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise TokenRefused(f"minters must be a list of accounts, not {describe(value)}")
    if len(value) > MAX_MINTERS:
        raise TokenRefused(f"at most {MAX_MINTERS} minters, got {len(value)}")
    out = [account(m, f"minters[{i}]") for i, m in enumerate(value)]
    if len(set(out)) != len(out):
        raise TokenRefused("minters must not repeat an account")
    return sorted(out)


# ---------------------------------------------------------------- keys
def k_class(cls: str) -> bytes:
    return f"nft/{cls}/meta".encode()


def k_token(cls: str, tid: str) -> bytes:
    return f"nft/{cls}/t/{tid}".encode()


def k_history(cls: str, tid: str, seq: int) -> bytes:
    return f"nft/{cls}/t/{tid}/h/".encode() + seq.to_bytes(8, "big")


def k_licenses(cls: str, tid: str) -> bytes:
    return f"nft/{cls}/t/{tid}/lic".encode()


def k_count(cls: str, acct: str) -> bytes:
    return f"nft/{cls}/n/{acct}".encode()


def k_operator(cls: str, owner_: str, operator: str) -> bytes:
    return f"nft/{cls}/op/{owner_}/{operator}".encode()


# ---------------------------------------------------------------- state helpers
def _class(ctx: Context, cls: str) -> dict[str, Any]:
    meta = ctx.get_json(k_class(cls))
    if meta is None:
        raise TokenRefused(f"there is no class {cls}")
    return dict(meta)


def _live(ctx: Context, cls: str, tid: str) -> dict[str, Any]:
    tok = ctx.get_json(k_token(cls, tid))
    if tok is None:
        raise TokenRefused(f"there is no token {cls}/{tid}")
    if tok["burned"]:
        raise TokenRefused(f"token {cls}/{tid} was burned")
    return dict(tok)


def _owner_only(ctx: Context, tok: dict[str, Any], what: str) -> None:
    if ctx.caller != tok["owner"]:
        raise TokenRefused(f"only the owner of {tok['class']}/{tok['id']} ({tok['owner']}) may {what}")


def _count_add(ctx: Context, cls: str, acct: str, delta: int) -> None:
    key = k_count(cls, acct)
    raw = ctx.get(key)
    n = (0 if raw is None else int(parse(raw))) + delta
    assert n >= 0, "an owner count went negative"
    if n:
        ctx.put_json(key, n)
    else:
        ctx.delete(key)


def _record(ctx: Context, tok: dict[str, Any], op: str, entry: dict[str, Any]) -> int:
    """Append a provenance entry to ``tok`` (whose ``history`` count it advances; the caller
    stores ``tok``); returns its sequence number."""
    seq = int(tok["history"])
    if seq >= MAX_SEQ:
        raise TokenRefused("the token's history is full")
    ctx.put_json(k_history(tok["class"], tok["id"], seq),
                 dict(entry, by=ctx.caller, height=ctx.height, op=op, seq=seq, time_ms=ctx.time_ms,
                      tx=ctx.tx.id.hex()))
    tok["history"] = seq + 1
    return seq


def _active(lic: dict[str, Any], height: int, time_ms: int) -> bool:
    if "until_height" in lic:
        return height < int(lic["until_height"])
    return time_ms < int(lic["until_ms"])


def _licenses(ctx: Context, cls: str, tid: str) -> list[dict[str, Any]]:
    """The token's licences still active in this block (expired ones are dropped)."""
    stored = ctx.get_json(k_licenses(cls, tid)) or []
    return [dict(lic) for lic in stored if _active(lic, ctx.height, ctx.time_ms)]


def _put_licenses(ctx: Context, cls: str, tid: str, lics: list[dict[str, Any]]) -> None:
    if lics:
        ctx.put_json(k_licenses(cls, tid), sorted(lics, key=lambda lic: int(lic["license"])))
    else:
        ctx.delete(k_licenses(cls, tid))


def _tk(tok: dict[str, Any]) -> str:
    return f"{tok['class']}/{tok['id']}"


# ---------------------------------------------------------------- class methods
def create_class(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``nft.create_class {class, name, transferable?=true, minters?=[]}``: the caller owns it."""
    a = fields(args, ("class", "name"), ("transferable", "minters"))
    cls = class_of(a["class"])
    name = text(a["name"], "name", MAX_NAME_BYTES)
    transferable = boolean(a.get("transferable", True), "transferable")
    minters = _minters(a.get("minters", []))
    if cls in RESERVED_CLASSES:
        raise TokenRefused(f"class {cls} is reserved for a system contract")
    if ctx.get(k_class(cls)) is not None:
        raise TokenRefused(f"class {cls} already exists")
    meta = {"class": cls, "height": ctx.height, "minters": minters, "name": name, "owner": ctx.caller,
            "template": TEMPLATE, "transferable": transferable}
    ctx.put_json(k_class(cls), meta)
    ctx.emit("nft.ClassCreated", [cls, ctx.caller], meta)
    return meta


def set_minters(ctx: Context, args: dict[str, Any]) -> None:
    """``nft.set_minters {class, minters}``: by the class owner; replaces the list."""
    a = fields(args, ("class", "minters"))
    cls = class_of(a["class"])
    minters = _minters(a["minters"])
    meta = _class(ctx, cls)
    if ctx.caller != meta["owner"]:
        raise TokenRefused(f"only the owner of class {cls} ({meta['owner']}) may set its minters")
    ctx.put_json(k_class(cls), dict(meta, minters=minters))
    ctx.emit("nft.MintersChanged", [cls], {"class": cls, "minters": minters})


def set_class_owner(ctx: Context, args: dict[str, Any]) -> None:
    """``nft.set_class_owner {class, owner}``: the class owner hands the class over."""
    a = fields(args, ("class", "owner"))
    cls = class_of(a["class"])
    new = account(a["owner"], "owner")
    meta = _class(ctx, cls)
    old = meta["owner"]
    if ctx.caller != old:
        raise TokenRefused(f"only the owner of class {cls} ({old}) may hand it over")
    if new == old:
        raise TokenRefused(f"{new} already owns class {cls}")
    ctx.put_json(k_class(cls), dict(meta, owner=new))
    ctx.emit("nft.ClassOwnerChanged", [cls, old, new], {"class": cls, "from": old, "to": new})


def set_operator(ctx: Context, args: dict[str, Any]) -> None:
    """``nft.set_operator {class, operator, approved}``: let ``operator`` transfer every token
    of the class the caller holds (now or later), or stop it."""
    a = fields(args, ("class", "operator", "approved"))
    cls = class_of(a["class"])
    operator = account(a["operator"], "operator")
    approved = boolean(a["approved"], "approved")
    if operator == ctx.caller:
        raise TokenRefused("an account cannot be its own operator")
    meta = _class(ctx, cls)
    if not meta["transferable"]:
        raise TokenRefused(f"tokens of class {cls} are not transferable")
    key = k_operator(cls, ctx.caller, operator)
    if (ctx.get(key) is not None) == approved:
        raise TokenRefused(f"{operator} is {'already' if approved else 'not'} an operator of {ctx.caller} "
                           f"for class {cls}")
    if approved:
        ctx.put_json(key, {"height": ctx.height})
    else:
        ctx.delete(key)
    ctx.emit("nft.Operator", [cls, ctx.caller, operator],
             {"approved": approved, "class": cls, "operator": operator, "owner": ctx.caller})


# ---------------------------------------------------------------- token methods
def mint(ctx: Context, args: dict[str, Any]) -> None:
    """``nft.mint {class, id, to, meta_hash, uri}``: by the class owner or one of its minters."""
    a = fields(args, ("class", "id", "to", "meta_hash", "uri"))
    cls = class_of(a["class"])
    tid = token_id_of(a["id"])
    to = account(a["to"], "to")
    meta_hash = a["meta_hash"]
    if not isinstance(meta_hash, str) or not META_HASH_RE.fullmatch(meta_hash):
        raise TokenRefused("meta_hash must be an SM3 digest: 64 lowercase hex digits")
    uri = text(a["uri"], "uri", MAX_URI_BYTES)
    meta = _class(ctx, cls)
    if ctx.caller != meta["owner"] and ctx.caller not in meta["minters"]:
        raise TokenRefused(f"only the owner or a minter of class {cls} may mint")
    existing = ctx.get_json(k_token(cls, tid))
    if existing is not None:
        if existing["burned"]:
            raise TokenRefused(f"token {cls}/{tid} was burned; burned ids cannot be minted again")
        raise TokenRefused(f"token {cls}/{tid} already exists")
    tok: dict[str, Any] = {"approved": None, "burned": False, "class": cls, "history": 0, "id": tid,
                           "meta_hash": meta_hash, "minted_height": ctx.height,
                           "minted_time_ms": ctx.time_ms, "minter": ctx.caller, "owner": to, "uri": uri}
    _record(ctx, tok, "mint", {"meta_hash": meta_hash, "to": to, "uri": uri})
    ctx.put_json(k_token(cls, tid), tok)
    _count_add(ctx, cls, to, 1)
    ctx.emit("nft.Mint", [_tk(tok), to], {"class": cls, "id": tid, "meta_hash": meta_hash,
                                          "minter": ctx.caller, "to": to, "uri": uri})


def transfer(ctx: Context, args: dict[str, Any]) -> None:
    """``nft.transfer {class, id, to, from?}``: by the owner, the account approved for the token
    or an operator of the owner; ``from``, when given, must be the owner. Clears the token's
    approval."""
    a = fields(args, ("class", "id", "to"), ("from",))
    cls = class_of(a["class"])
    tid = token_id_of(a["id"])
    to = account(a["to"], "to")
    src = account(a["from"], "from") if "from" in a else None
    meta = _class(ctx, cls)
    if not meta["transferable"]:
        raise TokenRefused(f"tokens of class {cls} are not transferable")
    tok = _live(ctx, cls, tid)
    holder = tok["owner"]
    if src is not None and src != holder:
        raise TokenRefused(f"token {cls}/{tid} is owned by {holder}, not {src}")
    caller = ctx.caller
    if caller != holder and caller != tok["approved"] and ctx.get(k_operator(cls, holder, caller)) is None:
        raise TokenRefused(f"{caller} may not transfer {cls}/{tid}: it is neither the owner ({holder}) nor "
                           "approved for the token nor an operator of the owner")
    if to == holder:
        raise TokenRefused(f"{to} already owns {cls}/{tid}")
    tok["owner"] = to
    tok["approved"] = None
    _record(ctx, tok, "transfer", {"from": holder, "to": to})
    ctx.put_json(k_token(cls, tid), tok)
    _count_add(ctx, cls, holder, -1)
    _count_add(ctx, cls, to, 1)
    ctx.emit("nft.Transfer", [_tk(tok), holder, to], {"by": caller, "class": cls, "from": holder, "id": tid,
                                                      "to": to})


def approve(ctx: Context, args: dict[str, Any]) -> None:
    """``nft.approve {class, id, spender}``: by the owner; ``spender`` (or ``null`` to clear) may
    then transfer this token once."""
    a = fields(args, ("class", "id", "spender"))
    cls = class_of(a["class"])
    tid = token_id_of(a["id"])
    spender = None if a["spender"] is None else account(a["spender"], "spender")
    meta = _class(ctx, cls)
    if not meta["transferable"]:
        raise TokenRefused(f"tokens of class {cls} are not transferable")
    tok = _live(ctx, cls, tid)
    _owner_only(ctx, tok, "approve a spender for it")
    if spender == tok["owner"]:
        raise TokenRefused("the owner cannot approve itself")
    if spender == tok["approved"]:
        raise TokenRefused(f"{spender} is already approved for {cls}/{tid}" if spender else
                           f"{cls}/{tid} has no approval to clear")
    tok["approved"] = spender
    ctx.put_json(k_token(cls, tid), tok)
    ctx.emit("nft.Approval", [_tk(tok), tok["owner"], *([spender] if spender else [])],
             {"class": cls, "id": tid, "owner": tok["owner"], "spender": spender})


def license_(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``nft.license {class, id, to, until_ms | until_height, scope?="", exclusive?=false}``: the
    owner grants ``to`` a right over the token, active while the block's time (or height) is
    below ``until_*``. Returns ``{"license": n}``: the licence's id, the sequence number of its
    history entry."""
    a = fields(args, ("class", "id", "to"), ("until_ms", "until_height", "scope", "exclusive"))
    cls = class_of(a["class"])
    tid = token_id_of(a["id"])
    to = account(a["to"], "to")
    if ("until_ms" in a) == ("until_height" in a):
        raise TokenRefused("give exactly one of until_ms and until_height")
    if "until_ms" in a:
        field, until, now, what = "until_ms", integer(a["until_ms"], "until_ms", 0, MAX_UNTIL), ctx.time_ms, "time"
    else:
        field, what = "until_height", "height"
        until, now = integer(a["until_height"], "until_height", 0, MAX_UNTIL), ctx.height
    if until <= now:
        raise TokenRefused(f"{field} {until} is not after the block's {what} {now}: the licence would never be "
                           "active")
    scope = text(a.get("scope", ""), "scope", MAX_SCOPE_BYTES, 0)
    exclusive = boolean(a.get("exclusive", False), "exclusive")
    tok = _live(ctx, cls, tid)
    _owner_only(ctx, tok, "license it")
    if to == tok["owner"]:
        raise TokenRefused("the owner cannot license itself")
    lics = _licenses(ctx, cls, tid)
    for other in lics:
        if other["scope"] != scope:
            continue
        if other["exclusive"]:
            raise TokenRefused(f"licence {other['license']} to {other['to']} for scope {scope!r} is exclusive "
                               "and active")
        if exclusive:
            raise TokenRefused(f"an exclusive licence needs no other active licence for scope {scope!r}, but "
                               f"licence {other['license']} to {other['to']} is active")
    if len(lics) >= MAX_LICENSES:
        raise TokenRefused(f"token {cls}/{tid} already has {MAX_LICENSES} active licences")
    terms: dict[str, Any] = {"exclusive": exclusive, "scope": scope, "to": to, field: until}
    seq = _record(ctx, tok, "license", terms)
    lics.append(dict(terms, granted_height=ctx.height, granted_time_ms=ctx.time_ms, license=seq,
                     licensor=tok["owner"]))
    _put_licenses(ctx, cls, tid, lics)
    ctx.put_json(k_token(cls, tid), tok)
    ctx.emit("nft.License", [_tk(tok), tok["owner"], to],
             dict(terms, **{"class": cls, "id": tid, "license": seq, "licensor": tok["owner"]}))
    return {"license": seq}


def revoke_license(ctx: Context, args: dict[str, Any]) -> None:
    """``nft.revoke_license {class, id, license}``: by the owner, or by the licensee (who
    renounces it); the licence must still be active."""
    a = fields(args, ("class", "id", "license"))
    cls = class_of(a["class"])
    tid = token_id_of(a["id"])
    number = integer(a["license"], "license", 0, MAX_SEQ)
    tok = _live(ctx, cls, tid)
    lics = _licenses(ctx, cls, tid)
    found = [lic for lic in lics if lic["license"] == number]
    if not found:
        raise TokenRefused(f"{cls}/{tid} has no active licence {number}")
    lic = found[0]
    if ctx.caller not in (tok["owner"], lic["to"]):
        raise TokenRefused(f"only the owner of {cls}/{tid} ({tok['owner']}) or the licensee ({lic['to']}) "
                           "may revoke the licence")
    _record(ctx, tok, "revoke", {"license": number, "to": lic["to"]})
    _put_licenses(ctx, cls, tid, [x for x in lics if x["license"] != number])
    ctx.put_json(k_token(cls, tid), tok)
    ctx.emit("nft.Revoke", [_tk(tok), lic["to"]], {"by": ctx.caller, "class": cls, "id": tid,
                                                   "license": number, "to": lic["to"]})


def burn(ctx: Context, args: dict[str, Any]) -> None:
    """``nft.burn {class, id}``: by the owner; its licences end, its id is never minted again."""
    a = fields(args, ("class", "id"))
    cls = class_of(a["class"])
    tid = token_id_of(a["id"])
    tok = _live(ctx, cls, tid)
    _owner_only(ctx, tok, "burn it")
    holder = tok["owner"]
    ended = sorted(int(lic["license"]) for lic in _licenses(ctx, cls, tid))
    _record(ctx, tok, "burn", {"from": holder, "licenses_ended": ended})
    tok.update(approved=None, burned=True, owner=None)
    ctx.put_json(k_token(cls, tid), tok)
    ctx.delete(k_licenses(cls, tid))
    _count_add(ctx, cls, holder, -1)
    ctx.emit("nft.Burn", [_tk(tok), holder], {"class": cls, "from": holder, "id": tid,
                                              "licenses_ended": ended})


METHODS: dict[str, Method] = {
    "nft.create_class": create_class,
    "nft.set_minters": set_minters,
    "nft.set_class_owner": set_class_owner,
    "nft.set_operator": set_operator,
    "nft.mint": mint,
    "nft.transfer": transfer,
    "nft.approve": approve,
    "nft.license": license_,
    "nft.revoke_license": revoke_license,
    "nft.burn": burn,
}
ADMIN = frozenset({"nft.create_class", "nft.set_minters", "nft.set_class_owner"})


# ---------------------------------------------------------------- key predictions
def _p_class(caller: str, a: dict[str, Any]) -> list[bytes]:
    return [k_class(class_of(a["class"]))]


def _p_operator(caller: str, a: dict[str, Any]) -> list[bytes]:
    cls = class_of(a["class"])
    return [k_class(cls), k_operator(cls, caller, account(a["operator"], "operator"))]


def _p_mint(caller: str, a: dict[str, Any]) -> list[bytes]:
    cls, tid, to = class_of(a["class"]), token_id_of(a["id"]), account(a["to"], "to")
    return [k_class(cls), k_token(cls, tid), k_history(cls, tid, 0), k_count(cls, to)]


def _p_transfer(caller: str, a: dict[str, Any]) -> list[bytes]:
    """The history key is written but not predictable (its sequence number is in the token
    record); it is never read, so the prediction of reads is complete. Without ``from`` the
    caller is taken for the owner: a transfer by an approved account or operator that omits
    ``from`` reads keys not predicted and so runs in block order."""
    cls, tid, to = class_of(a["class"]), token_id_of(a["id"]), account(a["to"], "to")
    src = account(a["from"], "from") if "from" in a else caller
    keys = [k_class(cls), k_token(cls, tid), k_count(cls, src), k_count(cls, to)]
    if src != caller:
        keys.append(k_operator(cls, src, caller))
    return keys


def _p_token(caller: str, a: dict[str, Any]) -> list[bytes]:
    cls, tid = class_of(a["class"]), token_id_of(a["id"])
    return [k_class(cls), k_token(cls, tid)]


def _p_licenses(caller: str, a: dict[str, Any]) -> list[bytes]:
    cls, tid = class_of(a["class"]), token_id_of(a["id"])
    return [k_token(cls, tid), k_licenses(cls, tid)]


def _p_burn(caller: str, a: dict[str, Any]) -> list[bytes]:
    cls, tid = class_of(a["class"]), token_id_of(a["id"])
    return [k_token(cls, tid), k_licenses(cls, tid), k_count(cls, caller)]


PREDICTORS: dict[str, Predictor] = {
    "nft.create_class": _p_class, "nft.set_minters": _p_class, "nft.set_class_owner": _p_class,
    "nft.set_operator": _p_operator, "nft.mint": _p_mint, "nft.transfer": _p_transfer,
    "nft.approve": _p_token, "nft.license": _p_licenses, "nft.revoke_license": _p_licenses,
    "nft.burn": _p_burn,
}


def predict(type_: str, caller: str, args: Any) -> list[bytes] | None:
    """The keys a call may touch (``ledger.contracts.args.predict_with``); history entries other
    than a mint's are written without being read and are not predicted."""
    return predict_with(PREDICTORS, type_, caller, args)


def types() -> dict[str, TxType]:
    """The nft transaction types, for ``LedgerApp(handlers=...)``."""
    return build_types(METHODS, PREDICTORS, ADMIN)


# ---------------------------------------------------------------- read helpers
def _read_json(read: Reader, key: bytes) -> Any:
    raw = read(key)
    return None if raw is None else parse(raw)


def class_info(read: Reader, cls: str) -> dict[str, Any] | None:
    meta = _read_json(read, k_class(class_of(cls)))
    return None if meta is None else dict(meta)


def token(read: Reader, cls: str, tid: str) -> dict[str, Any] | None:
    """The token record (also of a burned token), or ``None`` if it was never minted."""
    tok = _read_json(read, k_token(class_of(cls), token_id_of(tid)))
    return None if tok is None else dict(tok)


def owner(read: Reader, cls: str, tid: str) -> str | None:
    """The owner, or ``None`` for a burned or never minted token."""
    tok = token(read, cls, tid)
    return None if tok is None else tok["owner"]


def balance(read: Reader, cls: str, acct: str) -> int:
    """How many live tokens of the class ``acct`` owns."""
    return int(_read_json(read, k_count(class_of(cls), account(acct, "account"))) or 0)


def is_operator(read: Reader, cls: str, owner_: str, operator: str) -> bool:
    key = k_operator(class_of(cls), account(owner_, "owner"), account(operator, "operator"))
    return read(key) is not None


def history(read: Reader, cls: str, tid: str, start: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """Provenance entries ``start, start+1, …`` (at most ``limit``), oldest first."""
    tok = token(read, cls, tid)
    if tok is None:
        return []
    end = int(tok["history"]) if limit is None else min(int(tok["history"]), start + limit)
    out = []
    for seq in range(max(start, 0), end):
        entry = _read_json(read, k_history(cls, tid, seq))
        assert entry is not None, f"history entry {seq} of {cls}/{tid} is missing"
        out.append(dict(entry))
    return out


def active_licenses(read: Reader, cls: str, tid: str, *, height: int, time_ms: int) -> list[dict[str, Any]]:
    """The stored licences of the token active at ``height``/``time_ms`` (a licence is active iff
    that moment is before its ``until_height`` or ``until_ms``). Meant for the current moment
    or later: for a past moment use ``licenses_at``, which also counts revoked licences."""
    lics = _read_json(read, k_licenses(class_of(cls), token_id_of(tid))) or []
    return [dict(lic) for lic in lics if _active(lic, height, time_ms)]


def licenses_at(read: Reader, cls: str, tid: str, *, height: int, time_ms: int) -> list[dict[str, Any]]:
    """The licences active at the end of block ``height`` (whose time is ``time_ms``), rebuilt
    from the provenance history: granted in a block at or before ``height``, not revoked nor the
    token burned in a block at or before it, and ``height``/``time_ms`` before its end."""
    found: dict[int, dict[str, Any]] = {}
    for entry in history(read, cls, tid):
        if entry["height"] > height:
            break
        if entry["op"] == "license":
            terms: dict[str, Any] = {k: entry[k] for k in ("exclusive", "scope", "to", "until_height", "until_ms") if k in entry}
            found[entry["seq"]] = dict(terms, granted_height=entry["height"], granted_time_ms=entry["time_ms"],
                                       license=entry["seq"], licensor=entry["by"])
        elif entry["op"] == "revoke":
            found.pop(entry["license"], None)
        elif entry["op"] == "burn":
            found.clear()
    return [lic for _, lic in sorted(found.items()) if _active(lic, height, time_ms)]

