"""``rongxin bench …``: benchmarks that print JSON (never part of the test suite)."""

from __future__ import annotations

import click

from .io import emit, table


@click.group()
def bench() -> None:
    """Benchmarks; each prints one JSON object with --json."""


@bench.command("crypto")
@click.option("--seconds", default=3.0, show_default=True, type=click.FloatRange(0.2, 60),
              help="Measuring time per figure.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def bench_crypto(seconds: float, as_json: bool) -> None:
    """SM2 sign/verify (one core and all cores), SM3, SM4-GCM beside `openssl speed`."""
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


def register(group: click.Group) -> None:
    group.add_command(bench)
