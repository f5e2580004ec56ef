"""The WebAssembly sandbox for user contracts (docs/contracts-abi.md is the contract writer's
reference; this module is its implementation).

A user contract is a core WebAssembly module run by wasmtime. Every call gets a fresh instance
in a fresh store: nothing survives between calls except what the contract wrote through the
host API into its own state keys. The engine is configured for consensus:

- fuel metering: every call runs under a step budget (``ctx.fuel_limit``); host calls are
  charged fuel too (prices below), so everything a call does is bounded by its budget, and a
  call that exhausts its budget is charged exactly that budget;
- NaN canonicalisation (floats give the same bits everywhere); threads, shared memory, SIMD,
  relaxed SIMD, memory64, multiple memories, GC, exceptions and stack switching are off, so a
  module using them is refused at upload;
- bounded memory (``MAX_MEMORY_PAGES``), tables, wasm stack (``MAX_WASM_STACK``), module size
  and exports; imports must be functions of the host API (module ``env``) with their exact
  signatures, checked by ``validate_module`` at upload and again before a call.

Failures are ``Refused`` subclasses, so a failing call becomes a refused receipt carrying the
reason while the rest of its block commits; the call's writes and events are dropped and the
fuel it used stays charged (``ctx.fuel_used``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime

from ..codec import EncodingError, canonical, parse
from ..crypto import sm3
from .context import MAX_EVENTS_PER_TX, Context, Refused, contract_account

__all__ = [
    "EXAMPLES_DIR",
    "HOST_API",
    "AbiError",
    "BadArgs",
    "InvalidModule",
    "MemoryLimit",
    "ModuleInfo",
    "OutOfFuel",
    "Reverted",
    "SystemCallRefused",
    "UnknownMethod",
    "WasmError",
    "WasmRuntime",
    "WasmTrap",
    "compile_wat",
    "example",
    "validate_module",
]

# ---------------------------------------------------------------- limits
MAX_MODULE_BYTES = 256 * 1024  # the lifecycle's upload limit is lower (40 KiB)
MAX_EXPORTS = 64
MAX_METHOD_NAME = 64
PAGE = 65536
MAX_MEMORY_PAGES = 64  # 4 MiB of linear memory
MAX_MEMORY_BYTES = MAX_MEMORY_PAGES * PAGE
MAX_TABLE_ELEMENTS = 10_000
MAX_WASM_STACK = 256 * 1024  # bytes of native stack wasm code may use
MAX_CALL_DEPTH = 4  # contract → call_system → contract → ... nesting
MAX_ARGS_BYTES = 64 * 1024
MAX_KEY_BYTES = 256
MAX_VALUE_BYTES = 64 * 1024
MAX_RESULT_BYTES = 4096  # what return_data may hand back (it goes into the receipt)
MAX_REQUEST_BYTES = 64 * 1024  # a call_system request
MAX_OUTPUT_BYTES = 64 * 1024  # a call_system result
MAX_EVENT_TYPE = 64
MAX_REVERT_MESSAGE = 256

# ---------------------------------------------------------------- fuel prices of the host API
# One unit of fuel is one WebAssembly instruction (wasmtime's accounting: most instructions
# cost 1, block/loop/end/nop/drop 0, bulk memory instructions 1 per byte). On the reference
# machine wasm runs at 4-15 units per nanosecond (tight branchy loops to straight arithmetic)
# and at 1-2 per nanosecond when it misses the cache on purpose. Host work is priced at
# 3.5 units per nanosecond of what it costs here (the Python host call itself, the state
# read from LMDB, the sparse Merkle tree update a write causes at commit), so a contract that
# spends its budget on host calls takes no longer than one that spends it on slow wasm.
FUEL_CALL = 300_000  # every contract call: instantiation, argument encoding (~110 us)
FUEL_HOST_CALL = 30_000  # every host call, before anything else (~9 us)
FUEL_STATE_READ = 45_000  # state_get, on top of FUEL_HOST_CALL (a tree read: ~10 us)
FUEL_STATE_WRITE = 110_000  # state_set / state_del, on top (its tree update at commit: ~30 us)
FUEL_PER_BYTE = 1  # every byte copied between linear memory and the host (as memory.copy)
FUEL_PER_STORED_BYTE = 50  # every byte of key + value a state_set stores (kept by every node)
FUEL_PER_JSON_BYTE = 50  # every byte of JSON the host parses or encodes (emit, call_system, results)
FUEL_EMIT = 75_000  # emit, on top of FUEL_HOST_CALL (~30 us)
FUEL_CALL_SYSTEM = 300_000  # call_system, on top of FUEL_HOST_CALL; plus the callee's own fuel

# ---------------------------------------------------------------- errors


class WasmError(Refused):
    """A user-contract call (or upload) failed; the message goes into the receipt."""


class InvalidModule(WasmError):
    """The bytes are not a module this ledger runs (refused at upload, before any call)."""


class UnknownMethod(WasmError):
    """The module exports no method of that name."""


class BadArgs(WasmError):
    """The call's arguments cannot be passed to the contract."""


class OutOfFuel(WasmError):
    """The call used its whole fuel budget; it is charged exactly that budget."""


class WasmTrap(WasmError):
    """The contract trapped (unreachable, out-of-bounds access, stack overflow, ...)."""


class MemoryLimit(WasmError):
    """The contract needed more linear memory than ``MAX_MEMORY_BYTES``."""


class Reverted(WasmError):
    """The contract refused the call itself (``revert`` or a non-zero status)."""


class AbiError(WasmError):
    """The contract broke the ABI: a host call with bad arguments (a pointer out of range, a
    key too long, malformed JSON), a bad ``alloc`` or an invalid result."""


class SystemCallRefused(WasmError):
    """A system contract called through ``call_system`` refused; the whole call fails."""


# ---------------------------------------------------------------- the host API

_I32 = wasmtime.ValType.i32()
_I64 = wasmtime.ValType.i64()

#: name → (params, results) of every function a module may import from ``env``
HOST_API: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "state_get": (("i32", "i32"), ("i32",)),
    "state_set": (("i32", "i32", "i32", "i32"), ()),
    "state_del": (("i32", "i32"), ()),
    "output_copy": (("i32",), ()),
    "caller": ((), ("i32",)),
    "contract_name": ((), ("i32",)),
    "height": ((), ("i64",)),
    "time_ms": ((), ("i64",)),
    "emit": (("i32", "i32", "i32", "i32", "i32", "i32"), ()),
    "call_system": (("i32", "i32"), ("i32",)),
    "return_data": (("i32", "i32"), ()),
    "revert": (("i32", "i32"), ()),
}
_VALTYPES = {"i32": _I32, "i64": _I64}
_METHOD_SIG = (("i32", "i32"), ("i32",))
_ALLOC_SIG = (("i32",), ("i32",))
_METHOD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_.\-]+")
RESERVED_EXPORTS = ("memory", "alloc")

_TRAP_KINDS: dict[wasmtime.TrapCode, str] = {
    wasmtime.TrapCode.STACK_OVERFLOW: "stack overflow",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "out-of-bounds memory access",
    wasmtime.TrapCode.HEAP_MISALIGNED: "misaligned memory access",
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: "out-of-bounds table access",
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: "indirect call to a null table entry",
    wasmtime.TrapCode.BAD_SIGNATURE: "indirect call signature mismatch",
    wasmtime.TrapCode.INTEGER_OVERFLOW: "integer overflow",
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "integer division by zero",
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid conversion to integer",
    wasmtime.TrapCode.UNREACHABLE: "unreachable",
}

EXAMPLES_DIR = Path(__file__).with_name("examples")


def _sig(ft: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(t) for t in ft.params), tuple(str(t) for t in ft.results)


# ---------------------------------------------------------------- engine


def _config() -> wasmtime.Config:
    c = wasmtime.Config()
    c.consume_fuel = True
    c.cranelift_nan_canonicalization = True
    c.cranelift_opt_level = "speed"
    c.parallel_compilation = False  # no compiler threads (worker processes fork)
    c.max_wasm_stack = MAX_WASM_STACK
    c.wasm_threads = False
    c.shared_memory = False
    c.wasm_relaxed_simd = False
    c.wasm_simd = False
    c.wasm_memory64 = False
    c.wasm_multi_memory = False
    c.wasm_gc = False
    c.wasm_function_references = False
    c.wasm_exceptions = False
    c.wasm_stack_switching = False
    c.wasm_custom_page_sizes = False
    c.wasm_wide_arithmetic = False
    c.wasm_component_model = False
    # bulk memory and reference types stay on: wasmtime needs them, and it charges bulk
    # memory instructions per byte
    return c


_ENGINE: tuple[int, wasmtime.Engine] | None = None
_ENGINE_LOCK = threading.Lock()


def engine() -> wasmtime.Engine:
    """The process's engine (one per process: a forked worker makes its own)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None or _ENGINE[0] != os.getpid():
            _ENGINE = (os.getpid(), wasmtime.Engine(_config()))
        return _ENGINE[1]


# ---------------------------------------------------------------- validation


@dataclass(frozen=True)
class ModuleInfo:
    methods: tuple[str, ...]  # callable methods (exports with the method signature), sorted
    has_init: bool
    size: int


def _leb(code: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(code) or shift > 35:
            raise InvalidModule("invalid module: truncated or overlong LEB128 number")
        b = code[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def _limits(code: bytes, pos: int) -> tuple[int, int]:
    """(minimum, position after) of a limits field (32-bit, non-shared: what the engine allows)."""
    flags = code[pos]
    if flags not in (0, 1):
        raise InvalidModule(f"invalid module: unsupported limits flags {flags:#x}")
    low, pos = _leb(code, pos + 1)
    if flags == 1:
        _, pos = _leb(code, pos)
    return low, pos


def _check_sections(code: bytes) -> None:
    """Declared table and memory sizes (the engine has already validated the module)."""
    pos = 8
    while pos < len(code):
        sid = code[pos]
        size, pos = _leb(code, pos + 1)
        body, end = pos, pos + size
        if sid == 4:  # tables
            count, p = _leb(code, body)
            for _ in range(count):
                if code[p] == 0x40:  # a table with an initialiser: not without function references
                    raise InvalidModule("invalid module: tables with initialisers are not supported")
                low, p = _limits(code, p + 1)  # after the reference type
                if low > MAX_TABLE_ELEMENTS:
                    raise InvalidModule(f"invalid module: a table of {low} elements; the limit is "
                                        f"{MAX_TABLE_ELEMENTS}")
        elif sid == 5:  # memories
            count, p = _leb(code, body)
            for _ in range(count):
                low, p = _limits(code, p)
                if low > MAX_MEMORY_PAGES:
                    raise InvalidModule(f"invalid module: memory of {low} pages ({low * PAGE} bytes) at "
                                        f"start; the limit is {MAX_MEMORY_PAGES} pages ({MAX_MEMORY_BYTES} bytes)")
        pos = end


def _wasmtime_reason(exc: Exception) -> str:
    """The useful line of a wasmtime error ("SIMD support is not enabled (at offset 0xb)")."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if "Caused by:" in lines:
        rest = lines[lines.index("Caused by:") + 1:]
        return "; ".join(re.sub(r"^\d+:\s*", "", ln) for ln in rest) or lines[0]
    return lines[0] if lines else type(exc).__name__


def _compile(code: bytes) -> tuple[wasmtime.Module, ModuleInfo]:
    if not isinstance(code, bytes | bytearray):
        raise InvalidModule("a module is bytes")
    code = bytes(code)
    if not 0 < len(code) <= MAX_MODULE_BYTES:
        raise InvalidModule(f"a module is 1 to {MAX_MODULE_BYTES} bytes, this one is {len(code)}")
    if code[:4] != b"\0asm":
        raise InvalidModule("not a WebAssembly binary (no \\0asm header); compile text modules first")
    if code[4:8] != b"\x01\x00\x00\x00":
        raise InvalidModule("not a core WebAssembly module (version 1); components are not supported")
    try:
        module = wasmtime.Module(engine(), code)
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule(f"invalid module: {_wasmtime_reason(exc)}") from None
    for imp in module.imports:
        where = f"{imp.module}.{imp.name}"
        ty = imp.type
        if imp.module != "env" or imp.name not in HOST_API:
            raise InvalidModule(f"import {where} is not in the host API (module env: "
                                f"{', '.join(sorted(HOST_API))})")
        if not isinstance(ty, wasmtime.FuncType):
            raise InvalidModule(f"import {where} must be a function")
        if _sig(ty) != HOST_API[imp.name]:
            want = HOST_API[imp.name]
            raise InvalidModule(f"import {where} has type {_sig(ty)}, the host API's is {want}")
    exports = module.exports
    if len(exports) > MAX_EXPORTS:
        raise InvalidModule(f"the module has {len(exports)} exports; the limit is {MAX_EXPORTS}")
    methods: list[str] = []
    seen: dict[str, Any] = {}
    for exp in exports:
        seen[exp.name] = exp.type
        ty = exp.type
        if not isinstance(ty, wasmtime.FuncType) or exp.name in RESERVED_EXPORTS or exp.name.startswith("_"):
            continue
        if _METHOD_NAME.fullmatch(exp.name) is None or len(exp.name) > MAX_METHOD_NAME:
            raise InvalidModule(f"export {exp.name!r}: a method name is 1 to {MAX_METHOD_NAME} letters, "
                                "digits and '_', starting with a letter (prefix helpers with '_')")
        if _sig(ty) != _METHOD_SIG:
            raise InvalidModule(f"export {exp.name!r} has type {_sig(ty)}; a method takes (i32 args_ptr, "
                                "i32 args_len) and returns an i32 status")
        methods.append(exp.name)
    mem = seen.get("memory")
    if not isinstance(mem, wasmtime.MemoryType):
        raise InvalidModule("the module must export its linear memory as 'memory'")
    alloc = seen.get("alloc")
    if not isinstance(alloc, wasmtime.FuncType) or _sig(alloc) != _ALLOC_SIG:
        raise InvalidModule("the module must export 'alloc' of type (i32 len) -> i32 ptr")
    _check_sections(code)
    methods.sort()
    return module, ModuleInfo(tuple(methods), "init" in methods, len(code))


def validate_module(code: bytes) -> ModuleInfo:
    """Check that ``code`` is a module the ledger runs (at upload); raises ``InvalidModule``
    with the reason."""
    return _compile(code)[1]


def compile_wat(text: str) -> bytes:
    """WebAssembly text → binary (tests and tools; the ledger stores binaries only)."""
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule(f"invalid text module: {_wasmtime_reason(exc)}") from None


@functools.cache
def example(name: str) -> bytes:
    """The binary of the example contract ``examples/<name>.wat`` (built once per process)."""
    return compile_wat((EXAMPLES_DIR / f"{name}.wat").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- one call


@dataclass
class _Call:
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
_RUN_LOCK = threading.RLock()


def _stack() -> list[_Call]:
    stack: list[_Call] | None = getattr(_LOCAL, "calls", None)
    if stack is None:
        stack = _LOCAL.calls = []
    return stack


def _current() -> _Call:
    stack = _stack()
    if not stack:  # a host function outside a call: cannot happen through WasmRuntime
        raise AbiError("host function called outside a contract call")
    return stack[-1]


# ---------------------------------------------------------------- host functions
# Each takes the wasmtime Caller first. Errors are WasmError subclasses raised straight out:
# wasmtime turns them into a trap and the Python binding re-raises the same exception object
# from the outermost wasm entry, where WasmRuntime.call turns it into the receipt's reason.


def _h_state_get(caller: wasmtime.Caller, kp: int, kl: int) -> int:
    c = _current()
    c.charge(FUEL_HOST_CALL + FUEL_STATE_READ)
    value = c.ctx.get(c.key(caller, "state_get", kp, kl))
    if value is None:
        c.output = b""
        return -1
    c.charge(FUEL_PER_BYTE * len(value))
    return c.put_output(value)


def _h_state_set(caller: wasmtime.Caller, kp: int, kl: int, vp: int, vl: int) -> None:
    c = _current()
    c.charge(FUEL_HOST_CALL + FUEL_STATE_WRITE)
    key = c.key(caller, "state_set", kp, kl)
    value = c.read(caller, "state_set value", vp, vl, MAX_VALUE_BYTES)
    c.charge(FUEL_PER_STORED_BYTE * (kl + len(value)))
    c.ctx.put(key, value)


def _h_state_del(caller: wasmtime.Caller, kp: int, kl: int) -> None:
    c = _current()
    c.charge(FUEL_HOST_CALL + FUEL_STATE_WRITE)
    c.ctx.delete(c.key(caller, "state_del", kp, kl))


def _h_output_copy(caller: wasmtime.Caller, dst: int) -> None:
    c = _current()
    c.charge(FUEL_HOST_CALL)
    c.write(caller, "output_copy", dst, c.output)


def _h_caller(caller: wasmtime.Caller) -> int:
    c = _current()
    c.charge(FUEL_HOST_CALL)
    return c.put_output(c.ctx.caller.encode())


def _h_contract_name(caller: wasmtime.Caller) -> int:
    c = _current()
    c.charge(FUEL_HOST_CALL)
    return c.put_output(c.contract.encode())


def _h_height(caller: wasmtime.Caller) -> int:
    c = _current()
    c.charge(FUEL_HOST_CALL)
    return c.ctx.height


def _h_time_ms(caller: wasmtime.Caller) -> int:
    c = _current()
    c.charge(FUEL_HOST_CALL)
    return c.ctx.time_ms


def _h_emit(caller: wasmtime.Caller, tp: int, tl: int, kp: int, kl: int, dp: int, dl: int) -> None:
    c = _current()
    c.charge(FUEL_HOST_CALL + FUEL_EMIT)
    raw_type = c.read(caller, "emit type", tp, tl, MAX_EVENT_TYPE)
    etype = raw_type.decode("ascii", "replace")
    if _EVENT_TYPE.fullmatch(etype) is None:
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
    c = _current()
    c.charge(FUEL_HOST_CALL + FUEL_CALL_SYSTEM)
    if c.system is None:
        raise AbiError("bad host call call_system: no system contracts are reachable from here")
    if len(_stack()) >= MAX_CALL_DEPTH:
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
    c = _current()
    c.charge(FUEL_HOST_CALL)
    c.result = c.read(caller, "return_data", p, n, MAX_RESULT_BYTES)
    c.charge(FUEL_PER_JSON_BYTE * len(c.result))  # parsed when the method returns


def _h_revert(caller: wasmtime.Caller, p: int, n: int) -> None:
    c = _current()
    c.charge(FUEL_HOST_CALL)
    msg = c.read(caller, "revert", p, min(n & 0xFFFFFFFF, MAX_REVERT_MESSAGE), MAX_REVERT_MESSAGE)
    text = msg.decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    raise Reverted(f"reverted: {text}" if text else "reverted")


_HOST_FUNCS: dict[str, Callable[..., Any]] = {
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
assert set(_HOST_FUNCS) == set(HOST_API)


# ---------------------------------------------------------------- the runtime


@dataclass
class _Loaded:
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    info: ModuleInfo


class WasmRuntime:
    """Runs calls into user contracts. Compiled modules are cached by the SM3 of their code."""

    def __init__(self, *, module_cache: int = 64) -> None:
        self.engine = engine()
        self.linker = wasmtime.Linker(self.engine)
        for name, (params, results) in HOST_API.items():
            ty = wasmtime.FuncType([_VALTYPES[p] for p in params], [_VALTYPES[r] for r in results])
            self.linker.define_func("env", name, ty, _HOST_FUNCS[name], access_caller=True)
        self.cache_size = max(1, module_cache)
        self._cache: OrderedDict[bytes, _Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, code: bytes) -> _Loaded:
        """The compiled module for ``code`` (from the cache, or compiled and validated now)."""
        digest = sm3(code)
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None:
                self._cache.move_to_end(digest)
                return hit
        module, info = _compile(code)
        loaded = _Loaded(module, self.linker.instantiate_pre(module), info)
        with self._lock:
            self._cache[digest] = loaded
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return loaded

    def info(self, code: bytes) -> ModuleInfo:
        return self.load(code).info

    def call(self, ctx: Context, *, contract: str, code: bytes, method: str, args: Any,
             system: Callable[[Context, str, dict[str, Any]], Any] | None = None) -> Any:
        """Run ``method`` of the contract ``contract`` (module ``code``) with ``args``.

        The budget is ``ctx.fuel_limit`` minus whatever ``ctx.fuel_used`` already holds; on
        return, success or failure, ``ctx.fuel_used`` includes what this call used (all of its
        budget when it ran out). On success the call's writes and events are merged into
        ``ctx`` and the method's result (its ``return_data`` JSON, or None) is returned; on
        failure ``ctx`` keeps only the reads and a ``WasmError`` says why."""
        if not isinstance(contract, str) or not contract or "/" in contract or len(contract) > 128:
            raise WasmError(f"bad contract name {contract!r}")
        if ctx.fuel_limit <= 0:
            raise WasmError("a contract call needs a fuel limit (not a metered call)")
        before = ctx.fuel_used
        budget = ctx.fuel_limit - before
        if budget <= 0:
            raise OutOfFuel(f"out of fuel: used {before} of {ctx.fuel_limit}")
        try:
            loaded = self.load(code)
            if method not in loaded.info.methods:
                known = ", ".join(loaded.info.methods) or "none"
                raise UnknownMethod(f"contract {contract} has no method {method!r} (methods: {known})")
            try:
                raw_args = canonical(args)
            except EncodingError as exc:
                raise BadArgs(f"bad args: {exc}") from None
            if len(raw_args) > MAX_ARGS_BYTES:
                raise BadArgs(f"bad args: {len(raw_args)} bytes; the limit is {MAX_ARGS_BYTES}")
        except WasmError:
            ctx.fuel_used = before + min(FUEL_CALL, budget)  # a refused call still costs its base price
            raise

        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=MAX_MEMORY_BYTES, table_elements=MAX_TABLE_ELEMENTS, instances=1,
                         tables=10, memories=1)
        store.set_fuel(budget)
        inner = ctx.child(caller=ctx.caller)
        stack = _stack()
        events_before = len(ctx.events)
        if stack:  # nested (a system contract called us): the outer call's events count too
            events_before += stack[-1].events_before + len(stack[-1].ctx.events)
        call = _Call(inner, contract, store, system, events_before)
        with _RUN_LOCK:
            stack.append(call)
            try:
                result = self._run(ctx, call, loaded, method, raw_args, before, budget)
            finally:
                stack.pop()
        ctx.absorb(inner)
        ctx.fuel_used -= inner.fuel_used  # absorb added the child's count: ours is already exact
        return result

    def _run(self, ctx: Context, call: _Call, loaded: _Loaded, method: str, raw_args: bytes,
             before: int, budget: int) -> Any:
        store = call.store
        start_pages = -1
        try:
            try:
                call.charge(FUEL_CALL + FUEL_PER_BYTE * len(raw_args))
                instance = loaded.pre.instantiate(store)
                exports = instance.exports(store)
                memory = exports["memory"]
                assert isinstance(memory, wasmtime.Memory)
                call.memory = memory
                start_pages = memory.size(store)
                alloc, fn = exports["alloc"], exports[method]
                assert isinstance(alloc, wasmtime.Func) and isinstance(fn, wasmtime.Func)
                ptr = alloc(store, len(raw_args)) & 0xFFFFFFFF
                size = memory.data_len(store)
                if ptr + len(raw_args) > size:
                    raise AbiError(f"bad alloc: alloc({len(raw_args)}) returned {ptr}, outside memory "
                                   f"({size} bytes)")
                memory.write(store, raw_args, ptr)
                status = fn(store, ptr, len(raw_args))
            except wasmtime.Trap as trap:
                raise self._trap(trap, call, start_pages) from None
            except wasmtime.WasmtimeError as exc:
                reason = _wasmtime_reason(exc)
                if "memory" in reason and "limit" in reason:
                    raise MemoryLimit(f"memory limit: {reason}") from None
                raise WasmError(f"contract {call.contract} could not run: {reason}") from None
            if status != 0:
                raise Reverted(f"reverted with status {status}")
            result = self._result(call)
        except OutOfFuel:
            ctx.fuel_used = ctx.fuel_limit
            raise OutOfFuel(f"out of fuel: used {ctx.fuel_limit} of {ctx.fuel_limit}") from None
        except BaseException:
            ctx.fuel_used = before + budget - self._left(store)
            raise
        ctx.fuel_used = before + budget - self._left(store)
        return result

    @staticmethod
    def _left(store: wasmtime.Store) -> int:
        try:
            return store.get_fuel()
        except wasmtime.WasmtimeError:
            return 0

    @staticmethod
    def _trap(trap: wasmtime.Trap, call: _Call, start_pages: int) -> WasmError:
        code = trap.trap_code
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return OutOfFuel("out of fuel")
        kind = _TRAP_KINDS.get(code) if code is not None else None
        if kind is None:
            kind = code.name.lower().replace("_", " ") if code is not None else trap.message.splitlines()[0]
        mem = call.memory
        if mem is not None and start_pages >= 0:
            pages = mem.size(call.store)
            if pages > start_pages and (pages + 1) * PAGE > MAX_MEMORY_BYTES:
                return MemoryLimit(f"memory limit: the contract grew its memory to the {MAX_MEMORY_BYTES}-byte "
                                   f"maximum ({pages} pages) and then trapped ({kind})")
        return WasmTrap(f"trap: {kind}")

    @staticmethod
    def _result(call: _Call) -> Any:
        if call.result is None:
            return None
        try:
            value = parse(call.result)
        except EncodingError as exc:
            raise AbiError(f"bad result: return_data is not JSON ({exc})") from None
        if len(canonical(value)) > MAX_RESULT_BYTES:
            raise AbiError(f"bad result: more than {MAX_RESULT_BYTES} bytes")
        return value
