"""The WebAssembly sandbox for user contracts (docs/contracts-abi.md is the contract writer's
reference; this package is its implementation).

A user contract is a core WebAssembly module run by wasmtime. Every call gets a fresh instance
in a fresh store: nothing survives between calls except what the contract wrote through the
host API into its own state keys. The engine is configured for consensus:

- fuel metering: every call runs under a step budget (``ctx.fuel_limit``); host calls are
  charged fuel too (prices in ``abi``), so everything a call does is bounded by its budget, and a
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

Modules, in dependency order:

- ``abi``         limits, fuel prices, errors and the host API's signatures (data only)
- ``validation``  the engine's configuration and the checks of a module (``validate_module``)
- ``host``        the state of one call and the host functions a contract imports from ``env``
- ``sandbox``     ``WasmRuntime``: compiles and caches modules, runs one call in a fresh store

Everything a caller needs is re-exported here.
"""

from __future__ import annotations

from .abi import (
    FUEL_CALL,
    FUEL_CALL_SYSTEM,
    FUEL_EMIT,
    FUEL_HOST_CALL,
    FUEL_PER_BYTE,
    FUEL_PER_JSON_BYTE,
    FUEL_PER_STORED_BYTE,
    FUEL_STATE_READ,
    FUEL_STATE_WRITE,
    HOST_API,
    MAX_ARGS_BYTES,
    MAX_CALL_DEPTH,
    MAX_EVENT_TYPE,
    MAX_EXPORTS,
    MAX_KEY_BYTES,
    MAX_MEMORY_BYTES,
    MAX_MEMORY_PAGES,
    MAX_METHOD_NAME,
    MAX_MODULE_BYTES,
    MAX_OUTPUT_BYTES,
    MAX_REQUEST_BYTES,
    MAX_RESULT_BYTES,
    MAX_REVERT_MESSAGE,
    MAX_TABLE_ELEMENTS,
    MAX_VALUE_BYTES,
    MAX_WASM_STACK,
    PAGE,
    RESERVED_EXPORTS,
    AbiError,
    BadArgs,
    InvalidModule,
    MemoryLimit,
    OutOfFuel,
    Reverted,
    SystemCallRefused,
    UnknownMethod,
    WasmError,
    WasmTrap,
)
from .sandbox import WasmRuntime
from .validation import EXAMPLES_DIR, ModuleInfo, compile_wat, engine, example, validate_module

__all__ = [
    "EXAMPLES_DIR",
    "FUEL_CALL",
    "FUEL_CALL_SYSTEM",
    "FUEL_EMIT",
    "FUEL_HOST_CALL",
    "FUEL_PER_BYTE",
    "FUEL_PER_JSON_BYTE",
    "FUEL_PER_STORED_BYTE",
    "FUEL_STATE_READ",
    "FUEL_STATE_WRITE",
    "HOST_API",
    "MAX_ARGS_BYTES",
    "MAX_CALL_DEPTH",
    "MAX_EVENT_TYPE",
    "MAX_EXPORTS",
    "MAX_KEY_BYTES",
    "MAX_MEMORY_BYTES",
    "MAX_MEMORY_PAGES",
    "MAX_METHOD_NAME",
    "MAX_MODULE_BYTES",
    "MAX_OUTPUT_BYTES",
    "MAX_REQUEST_BYTES",
    "MAX_RESULT_BYTES",
    "MAX_REVERT_MESSAGE",
    "MAX_TABLE_ELEMENTS",
    "MAX_VALUE_BYTES",
    "MAX_WASM_STACK",
    "PAGE",
    "RESERVED_EXPORTS",
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
    "engine",
    "example",
    "validate_module",
]
