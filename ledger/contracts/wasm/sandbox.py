"""Running a call into a user contract: ``WasmRuntime`` compiles (and caches) modules,
instantiates one per call in a fresh store with its fuel and memory limits, passes the
arguments, runs the method and turns traps and failures into the ``WasmError`` the receipt
carries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime

from ...codec import EncodingError, canonical, parse
from ...crypto import sm3
from ..context import Context
from .abi import (
    FUEL_CALL,
    FUEL_PER_BYTE,
    HOST_API,
    MAX_ARGS_BYTES,
    MAX_MEMORY_BYTES,
    MAX_RESULT_BYTES,
    MAX_TABLE_ELEMENTS,
    PAGE,
    AbiError,
    BadArgs,
    MemoryLimit,
    OutOfFuel,
    Reverted,
    UnknownMethod,
    WasmError,
    WasmTrap,
)
from .host import HOST_FUNCS, RUN_LOCK, HostCall, call_stack
from .validation import ModuleInfo, compile_module, engine, wasmtime_reason

_I32 = wasmtime.ValType.i32()
_I64 = wasmtime.ValType.i64()
_VALTYPES = {"i32": _I32, "i64": _I64}

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
            self.linker.define_func("env", name, ty, HOST_FUNCS[name], access_caller=True)
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
        module, info = compile_module(code)
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
        stack = call_stack()
        events_before = len(ctx.events)
        if stack:  # nested (a system contract called us): the outer call's events count too
            events_before += stack[-1].events_before + len(stack[-1].ctx.events)
        call = HostCall(inner, contract, store, system, events_before)
        with RUN_LOCK:
            stack.append(call)
            try:
                result = self._run(ctx, call, loaded, method, raw_args, before, budget)
            finally:
                stack.pop()
        ctx.absorb(inner)
        ctx.fuel_used -= inner.fuel_used  # absorb added the child's count: ours is already exact
        return result

    def _run(self, ctx: Context, call: HostCall, loaded: _Loaded, method: str, raw_args: bytes,
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
                reason = wasmtime_reason(exc)
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
    def _trap(trap: wasmtime.Trap, call: HostCall, start_pages: int) -> WasmError:
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
    def _result(call: HostCall) -> Any:
        if call.result is None:
            return None
        try:
            value = parse(call.result)
        except EncodingError as exc:
            raise AbiError(f"bad result: return_data is not JSON ({exc})") from None
        if len(canonical(value)) > MAX_RESULT_BYTES:
            raise AbiError(f"bad result: more than {MAX_RESULT_BYTES} bytes")
        return value
