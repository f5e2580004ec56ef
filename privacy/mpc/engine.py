"""The engine the chain side calls: ``run_computation`` runs one query among the parties and
returns the declared outputs with the transcript digest, or raises (see ``errors``).

Rounds (every party sends to every other party in every round, possibly an empty payload, so
the transcript has the same shape everywhere):

1. set-up: ``agreement (32) | pair seed (32) | input seeds (32 per share the receiver holds)``;
   a party whose agreement hash differs is named and the run aborts;
2. onwards: the query's protocol (``protocols``);
65535 (``ROUND_TRANSCRIPT``). transcript: the SM3 digests of every link this party sent on, in
   party order.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ledger.crypto.sm3 import SM3, sm3

from . import noise, protocols, ranking
from .data import Schema, valid_id
from .errors import PartyError, QueryError
from .protocols import Context
from .sharing import SEED_BYTES, U64, held_by, pair_key, subsets
from .transport import Listener, Network, PartySpec, TLSFiles

OPS = ("sum", "count", "mean", "variance", "stats", "shares", *ranking.OPS)
MAX_IDS = 10_000_000
ROUND_SETUP = 1
ROUND_TRANSCRIPT = 0xFFFF  # protocol rounds use 2 ... 0xFFFE


@dataclass(frozen=True, repr=False)
class Outputs:
    """The declared outputs (``values``) and the run's figures. Per-id totals are kept as the
    vector the protocol produced and turned into ``{id: int}`` on first access of ``values``."""

    raw: dict[str, Any]
    ids: list[str]
    transcript_sm3: str
    bytes_sent: int
    bytes_received: int
    seconds: float  # the whole run, from the first connection attempt
    link_seconds: float  # of which waiting for and opening the links

    def __repr__(self) -> str:  # short: asyncio formats the result of its main task
        return f"Outputs({sorted(self.raw)}, transcript_sm3={self.transcript_sm3[:16]}…)"

    @cached_property
    def values(self) -> dict[str, Any]:
        out = dict(self.raw)
        if isinstance(out.get("totals"), np.ndarray):  # per-id totals (topk's are a list)
            out["totals"] = dict(zip(self.ids, out["totals"].tolist(), strict=True))
        return out


def check_query(query: dict[str, Any], schema: Schema) -> None:
    if not isinstance(query, dict) or query.get("op") not in OPS:
        raise QueryError(f"op must be one of {', '.join(OPS)}")
    if query["op"] != "count":
        schema.column(query.get("column"))
    ids = query.get("ids")
    if not isinstance(ids, list) or not 0 < len(ids) <= MAX_IDS or not all(valid_id(i) for i in ids):
        raise QueryError(f"ids must be a list of 1 to {MAX_IDS} content ids")
    if len(set(ids)) != len(ids):
        raise QueryError("ids must not repeat")


def agreement(computation_id: str, parties: list[PartySpec], query: dict[str, Any],
              schema: dict[str, Any]) -> bytes:
    """SM3 of what every party must agree on before computing (canonical JSON, sorted keys)."""
    body = {"computation_id": computation_id, "query": query, "schema": schema,
            "parties": [[p.id, p.host, p.port, sm3(p.cert_der()).hex()] for p in parties]}
    return sm3(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())


def run_computation(me: str, parties: list[PartySpec], query: dict[str, Any],
                    data: dict[str, dict[str, int]], schema: dict[str, Any], computation_id: str,
                    tls: TLSFiles, timeout: float = 30.0, listener: Listener | None = None) -> Outputs:
    """Run ``query`` as party ``me``; every party calls this with the same arguments but its own data.
    With ``listener`` (a party process's always-on ``Listener``) the run executes on the
    listener's loop and takes its incoming links from it; without, it listens for itself."""
    parsed = Schema.parse(schema)
    check_query(query, parsed)
    parsed.check(data)
    ids = [p.id for p in parties]
    if len(set(ids)) != len(ids) or me not in ids or not 3 <= len(ids) <= 16:
        raise QueryError("parties must be 3 to 16 distinct ids including this party")
    noise.for_query(query, parsed, len(ids))  # a query asking for noise it cannot have: refused here
    if query["op"] in ranking.OPS:
        ranking.check_query(query, parsed, len(ids))
    protocols.check_range(query, parsed, len(ids))  # no silent 64-bit wrap-around
    agree = agreement(computation_id, parties, query, schema)
    x = protocols.prepare(query, data)
    run = _run(me, parties, query, x, parsed, computation_id, tls, timeout, agree, listener)
    return listener.run(run) if listener is not None else asyncio.run(run)


async def _run(me: str, parties: list[PartySpec], query: dict[str, Any], x: U64, schema: Schema,
               computation_id: str, tls: TLSFiles, timeout: float, agree: bytes, listener: Listener | None) -> Outputs:
    start = time.perf_counter()
    net = Network(me, parties, computation_id, timeout, listener)
    try:
        await net.open(tls)
        linked = time.perf_counter() - start
        ctx = await _setup(net, agree)
        run = ranking.run if query["op"] in ranking.OPS else protocols.run
        values = await run(ctx, query, x, schema)
        transcript = await _transcript(net, agree)
        return Outputs(values, query["ids"], transcript.hex(), net.bytes_sent(), net.bytes_received(),
                       time.perf_counter() - start, linked)
    except PartyError as exc:
        await net.abort(exc)
        raise
    finally:
        net.close()


async def _setup(net: Network, agree: bytes) -> Context:
    n = len(net.parties)
    me = net.index[net.me]
    pair_seeds = {j: secrets.token_bytes(SEED_BYTES) for j in range(n) if j != me}
    my_seeds = {k: secrets.token_bytes(SEED_BYTES) for k in range(len(subsets(n)))}
    out: dict[str, bytes] = {}
    expect: dict[str, int] = {}
    for j, pid in enumerate(p.id for p in net.parties):
        if j == me:
            continue
        held = held_by(n, j)
        out[pid] = agree + pair_seeds[j] + b"".join(my_seeds[k] for k in held)
        expect[pid] = SEED_BYTES * (2 + len(held_by(n, me)))
    got = await net.exchange(ROUND_SETUP, out, expect)
    keys: dict[int, bytes] = {}
    input_seeds: dict[tuple[int, int], bytes] = {}
    mine = held_by(n, me)
    for j, pid in enumerate(p.id for p in net.parties):
        if j == me:
            continue
        msg = got[pid]
        if msg[:32] != agree:
            raise PartyError(pid, "disagrees on the computation (parties, query or schema differ)")
        theirs = msg[32:64]
        keys[j] = pair_key(pair_seeds[j], theirs) if me < j else pair_key(theirs, pair_seeds[j])
        for pos, k in enumerate(mine):
            input_seeds[(j, k)] = msg[64 + 32 * pos: 96 + 32 * pos]
    return Context(net, n, me, keys, input_seeds, my_seeds)


async def _transcript(net: Network, agree: bytes) -> bytes:
    """Exchange the digests of every link and hash them all, in party order (documented)."""
    order = [p.id for p in net.parties]
    mine = {peer: net.links[peer].sent.copy().digest() for peer in net.peers}
    heard = {peer: net.links[peer].received.copy().digest() for peer in net.peers}
    claim = b"".join(mine[p] for p in order if p != net.me)
    got = await net.exchange(ROUND_TRANSCRIPT, {p: claim for p in net.peers},
                             {p: 32 * (len(order) - 1) for p in net.peers})
    table: dict[tuple[str, str], bytes] = {(net.me, p): d for p, d in mine.items()}
    for sender, blob in got.items():
        targets = [p for p in order if p != sender]
        for pos, target in enumerate(targets):
            table[(sender, target)] = blob[32 * pos: 32 * pos + 32]
        if table[(sender, net.me)] != heard[sender]:
            raise PartyError(sender, "its transcript of what it sent us differs from what we received")
    h = SM3(b"rongxin-mpc transcript v1" + agree)
    for a in order:
        for b in order:
            if a != b:
                h.update(table[(a, b)])
    return h.digest()

