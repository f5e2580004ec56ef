"""Joint computations from a client (docs/privacy.md "On chain", docs/api.md §8): propose,
approve, read the result, audit it from chain data, and what a party process needs (register
its address, declare a data set, read computations and commitments, file transactions).

Every call goes through a ``LedgerClient``; those that sign need its ``identity``.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from ledger.crypto import sm3_hex
from privacy.chain import PUBLIC, AuditFailed, audit, unseal
from privacy.contracts import K_COUNT, k_commit, k_comp, k_out, k_party, k_seq

from .sdk import ClientError, LedgerClient, error_of

__all__ = ["approve", "audit_computation", "computation", "declare_dataset", "file_tx", "propose", "result",
           "work_ids"]

EVENT_PAGE = 1000
MAX_WORK_IDS = 5000


def _state_text(client: LedgerClient, key: bytes) -> str | None:
    code, body = client._request("GET", "/v1/state/" + urllib.parse.quote(key.decode(), safe="/"))
    if code == 404:
        return None
    if code != 200:
        raise error_of(code, body)
    value = body.get("value")
    if not isinstance(value, str):
        raise ClientError(f"state {key.decode()!r} is not text")
    return value


def state(client: LedgerClient, key: bytes) -> Any:
    text = _state_text(client, key)
    return None if text is None else json.loads(text)


def computation(client: LedgerClient, cid: str) -> dict[str, Any] | None:
    """The on-chain record ``mpc/c/<cid>`` (None when there is none)."""
    rec = state(client, k_comp(cid))
    return rec if isinstance(rec, dict) else None


def count(client: LedgerClient) -> int:
    rec = state(client, K_COUNT)
    return int(rec["count"]) if isinstance(rec, dict) else 0


def nth(client: LedgerClient, k: int) -> str:
    return str(state(client, k_seq(k))["computation_id"])


def party(client: LedgerClient, name: str) -> dict[str, Any] | None:
    rec = state(client, k_party(name))
    return rec if isinstance(rec, dict) else None


def commitments(client: LedgerClient, cid: str, parties: list[str]) -> dict[str, str]:
    out = {}
    for p in parties:
        rec = state(client, k_commit(cid, p))
        if isinstance(rec, dict):
            out[p] = str(rec["commitments"])
    return out


def file_tx(client: LedgerClient, type_: str, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Sign, submit and wait for a transaction; its receipt's result. A refusal raises."""
    tx = client.build(type_, payload)
    client.submit(tx)
    rec = client.wait(tx.id_hex, timeout, poll=0.1, certified=False)
    receipt = rec["receipt"]
    if receipt["code"] != 0:
        raise ClientError(f"{type_} refused: {receipt['info']}", 409, "transaction_failed")
    return {"tx_id": tx.id_hex, "height": rec.get("height"), "info": receipt.get("info")}


def work_ids(client: LedgerClient) -> list[str]:
    """The content ids of every registered work (``works.Registered`` events), oldest first.
    Pages by height: a full page's last height is read again from its start (the events API
    pages by height only), so no registration is skipped; a single block with more than a
    page of registrations is refused (name the ids)."""
    ids: list[str] = []
    start = 0
    while True:
        code, body = client._request("GET", f"/v1/events?type=works.Registered&from_height={start}&limit={EVENT_PAGE}")
        if code != 200:
            raise error_of(code, body)
        events = body["events"]
        if len(events) < EVENT_PAGE:
            ids += [str(e["data"]["work_id"]) for e in events]
        else:
            last = int(events[-1]["height"])
            if int(events[0]["height"]) == last:
                raise ClientError(f"more than {EVENT_PAGE} works registered in block {last}: name the ids in the "
                                  "query", 400, "too_many_works")
            ids += [str(e["data"]["work_id"]) for e in events if int(e["height"]) < last]
            start = last
        if len(set(ids)) > MAX_WORK_IDS:
            raise ClientError(f"more than {MAX_WORK_IDS} registered works: name the ids in the query", 400,
                              "too_many_works")
        if len(events) < EVENT_PAGE:
            return list(dict.fromkeys(ids))


def _post(client: LedgerClient, path: str, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    tx = client.build(type_, payload)
    code, body = client._request("POST", path, tx.encode())
    if code != 200:
        err = error_of(code, body)
        raise ClientError(f"{type_}: {err}", code, err.code)
    return dict(body)


def propose(client: LedgerClient, parties: list[str], query: dict[str, Any], *, dataset: str | None = None,
            readers: list[str] | None = None) -> dict[str, Any]:
    """Propose a computation (``POST /v1/mpc/computations``); a query without ``ids`` gets
    the registered works' content ids. ``{"computation_id", "proposal_sm3", "tx_id", "height"}``."""
    if client.identity is None:
        raise ClientError("proposing needs an identity")
    if "ids" not in query:
        query = {**query, "ids": work_ids(client)}
        if not query["ids"]:
            raise ClientError("the query names no ids and no work is registered", 400, "no_ids")
    dp = query.get("dp")
    if isinstance(dp, dict):  # the chain's canonical JSON has no floats: epsilon 0.5 goes as "0.5"
        query = {**query, "dp": {k: repr(v) if isinstance(v, float) else v for k, v in dp.items()}}
    payload: dict[str, Any] = {"parties": parties, "query": query}
    if dataset is not None:
        payload["dataset"] = dataset
    if readers is not None:
        payload["readers"] = readers
    return _post(client, "/v1/mpc/computations", "mpc.propose", payload)


def approve(client: LedgerClient, cid: str, proposal_sm3: str | None = None) -> dict[str, Any]:
    """Approve the proposal whose SM3 is ``proposal_sm3`` (the one the approver reviewed: a
    ``ClientError`` 409 ``proposal_changed`` when the chain holds another now, and the
    contract refuses it too if it changes before the approval is committed). Without it, the
    proposal as it stands now (its SM3 read from the chain: approving unseen)."""
    rec = computation(client, cid)
    if rec is None:
        raise ClientError(f"there is no computation {cid}", 404, "not_found")
    if proposal_sm3 is not None and proposal_sm3 != rec["proposal_sm3"]:
        raise ClientError(f"computation {cid}: the proposal changed; its SM3 is now {rec['proposal_sm3']}, not "
                          f"{proposal_sm3}: read it again (rongxin mpc show) before approving", 409, "proposal_changed")
    return _post(client, f"/v1/mpc/computations/{cid}/approve", "mpc.approve",
                 {"computation_id": cid, "proposal_sm3": proposal_sm3 or rec["proposal_sm3"]})


def declare_dataset(client: LedgerClient, name: str, columns: dict[str, Any], *,
                    policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """``mpc.dataset``: the data set's columns and bounds and, optionally, its differential-
    privacy policy (``privacy.dp``: budget, minimum group, minimum difference)."""
    payload: dict[str, Any] = {"dataset": name, "columns": columns}
    if policy is not None:
        payload["policy"] = policy
    return file_tx(client, "mpc.dataset", payload)


def _open_sealed(client: LedgerClient, cid: str, sealed: dict[str, Any]) -> str:
    if client.identity is None:
        raise AuditFailed("the outputs are sealed to the readers the proposal named: sign as one of them")
    return unseal(cid, sealed, client.identity.account, client.identity.key)


def result(client: LedgerClient, cid: str) -> dict[str, Any]:
    """``GET /v1/mpc/computations/{id}``: ``{"status", "outputs", "transcript_sm3", "tx_id",
    "error", ...}``; outputs sealed to named readers are opened here when the client's identity
    is one of them (and checked against ``outputs_sm3``)."""
    code, body = client._request("GET", f"/v1/mpc/computations/{urllib.parse.quote(cid, safe='')}")
    if code != 200:
        err = error_of(code, body)
        raise ClientError(f"computation {cid}: {err}", code, err.code)
    out = dict(body)
    sealed = out.get("sealed")
    ident = client.identity
    if isinstance(sealed, dict) and ident is not None and ident.account in sealed.get("keys", {}):
        text = _open_sealed(client, cid, sealed)
        if sm3_hex(text.encode()) != out.get("outputs_sm3"):
            raise ClientError(f"computation {cid}: the sealed outputs do not match the recorded outputs_sm3", 409,
                              "outputs_mismatch")
        out["outputs"] = json.loads(text)
    return out


def audit_computation(client: LedgerClient, cid: str) -> dict[str, Any]:
    """The audit, here, from chain data read through the node: the record, every party's
    commitments and the recorded outputs. ``AuditFailed`` when it does not hold."""
    rec = computation(client, cid)
    if rec is None:
        raise ClientError(f"there is no computation {cid}", 404, "not_found")
    commits = commitments(client, cid, list(rec["proposal"]["parties"]))
    text = _state_text(client, k_out(cid))
    if text is not None and rec["proposal"]["readers"] != [PUBLIC]:
        text = _open_sealed(client, cid, json.loads(text)["sealed"])
    checked = audit(rec, commits, text)
    return {"computation_id": cid, "ok": True, "buckets_checked": checked, "buckets": rec["buckets"]}


def wait_final(client: LedgerClient, cid: str, timeout: float, poll: float = 1.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        res = result(client, cid)
        if res["status"] in ("done", "aborted", "disputed") or time.monotonic() > deadline:
            return res
        time.sleep(poll)


__all__ += ["AuditFailed", "wait_final"]
