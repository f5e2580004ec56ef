"""The WebAssembly contract ABI as data: limits, fuel prices, the errors a call can end with
and the signatures of the host API (docs/contracts-abi.md is the contract writer's reference).

Nothing here runs wasm: ``validation`` checks modules against these rules, ``host`` implements
the host functions and ``sandbox`` runs calls.
"""

from __future__ import annotations

import re

from ..context import Refused

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
METHOD_SIG = (("i32", "i32"), ("i32",))
ALLOC_SIG = (("i32",), ("i32",))
METHOD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
EVENT_TYPE = re.compile(r"[A-Za-z0-9_.\-]+")
RESERVED_EXPORTS = ("memory", "alloc")
