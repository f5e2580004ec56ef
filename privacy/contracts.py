"""The joint-computation system contract ``mpc/1`` (issue 13): party registration, data set
schemas, proposals, approvals, input commitments and the recorded result. ``types()`` gives
its transaction types for ``LedgerApp`` beside ``standard_types()``; docs/privacy.md ("On
chain") is the specification.

State (values canonical JSON):

=====================================  =======================================================
``mpc/party/<name>``                    a platform's party: account, ``host``, ``port``, its
                                        transport certificate (PEM) and the SM2 certificate it
                                        is bound to
``mpc/dataset/<name>``                  a declared data set: its schema (columns and bounds)
``mpc/c/<computation_id>``              the computation: proposal, its SM3, approvals, who
                                        committed, status, result
``mpc/c/<computation_id>/commit/<p>``   party ``p``'s commitments to its input (per bucket)
``mpc/c/<computation_id>/out``          the outputs (JSON text) when the readers are public
``mpc/count``, ``mpc/n/<k>``            how many computations; the ``k``-th one's id
``mpc/history/<dataset>``               every query admitted on the data set (for the
                                        differential-privacy policy)
=====================================  =======================================================
"""

from __future__ import annotations

import json
import re
from typing import Any

from ledger.codec import canonical
from ledger.contracts.args import TokenRefused, describe, fields, integer, text
from ledger.contracts.context import Context, TxType, account_of
from ledger.crypto import CryptoError, sm3_hex
from ledger.crypto.pedersen import Commitment
from ledger.crypto.tls import transport_identity

from . import dp
from .chain import (
    APPROVAL_WINDOW_MS,
    DEFAULT_DATASET,
    DEFAULT_SCHEMA,
    MAX_IDS,
    PUBLIC,
    admission,
    bucket_count,
    proposal_sm3,
    record_refusal,
    unapproved,
)
from .mpc.data import Schema, valid_id
from .mpc.errors import QueryError

__all__ = ["K_COUNT", "MPCRefused", "computation", "k_commit", "k_comp", "k_dataset", "k_history", "k_out",
           "k_party", "k_seq", "types"]

TEMPLATE = "mpc/1"
BUSINESS = "platform"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
HEX64 = re.compile(r"[0-9a-f]{64}")
HOST_RE = re.compile(r"[A-Za-z0-9.:-]{1,253}")
OP_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
ACCOUNT_RE = re.compile(r"[0-9a-f]{40}")
HEX_RE = re.compile(r"(?:[0-9a-f]{2})+")
MAX_PARTIES = 16
MAX_PEM = 8192
MAX_ERROR = 1000
K_USER = b"sys/user/"
K_COUNT = b"mpc/count"
FINAL = ("done", "aborted", "disputed")
AGREE_DONE = ("outputs_sm3", "transcript_sm3", "randomness_transcript_sm3", "randomness")


class MPCRefused(TokenRefused):
    """An ``mpc.*`` transaction is refused; the message goes into its receipt."""


def k_party(name: str) -> bytes:
    return f"mpc/party/{name}".encode()


def k_dataset(name: str) -> bytes:
    return f"mpc/dataset/{name}".encode()


def k_comp(cid: str) -> bytes:
    return f"mpc/c/{cid}".encode()


def k_commit(cid: str, party: str) -> bytes:
    return f"mpc/c/{cid}/commit/{party}".encode()


def k_out(cid: str) -> bytes:
    return f"mpc/c/{cid}/out".encode()


def k_seq(k: int) -> bytes:
    return f"mpc/n/{k}".encode()


def k_history(dataset: str) -> bytes:
    return f"mpc/history/{dataset}".encode()


def computation(read: Any, cid: str) -> dict[str, Any] | None:
    from ledger.codec import parse

    if not isinstance(cid, str) or not HEX64.fullmatch(cid):
        return None
    raw = read(k_comp(cid))
    return None if raw is None else dict(parse(raw))


# ---------------------------------------------------------------- checks
def _obj(value: Any, name: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MPCRefused(f"{name} must be a JSON object, not {describe(value)}")
    try:
        return fields(value, required, optional)
    except TokenRefused as exc:
        raise MPCRefused(f"{name}: {exc}") from None


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise MPCRefused(f"{what} must be 1-64 of A-Z, a-z, 0-9, '_', '.', '-' starting with a letter or digit")
    return value


def _hex64(value: Any, what: str) -> str:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise MPCRefused(f"{what} must be an SM3 digest: 64 lowercase hex digits")
    return value


def _user(ctx: Context, account: str) -> dict[str, Any] | None:
    rec = ctx.get_json(K_USER + account.encode())
    return rec if isinstance(rec, dict) else None


def platform_user(ctx: Context, what: str) -> dict[str, Any]:
    """The sender's user record, if it is an active, unexpired user of business role platform."""
    acct = account_of(ctx.sender)
    rec = _user(ctx, acct)
    if rec is None or rec.get("status") != "active" or rec.get("business") != BUSINESS:
        shown = "no active user record" if rec is None or rec.get("status") != "active" else \
            f"business role {rec.get('business')!r}"
        raise MPCRefused(f"only an active user of business role {BUSINESS!r} may {what}; {acct} has {shown}")
    not_after = rec.get("not_after")
    if not isinstance(not_after, int) or ctx.time_ms > not_after:
        raise MPCRefused(f"{acct}'s certificate expired before this block's time")
    return rec


def party_problem(ctx: Context, name: str) -> str | None:
    """Why party ``name`` cannot take part now (None: registered, its user active, its transport
    certificate bound to the user's current certificate)."""
    reg = ctx.get_json(k_party(name))
    if not isinstance(reg, dict):
        return f"party {name} has not registered its address (mpc.register)"
    user = _user(ctx, str(reg["account"]))
    if user is None or user.get("status") != "active":
        return f"party {name}'s certificate was revoked"
    if user.get("certificate") != reg.get("certificate"):
        return f"party {name}'s registered transport certificate is bound to a certificate it no longer holds"
    return None


def _schema_of(ctx: Context, dataset: str) -> dict[str, Any]:
    if dataset == DEFAULT_DATASET:
        return DEFAULT_SCHEMA
    rec = ctx.get_json(k_dataset(dataset))
    if not isinstance(rec, dict):
        raise MPCRefused(f"data set {dataset} is not declared (mpc.dataset)")
    return dict(rec["schema"])


def check_query(query: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """Structure only: the engine decides which ops it runs (an op it does not know makes the
    run abort with the engine's error, recorded on chain)."""
    if not isinstance(query, dict):
        raise MPCRefused(f"query must be a JSON object, not {describe(query)}")
    op = query.get("op")
    if not isinstance(op, str) or not OP_RE.fullmatch(op):
        raise MPCRefused("query.op must be 1-32 of a-z, 0-9, '_' starting with a letter")
    ids = query.get("ids")
    if not isinstance(ids, list) or not 0 < len(ids) <= MAX_IDS or not all(valid_id(i) for i in ids):
        raise MPCRefused(f"query.ids must be a list of 1 to {MAX_IDS} content ids (the client fills in the "
                         "registered works when the query names none)")
    if len(set(ids)) != len(ids):
        raise MPCRefused("query.ids must not repeat")
    if "column" in query and query["column"] not in schema["columns"]:
        raise MPCRefused(f"query.column {query['column']!r} is not a column of the data set")
    return query


def _recordable(query: dict[str, Any], schema: dict[str, Any], parties: list[str], readers: list[str]) -> None:
    refusal = record_refusal(query, schema, len(parties), readers)
    if refusal is not None:
        raise MPCRefused(refusal)


# ---------------------------------------------------------------- mpc.register / mpc.dataset
def register(ctx: Context) -> None:
    user = platform_user(ctx, "register a party")
    p = _obj(ctx.tx.payload, "payload", ("host", "port", "transport_cert"))
    host = p["host"]
    if not isinstance(host, str) or not HOST_RE.fullmatch(host):
        raise MPCRefused("host must be a host name or an IP address")
    port = integer(p["port"], "port", 1, 65535)
    pem = p["transport_cert"]
    if not isinstance(pem, str) or len(pem) > MAX_PEM or not pem.startswith("-----BEGIN CERTIFICATE-----"):
        raise MPCRefused(f"transport_cert must be one PEM certificate of at most {MAX_PEM} characters")
    try:
        ident = transport_identity(pem.encode())
    except CryptoError as exc:
        raise MPCRefused(f"transport_cert refused: {exc}") from None
    name = _name(user.get("name"), "the sender's certificate common name")
    if ident.node_id != name:
        raise MPCRefused(f"the transport certificate names {ident.node_id!r}, not the sender {name!r}")
    if ident.sm2_cert_fingerprint != user.get("certificate"):
        raise MPCRefused("the transport certificate is not bound to the sender's current certificate")
    rec = {"account": account_of(ctx.sender), "certificate": ident.sm2_cert_fingerprint, "height": ctx.height,
           "host": host, "name": name, "port": port, "transport_cert": pem, "tx": ctx.tx.id.hex()}
    ctx.put_json(k_party(name), rec)
    ctx.emit("mpc.Registered", [name], {"host": host, "name": name, "port": port}, checked=True)
    ctx.result = {"name": name}


def declare(ctx: Context) -> None:
    platform_user(ctx, "declare a data set")
    p = _obj(ctx.tx.payload, "payload", ("dataset", "columns"), ("policy",))
    name = _name(p["dataset"], "dataset")
    if name == DEFAULT_DATASET or ctx.get(k_dataset(name)) is not None:
        raise MPCRefused(f"data set {name} is already declared")
    schema = {"columns": p["columns"]}
    try:
        Schema.parse(schema)
    except QueryError as exc:
        raise MPCRefused(f"columns refused: {exc}") from None
    policy = p.get("policy")
    if policy is not None:
        try:
            dp.Policy.parse(policy, schema)
        except dp.DPError as exc:
            raise MPCRefused(f"policy refused: {exc}") from None
    ctx.put_json(k_dataset(name), {"dataset": name, "height": ctx.height, "owner": account_of(ctx.sender),
                                   "policy": policy, "schema": schema, "tx": ctx.tx.id.hex()})
    ctx.emit("mpc.Dataset", [name], {"dataset": name}, checked=True)
    ctx.result = {"dataset": name}


# ---------------------------------------------------------------- mpc.propose / mpc.amend
def _parties(ctx: Context, value: Any) -> list[str]:
    if not isinstance(value, list) or not 3 <= len(value) <= MAX_PARTIES:
        raise MPCRefused(f"parties must be a list of 3 to {MAX_PARTIES} party names")
    names = [_name(v, f"parties[{i}]") for i, v in enumerate(value)]
    if len(set(names)) != len(names):
        raise MPCRefused("parties must not repeat")
    for n in names:
        problem = party_problem(ctx, n)
        if problem is not None:
            raise MPCRefused(problem)
    return names


def _readers(ctx: Context, value: Any) -> list[str]:
    """``["*"]`` (public outputs) or the readers' accounts, sorted: each entry a registered
    party's name or the account of an active user."""
    if value == [PUBLIC]:
        return [PUBLIC]
    if not isinstance(value, list) or not 0 < len(value) <= 32:
        raise MPCRefused(f'readers must be ["{PUBLIC}"] or a list of 1 to 32 party names or accounts')
    out = set()
    for i, r in enumerate(value):
        reg = ctx.get_json(k_party(r)) if isinstance(r, str) and NAME_RE.fullmatch(r) else None
        acct = str(reg["account"]) if isinstance(reg, dict) else r
        user = _user(ctx, acct) if isinstance(acct, str) and ACCOUNT_RE.fullmatch(acct) else None
        if user is None or user.get("status") != "active":
            raise MPCRefused(f"readers[{i}] is neither a registered party nor an active user's account")
        out.add(acct)
    return sorted(out)


def _policy_of(ctx: Context, dataset: str) -> dict[str, Any] | None:
    if dataset == DEFAULT_DATASET:
        return None
    rec = ctx.get_json(k_dataset(dataset))
    policy = rec.get("policy") if isinstance(rec, dict) else None
    return policy if isinstance(policy, dict) else None


def _history(ctx: Context, dataset: str, cid: str, query: dict[str, Any]) -> None:
    """Admit the query under the data set's differential-privacy policy (``privacy.dp``) and
    append its charge to the data set's history. An amended query is charged again and the
    first charge stays: a budget is never given back, even for a query that never ran."""
    hist = ctx.get_json(k_history(dataset)) or {"dataset": dataset, "queries": []}
    refusal, record = admission(query, _policy_of(ctx, dataset), _schema_of(ctx, dataset), hist["queries"])
    if refusal is not None:
        raise MPCRefused(f"query refused by the data set's privacy policy: {refusal}")
    hist["queries"].append({**record, "computation_id": cid, "height": ctx.height})
    ctx.put_json(k_history(dataset), hist)


def propose(ctx: Context) -> None:
    user = platform_user(ctx, "propose a computation")
    p = _obj(ctx.tx.payload, "payload", ("parties", "query"), ("dataset", "readers", "outputs"))
    parties = _parties(ctx, p["parties"])
    dataset = _name(p.get("dataset", DEFAULT_DATASET), "dataset")
    schema = _schema_of(ctx, dataset)
    query = check_query(p["query"], schema)
    readers = _readers(ctx, p.get("readers", [PUBLIC]))
    _recordable(query, schema, parties, readers)
    outputs = p.get("outputs", [])
    if not isinstance(outputs, list) or len(outputs) > 8 or not all(isinstance(o, str) and OP_RE.fullmatch(o)
                                                                    for o in outputs):
        raise MPCRefused("outputs must be a list of at most 8 output names")
    cid = ctx.tx.id.hex()
    proposal = {"dataset": dataset, "outputs": outputs, "parties": parties, "query": query, "readers": readers,
                "schema": schema}
    digest = proposal_sm3(cid, proposal)
    me = str(user.get("name"))
    approvals = {me: {"height": ctx.height, "proposal_sm3": digest, "tx": cid}} if me in parties else {}
    rec = {"approvals": approvals, "buckets": bucket_count(len(query["ids"])), "committed": [], "computation_id": cid,
           "height": ctx.height, "proposal": proposal, "proposal_sm3": digest, "proposer": account_of(ctx.sender),
           "proposer_name": me, "result": None, "confirmations": {}, "status": "proposed", "template": TEMPLATE,
           "time_ms": ctx.time_ms}
    _history(ctx, dataset, cid, query)
    count = int((ctx.get_json(K_COUNT) or {"count": 0})["count"])
    ctx.put_json(k_seq(count), {"computation_id": cid})
    ctx.put_json(K_COUNT, {"count": count + 1})
    ctx.put_json(k_comp(cid), rec)
    ctx.emit("mpc.Proposed", [cid, *parties], {"computation_id": cid, "parties": parties, "proposal_sm3": digest},
             checked=True)
    ctx.result = {"computation_id": cid, "proposal_sm3": digest}


def _open(ctx: Context, cid: Any) -> dict[str, Any]:
    rec = computation(ctx.get, cid) if isinstance(cid, str) else None
    if rec is None:
        raise MPCRefused(f"there is no computation {str(cid)[:64]!r}")
    return rec


def amend(ctx: Context) -> None:
    """The proposer replaces the query of a computation no party committed to yet. Approvals
    already given stay on record but bind the old proposal: nobody computes until every party
    approved the new one."""
    platform_user(ctx, "amend a computation")  # a proposer revoked (or expired) since may no longer
    p = _obj(ctx.tx.payload, "payload", ("computation_id", "query"))
    rec = _open(ctx, p["computation_id"])
    if account_of(ctx.sender) != rec["proposer"]:
        raise MPCRefused("only the proposer may amend a computation")
    if rec["status"] != "proposed" or rec["committed"]:
        raise MPCRefused(f"computation {rec['computation_id']} is {rec['status']}: it can no longer be amended")
    _open_for_approval(ctx, rec)
    proposal = dict(rec["proposal"], query=check_query(p["query"], rec["proposal"]["schema"]))
    _recordable(proposal["query"], proposal["schema"], proposal["parties"], proposal["readers"])
    rec["proposal"], rec["proposal_sm3"] = proposal, proposal_sm3(rec["computation_id"], proposal)
    rec["buckets"] = bucket_count(len(proposal["query"]["ids"]))
    if rec["proposer_name"] in rec["approvals"]:
        rec["approvals"][rec["proposer_name"]] = {"height": ctx.height, "proposal_sm3": rec["proposal_sm3"],
                                                  "tx": ctx.tx.id.hex()}
    _history(ctx, proposal["dataset"], rec["computation_id"], proposal["query"])
    ctx.put_json(k_comp(rec["computation_id"]), rec)
    ctx.emit("mpc.Amended", [rec["computation_id"]], {"computation_id": rec["computation_id"],
                                                      "proposal_sm3": rec["proposal_sm3"]}, checked=True)
    ctx.result = {"computation_id": rec["computation_id"], "proposal_sm3": rec["proposal_sm3"]}


# ---------------------------------------------------------------- mpc.approve / mpc.commit / mpc.record
def _named_party(ctx: Context, rec: dict[str, Any], what: str) -> str:
    user = platform_user(ctx, what)
    name = str(user.get("name"))
    if name not in rec["proposal"]["parties"]:
        raise MPCRefused(f"{name} is not a party of computation {rec['computation_id']}")
    return name


def _open_for_approval(ctx: Context, rec: dict[str, Any]) -> None:
    if ctx.time_ms > int(rec["time_ms"]) + APPROVAL_WINDOW_MS:
        raise MPCRefused(f"computation {rec['computation_id']} was proposed more than "
                         f"{APPROVAL_WINDOW_MS // 86_400_000} days ago: it is closed to approvals (propose it again)")


def approve(ctx: Context) -> None:
    p = _obj(ctx.tx.payload, "payload", ("computation_id", "proposal_sm3"))
    rec = _open(ctx, p["computation_id"])
    name = _named_party(ctx, rec, "approve a computation")
    if rec["status"] != "proposed":
        raise MPCRefused(f"computation {rec['computation_id']} is {rec['status']}")
    _open_for_approval(ctx, rec)
    if _hex64(p["proposal_sm3"], "proposal_sm3") != rec["proposal_sm3"]:
        raise MPCRefused(f"the proposal changed: its SM3 is now {rec['proposal_sm3']}; read it again before approving")
    rec["approvals"][name] = {"height": ctx.height, "proposal_sm3": rec["proposal_sm3"], "tx": ctx.tx.id.hex()}
    ctx.put_json(k_comp(rec["computation_id"]), rec)
    ctx.emit("mpc.Approved", [rec["computation_id"], name], {"computation_id": rec["computation_id"], "party": name},
             checked=True)
    ctx.result = {"approved": name, "waiting_for": unapproved(rec)}


def commit(ctx: Context) -> None:
    p = _obj(ctx.tx.payload, "payload", ("computation_id", "proposal_sm3", "commitments"))
    rec = _open(ctx, p["computation_id"])
    cid = rec["computation_id"]
    name = _named_party(ctx, rec, "file a commitment")
    if rec["status"] not in ("proposed", "running"):
        raise MPCRefused(f"computation {cid} is {rec['status']}")
    if _hex64(p["proposal_sm3"], "proposal_sm3") != rec["proposal_sm3"] or unapproved(rec):
        raise MPCRefused(f"computation {cid} is not approved by every party as it stands")
    if name in rec["committed"]:
        raise MPCRefused(f"{name} already filed its commitment to computation {cid}")
    blob = p["commitments"]
    width = 2 * 33
    if not isinstance(blob, str) or len(blob) != width * rec["buckets"]:
        raise MPCRefused(f"commitments must be {rec['buckets']} commitments of 66 hex digits, concatenated")
    try:
        for k in range(rec["buckets"]):
            Commitment.from_hex(blob[k * width:(k + 1) * width])
    except CryptoError as exc:
        raise MPCRefused(f"commitment {k} is not a point of the SM2 curve: {exc}") from None
    ctx.put_json(k_commit(cid, name), {"commitments": blob, "height": ctx.height, "party": name, "tx": ctx.tx.id.hex()})
    rec["committed"].append(name)
    rec["status"] = "running"
    ctx.put_json(k_comp(cid), rec)
    ctx.emit("mpc.Committed", [cid, name], {"computation_id": cid, "party": name}, checked=True)
    ctx.result = {"committed": name}


def _done_fields(rec: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    if sorted(rec["committed"]) != sorted(rec["proposal"]["parties"]):
        raise MPCRefused("a computation is done only after every party filed its commitment")
    out = {"outputs_sm3": _hex64(p.get("outputs_sm3"), "outputs_sm3"),
           "transcript_sm3": _hex64(p.get("transcript_sm3"), "transcript_sm3"),
           "randomness_transcript_sm3": _hex64(p.get("randomness_transcript_sm3"), "randomness_transcript_sm3")}
    rnd = p.get("randomness")
    if not isinstance(rnd, str) or len(rnd) != 64 * rec["buckets"] or not re.fullmatch(r"[0-9a-f]*", rnd):
        raise MPCRefused(f"randomness must be {rec['buckets']} scalars of 64 hex digits, concatenated")
    out["randomness"] = rnd
    if rec["proposal"]["readers"] == [PUBLIC]:
        outputs = p.get("outputs")
        if not isinstance(outputs, str) or sm3_hex(outputs.encode()) != out["outputs_sm3"]:
            raise MPCRefused("outputs must be the outputs' JSON text whose SM3 is outputs_sm3")
        if not _json_object(outputs):
            raise MPCRefused("outputs must be the text of one JSON object (no NaN or infinities)")
        out["outputs"] = outputs
    else:
        out["outputs"] = canonical({"sealed": _sealed(p.get("sealed"), rec["proposal"]["readers"])}).decode()
    return out


def _json_object(text: str) -> bool:
    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        return isinstance(json.loads(text, parse_constant=refuse), dict)
    except (ValueError, RecursionError):
        return False


def _sealed(value: Any, readers: list[str]) -> dict[str, Any]:
    s = _obj(value, "sealed", ("ciphertext", "keys", "nonce"))
    if not isinstance(s["nonce"], str) or len(s["nonce"]) != 24 or not HEX_RE.fullmatch(s["nonce"]):
        raise MPCRefused("sealed.nonce must be 12 bytes in hex")
    if not isinstance(s["ciphertext"], str) or not HEX_RE.fullmatch(s["ciphertext"]):
        raise MPCRefused("sealed.ciphertext must be hex")
    keys = s["keys"]
    if not isinstance(keys, dict) or sorted(keys) != readers or not all(
            isinstance(v, str) and len(v) <= 512 and HEX_RE.fullmatch(v) for v in keys.values()):
        raise MPCRefused("sealed.keys must hold one wrapped key (hex) for each reader's account")
    return s


def _blamed(blame: Any) -> list[str]:
    return sorted({b for b in str(blame or "").split(",") if b})


def _agrees(first: dict[str, Any], status: str, got: dict[str, Any]) -> bool:
    """A later record agrees with the first: both done with the same outputs, transcripts and
    opened randomness, or both aborted blaming the same parties."""
    if status != first["status"]:
        return False
    if status == "done":
        return all(got.get(k) == first.get(k) for k in AGREE_DONE)
    return _blamed(got.get("blame")) == _blamed(first.get("blame"))


def record(ctx: Context) -> None:
    p = _obj(ctx.tx.payload, "payload", ("computation_id", "status"),
             ("outputs", "sealed", "outputs_sm3", "transcript_sm3", "randomness", "randomness_transcript_sm3", "error",
              "blame"))
    rec = _open(ctx, p["computation_id"])
    cid = rec["computation_id"]
    name = _named_party(ctx, rec, "record a result")
    status = p["status"]
    if status == "done":
        got = _done_fields(rec, p)
    elif status == "aborted":
        got = {"error": text(p.get("error", ""), "error", MAX_ERROR),
               "blame": text(p.get("blame", ""), "blame", 64 * MAX_PARTIES, 0)}
    else:
        raise MPCRefused("status must be done or aborted")
    if rec["status"] in FINAL:  # a confirmation (or a dissent) of the result recorded first
        if name == rec["result"]["by"] or name in rec["confirmations"]:
            raise MPCRefused(f"{name} already recorded its view of computation {cid}")
        agrees = _agrees(rec["result"], status, got)
        confirmation: dict[str, Any] = {"agrees": agrees, "height": ctx.height, "status": status,
                                        "tx": ctx.tx.id.hex()}
        confirmation.update({k: got[k] for k in ("outputs_sm3", "transcript_sm3", "error", "blame") if k in got})
        rec["confirmations"][name] = confirmation
        if not agrees:
            rec["status"] = "disputed"
    else:
        outputs = got.pop("outputs", None)
        rec["status"] = status
        rec["result"] = {"by": name, "height": ctx.height, "status": status, "tx": ctx.tx.id.hex(), **got}
        if outputs is not None:
            ctx.put(k_out(cid), outputs.encode())
    ctx.put_json(k_comp(cid), rec)
    ctx.emit("mpc.Recorded", [cid, name], {"computation_id": cid, "party": name, "status": status}, checked=True)
    ctx.result = {"computation_id": cid, "status": rec["status"]}


def types() -> dict[str, TxType]:
    """The ``mpc.*`` transaction types: add them to the node's handlers beside
    ``standard_types()``. They run in block order."""
    return {"mpc.register": TxType(register), "mpc.dataset": TxType(declare), "mpc.propose": TxType(propose),
            "mpc.amend": TxType(amend), "mpc.approve": TxType(approve), "mpc.commit": TxType(commit),
            "mpc.record": TxType(record)}
