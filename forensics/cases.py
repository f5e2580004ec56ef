"""Evidence and cases: ``evidence.file`` records a manifest of evidence signed by a legal centre;
a case links a work, its evidence and the parties and moves through
open → notified → settled | litigated → closed by signed transactions, each step kept in its
history. docs/works.md §4-§5 is the specification.

State (values canonical JSON):

=================================  ===========================================================
``evidence/e/<evidence_id>``       the filing: manifest, the filer's signature, block facts
``case/c/<case_id>``               the case: work, parties, evidence, state, history
=================================  ===========================================================
"""

from __future__ import annotations

from typing import Any

from ledger.codec import canonical, parse
from ledger.contracts.args import account, integer, text
from ledger.contracts.context import Context, TxType, account_of
from ledger.crypto import sm3_hex
from ledger.governance.views import Views

from .contracts import NODE_ID, check_countersigner
from .rules import (
    FormRefused,
    grant_reader,
    hex_digest,
    id_of,
    manifest_message,
    obj,
    require_certified,
    score_milli,
    signature_hex,
    upload_message,
    user_business,
    verify,
)

__all__ = ["CAPTURE_ROLES", "MANIFEST_VERSION", "MAX_CAPTURE_WORKS", "TRANSITIONS", "case", "case_types",
           "check_filing", "evidence", "filed_works", "k_case", "k_evidence"]

MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 48 * 1024
MAX_ARTEFACTS = 64
MAX_MATCHES = 16
MAX_PIXELS = 2**31 - 1  # a region's coordinates and sizes
MAX_INLIERS = 10**6
MAX_CAPTURE_FIELDS = 32
MAX_PARTIES = 16
MAX_CASE_EVIDENCE = 256
MAX_NOTE_BYTES = 1024
MAX_MS = (1 << 53) - 1
MAX_CAPTURE_WORKS = 16  # the works one capture filing may name (one case each at most)
#: what an artefact of a browser capture is (its optional ``role``; docs/works.md §4.3)
CAPTURE_ROLES = ("screenshot", "recording", "warc", "har", "dom", "environment", "custody", "facts", "resource")
#: state -> {next state: who may move it there ("opener", "party", "court")}
TRANSITIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "open": {"notified": ("opener",)},
    "notified": {"settled": ("opener", "party"), "litigated": ("opener", "party")},
    "settled": {"closed": ("opener",)},
    "litigated": {"closed": ("opener", "court")},
    "closed": {},
}


def k_evidence(evidence_id: str) -> bytes:
    return f"evidence/e/{evidence_id}".encode()


def k_case(case_id: str) -> bytes:
    return f"case/c/{case_id}".encode()


def _k_work(work_id: str) -> bytes:
    return f"works/w/{work_id}".encode()


def evidence(read: Any, evidence_id: str) -> dict[str, Any] | None:
    raw = read(k_evidence(id_of(evidence_id, "evidence_id")))
    return None if raw is None else dict(parse(raw))


def case(read: Any, case_id: str) -> dict[str, Any] | None:
    raw = read(k_case(id_of(case_id, "case_id")))
    return None if raw is None else dict(parse(raw))


# ---------------------------------------------------------------- the manifest
def _match(value: Any, where: str) -> dict[str, Any]:
    m = obj(value, where, ("work_id", "score_milli", "method"),
            ("query_start_ms", "work_start_ms", "duration_ms", "region", "inliers", "query_share_milli"))
    out = {"method": text(m["method"], f"{where}.method", 32),
           "score_milli": score_milli(m["score_milli"], f"{where}.score_milli"),
           "work_id": id_of(m["work_id"], f"{where}.work_id")}
    for k in ("query_start_ms", "work_start_ms", "duration_ms"):
        if k in m:
            out[k] = integer(m[k], f"{where}.{k}", 0, MAX_MS)
    if "region" in m:  # where in the artefact (a picture) the work sits: [x, y, w, h] in its pixels
        r = m["region"]
        if not isinstance(r, list) or len(r) != 4:
            raise FormRefused(f"{where}.region must be [x, y, w, h]")
        out["region"] = [integer(v, f"{where}.region[{i}]", 0, MAX_PIXELS) for i, v in enumerate(r)]
    if "inliers" in m:  # how many independent features agreed
        out["inliers"] = integer(m["inliers"], f"{where}.inliers", 0, MAX_INLIERS)
    if "query_share_milli" in m:  # how much of the artefact the work explains, x 1000
        out["query_share_milli"] = integer(m["query_share_milli"], f"{where}.query_share_milli", 0, 1000)
    return out


def _artefact(value: Any, where: str) -> None:
    a = obj(value, where, ("name", "sm3", "size", "media_type", "matches"), ("note", "role"))
    text(a["name"], f"{where}.name", 255)
    hex_digest(a["sm3"], f"{where}.sm3")
    integer(a["size"], f"{where}.size", 1, MAX_MS)
    text(a["media_type"], f"{where}.media_type", 128)
    if "note" in a:
        text(a["note"], f"{where}.note", 512, 0)
    if "role" in a and a["role"] not in CAPTURE_ROLES:
        raise FormRefused(f"{where}.role must be one of {', '.join(CAPTURE_ROLES)}")
    if not isinstance(a["matches"], list) or len(a["matches"]) > MAX_MATCHES:
        raise FormRefused(f"{where}.matches must be a list of at most {MAX_MATCHES} matches")
    for i, m in enumerate(a["matches"]):
        _match(m, f"{where}.matches[{i}]")


def _capture(value: Any) -> None:
    if not isinstance(value, dict) or len(value) > MAX_CAPTURE_FIELDS:
        raise FormRefused(f"manifest.capture must be an object of at most {MAX_CAPTURE_FIELDS} fields")
    for k, v in value.items():
        text(k, "manifest.capture key", 64)
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise FormRefused(f"manifest.capture.{k} must be a string or an integer")
        if isinstance(v, str):
            text(v, f"manifest.capture.{k}", 1024, 0)
        else:
            integer(v, f"manifest.capture.{k}", -MAX_MS, MAX_MS)


def _works(value: Any, arts: list[Any]) -> None:
    """A capture filing's ``works``: exactly the works its artefacts' matches name, sorted."""
    if not isinstance(value, list) or len(value) > MAX_CAPTURE_WORKS:
        raise FormRefused(f"manifest.works must be a list of at most {MAX_CAPTURE_WORKS} work ids")
    ids = [id_of(w, f"manifest.works[{i}]") for i, w in enumerate(value)]
    named = sorted({m["work_id"] for a in arts for m in a["matches"]})
    if ids != named:
        raise FormRefused("manifest.works must list exactly the works the artefacts' matches name, sorted, "
                          f"each once: {', '.join(named)[:300] or 'none'}")


def _upload(value: Any) -> None:
    u = obj(value, "manifest.upload", ("node", "signature"))
    if not isinstance(u["node"], str) or not NODE_ID.fullmatch(u["node"]):
        raise FormRefused("manifest.upload.node must be a node id (1-64 of a-z, 0-9, '-', '_' and '.')")
    signature_hex(u["signature"], "manifest.upload.signature")


def check_manifest(m: Any, chain: str, filer: str, evidence_id: str) -> dict[str, Any]:
    """The manifest's form (docs/works.md §4.1) and its binding to this filing."""
    m = obj(m, "manifest", ("version", "chain", "evidence_id", "filer", "artefacts", "capture", "created_ms",
                            "upload"), ("work_id", "works"))
    if m["version"] != MANIFEST_VERSION or isinstance(m["version"], bool):
        raise FormRefused(f"manifest.version must be {MANIFEST_VERSION}")
    if m["chain"] != chain:
        raise FormRefused("manifest.chain is not this chain")
    if m["evidence_id"] != evidence_id:
        raise FormRefused("manifest.evidence_id differs from the filing's evidence_id")
    if m["filer"] != filer:
        raise FormRefused("manifest.filer is not the sender's account")
    if ("work_id" in m) == ("works" in m):
        raise FormRefused("manifest must name its work (work_id) or, for a capture, the works it matched (works)")
    if "work_id" in m:
        id_of(m["work_id"], "manifest.work_id")
    integer(m["created_ms"], "manifest.created_ms", 0, MAX_MS)
    arts = m["artefacts"]
    if not isinstance(arts, list) or not 1 <= len(arts) <= MAX_ARTEFACTS:
        raise FormRefused(f"manifest.artefacts must be a list of 1 to {MAX_ARTEFACTS} artefacts")
    for i, a in enumerate(arts):
        _artefact(a, f"manifest.artefacts[{i}]")
    _capture(m["capture"])
    if "works" in m:
        _works(m["works"], arts)
    _upload(m["upload"])
    if len(canonical(m)) > MAX_MANIFEST_BYTES:
        raise FormRefused(f"the manifest may be at most {MAX_MANIFEST_BYTES} bytes of canonical JSON")
    return dict(m)


# ---------------------------------------------------------------- cases
def _parties(value: Any) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PARTIES:
        raise FormRefused(f"parties must be a list of 1 to {MAX_PARTIES} accounts")
    out = sorted({account(v, f"parties[{i}]") for i, v in enumerate(value)})
    if len(out) != len(value):
        raise FormRefused("parties must not repeat an account")
    return out


def _step(ctx: Context, state: str, note: str, **more: Any) -> dict[str, Any]:
    return {"by": account_of(ctx.sender), "height": ctx.height, "note": note, "state": state,
            "time_ms": ctx.time_ms, "tx": ctx.tx.id.hex(), **more}


def _open_case(ctx: Context, case_id: str, work_id: str, parties: list[str], evidence_ids: list[str],
               note: str) -> dict[str, Any]:
    if ctx.get(k_case(case_id)) is not None:
        raise FormRefused(f"case {case_id} already exists")
    rec = {"case_id": case_id, "evidence": evidence_ids, "height": ctx.height, "history": [_step(ctx, "open", note)],
           "opener": account_of(ctx.sender), "parties": parties, "state": "open", "work_id": work_id}
    ctx.put_json(k_case(case_id), rec)
    ctx.emit("case.Opened", [case_id, work_id, *parties], {"case_id": case_id, "work_id": work_id}, checked=True)
    return rec


def _attach(ctx: Context, rec: dict[str, Any], evidence_id: str) -> None:
    if rec["opener"] != account_of(ctx.sender):
        raise FormRefused(f"only the opener of case {rec['case_id']} may attach evidence to it")
    if rec["state"] == "closed":
        raise FormRefused(f"case {rec['case_id']} is closed")
    if evidence_id in rec["evidence"]:
        raise FormRefused(f"evidence {evidence_id} is already attached to case {rec['case_id']}")
    if len(rec["evidence"]) >= MAX_CASE_EVIDENCE:
        raise FormRefused(f"a case holds at most {MAX_CASE_EVIDENCE} pieces of evidence")
    rec["evidence"] = sorted([*rec["evidence"], evidence_id])
    rec["history"] = [*rec["history"], _step(ctx, rec["state"], "", attached=evidence_id)]
    ctx.put_json(k_case(rec["case_id"]), rec)
    ctx.emit("case.Attached", [rec["case_id"], evidence_id], {"case_id": rec["case_id"], "evidence_id": evidence_id},
             checked=True)


def _link_case(ctx: Context, value: Any, evidence_id: str, work_id: str) -> str:
    """``evidence.file``'s optional ``case``: attach to an existing case or open a new one."""
    c = obj(value, "case", ("case_id",), ("parties", "note"))
    cid = id_of(c["case_id"], "case.case_id")
    rec = ctx.get_json(k_case(cid))
    if rec is None:
        if "parties" not in c:
            raise FormRefused(f"case {cid} does not exist: give its parties to open it")
        _open_case(ctx, cid, work_id, _parties(c["parties"]), [evidence_id],
                   text(c.get("note", ""), "case.note", MAX_NOTE_BYTES, 0))
        return cid
    if "parties" in c:
        raise FormRefused(f"case {cid} exists: its parties are fixed")
    rec = dict(rec)
    if rec["work_id"] != work_id:
        raise FormRefused(f"case {cid} is about work {rec['work_id']}, not {work_id}")
    _attach(ctx, rec, evidence_id)
    return cid


# ---------------------------------------------------------------- transaction types
def check_upload(views: Views, ctx: Context, m: dict[str, Any]) -> None:
    """Every artefact the manifest names was uploaded by the filer: the node named in
    ``manifest.upload`` may countersign (as for ``works.register``, docs/works.md §3.5) and
    signed ``rules.upload_message`` of these artefacts, this filer and this evidence id."""
    node = m["upload"]["node"]
    key = check_countersigner(views, ctx, node)
    msg = upload_message(ctx.tx.chain, m["filer"], m["evidence_id"], m["artefacts"])
    if not verify(key, bytes.fromhex(m["upload"]["signature"]), msg):
        raise FormRefused(f"manifest.upload is not node {node}'s signature of these artefacts uploaded by "
                          f"{m['filer']}: a filing may name only files its filer uploaded")


def filed_works(m: dict[str, Any]) -> list[str]:
    """The works a manifest is about: its ``work_id``, or a capture's ``works`` (maybe none)."""
    return [m["work_id"]] if "work_id" in m else list(m["works"])


def check_filing(views: Views, ctx: Context, *, signed: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every check of ``evidence.file`` but the optional ``case``/``cases`` (docs/works.md
    §4.2, checks 1-6), in order; (manifest, the records of the works it is about).
    ``signed=False`` (a node preparing a filing its filer has not signed yet) skips check 3,
    the filer's signature, and needs no ``signature`` field: everything else is the
    contract's own code."""
    filer = require_certified(ctx, "legal", "file evidence")  # at the block's time, by the chain's record
    p = obj(ctx.tx.payload, "payload", ("evidence_id", "manifest", *(("signature",) if signed else ())),
            ("case", "cases"))
    eid = id_of(p["evidence_id"], "evidence_id")
    m = check_manifest(p["manifest"], ctx.tx.chain, filer, eid)
    if signed and not verify(ctx.sender, signature_hex(p["signature"], "signature"), manifest_message(m)):
        raise FormRefused("the manifest is not signed by the sender")
    check_upload(views, ctx, m)
    works = []
    for wid in filed_works(m):
        work = ctx.get_json(_k_work(wid))
        if work is None:
            where = "manifest.work_id" if "work_id" in m else "manifest.works:"
            raise FormRefused(f"{where} {wid} is not a registered work")
        works.append(dict(work))
    if ctx.get(k_evidence(eid)) is not None:
        raise FormRefused(f"evidence {eid} is already filed")
    if "case" in p and "work_id" not in m:
        raise FormRefused("case goes with a manifest of one work_id; a capture filing names its cases in cases")
    if "cases" in p and "work_id" in m:
        raise FormRefused("cases goes with a capture filing (manifest.works); give one case in case")
    return m, works


def _link_cases(ctx: Context, value: Any, evidence_id: str, works: list[str]) -> list[str]:
    """A capture filing's optional ``cases``: per entry ``{case_id, work_id, parties?, note?}``
    (``work_id`` one of ``works``, each work at most once) open or join that case."""
    if not isinstance(value, list) or len(value) > MAX_CAPTURE_WORKS:
        raise FormRefused(f"cases must be a list of at most {MAX_CAPTURE_WORKS} cases")
    out: list[str] = []
    seen: set[str] = set()
    for i, c in enumerate(value):
        c = obj(c, f"cases[{i}]", ("case_id", "work_id"), ("parties", "note"))
        wid = id_of(c["work_id"], f"cases[{i}].work_id")
        if wid not in works:
            raise FormRefused(f"cases[{i}].work_id {wid} is not one of the works the capture matched")
        if wid in seen:
            raise FormRefused(f"cases[{i}]: work {wid} has a case already in this filing")
        seen.add(wid)
        out.append(_link_case(ctx, {k: v for k, v in c.items() if k != "work_id"}, evidence_id, wid))
    if len(set(out)) != len(out):
        raise FormRefused("cases must not repeat a case")
    return out


def file_evidence(views: Views, ctx: Context) -> None:
    """``evidence.file {evidence_id, manifest, signature, case? | cases?}`` by a ``legal`` user."""
    m, works = check_filing(views, ctx)
    p, filer, eid = ctx.tx.payload, m["filer"], m["evidence_id"]
    capture = "works" in m
    case_id = _link_case(ctx, p["case"], eid, m["work_id"]) if "case" in p else None
    case_ids = _link_cases(ctx, p["cases"], eid, m["works"]) if "cases" in p else []
    rec = {"case_id": case_id, "evidence_id": eid, "filer": filer, "height": ctx.height, "manifest": m,
           "manifest_sm3": sm3_hex(manifest_message(m)), "signature": p["signature"], "time_ms": ctx.time_ms,
           "tx": ctx.tx.id.hex(), "work_id": m.get("work_id")}
    if capture:  # a capture filing: the works it matched and a case per work (docs/works.md §4.3)
        rec.update(case_ids=case_ids, works=m["works"])
    ctx.put_json(k_evidence(eid), rec)
    for art in m["artefacts"]:  # only the manifest's artefact list names files (and grants reading them)
        grant_reader(ctx, art["sm3"], filer, "filer")
        for work in works:
            grant_reader(ctx, art["sm3"], work["holder"], "holder")
    data = {"case_id": case_id, "evidence_id": eid, "filer": filer, "manifest_sm3": rec["manifest_sm3"],
            "work_id": m.get("work_id")}
    if capture:
        data.update(case_ids=case_ids, works=m["works"])
    ctx.emit("evidence.Filed", [eid, *filed_works(m), filer], data, checked=True)
    ctx.result = {"case_id": case_id, "evidence_id": eid, "manifest_sm3": rec["manifest_sm3"],
                  **({"case_ids": case_ids} if capture else {})}


def _own_evidence(ctx: Context, ev: Any, evidence_id: str, work_id: str) -> None:
    """A case may hold only evidence about its work that the sender filed itself: naming
    another legal centre's filing must not make it (or its files) part of one's own case."""
    if not isinstance(ev, dict) or (ev["work_id"] != work_id and work_id not in ev.get("works", [])):
        raise FormRefused(f"evidence {evidence_id} is not filed about work {work_id}")
    if ev["filer"] != account_of(ctx.sender):
        raise FormRefused(f"evidence {evidence_id} was filed by {ev['filer']}: only its filer may put it in a case")


def open_case(ctx: Context) -> None:
    """``case.open {case_id, work_id, parties, evidence?, note?}`` by a ``legal`` user."""
    require_certified(ctx, "legal", "open a case")
    p = obj(ctx.tx.payload, "payload", ("case_id", "work_id", "parties"), ("evidence", "note"))
    cid, wid = id_of(p["case_id"], "case_id"), id_of(p["work_id"], "work_id")
    parties = _parties(p["parties"])
    note = text(p.get("note", ""), "note", MAX_NOTE_BYTES, 0)
    if ctx.get(_k_work(wid)) is None:
        raise FormRefused(f"work {wid} is not registered")
    ev = p.get("evidence", [])
    if not isinstance(ev, list) or len(ev) > MAX_CASE_EVIDENCE:
        raise FormRefused(f"evidence must be a list of at most {MAX_CASE_EVIDENCE} evidence ids")
    ids = sorted({id_of(e, f"evidence[{i}]") for i, e in enumerate(ev)})
    if len(ids) != len(ev):
        raise FormRefused("evidence must not repeat an id")
    for e in ids:
        _own_evidence(ctx, ctx.get_json(k_evidence(e)), e, wid)
    _open_case(ctx, cid, wid, parties, ids, note)


def attach(ctx: Context) -> None:
    """``case.attach {case_id, evidence_id}`` by the case's opener."""
    p = obj(ctx.tx.payload, "payload", ("case_id", "evidence_id"))
    cid, eid = id_of(p["case_id"], "case_id"), id_of(p["evidence_id"], "evidence_id")
    rec = ctx.get_json(k_case(cid))
    if rec is None:
        raise FormRefused(f"there is no case {cid}")
    _own_evidence(ctx, ctx.get_json(k_evidence(eid)), eid, rec["work_id"])
    _attach(ctx, dict(rec), eid)


def move(ctx: Context) -> None:
    """``case.move {case_id, to, note?}``: one step of the state machine (``TRANSITIONS``)."""
    p = obj(ctx.tx.payload, "payload", ("case_id", "to"), ("note",))
    cid = id_of(p["case_id"], "case_id")
    to = p["to"]
    note = text(p.get("note", ""), "note", MAX_NOTE_BYTES, 0)
    raw = ctx.get_json(k_case(cid))
    if raw is None:
        raise FormRefused(f"there is no case {cid}")
    rec = dict(raw)
    allowed = TRANSITIONS[rec["state"]]
    if not isinstance(to, str) or to not in allowed:
        nxt = ", ".join(sorted(allowed)) or "none (closed is final)"
        raise FormRefused(f"case {cid} is {rec['state']}: it may move to {nxt}, not {to!r}")
    me = account_of(ctx.sender)
    roles = {"opener"} if me == rec["opener"] else set()
    if me in rec["parties"]:
        roles.add("party")
    if user_business(ctx, me) == "court":
        roles.add("court")
    if not roles & set(allowed[to]):
        raise FormRefused(f"only the case's {' or '.join(allowed[to])} may move case {cid} from "
                          f"{rec['state']} to {to}")
    prev = rec["state"]
    rec["history"] = [*rec["history"], _step(ctx, to, note)]
    rec["state"] = to
    ctx.put_json(k_case(cid), rec)
    ctx.emit("case.Moved", [cid], {"by": me, "case_id": cid, "from": prev, "to": to},
             checked=True)


def case_types(views: Views) -> dict[str, TxType]:
    return {"evidence.file": TxType(lambda ctx: file_evidence(views, ctx)), "case.open": TxType(open_case), "case.attach": TxType(attach),
            "case.move": TxType(move)}
