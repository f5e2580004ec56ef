"""What a transaction handler (a system contract method or a user-contract call) sees.

A handler is a function ``run(ctx: Context) -> None``. It reads state through ``ctx.get``,
stages writes with ``ctx.put`` / ``ctx.delete``, emits events with ``ctx.emit`` and refuses
with ``raise Refused("why")``. On a refusal every write and event of the transaction is
dropped and the reason goes into its receipt; the state is untouched.

The context records the first value it saw for every key it read from the state below it
(``reads``) and every key it wrote (``writes``). Execution is a pure function of the
transaction, the block facts (height, time) and the values read, which is what makes
parallel execution checkable: a result computed ahead of time is valid in block order iff
every value in ``reads`` still equals the state at that point (``ledger.contracts.parallel``).

Rules for handlers (docs/contracts.md): no clocks, no randomness, no floats reaching a value,
no iteration of unordered collections into a write, no state outside ``ctx``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from ..codec import canonical, parse
from ..crypto import sm3
from ..tx import Transaction

Reader = Callable[[bytes], bytes | None]

MAX_EVENT_BYTES = 4096
MAX_EVENTS_PER_TX = 64


class Refused(Exception):
    """A handler refuses a transaction; the message goes into its receipt."""


class NotPrefetched(Exception):
    """Raised by a worker's state view for a key the scheduler did not ship; the transaction is
    then executed in block order by the main process (never seen by handlers' callers)."""


def account_of(key: bytes) -> str:
    """The account id of a public key: the first 20 bytes of SM3(key) in hex (40 characters)."""
    return sm3(key)[:20].hex()


def contract_account(name: str) -> str:
    """The account a user contract holds tokens and calls system contracts under."""
    return "contract:" + name


@dataclass(frozen=True)
class Event:
    """``type`` names the event (``ft.Transfer``); ``keys`` are the strings it is indexed by
    (accounts, token ids); ``data`` is any canonical-JSON value."""

    type: str
    keys: tuple[str, ...]
    data: Any
    encoded: bytes = field(default=b"", compare=False, repr=False)  # canonical(wire()), set by emit

    def wire(self) -> dict[str, Any]:
        return {"data": self.data, "keys": list(self.keys), "type": self.type}

    def canonical(self) -> bytes:
        return self.encoded or canonical(self.wire())


@dataclass
class Context:
    tx: Transaction
    height: int
    time_ms: int
    base: Reader
    fuel_limit: int = 0  # steps a user-contract call may use (0: not a metered call)
    reads: dict[bytes, bytes | None] = field(default_factory=dict)
    writes: dict[bytes, bytes | None] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    fuel_used: int = 0
    result: Any = None  # what a call returns (into the receipt's info when not None)
    caller_override: str | None = None  # a contract calling a system contract acts as itself

    # ------------------------------------------------------------ who
    @property
    def sender(self) -> bytes:
        return self.tx.sender

    @property
    def caller(self) -> str:
        """The acting account: the sender's account, or the contract's own when a user contract
        calls a system contract."""
        return self.caller_override or account_of(self.tx.sender)

    # ------------------------------------------------------------ state
    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        if key in self.reads:
            return self.reads[key]
        value = self.base(key)
        self.reads[key] = value
        return value

    def put(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.writes[key] = None

    def get_json(self, key: bytes) -> Any:
        raw = self.get(key)
        return None if raw is None else parse(raw)

    def put_json(self, key: bytes, value: Any) -> None:
        self.writes[key] = canonical(value)

    # ------------------------------------------------------------ events
    def emit(self, type_: str, keys: Collection[str], data: Any, *, checked: bool = False) -> None:
        """``checked``: the caller built ``data`` from values it validated (system contracts),
        so the walk refusing floats and deep nesting is skipped."""
        if len(self.events) >= MAX_EVENTS_PER_TX:
            raise Refused(f"a transaction may emit at most {MAX_EVENTS_PER_TX} events")
        event = Event(type_, tuple(keys), data)
        encoded = canonical(event.wire(), check=not checked)
        if len(encoded) > MAX_EVENT_BYTES:
            raise Refused(f"an event may be at most {MAX_EVENT_BYTES} bytes")
        self.events.append(Event(event.type, event.keys, event.data, encoded))

    # ------------------------------------------------------------ nesting
    def child(self, caller: str) -> Context:
        """A context for a nested call acting as ``caller`` over this one's view; merge it back
        with ``absorb`` when it succeeds."""
        return Context(self.tx, self.height, self.time_ms, self.get, self.fuel_limit,
                       caller_override=caller)

    def absorb(self, child: Context) -> None:
        """Child reads went through ``self.get``, so this context already recorded them."""
        self.writes.update(child.writes)
        self.events.extend(child.events)
        self.fuel_used += child.fuel_used


Handler = Callable[[Context], None]


@dataclass(frozen=True)
class TxType:
    """One transaction type the application executes.

    ``keys`` predicts the state keys a transaction of this type may touch, from the
    transaction alone (``None``: unknown, run it in block order in the main process).
    ``parallel`` says the handler may run in a worker process (it must then be rebuildable
    there: see ``ledger.contracts.registry``)."""

    run: Handler
    keys: Callable[[Transaction], Collection[bytes] | None] | None = None
    parallel: bool = False
    admin: bool = False  # an administrative operation: recorded in the audit log
    metered: bool = False  # runs user code: gets a fuel limit (per call, and what is left of the block's)


@dataclass
class Outcome:
    """The result of running one transaction against some state view."""

    refused: str | None
    reads: dict[bytes, bytes | None]
    writes: dict[bytes, bytes | None]
    events: list[Event]
    fuel_limit: int = 0
    fuel_used: int = 0
    result: Any = None
    serial: bool = False  # a worker could not run it (key not shipped): run it in block order


def run_handler(ttype: TxType, ctx: Context) -> Outcome:
    """Run ``ttype`` in ``ctx``; a refusal drops the writes and events (fuel stays spent)."""
    try:
        ttype.run(ctx)
    except Refused as exc:
        return Outcome(str(exc) or type(exc).__name__, ctx.reads, {}, [], ctx.fuel_limit, ctx.fuel_used)
    return Outcome(None, ctx.reads, ctx.writes, ctx.events, ctx.fuel_limit, ctx.fuel_used, ctx.result)


def handler_from_writes(fn: Callable[[Transaction, Reader], Any]) -> Handler:
    """A context handler running a plain ``fn(tx, read) -> writes`` function: ``read`` is
    ``ctx.get`` and the mapping it returns (key → value, ``None`` deletes) is staged as the
    transaction's writes (``TxType(handler_from_writes(fn))`` makes it a transaction type)."""
    def run(ctx: Context) -> None:
        ctx.writes.update(fn(ctx.tx, ctx.get))
    return run
