"""The statements half of the offline verifier: genesis (with ``verify_genesis``), validator
history, blocks and their QCs, commit, then each statement's transaction, inclusion, receipt, sender certificate and
artefacts (docs/evidence-format.md §5). Fills the ``Report`` of ``forensics.verify``.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from ledger.crypto import Certificate, CertificateRevocationList, CryptoError, sm3

from . import verify_chain as vc
from . import verify_genesis as vg
from .package import format as pf
from .verify_chain import CheckFailed, need

if TYPE_CHECKING:
    from .verify import Report

def _history(pkg: pf.Package) -> vc.Schedule:
    """The validator-set schedule; the genesis set's certificates are ``genesis-validators``'."""
    from .verify import _json

    doc = _json(pkg, pf.VALIDATORS)
    need(isinstance(doc, dict) and set(doc) == {"history"} and isinstance(doc["history"], list) and len(doc["history"]) > 0,
         'chain/validators.json is {"history": [...]}')
    first = doc["history"][0]
    need(isinstance(first, dict) and set(first) == {"certificates", "from_height", "set"} and first["from_height"] == 0
         and isinstance(first["certificates"], list), "the history does not start with the genesis set and its certificates")
    vc.check_set(first["set"])
    sched: vc.Schedule = [(0, first["set"])]
    for e in doc["history"][1:]:
        need(isinstance(e, dict) and set(e) == {"from_height", "handover", "set"}, "a set change has other fields")
        need(isinstance(e["from_height"], int) and e["from_height"] > sched[-1][0], "set changes out of order")
        vc.check_set(e["set"])
        sched.append((e["from_height"], e["set"]))
    return sched


def _genesis(r: Report, pkg: pf.Package, m: dict[str, Any], root: Certificate, crl: CertificateRevocationList | None,
             sched: vc.Schedule) -> None:
    """The checks ``genesis``, ``genesis-attestation`` and ``genesis-validators``."""
    from .verify import _json

    gen = r.run("genesis", lambda: _json(pkg, pf.GENESIS))
    hd = r.run("genesis", lambda: vc.check_genesis(gen, root.fingerprint, m["chain"], sched[0][1]))
    if hd is not None:
        r.run("genesis", lambda: need(vc.header_hash(hd).hex() == m["genesis"], "the manifest names another genesis"))
    r.run("genesis-attestation", lambda: vg.check_attestation(gen, root))
    first = r.run("genesis-validators", lambda: _json(pkg, pf.VALIDATORS)["history"][0])
    r.run("genesis-validators", lambda: vg.check_genesis_validators(first, gen, root, crl))


def _blocks(r: Report, pkg: pf.Package, sched: vc.Schedule,
            chain: str) -> tuple[dict[int, dict[str, Any]], dict[int, list[str]]]:
    """The blocks whose header, ids and QC hold (a failing block is left out and recorded)."""
    from .verify import _json

    out: dict[int, dict[str, Any]] = {}
    ids: dict[int, list[str]] = {}
    doc = r.run("quorum-certificates", lambda: _json(pkg, pf.BLOCKS))
    if not (isinstance(doc, dict) and set(doc) == {"blocks"} and isinstance(doc["blocks"], list)):
        r.checks["quorum-certificates"] = r.checks.get("quorum-certificates") or 'blocks.json is {"blocks": [...]}'
        return out, ids
    for blk in doc["blocks"]:
        hd: dict[str, Any] | None = r.run("quorum-certificates", partial(vc.check_block, blk, sched, chain))
        if hd is None:
            continue
        if hd["height"] in out:
            r.checks["quorum-certificates"] = r.checks.get("quorum-certificates") or f"block {hd['height']} appears twice"
            continue
        out[hd["height"]] = hd
        ids[hd["height"]] = blk["tx_ids"]
    return out, ids


def verify_ledger(r: Report, pkg: pf.Package, m: dict[str, Any], root: Certificate,
                  crl: CertificateRevocationList | None, filer: Certificate | None) -> None:
    from .verify import _json

    sched = r.run("validator-history", lambda: _history(pkg))
    if sched is None:
        sched = [(0, [])]
    _genesis(r, pkg, m, root, crl, sched)
    headers, ids = _blocks(r, pkg, sched, m["chain"])
    doc = _json_or_fail(r, pkg)
    if r.checks.get("validator-history") is None:
        prev = 0
        for e in _json(pkg, pf.VALIDATORS)["history"][1:]:
            r.run("validator-history", partial(vc.check_handover, e, prev, headers))
            prev = e["from_height"]
    stmts = doc if isinstance(doc, list) else []
    r.run("transactions", lambda: need(len(stmts) == len(m["statements"]), "statements.json and the manifest differ in length"))
    for i, (st, ms) in enumerate(zip(stmts, m["statements"], strict=False)):
        _statement(r, m, i, st, ms, (headers, ids), root, crl, filer)
    times = [headers[st["height"]]["time"] for st in r.statements]
    if times:
        latest = max(times)
        r.run("crl", lambda: _crl_fresh(crl, latest))
        r.run("filer-certificate", lambda: need(isinstance(m["created_ms"], int) and m["created_ms"] >= latest,
                                                "the package claims to be signed before the statements it holds"))
    claimed = {n for ms in m["statements"] if isinstance(ms, dict) and isinstance(ms.get("artefacts"), list)
               for n in ms["artefacts"] if isinstance(n, str)}
    loose = sorted(n for n in m["members"] if n.startswith(pf.ARTEFACT_DIR) and n not in claimed)
    r.run("artefacts", lambda: need(not loose, f"artefacts no statement names: {loose[:5]}"))
    if filer is not None:
        point = filer.public_key().point.hex()
        r.run("filer-certificate", lambda: need(any(isinstance(st, dict) and isinstance(st.get("tx"), dict)
                                                    and st["tx"].get("body", {}).get("sender") == point for st in stmts),
                                                "the filer sent none of the statements it files"))
    for k in ("commit", "inclusion", "receipts", "sender-certificates", "artefacts", "transactions"):
        r.checks.setdefault(k, "no statement could be checked" if not stmts else None)


def _crl_fresh(crl: CertificateRevocationList | None, latest_ms: int) -> None:
    """The CRL was published (``thisUpdate``, whole seconds) no earlier than the latest
    statement's block: it then lists every revocation dated at or before each act."""
    need(crl is not None, "no valid CRL")
    assert crl is not None
    need(crl.this_update.timestamp() >= latest_ms // 1000,
         f"the CRL was published {crl.this_update.isoformat()}, before the latest statement's block "
         f"({latest_ms} ms): it cannot show revocations up to that act")


def _json_or_fail(r: Report, pkg: pf.Package) -> Any:
    from .verify import _json

    doc = r.run("transactions", lambda: _json(pkg, pf.STATEMENTS))
    if not (isinstance(doc, dict) and set(doc) == {"statements"} and isinstance(doc["statements"], list)):
        r.checks["transactions"] = r.checks.get("transactions") or 'statements.json is {"statements": [...]}'
        return None
    return doc["statements"]


def _tx(st: Any, ms: Any, chain: str) -> tuple[bytes, dict[str, Any]]:
    need(isinstance(st, dict) and set(st) == {"certificate", "proof", "receipt", "receipt_proof", "tx"},
         "a statement has other fields")
    tx = st["tx"]
    need(isinstance(tx, dict) and set(tx) == {"body", "sig"} and isinstance(tx["body"], dict), "not a transaction")
    body = tx["body"]
    need(set(body) == {"chain", "expiry", "nonce", "payload", "sender", "type"}, "a transaction body has other fields")
    tx_id = sm3(pf.canonical(body))
    need(isinstance(ms, dict) and set(ms) == {"artefacts", "tx"} and ms["tx"] == tx_id.hex(),
         "the manifest names another transaction for this statement")
    need(isinstance(body["payload"], dict) and isinstance(body["type"], str) and isinstance(body["sender"], str),
         "a transaction body has fields of the wrong type")
    need(body["chain"] == chain, f"transaction {tx_id.hex()[:16]} is for another chain")
    from .verify import sender_key

    try:
        sender_key(body["sender"]).verify(vc.hexb(tx["sig"]), pf.canonical(body))
    except CryptoError:
        raise CheckFailed(f"the sender's signature on transaction {tx_id.hex()[:16]} does not verify") from None
    return tx_id, body


def _statement(r: Report, m: dict[str, Any], i: int, st: Any, ms: Any,
               chain: tuple[dict[int, dict[str, Any]], dict[int, list[str]]],
               root: Certificate, crl: CertificateRevocationList | None, filer: Certificate | None) -> None:
    from .verify import _iso, check_cert

    headers, ids = chain
    got = r.run("transactions", lambda: _tx(st, ms, m["chain"]))
    if got is None:
        return
    tx_id, body = got
    h = st["proof"].get("height") if isinstance(st["proof"], dict) else None
    hd = headers.get(h) if isinstance(h, int) else None
    if hd is None:
        for k in ("inclusion", "commit", "receipts"):
            r.checks[k] = r.checks.get(k) or f"statement {i}: its block is not in the package"
        return
    index = r.run("inclusion", lambda: vc.check_inclusion(tx_id, st["proof"], hd, ids[hd["height"]]))
    r.run("commit", lambda: vc.check_commit(hd["height"], headers))
    c = r.run("receipts", lambda: vc.check_receipt(tx_id, index if index is not None else -1, hd["height"],
                                                     st["receipt"], st["receipt_proof"], headers))
    if c is not None:
        r.run("commit", lambda: vc.check_commit(c, headers))
    cert = r.run("sender-certificates", lambda: Certificate(vc.hexb(st["certificate"])))
    if cert is not None:
        r.run("sender-certificates", lambda: need(cert.public_key().point.hex() == body["sender"],
                                                  f"statement {i}: the certificate is not the sender's"))
        r.run("sender-certificates", lambda: check_cert(cert, root, crl, hd["time"], f"sender of statement {i}"))
    if filer is not None and filer.public_key().point.hex() == body["sender"]:
        r.run("filer-certificate", lambda: check_cert(filer, root, crl, hd["time"], f"filer at block {hd['height']}"))
    r.run("artefacts", lambda: _artefacts(m["members"], ms, body))
    receipt = st["receipt"] if isinstance(st["receipt"], dict) else {}
    r.statements.append({
        "tx": tx_id.hex(), "type": body.get("type"), "height": hd["height"], "block": vc.header_hash(hd).hex(),
        "time": _iso(hd["time"]), "code": receipt.get("code"), "info": receipt.get("info"),
        "result": receipt.get("result"), "events": receipt.get("events", []), "payload": body["payload"],
        "sender": {"name": cert.common_name, "org": cert.organization, "role": cert.role} if cert else None,
        "artefacts": _named(m["members"], ms, body)})


def _roles(body: dict[str, Any]) -> dict[str, str]:
    """A capture filing's artefact roles by SM3 (docs/works.md §4.3), for the report."""
    pay = body.get("payload")
    man = pay.get("manifest") if isinstance(pay, dict) and body.get("type") == "evidence.file" else None
    arts = man.get("artefacts") if isinstance(man, dict) else None
    return {a["sm3"]: a["role"] for a in arts or [] if isinstance(a, dict) and isinstance(a.get("sm3"), str)
            and isinstance(a.get("role"), str)}


def _named(members: dict[str, Any], ms: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    names = ms.get("artefacts") if isinstance(ms, dict) else None
    if not isinstance(names, list):
        return []
    roles = _roles(body)
    out = [{"name": n, **members[n]} for n in names if isinstance(n, str) and isinstance(members.get(n), dict)]
    return [{**a, "role": roles[a["sm3"]]} if a.get("sm3") in roles else a for a in out]


def _artefacts(members: dict[str, Any], ms: dict[str, Any], body: dict[str, Any]) -> None:
    """Each artefact the statement names is a member whose SM3 (checked against its bytes under
    ``member-hashes``) the transaction names (``format.named_artefacts``: for a filing, its
    manifest's artefact list, with the same size)."""
    names = ms["artefacts"]
    need(isinstance(names, list) and all(isinstance(n, str) and n.startswith(pf.ARTEFACT_DIR) for n in names),
         "a statement's artefacts are member names under artefacts/")
    named = pf.named_artefacts(body.get("type"), body["payload"])
    for n in names:
        entry = members.get(n)
        if not isinstance(entry, dict) or entry.get("sm3") not in named:
            raise CheckFailed(f"{n}: its SM3 is not named by transaction {ms['tx'][:16]}'s payload")
        size = named[entry["sm3"]]
        need(size is None or entry.get("size") == size,
             f"{n}: its size is not the {size} bytes transaction {ms['tx'][:16]} names")
