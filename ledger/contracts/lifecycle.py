"""The user-contract lifecycle (REQUIREMENTS L7) and calls into installed contracts.

upload → review (a governance proposal ``contract.approve`` passed under its voting policy)
→ install → init → (upgrade: a newer approved version, state kept) → freeze / unfreeze →
destroy. Every step is a transaction and appends an entry to the contract's history.

State (values canonical JSON unless said otherwise):

==============================  =============================================================
key                             value
==============================  =============================================================
``c/meta/<name>``               ``{"name", "owner", "status", "version", "next", "steps",
                                "permissions": {method: ["*"] | [account...]}}``; status is
                                ``uploaded`` (nothing installed yet), ``installed`` (not
                                initialised), ``active``, ``frozen`` or ``destroyed``
``c/ver/<name>/<v>``            a version: ``{"code_hash", "size", "methods", "has_init",
                                "status": review|approved|installed|superseded, "by", "height",
                                "approvals"}``
``c/vcode/<name>/<v>``          the module bytes of version ``v`` (raw WebAssembly)
``c/code/<name>``               the module bytes of the installed version (raw), what calls run
``c/hist/<name>/<seq (8, BE)>`` one lifecycle step: ``{"step", "by", "height", "tx", ...}``
``c/s/<name>/<key>``            the contract's own state (raw bytes, written by the contract)
==============================  =============================================================

Transaction types (payloads):

- ``contract.upload {"name", "code": base64, "description"?}``: a new contract (the caller
  owns it) or, by its owner, a new version of one.
- ``contract.install {"name", "version"}``: owner; an approved version of a contract with
  none installed yet.
- ``contract.init {"name", "args"?}``: owner, once; runs the module's ``init`` if it has one.
- ``contract.upgrade {"name", "version", "args"?}``: owner; switches to a newer approved
  version, the contract's state untouched; runs the new module's ``upgrade`` if it has one.
- ``contract.freeze`` / ``contract.unfreeze {"name", "reason"}``: owner (governance may too,
  through a proposal): a frozen contract refuses every call.
- ``contract.destroy {"name", "reason"}``: owner (or governance); final, the name is never
  reused.
- ``contract.permit {"name", "method", "accounts": ["*"] | [account...]}``: owner; who may
  call a method (every method is open until restricted).
- ``contract.call {"contract", "method", "args"?, "fuel"?, "keys"?}``: anyone allowed by the
  method's permission, on an ``active`` contract. ``keys`` (optional) lists the contract keys
  (strings) the call is expected to touch, so it can run ahead in a worker process.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from ..codec import parse
from ..crypto import sm3
from ..tx import Transaction
from .context import Context, Refused, TxType

__all__ = ["LifecycleRefused", "approve_version", "contract_history", "contract_info", "lifecycle_types"]

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
MAX_CODE_BYTES = 40 * 1024  # base64 inside a 64 KiB transaction
MAX_HINT_KEYS = 64
INTERNAL_METHODS = ("init", "upgrade", "alloc")

SystemCall = Callable[[Context, str, dict[str, Any]], Any]


class LifecycleRefused(Refused):
    """A lifecycle step or a call is refused; the message goes into the receipt."""


def _name(value: Any) -> str:
    if (not isinstance(value, str) or not 0 < len(value) <= 64 or not set(value) <= NAME_CHARS
            or not value[0].isalnum()):
        raise LifecycleRefused("a contract name is 1-64 characters of a-z, 0-9, '-', '_' and '.', "
                               "starting with a letter or digit")
    return value


def _version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 1_000_000:
        raise LifecycleRefused("version must be a positive integer")
    return value


def k_meta(name: str) -> bytes:
    return b"c/meta/" + name.encode()


def k_ver(name: str, v: int) -> bytes:
    return b"c/ver/" + name.encode() + b"/" + str(v).encode()


def k_vcode(name: str, v: int) -> bytes:
    return b"c/vcode/" + name.encode() + b"/" + str(v).encode()


def k_code(name: str) -> bytes:
    return b"c/code/" + name.encode()


def k_hist(name: str, seq: int) -> bytes:
    return b"c/hist/" + name.encode() + b"/" + seq.to_bytes(8, "big")


def k_state(name: str, key: bytes) -> bytes:
    return b"c/s/" + name.encode() + b"/" + key


def _check_keys(payload: dict[str, Any], allowed: set[str]) -> None:
    extra = set(payload) - allowed
    if extra:
        raise LifecycleRefused(f"unexpected fields {sorted(extra)}; allowed: {sorted(allowed)}")


def _meta(get: Callable[[bytes], bytes | None], name: str) -> dict[str, Any]:
    raw = get(k_meta(name))
    if raw is None:
        raise LifecycleRefused(f"no contract {name!r}")
    return dict(parse(raw))


def _history(ctx: Context, meta: dict[str, Any], step: str, **facts: Any) -> None:
    seq = int(meta.get("steps", 0))
    entry = {"step": step, "by": ctx.caller, "height": ctx.height, "time_ms": ctx.time_ms,
             "tx": ctx.tx.id.hex(), "version": meta.get("version", 0), **facts}
    ctx.put_json(k_hist(meta["name"], seq), entry)
    meta["steps"] = seq + 1
    ctx.emit("contract." + step, [meta["name"]], {"version": meta.get("version", 0), "by": ctx.caller})


def _owner(ctx: Context, meta: dict[str, Any], what: str) -> None:
    if ctx.caller != meta["owner"]:
        raise LifecycleRefused(f"only the owner of {meta['name']!r} may {what} it")


def _live(meta: dict[str, Any]) -> None:
    if meta["status"] == "destroyed":
        raise LifecycleRefused(f"contract {meta['name']!r} is destroyed")


def _owned(ctx: Context, allowed: set[str], what: str, field: str = "name") -> tuple[dict[str, Any], str,
                                                                                   dict[str, Any]]:
    """The payload, name and record of a live contract the caller owns (``what``: the step)."""
    p = ctx.tx.payload
    _check_keys(p, allowed)
    name = _name(p.get(field))
    meta = _meta(ctx.get, name)
    _live(meta)
    _owner(ctx, meta, what)
    return p, name, meta


class Lifecycle:
    """The lifecycle transaction handlers, over a WebAssembly runtime and the system contracts
    a user contract may call."""

    def __init__(self, runtime_factory: Callable[[], Any], system: SystemCall | None) -> None:
        self._runtime_factory = runtime_factory
        self._runtime: Any = None
        self.system = system

    @property
    def runtime(self) -> Any:
        if self._runtime is None:
            self._runtime = self._runtime_factory()
        return self._runtime

    # ------------------------------------------------------------ upload
    def upload(self, ctx: Context) -> None:
        from .wasm import validate_module

        p = ctx.tx.payload
        _check_keys(p, {"name", "code", "description"})
        name = _name(p.get("name"))
        if not isinstance(p.get("code"), str):
            raise LifecycleRefused("code must be the module in base64")
        try:
            code = base64.b64decode(p["code"], validate=True)
        except (binascii.Error, ValueError):
            raise LifecycleRefused("code must be the module in base64") from None
        if not 0 < len(code) <= MAX_CODE_BYTES:
            raise LifecycleRefused(f"a module is 1 to {MAX_CODE_BYTES} bytes")
        desc = p.get("description", "")
        if not isinstance(desc, str) or len(desc) > 1024:
            raise LifecycleRefused("description must be a string of at most 1024 characters")
        info = validate_module(code)
        raw = ctx.get(k_meta(name))
        if raw is None:
            meta: dict[str, Any] = {"name": name, "owner": ctx.caller, "status": "uploaded", "version": 0,
                                    "next": 1, "steps": 0, "permissions": {}, "description": desc}
        else:
            meta = dict(parse(raw))
            _live(meta)
            _owner(ctx, meta, "upload a new version of")
        v = int(meta["next"])
        meta["next"] = v + 1
        code_hash = sm3(code).hex()
        ctx.put_json(k_ver(name, v), {"code_hash": code_hash, "size": len(code), "methods": list(info.methods),
                                      "has_init": info.has_init, "status": "review", "by": ctx.caller,
                                      "height": ctx.height, "approvals": [], "description": desc})
        ctx.put(k_vcode(name, v), code)
        _history(ctx, meta, "upload", uploaded=v, code_hash=code_hash)
        ctx.put_json(k_meta(name), meta)
        ctx.result = {"name": name, "version": v, "code_hash": code_hash}

    # ------------------------------------------------------------ install / init / upgrade
    def _approved(self, ctx: Context, name: str, v: int) -> dict[str, Any]:
        raw = ctx.get(k_ver(name, v))
        if raw is None:
            raise LifecycleRefused(f"contract {name!r} has no version {v}")
        ver = dict(parse(raw))
        if ver["status"] != "approved":
            raise LifecycleRefused(f"version {v} of {name!r} is {ver['status']}, not approved")
        return ver

    def install(self, ctx: Context) -> None:
        p, name, meta = _owned(ctx, {"name", "version"}, "install")
        v = _version(p.get("version"))
        if meta["status"] != "uploaded":
            raise LifecycleRefused(f"{name!r} already has version {meta['version']} installed; use contract.upgrade")
        ver = self._approved(ctx, name, v)
        code = ctx.get(k_vcode(name, v))
        assert code is not None
        ver["status"] = "installed"
        ctx.put_json(k_ver(name, v), ver)
        ctx.put(k_code(name), code)
        meta["version"] = v
        meta["status"] = "installed"
        _history(ctx, meta, "install")
        ctx.put_json(k_meta(name), meta)

    def _run_hook(self, ctx: Context, name: str, code: bytes, method: str, args: Any) -> Any:
        return self.runtime.call(ctx, contract=name, code=code, method=method, args=args, system=self.system)

    def init(self, ctx: Context) -> None:
        p, name, meta = _owned(ctx, {"name", "args", "fuel"}, "initialise")
        if meta["status"] != "installed":
            raise LifecycleRefused(f"{name!r} is {meta['status']}; only an installed, uninitialised contract "
                                   "can be initialised")
        ver = dict(parse(ctx.get(k_ver(name, meta["version"])) or b"{}"))
        if ver.get("has_init"):
            code = ctx.get(k_code(name))
            assert code is not None
            ctx.result = self._run_hook(ctx, name, code, "init", p.get("args", {}))
        meta["status"] = "active"
        _history(ctx, meta, "init")
        ctx.put_json(k_meta(name), meta)

    def upgrade(self, ctx: Context) -> None:
        p, name, meta = _owned(ctx, {"name", "version", "args", "fuel"}, "upgrade")
        v = _version(p.get("version"))
        if meta["status"] not in ("active", "frozen"):
            raise LifecycleRefused(f"{name!r} is {meta['status']}; only an initialised contract can be upgraded")
        old = int(meta["version"])
        if v <= old:
            raise LifecycleRefused(f"version {v} is not newer than the installed version {old}")
        ver = self._approved(ctx, name, v)
        code = ctx.get(k_vcode(name, v))
        assert code is not None
        old_ver = dict(parse(ctx.get(k_ver(name, old)) or b"{}"))
        old_ver["status"] = "superseded"
        ctx.put_json(k_ver(name, old), old_ver)
        ver["status"] = "installed"
        ctx.put_json(k_ver(name, v), ver)
        ctx.put(k_code(name), code)
        meta["version"] = v
        if "upgrade" in ver["methods"]:
            ctx.result = self._run_hook(ctx, name, code, "upgrade", p.get("args", {"from": old}))
        _history(ctx, meta, "upgrade", previous=old)
        ctx.put_json(k_meta(name), meta)

    # ------------------------------------------------------------ freeze / destroy / permissions
    def _status_step(self, ctx: Context, step: str) -> None:
        p, _, meta = _owned(ctx, {"name", "reason"}, step)
        reason = p.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 512:
            raise LifecycleRefused("reason must be a string of at most 512 characters")
        set_status(ctx, meta, step, reason)

    def freeze(self, ctx: Context) -> None:
        self._status_step(ctx, "freeze")

    def unfreeze(self, ctx: Context) -> None:
        self._status_step(ctx, "unfreeze")

    def destroy(self, ctx: Context) -> None:
        self._status_step(ctx, "destroy")

    def permit(self, ctx: Context) -> None:
        p, name, meta = _owned(ctx, {"name", "method", "accounts"}, "set permissions of")
        method = p.get("method")
        if not isinstance(method, str) or not 0 < len(method) <= 64 or method in INTERNAL_METHODS:
            raise LifecycleRefused(f"method must be a name of 1-64 characters other than {INTERNAL_METHODS}")
        accounts = p.get("accounts")
        if (not isinstance(accounts, list) or not 0 < len(accounts) <= 256
                or not all(isinstance(a, str) and 0 < len(a) <= 80 for a in accounts)):
            raise LifecycleRefused('accounts is ["*"] or a list of 1-256 account ids')
        perms = dict(meta.get("permissions", {}))
        perms[method] = sorted(set(accounts))
        meta["permissions"] = perms
        _history(ctx, meta, "permit", method=method, accounts=perms[method])
        ctx.put_json(k_meta(name), meta)

    # ------------------------------------------------------------ calls
    def call(self, ctx: Context) -> None:
        p = ctx.tx.payload
        _check_keys(p, {"contract", "method", "args", "fuel", "keys"})
        name = _name(p.get("contract"))
        method = p.get("method")
        if not isinstance(method, str) or not 0 < len(method) <= 64:
            raise LifecycleRefused("method must be a string of 1-64 characters")
        if method in INTERNAL_METHODS:
            raise LifecycleRefused(f"{method!r} is not callable by a transaction")
        meta = _meta(ctx.get, name)
        if meta["status"] != "active":
            raise LifecycleRefused(f"contract {name!r} is {meta['status']}"
                                   + (": it refuses calls" if meta["status"] in ("frozen", "destroyed") else ""))
        allowed = meta.get("permissions", {}).get(method)
        if allowed is not None and "*" not in allowed and ctx.caller not in allowed:
            raise LifecycleRefused(f"{ctx.caller} may not call {name}.{method}")
        code = ctx.get(k_code(name))
        assert code is not None
        ctx.result = self.runtime.call(ctx, contract=name, code=code, method=method, args=p.get("args", {}),
                                       system=self.system)

    def types(self) -> dict[str, TxType]:
        return {
            "contract.upload": TxType(self.upload, admin=True),
            "contract.install": TxType(self.install, admin=True),
            "contract.init": TxType(self.init, admin=True, metered=True),
            "contract.upgrade": TxType(self.upgrade, admin=True, metered=True),
            "contract.freeze": TxType(self.freeze, admin=True),
            "contract.unfreeze": TxType(self.unfreeze, admin=True),
            "contract.destroy": TxType(self.destroy, admin=True),
            "contract.permit": TxType(self.permit, admin=True),
            "contract.call": TxType(self.call, keys=call_keys, parallel=True, metered=True),
        }


def call_keys(tx: Transaction) -> list[bytes] | None:
    """The keys a call touches: the contract's record and code, and the hinted own keys."""
    p = tx.payload
    name = p.get("contract")
    if not isinstance(name, str) or not set(name) <= NAME_CHARS or not 0 < len(name) <= 64:
        return None
    keys = [k_meta(name), k_code(name)]
    hint = p.get("keys", [])
    if not isinstance(hint, list) or len(hint) > MAX_HINT_KEYS:
        return keys
    keys.extend(k_state(name, h.encode()) for h in hint if isinstance(h, str))
    return keys


def set_status(ctx: Context, meta: dict[str, Any], step: str, reason: str) -> None:
    """Freeze, unfreeze or destroy (also used by governance actions)."""
    name, status = meta["name"], meta["status"]
    if step == "freeze":
        if status != "active":
            raise LifecycleRefused(f"{name!r} is {status}; only an active contract can be frozen")
        meta["status"] = "frozen"
    elif step == "unfreeze":
        if status != "frozen":
            raise LifecycleRefused(f"{name!r} is {status}, not frozen")
        meta["status"] = "active"
    elif step == "destroy":
        meta["status"] = "destroyed"
    else:
        raise LifecycleRefused(f"unknown step {step!r}")
    _history(ctx, meta, step, reason=reason)
    ctx.put_json(k_meta(name), meta)


def approve_version(ctx: Context, name: str, version: int, proposal: str, approvals: list[str]) -> None:
    """Mark a version reviewed and approved (run by governance when a ``contract.approve``
    proposal passes under its voting policy)."""
    meta = _meta(ctx.get, name)
    _live(meta)
    raw = ctx.get(k_ver(name, version))
    if raw is None:
        raise LifecycleRefused(f"contract {name!r} has no version {version}")
    ver = dict(parse(raw))
    if ver["status"] != "review":
        raise LifecycleRefused(f"version {version} of {name!r} is {ver['status']}, not under review")
    ver["status"] = "approved"
    ver["approvals"] = sorted(approvals)
    ctx.put_json(k_ver(name, version), ver)
    _history(ctx, meta, "review", approved=version, proposal=proposal, approvals=sorted(approvals))
    ctx.put_json(k_meta(name), meta)


def check_reviewable(get: Callable[[bytes], bytes | None], name: str, version: int) -> None:
    meta = _meta(get, _name(name))
    _live(meta)
    raw = get(k_ver(name, _version(version)))
    if raw is None or parse(raw)["status"] != "review":
        raise LifecycleRefused(f"version {version} of {name!r} is not under review")


def contract_info(read: Callable[[bytes], bytes | None], name: str) -> dict[str, Any] | None:
    """The record of a contract and its versions (for the API)."""
    raw = read(k_meta(name))
    if raw is None:
        return None
    meta = dict(parse(raw))
    meta["versions"] = {}
    for v in range(1, int(meta["next"])):
        ver = read(k_ver(name, v))
        if ver is not None:
            meta["versions"][str(v)] = parse(ver)
    return meta


def contract_history(read: Callable[[bytes], bytes | None], name: str) -> list[dict[str, Any]]:
    raw = read(k_meta(name))
    if raw is None:
        return []
    out = []
    for seq in range(int(parse(raw).get("steps", 0))):
        entry = read(k_hist(name, seq))
        if entry is not None:
            out.append(dict(parse(entry)))
    return out


def lifecycle_types(runtime_factory: Callable[[], Any], system: SystemCall | None) -> dict[str, TxType]:
    return Lifecycle(runtime_factory, system).types()
