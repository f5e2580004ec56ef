"""Members: users bound to consortium certificates (``sys/user/<account>``) and nodes that
join, are certified and exit (``sys/join/<id>``, ``sys/node/<id>``): docs/governance.md §4.3-§4.7."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..codec import canonical
from ..consensus.types import Validator, ValidatorSet
from ..contracts.context import account_of
from ..crypto import Certificate, CryptoError, verify_certificate
from ..tx import Transaction
from .base import (
    K_JOIN,
    K_NODE,
    K_USER,
    MAX_PEM_CHARS,
    BlockContext,
    GovernanceRefused,
    Reader,
    Writes,
    exact,
    get,
    node_id,
)
from .schedule import remove, schedule_change
from .views import Views
from .voting import supervisor_id

USER_ROLES = ("admin", "user")


def verified_certificate(views: Views, pem: str, time_ms: int) -> Certificate:
    """A certificate issued by the genesis root, valid at ``time_ms`` (the block's time)."""
    if views.root is None:
        raise GovernanceRefused("this chain has no root certificate in its genesis")
    try:
        cert = Certificate.load(pem.encode())
        at = dt.datetime.fromtimestamp(time_ms / 1000, tz=dt.UTC)
        verify_certificate(cert, views.root, at=at)
    except (CryptoError, OverflowError, OSError, ValueError) as exc:
        raise GovernanceRefused(f"certificate refused: {exc}") from None
    return cert


def user_certificate(views: Views, tx: Transaction, read: Reader, time_ms: int,
                     height: int | None = None) -> Certificate:
    """The user certificate a ``user.register`` carries, checked for its sender."""
    p = tx.payload
    if set(p) != {"certificate"} or not isinstance(p["certificate"], str) or len(p["certificate"]) > MAX_PEM_CHARS:
        raise GovernanceRefused('user.register payload is {"certificate": PEM}')
    cert = verified_certificate(views, p["certificate"], time_ms)
    try:
        cert.business  # noqa: B018 - a business role that is not one of BUSINESS_ROLES is refused
    except CryptoError as exc:
        raise GovernanceRefused(f"certificate refused: {exc}") from None
    if cert.public_key().point != tx.sender:
        raise GovernanceRefused("the certificate is not for the key that signed this transaction")
    if cert.role not in USER_ROLES:
        raise GovernanceRefused(f"a user certificate has role admin or user, not {cert.role!r}")
    if cert.organization not in views.orgs(read, height):
        raise GovernanceRefused(f"{cert.organization!r} is not a member organisation of this consortium")
    return cert


def user_register(views: Views, bc: BlockContext, tx: Transaction, read: Reader) -> Writes:
    cert = user_certificate(views, tx, read, bc.time_ms, bc.height)
    account = account_of(tx.sender)
    old = views.user(read, account)
    if old is not None and old["status"] == "active":
        raise GovernanceRefused(f"{account} is already registered")
    if old is not None and old.get("serial") == format(cert.serial, "x"):
        raise GovernanceRefused("this certificate was revoked here; register with a new one")
    rec = {"account": account, "key": tx.sender.hex(), "name": cert.common_name, "org": cert.organization,
           "role": cert.role, "business": cert.business, "certificate": cert.fingerprint, "serial": format(cert.serial, "x"),
           "not_after": int(cert.not_after.timestamp() * 1000), "height": bc.height, "status": "active"}
    return {K_USER + account.encode(): canonical(rec)}


def revoke_user(views: Views, bc: BlockContext, read: Reader, account: str, reason: str) -> Writes:
    user = views.user(read, account)
    if user is None or user["status"] != "active":
        raise GovernanceRefused(f"no active user {account!r}")
    user.update(status="revoked", revoked_at=bc.height, reason=reason)
    return {K_USER + account.encode(): canonical(user)}


def user_revoke(views: Views, bc: BlockContext, tx: Transaction, read: Reader) -> Writes:
    p = tx.payload
    if set(p) != {"account", "reason"} or not isinstance(p["account"], str) or not isinstance(p["reason"], str):
        raise GovernanceRefused('user.revoke payload is {"account", "reason"}')
    target = views.user(read, p["account"])
    if target is None:
        raise GovernanceRefused(f"no user {p['account']!r}")
    me = account_of(tx.sender)
    actor = views.user(read, me)
    if me != p["account"] and not (actor is not None and actor["status"] == "active"
                                   and actor["role"] == "admin" and actor["org"] == target["org"]):
        raise GovernanceRefused("only the user or an admin of its organisation may revoke it")
    return revoke_user(views, bc, read, p["account"], f"by {me}: {p['reason']}")


def _address(addr: Any) -> list[Any]:
    if (not isinstance(addr, list) or len(addr) != 2 or not isinstance(addr[0], str)
            or isinstance(addr[1], bool) or not isinstance(addr[1], int) or not 0 < addr[1] < 65536):
        raise GovernanceRefused("address is [host, port]")
    return addr


def node_join(views: Views, bc: BlockContext, tx: Transaction, read: Reader) -> Writes:
    p = tx.payload
    exact(p, {"id", "org", "role", "address"}, 'node.join payload is {"id", "org", "role", "address": [host, port]}')
    nid = node_id(p["id"])
    if p["role"] not in ("consensus", "full") or not isinstance(p["org"], str) or not p["org"]:
        raise GovernanceRefused("a joining node's role is 'consensus' or 'full', with its organisation")
    addr = _address(p["address"])
    if (nid in views.vset(read, bc.height) or views.member(read, nid) is not None
            or views.revoked(read, nid) is not None):
        raise GovernanceRefused(f"node id {nid!r} is taken")
    old = get(read, K_JOIN + nid.encode())
    if old is not None and old["status"] in ("requested", "approved"):
        raise GovernanceRefused(f"a join request for {nid!r} is already {old['status']}")
    req = {"id": nid, "org": p["org"], "role": p["role"], "address": addr, "key": tx.sender.hex(),
           "height": bc.height, "status": "requested"}
    return {K_JOIN + nid.encode(): canonical(req)}


def node_certify(views: Views, bc: BlockContext, tx: Transaction, read: Reader) -> Writes:
    supervisor_id(views, bc, tx, read)
    p = tx.payload
    exact(p, {"node", "certificate", "from_height"}, 'node.certify payload is {"node", "certificate": PEM, "from_height"}')
    nid = node_id(p["node"])
    req = get(read, K_JOIN + nid.encode())
    if req is None or req["status"] != "approved":
        raise GovernanceRefused(f"the join request of {nid!r} is not approved")
    if not isinstance(p["certificate"], str) or len(p["certificate"]) > MAX_PEM_CHARS:
        raise GovernanceRefused("certificate must be a PEM string")
    cert = verified_certificate(views, p["certificate"], bc.time_ms)
    if cert.common_name != nid or cert.public_key().point.hex() != req["key"] or cert.role != req["role"]:
        raise GovernanceRefused("the certificate's name, key or role differs from the join request")
    from_height = p["from_height"]
    earliest = bc.height + views.params(read).exit_delay
    if isinstance(from_height, bool) or not isinstance(from_height, int) or from_height < earliest:
        raise GovernanceRefused(f"from_height must be an integer >= {earliest} (height + exit_delay)")
    writes: Writes = {}
    member = {"id": nid, "org": req["org"], "role": req["role"], "key": req["key"],
              "address": req["address"], "certificate": cert.fingerprint, "serial": format(cert.serial, "x"),
              "from_height": from_height, "status": "validator" if req["role"] != "full" else "full"}
    if req["role"] != "full":
        joining = Validator(nid, bytes.fromhex(req["key"]), req["org"], req["role"])
        change, effective = schedule_change(bc, views.schedule(read), from_height,
                                            lambda vs: ValidatorSet((*vs.validators, joining)))
        writes.update(change)
        member["from_height"] = effective  # later than asked if another change is pending
    writes[K_NODE + nid.encode()] = canonical(member)
    writes[K_JOIN + nid.encode()] = canonical({**req, "status": "certified"})
    return writes


def node_exit(views: Views, bc: BlockContext, tx: Transaction, read: Reader) -> Writes:
    exact(tx.payload, {"node"}, 'node.exit payload is {"node": id}')
    nid = node_id(tx.payload["node"])
    schedule = views.schedule(read)
    v = views.vset_in(schedule, bc.height).get(nid)
    if v is None:
        raise GovernanceRefused(f"{nid!r} is not a validator")
    if v.key != tx.sender:
        raise GovernanceRefused("only the validator itself may announce its exit")
    return remove(views, bc, read, schedule, views.params(read), nid, "active exit")
