"""The host API a contract imports from ``env``: the state of one call (``HostCall``: its
context, fuel, linear memory, output buffer and result) and the host functions, each
charging its fuel before it does anything.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime

from ...codec import EncodingError, canonical, parse
from ..context import MAX_EVENTS_PER_TX, Context, Refused, contract_account
from .abi import (
    EVENT_TYPE,
    FUEL_CALL_SYSTEM,
    FUEL_EMIT,
    FUEL_HOST_CALL,
    FUEL_PER_BYTE,
    FUEL_PER_JSON_BYTE,
    FUEL_PER_STORED_BYTE,
    FUEL_STATE_READ,
    FUEL_STATE_WRITE,
    HOST_API,
    MAX_CALL_DEPTH,
    MAX_EVENT_TYPE,
    MAX_KEY_BYTES,
    MAX_OUTPUT_BYTES,
    MAX_REQUEST_BYTES,
    MAX_RESULT_BYTES,
    MAX_REVERT_MESSAGE,
    MAX_VALUE_BYTES,
    AbiError,
    OutOfFuel,
    Reverted,
    SystemCallRefused,
)


@dataclass
class HostCall:
    """One running contract call as the host functions see it: its context, fuel (in its
    wasmtime store), linear memory, the output buffer ``output_copy`` reads and the bytes
    ``return_data`` set. ``WasmRuntime.call`` pushes it on this thread's ``call_stack``."""

    ctx: Context  # the call's own context (merged into the caller's on success)
    contract: str
    store: wasmtime.Store
    system: Callable[[Context, str, dict[str, Any]], Any] | None
    events_before: int = 0  # events the transaction already holds outside this call
    memory: wasmtime.Memory | None = None
    output: bytes = b""
    result: bytes | None = None

    # ------------------------------------------------------------ fuel
    def charge(self, amount: int) -> None:
        left = self.store.get_fuel()
        if amount > left:
            self.store.set_fuel(0)
            raise OutOfFuel("out of fuel")
        self.store.set_fuel(left - amount)

    # ------------------------------------------------------------ memory
    def _mem(self, caller: wasmtime.Caller) -> wasmtime.Memory:
        if self.memory is None:
            mem = caller.get("memory")
            if not isinstance(mem, wasmtime.Memory):
                raise AbiError("the module exports no memory")
            self.memory = mem
        return self.memory

    def _span(self, caller: wasmtime.Caller, what: str, ptr: int, length: int, limit: int) -> tuple[int, int]:
        ptr &= 0xFFFFFFFF
        length &= 0xFFFFFFFF
        if length > limit:
            raise AbiError(f"bad host call {what}: {length} bytes; the limit is {limit}")
        size = self._mem(caller).data_len(caller)
        if ptr + length > size:
            raise AbiError(f"bad host call {what}: bytes {ptr}..{ptr + length} are outside memory "
                           f"({size} bytes)")
        return ptr, length

    def read(self, caller: wasmtime.Caller, what: str, ptr: int, length: int, limit: int) -> bytes:
        ptr, length = self._span(caller, what, ptr, length, limit)
        self.charge(FUEL_PER_BYTE * length)
        if length == 0:
            return b""
        base = ctypes.addressof(self._mem(caller).data_ptr(caller).contents)
        return ctypes.string_at(base + ptr, length)

    def write(self, caller: wasmtime.Caller, what: str, ptr: int, data: bytes) -> None:
        ptr, length = self._span(caller, what, ptr, len(data), MAX_OUTPUT_BYTES)
        self.charge(FUEL_PER_BYTE * length)
        if length:
            base = ctypes.addressof(self._mem(caller).data_ptr(caller).contents)
            ctypes.memmove(base + ptr, data, length)

    def key(self, caller: wasmtime.Caller, what: str, ptr: int, length: int) -> bytes:
        k = self.read(caller, what + " key", ptr, length, MAX_KEY_BYTES)
        if not k:
            raise AbiError(f"bad host call {what}: a key is 1 to {MAX_KEY_BYTES} bytes")
        return b"c/s/" + self.contract.encode() + b"/" + k

    def json(self, caller: wasmtime.Caller, what: str, ptr: int, length: int, limit: int) -> Any:
        raw = self.read(caller, what, ptr, length, limit)
        self.charge(FUEL_PER_JSON_BYTE * len(raw))
        try:
            return parse(raw)
        except EncodingError as exc:
            raise AbiError(f"bad host call {what}: {exc}") from None

    def put_output(self, data: bytes) -> int:
        self.output = data
        return len(data)


_LOCAL = threading.local()
# The wasmtime binding hands a host function's exception back through one process-wide slot,
# so calls must not overlap across threads; nested calls (same thread) re-enter.
RUN_LOCK = threading.RLock()


def call_stack() -> list[HostCall]:
    """This thread's running calls, outermost first (a ``call_system`` may nest them)."""
    stack: list[HostCall] | None = getattr(_LOCAL, "calls", None)
    if stack is None:
        stack = _LOCAL.calls = []
    return stack


def current_call() -> HostCall:
    stack = call_stack()
    if not stack:  # a host function outside a call: cannot happen through WasmRuntime
        raise AbiError("host function called outside a contract call")
    return stack[-1]


# ---------------------------------------------------------------- host functions
# Each takes the wasmtime Caller first. Errors are WasmError subclasses raised straight out:
# wasmtime turns them into a trap and the Python binding re-raises the same exception object
# from the outermost wasm entry, where WasmRuntime.call turns it into the receipt's reason.


def _h_state_get(caller: wasmtime.Caller, kp: int, kl: int) -> int:
    c = current_call()
    c.charge(FUEL_HOST_CALL + FUEL_STATE_READ)
    value = c.ctx.get(c.key(caller, "state_get", kp, kl))
    if value is None:
        c.output = b""
        return -1
    c.charge(FUEL_PER_BYTE * len(value))
    return c.put_output(value)


def _h_state_set(caller: wasmtime.Caller, kp: int, kl: int, vp: int, vl: int) -> None:
    c = current_call()
    c.charge(FUEL_HOST_CALL + FUEL_STATE_WRITE)
    key = c.key(caller, "state_set", kp, kl)
    value = c.read(caller, "state_set value", vp, vl, MAX_VALUE_BYTES)
    c.charge(FUEL_PER_STORED_BYTE * (kl + len(value)))
    c.ctx.put(key, value)


def _h_state_del(caller: wasmtime.Caller, kp: int, kl: int) -> None:
    c = current_call()
    c.charge(FUEL_HOST_CALL + FUEL_STATE_WRITE)
    c.ctx.delete(c.key(caller, "state_del", kp, kl))


def _h_output_copy(caller: wasmtime.Caller, dst: int) -> None:
    c = current_call()
    c.charge(FUEL_HOST_CALL)
    c.write(caller, "output_copy", dst, c.output)


def _h_caller(caller: wasmtime.Caller) -> int:
    c = current_call()
    c.charge(FUEL_HOST_CALL)
    return c.put_output(c.ctx.caller.encode())


def _h_contract_name(caller: wasmtime.Caller) -> int:
    c = current_call()
    c.charge(FUEL_HOST_CALL)
    return c.put_output(c.contract.encode())


def _h_height(caller: wasmtime.Caller) -> int:
    c = current_call()
    c.charge(FUEL_HOST_CALL)
    return c.ctx.height


def _h_time_ms(caller: wasmtime.Caller) -> int:
    c = current_call()
    c.charge(FUEL_HOST_CALL)
    return c.ctx.time_ms


def _h_emit(caller: wasmtime.Caller, tp: int, tl: int, kp: int, kl: int, dp: int, dl: int) -> None:
    c = current_call()
    c.charge(FUEL_HOST_CALL + FUEL_EMIT)
    raw_type = c.read(caller, "emit type", tp, tl, MAX_EVENT_TYPE)
    etype = raw_type.decode("ascii", "replace")
    if EVENT_TYPE.fullmatch(etype) is None:
        raise AbiError(f"bad host call emit: an event type is 1 to {MAX_EVENT_TYPE} characters of "
                       "A-Z, a-z, 0-9, '_', '.' and '-'")
    keys = c.json(caller, "emit keys", kp, kl, MAX_REQUEST_BYTES)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise AbiError("bad host call emit: keys must be a JSON array of strings")
    data = c.json(caller, "emit data", dp, dl, MAX_REQUEST_BYTES)
    if c.events_before + len(c.ctx.events) >= MAX_EVENTS_PER_TX:
        raise AbiError(f"bad host call emit: a transaction may emit at most {MAX_EVENTS_PER_TX} events")
    try:
        c.ctx.emit(f"{c.contract}:{etype}", keys, data)
    except Refused as exc:
        raise AbiError(f"bad host call emit: {exc}") from None


def _h_call_system(caller: wasmtime.Caller, rp: int, rl: int) -> int:
    c = current_call()
    c.charge(FUEL_HOST_CALL + FUEL_CALL_SYSTEM)
    if c.system is None:
        raise AbiError("bad host call call_system: no system contracts are reachable from here")
    if len(call_stack()) >= MAX_CALL_DEPTH:
        raise AbiError(f"bad host call call_system: calls nest at most {MAX_CALL_DEPTH} deep")
    req = c.json(caller, "call_system request", rp, rl, MAX_REQUEST_BYTES)
    if (not isinstance(req, dict) or set(req) != {"type", "args"} or not isinstance(req["type"], str)
            or not isinstance(req["args"], dict)):
        raise AbiError('bad host call call_system: the request is {"type": string, "args": object}')
    child = c.ctx.child(caller=contract_account(c.contract))
    child.fuel_limit = c.store.get_fuel()
    try:
        out = c.system(child, req["type"], req["args"])
    except OutOfFuel:  # a contract it called in turn ran out: so does this call
        c.store.set_fuel(0)
        raise
    except Refused as exc:
        c.charge(min(child.fuel_used, c.store.get_fuel()))
        raise SystemCallRefused(f"call_system {req['type']} refused: {exc}") from None
    c.charge(child.fuel_used)
    try:
        raw = canonical(out)
    except EncodingError as exc:
        raise SystemCallRefused(f"call_system {req['type']} returned a value with no JSON form: {exc}") from None
    if len(raw) > MAX_OUTPUT_BYTES:
        raise SystemCallRefused(f"call_system {req['type']} returned {len(raw)} bytes; the limit is "
                                f"{MAX_OUTPUT_BYTES}")
    c.charge(FUEL_PER_JSON_BYTE * len(raw))
    c.ctx.absorb(child)
    return c.put_output(raw)


def _h_return_data(caller: wasmtime.Caller, p: int, n: int) -> None:
    c = current_call()
    c.charge(FUEL_HOST_CALL)
    c.result = c.read(caller, "return_data", p, n, MAX_RESULT_BYTES)
    c.charge(FUEL_PER_JSON_BYTE * len(c.result))  # parsed when the method returns


def _h_revert(caller: wasmtime.Caller, p: int, n: int) -> None:
    c = current_call()
    c.charge(FUEL_HOST_CALL)
    msg = c.read(caller, "revert", p, min(n & 0xFFFFFFFF, MAX_REVERT_MESSAGE), MAX_REVERT_MESSAGE)
    text = msg.decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    raise Reverted(f"reverted: {text}" if text else "reverted")


HOST_FUNCS: dict[str, Callable[..., Any]] = {
    "state_get": _h_state_get,
    "state_set": _h_state_set,
    "state_del": _h_state_del,
    "output_copy": _h_output_copy,
    "caller": _h_caller,
    "contract_name": _h_contract_name,
    "height": _h_height,
    "time_ms": _h_time_ms,
    "emit": _h_emit,
    "call_system": _h_call_system,
    "return_data": _h_return_data,
    "revert": _h_revert,
}
assert set(HOST_FUNCS) == set(HOST_API)
