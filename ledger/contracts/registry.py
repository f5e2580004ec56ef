"""Every contract transaction type the application runs, built in one place so that worker
processes of the parallel executor rebuild exactly the same ones (``parallel_types`` is the
picklable factory they call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ft, nft
from .context import Context, Refused, TxType
from .lifecycle import lifecycle_types

Method = Callable[[Context, dict[str, Any]], Any]


def system_methods() -> dict[str, Method]:
    """The system-contract methods a user contract may call (``call_system``)."""
    return {**ft.METHODS, **nft.METHODS}


_METHODS: dict[str, Method] | None = None


def system_call(ctx: Context, type_: str, args: dict[str, Any]) -> Any:
    global _METHODS
    if _METHODS is None:
        _METHODS = system_methods()
    fn = _METHODS.get(type_)
    if fn is None:
        raise Refused(f"no system contract method {type_!r}")
    if not isinstance(args, dict):
        raise Refused("system call arguments must be an object")
    return fn(ctx, args)


def _runtime() -> Any:
    from .wasm import WasmRuntime

    return WasmRuntime()


def contract_types() -> dict[str, TxType]:
    """Tokens, certificates, the contract lifecycle and user-contract calls."""
    return {**ft.types(), **nft.types(), **lifecycle_types(_runtime, system_call)}


def parallel_types() -> dict[str, TxType]:
    """The types a worker process may run ahead of block order."""
    return {name: t for name, t in contract_types().items() if t.parallel}
