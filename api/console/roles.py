"""The signed-in views of the other roles (docs/console.md §6.2): a rights holder registers a
work (``/register``), a court verifies an evidence package (``/verify``), a supervisor votes on
governance proposals (``/govern``). Each page signs in the browser with the identity the user
loads (``static/signed.js``, shared with ``/capture``); the node enforces every right again.

The page shows an action only to an identity that holds the right: ``/register`` and
``/verify`` ask ``GET /v1/identity`` (signed) for the business role, ``/govern`` compares the
loaded key with the voter keys listed per proposal here (public data: validator keys and
admin users' keys of the organisations a policy counts).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from forensics.rules import PLEDGE_PURPOSE
from ledger.node.chainstore import MAX_QUERY

from ..limits import VERIFY_PACKAGE_LIMIT
from ..routes.verify import VERIFY_ROLES
from ..sdk_works import DEFAULT_PLEDGE
from ..works_node import max_upload_bytes
from .pages import reads_of, render
from .reads import PAGE, Reads
from .signed import page_constants, vendor_version

router = APIRouter(include_in_schema=False)
#: what a page reads whole to hash it with sm-crypto's SM3 (no streaming API: 8 MiB took 1.8 s
#: at a load average of 18 on this machine, and the byte array costs ~8 bytes per byte)
PAGE_FILE_LIMIT = 32 * 1024 * 1024


def _libs() -> tuple[dict[str, str | None], bool]:
    libs = {p: vendor_version(p) for p in ("sm-crypto", "fflate")}
    return libs, all(v is not None for v in libs.values())


def _constants(**extra: Any) -> str:
    return page_constants(**extra)


@router.get("/register", response_class=HTMLResponse)
async def register(request: Request) -> HTMLResponse:
    libs, ready = _libs()
    return render(request, "register.html", libs=libs, ready=ready, pledge=DEFAULT_PLEDGE,
                  constants=_constants(pledge_purpose=PLEDGE_PURPOSE, max_upload=min(max_upload_bytes(), PAGE_FILE_LIMIT)))


@router.get("/verify", response_class=HTMLResponse)
async def verify(request: Request) -> HTMLResponse:
    libs, ready = _libs()
    return render(request, "verify.html", libs=libs, ready=ready,
                  constants=_constants(verify_roles=list(VERIFY_ROLES), max_package=min(VERIFY_PACKAGE_LIMIT, PAGE_FILE_LIMIT)))


def voters(r: Reads, policy: dict[str, Any], height: int) -> list[tuple[str, str]]:
    """(key hex, the identity it votes as) of every key that may vote under ``policy`` now
    (ledger.governance.voting.voter): supervisors by id, or the validators and active admin
    users (among the first 1,000 registered) of the organisations the policy counts."""
    gov = r.node.app.governance
    if gov is None:
        return []
    read = r.node.app.read
    if policy.get("rule") == "supervisors":
        return [(v.key.hex(), v.id) for v in gov.supervisors(read, height).validators]
    counted = {o for o, rec in gov.orgs(read, height).items() if policy.get("role") in rec.get("roles", [])}
    out = [(v.key.hex(), v.org) for v in gov.vset(read, height).validators if v.org in counted]
    out += [(str(u["key"]), str(u["org"])) for u in r.users()
            if u.get("role") == "admin" and u.get("status") == "active" and u.get("org") in counted and u.get("key")]
    return out


def proposals(r: Reads) -> list[dict[str, Any]]:
    """The newest ``PAGE`` accepted ``gov.propose`` of the audit log's first 1,000, each with
    its record ``sys/proposal/<id>``, whether it can still be voted and who may vote."""
    head = r.head
    out = []
    recs = [a for a in r.audit("gov.propose", MAX_QUERY) if a.get("code") == 0]
    for a in reversed(recs[-PAGE:]):
        prop = r.state_json(f"sys/proposal/{a['tx']}")
        if not isinstance(prop, dict):
            continue
        policy = prop.get("policy") or {"rule": "supervisors", "need": "majority"}
        votable = prop.get("status") == "open" and head + 1 <= int(prop.get("expiry", 0))
        done = set(prop.get("approvals", [])) | set(prop.get("rejections", []))
        keys = voters(r, policy, head + 1) if votable else []
        out.append({**prop, "id": a["tx"], "policy": policy, "votable": votable,
                    "action_text": json.dumps(prop.get("action"), ensure_ascii=False, sort_keys=True)[:600],
                    "policy_text": json.dumps(policy, ensure_ascii=False, sort_keys=True),
                    "voters": " ".join(k for k, who in keys if who not in done),
                    "voted": " ".join(k for k, who in keys if who in done)})
    return out


@router.get("/govern", response_class=HTMLResponse)
async def govern(request: Request) -> HTMLResponse:
    libs, ready = _libs()
    return render(request, "govern.html", libs=libs, ready=ready, constants=_constants(),
                  proposals=proposals(reads_of(request)))
