"""``rongxin bench …``: benchmarks that print JSON (never part of the test suite).

The product never imports ``bench`` (an import-linter contract): this group reaches the
``rongxin`` command through the ``rongxin.cli`` entry point declared in pyproject.toml.
"""

from __future__ import annotations

import sys

import click

from api.cli.io import emit, table


@click.group()
def bench() -> None:
    """Benchmarks; each prints one JSON object with --json."""


@bench.command("crypto")
@click.option("--seconds", default=3.0, show_default=True, type=click.FloatRange(0.2, 60),
              help="Measuring time per figure.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench_crypto(seconds: float, as_json: bool) -> None:
    """SM2 sign/verify (one core and all cores), SM3, SM4-GCM beside `openssl speed`; SM2 group
    operations (point multiplication, MSM of 1,000 points, Pedersen commitments)."""
    from bench.crypto import measure

    result = measure(seconds)
    if as_json:
        emit(result, True)
        return
    o, r = result["openssl"], result["ratio"]
    rows = [(k, f"{result[k]:,.1f}", f"{o[k]:,.1f}", f"{r[k]:.2f}") for k in r]
    print(table(rows, ("figure", "rongxin", "openssl speed", "ratio")))
    print(f"\nall-core speed-up {result['all_cores_speedup']}x on {result['cores']} cores; "
          f"{result['backend']}")
    print("\nSM2 group (ledger.crypto.group, pedersen):")
    print(table([(k, f"{v:,.2f}") for k, v in result["group"].items()], ("figure", "rongxin")))


@bench.command("mpc")
@click.option("--parties", default=5, show_default=True, type=click.IntRange(3, 16))
@click.option("--sum-ids", default=1_000_000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--stat-ids", default=10_000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--no-mpyc", is_flag=True, help="Skip MPyC's secure total (the comparison).")
@click.option("--bins", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 1_000_000))
def bench_mpc(parties: int, sum_ids: int, stat_ids: int, no_mpyc: bool, bins: int, top: int) -> None:
    """MPC engine: party processes on loopback, per-content sums, mean + variance, a histogram and
    the top k, beside a plaintext baseline and MPyC's own secure total of the same vectors (JSON)."""
    from bench.mpc import measure

    emit(measure(parties, sum_ids, stat_ids, not no_mpyc, bins, min(top, stat_ids)), True)


@bench.command("ws")
@click.option("--clients", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--blocks", default=5, show_default=True, type=click.IntRange(1, 1000))
def bench_ws(clients: int, blocks: int) -> None:
    """WebSocket fan-out: CLIENTS subscribers of blocks on one node; when each block reached
    each of them (JSON)."""
    from bench.ws import measure

    emit(measure(clients, blocks), True)


@bench.command("load")
@click.option("--data", type=click.Path(file_okay=False, exists=True),
              help="Load an already running consortium (its folder); default: start and stop a fresh one.")
@click.option("--api", help="With --data: send every request to this node only.")
@click.option("--rate", default=500.0, show_default=True, type=click.FloatRange(1, 20_000),
              help="Requests a second, sent on schedule whether or not answers came back.")
@click.option("--seconds", default=60.0, show_default=True, type=click.FloatRange(1, 3600))
def bench_load(data: str | None, api: str | None, rate: float, seconds: float) -> None:
    """Open-loop request load (reads and signed writes) on the local consortium: read and
    accepted-write latency (p50/p90/p99/max), errors, achieved rate, the client's own CPU (JSON)."""
    from pathlib import Path

    from bench.load import measure

    if api is not None and data is None:
        raise click.BadParameter("--api needs --data (the consortium's folder: its CA registers the senders)",
                                 param_hint="--api")
    emit(measure(Path(data) if data else None, api, rate, seconds), True)


@bench.command("overview")
@click.option("--blocks", default=100_000, show_default=True, type=click.IntRange(10, 10_000_000),
              help="Empty blocks generated (validators' keys, the node's sync checks) before the nodes start.")
@click.option("--runs", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--data", type=click.Path(file_okay=False, exists=True),
              help="Reuse a consortium folder kept by an earlier run (--keep): measure only.")
@click.option("--keep", is_flag=True, help="Keep the generated consortium folder (its path is in the output).")
def bench_overview(blocks: int, runs: int, data: str | None, keep: bool) -> None:
    """The console on a long chain: BLOCKS generated, the consortium started on them, each
    page kind's server time and the overview in headless Chromium (JSON)."""
    from pathlib import Path

    from bench.overview import measure

    def progress(h: int, s: float) -> None:
        click.echo(f"generated {h:,} blocks in {s:.0f} s", err=True)

    emit(measure(blocks, runs, Path(data) if data else None, keep, progress), True)


@bench.command("ledger")
@click.option("--data", type=click.Path(file_okay=False, exists=True),
              help="Load an already running cluster (its folder); default: start and stop a fresh one.")
@click.option("--txs", "n_txs", default=20_000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--rate", type=click.FloatRange(1, 10**6), help="Submission rate (tx/s); default: as fast as admitted.")
@click.option("--batch", default=200, show_default=True, type=click.IntRange(1, 5000))
@click.option("--workload", type=click.Choice(["kv", "ft"]), default="kv", show_default=True,
              help="kv: key-value writes; ft: token transfers (an issuer funds the senders first).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench_ledger(data: str | None, n_txs: int, rate: float | None, batch: int, workload: str,
                 as_json: bool) -> None:
    """Committed TPS and commit latency of the 5-validator + 1 full-node consortium."""
    from pathlib import Path

    from bench.ledger import measure

    result = measure(Path(data) if data else None, n_txs, rate, batch=batch, workload=workload)
    if as_json:
        emit(result, True)
        return
    print(table([(k, str(v)) for k, v in result.items()], ("figure", "value")))


@bench.command("sync")
@click.option("--blocks", default=10_000, show_default=True, type=click.IntRange(10, 10_000_000),
              help="How far behind the restarted validator is.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench_sync(blocks: int, as_json: bool) -> None:
    """Catch-up time of a validator whose store was lost, BLOCKS behind the others."""
    from bench.sync import measure

    result = measure(blocks)
    if as_json:
        emit(result, True)
        return
    print(table([(k, str(v)) for k, v in result.items()], ("figure", "value")))


@bench.command("contracts")
@click.option("--txs", "n_txs", default=2000, show_default=True, type=click.IntRange(10, 100_000),
              help="Contract calls in the measured block.")
@click.option("--accounts", default=10_000, show_default=True, type=click.IntRange(20, 10_000_000))
@click.option("--conflicts", default=0.10, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of calls touching an account an earlier call of the block touched.")
@click.option("--work-ms", default=1.0, show_default=True, type=click.FloatRange(0, 100),
              help="CPU time of one call in block order (calibrated on this machine).")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--workers", type=click.IntRange(1, 256), help="Worker processes; default: one per CPU.")
@click.option("--main", "use_main", is_flag=True, help="This process runs a share of the calls too.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench_contracts(n_txs: int, accounts: int, conflicts: float, work_ms: float, repeats: int,
                    workers: int | None, use_main: bool, as_json: bool) -> None:
    """Parallel against serial execution of a block of WebAssembly contract calls."""
    from bench.contracts import run

    if accounts < 2 * n_txs:
        raise click.BadParameter("need at least two accounts per call", param_hint="--accounts")
    result = run(n_txs, accounts, conflicts, work_ms, repeats, workers, use_main)
    if as_json:
        emit(result, True)
        return
    print(table([(k, str(v)) for k, v in result.items() if not isinstance(v, dict)], ("figure", "value")))


@bench.command("fingerprint")
@click.option("--scale", type=click.Choice(["small", "full"]), default="small", show_default=True,
              help="small: minutes; full: the whole media set.")
@click.option("--no-install", is_flag=True, help="Do not apt-get install the media packages.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench_fingerprint(scale: str, no_install: bool, as_json: bool) -> None:
    """Recall per transform, false positives, offsets, speed and index size (see docs/fingerprints.md)."""
    from bench.fingerprint import main as bench_main

    args = ["--scale", scale] + (["--no-install"] if no_install else []) + (["--json"] if as_json else [])
    sys.exit(bench_main(args))


@bench.command("evidence")
@click.option("--data", type=click.Path(file_okay=False, exists=True),
              help="Use an already running consortium (its folder); default: start and stop a fresh one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench_evidence(data: str | None, as_json: bool) -> None:
    """The issue-12 flows end to end (a work registered, ...): every ``@figure`` of bench/evidence.py."""
    from pathlib import Path

    from bench.evidence import measure

    result = measure(Path(data) if data else None)
    if as_json:
        emit(result, True)
        return
    print(table([(k, str(v)) for k, v in result.items()], ("figure", "value")))


@bench.command("capture")
@click.option("--data", type=click.Path(file_okay=False, exists=True),
              help="Use an already running consortium (its folder); default: start and stop a fresh one.")
@click.option("--no-browser", is_flag=True, help="Skip the browser: time matching and filing of the page's files only.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench_capture(data: str | None, no_browser: bool, as_json: bool) -> None:
    """One-click capture of a local page (ten pictures, a 30-second audio clip): environment
    check, capture, matching and on-chain filing, each stage timed (target <= 15 s)."""
    from pathlib import Path

    from bench.capture import measure

    result = measure(Path(data) if data else None, browser=not no_browser)
    if as_json:
        emit(result, True)
        return
    print(table([(k, str(v)) for k, v in result.items() if k != "matches"], ("figure", "value")))


@bench.command("console")
@click.option("--api", required=True, help="A running node's API address, e.g. http://127.0.0.1:26601.")
@click.option("--runs", default=20, show_default=True, type=click.IntRange(1, 1000))
def bench_console(api: str, runs: int) -> None:
    """The console: each page kind's server time (p50/p99) and the overview's load in headless
    Chromium, at the node's current height (JSON)."""
    from bench.console import measure

    emit(measure(api, runs), True)


def register(group: click.Group) -> None:
    """The ``rongxin.cli`` entry point: adds ``bench`` to the ``rongxin`` group."""
    group.add_command(bench)
