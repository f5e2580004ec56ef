"""Which modules the ledger runs: the engine's configuration (fuel metering, NaN
canonicalisation, the WebAssembly features it refuses) and the checks of a module at upload
and again before it is first run (imports, exports, declared table and memory sizes).
"""

from __future__ import annotations

import functools
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime

from .abi import (
    ALLOC_SIG,
    HOST_API,
    MAX_EXPORTS,
    MAX_MEMORY_BYTES,
    MAX_MEMORY_PAGES,
    MAX_METHOD_NAME,
    MAX_MODULE_BYTES,
    MAX_TABLE_ELEMENTS,
    MAX_WASM_STACK,
    METHOD_NAME,
    METHOD_SIG,
    PAGE,
    RESERVED_EXPORTS,
    InvalidModule,
)

EXAMPLES_DIR = Path(__file__).parents[1] / "examples"


def signature(ft: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
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


def wasmtime_reason(exc: Exception) -> str:
    """The useful line of a wasmtime error ("SIMD support is not enabled (at offset 0xb)")."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if "Caused by:" in lines:
        rest = lines[lines.index("Caused by:") + 1:]
        return "; ".join(re.sub(r"^\d+:\s*", "", ln) for ln in rest) or lines[0]
    return lines[0] if lines else type(exc).__name__


def compile_module(code: bytes) -> tuple[wasmtime.Module, ModuleInfo]:
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
        raise InvalidModule(f"invalid module: {wasmtime_reason(exc)}") from None
    for imp in module.imports:
        where = f"{imp.module}.{imp.name}"
        ty = imp.type
        if imp.module != "env" or imp.name not in HOST_API:
            raise InvalidModule(f"import {where} is not in the host API (module env: "
                                f"{', '.join(sorted(HOST_API))})")
        if not isinstance(ty, wasmtime.FuncType):
            raise InvalidModule(f"import {where} must be a function")
        if signature(ty) != HOST_API[imp.name]:
            want = HOST_API[imp.name]
            raise InvalidModule(f"import {where} has type {signature(ty)}, the host API's is {want}")
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
        if METHOD_NAME.fullmatch(exp.name) is None or len(exp.name) > MAX_METHOD_NAME:
            raise InvalidModule(f"export {exp.name!r}: a method name is 1 to {MAX_METHOD_NAME} letters, "
                                "digits and '_', starting with a letter (prefix helpers with '_')")
        if signature(ty) != METHOD_SIG:
            raise InvalidModule(f"export {exp.name!r} has type {signature(ty)}; a method takes (i32 args_ptr, "
                                "i32 args_len) and returns an i32 status")
        methods.append(exp.name)
    mem = seen.get("memory")
    if not isinstance(mem, wasmtime.MemoryType):
        raise InvalidModule("the module must export its linear memory as 'memory'")
    alloc = seen.get("alloc")
    if not isinstance(alloc, wasmtime.FuncType) or signature(alloc) != ALLOC_SIG:
        raise InvalidModule("the module must export 'alloc' of type (i32 len) -> i32 ptr")
    _check_sections(code)
    methods.sort()
    return module, ModuleInfo(tuple(methods), "init" in methods, len(code))


def validate_module(code: bytes) -> ModuleInfo:
    """Check that ``code`` is a module the ledger runs (at upload); raises ``InvalidModule``
    with the reason."""
    return compile_module(code)[1]


def compile_wat(text: str) -> bytes:
    """WebAssembly text → binary (tests and tools; the ledger stores binaries only)."""
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule(f"invalid text module: {wasmtime_reason(exc)}") from None


@functools.cache
def example(name: str) -> bytes:
    """The binary of the example contract ``examples/<name>.wat`` (built once per process)."""
    return compile_wat((EXAMPLES_DIR / f"{name}.wat").read_text(encoding="utf-8"))
