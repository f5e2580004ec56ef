"""``rongxin up | down | node run``: the local consortium and single nodes."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import EnvironmentProblem, InputError


@click.command()
@click.option("--data", default=".rongxin", show_default=True, type=click.Path(file_okay=False),
              help="Consortium folder (created on first use).")
@click.option("--detach", is_flag=True, help="Start the nodes in the background, write cluster.json, return.")
@click.option("--wait", default=120.0, show_default=True, help="Seconds to wait for every node's API.")
@click.option("--base-port", default=26600, show_default=True, envvar="RONGXIN_BASE_PORT",
              type=click.IntRange(1024, 32000),
              help="First port tried for a new consortium's nodes (env RONGXIN_BASE_PORT).")
def up(data: str, detach: bool, wait: float, base_port: int) -> int:
    """Start the local consortium: one supervisory node, four consensus nodes, one full node."""
    from ..cluster import ClusterError
    from ..cluster import up as do_up

    try:
        return do_up(Path(data), detach=detach, wait=wait, base_port=base_port)
    except ClusterError as exc:
        raise EnvironmentProblem(str(exc)) from None


@click.command()
@click.option("--data", default=".rongxin", show_default=True, type=click.Path(file_okay=False))
def down(data: str) -> int:
    """Stop the local consortium's nodes (SIGTERM, then SIGKILL after 20 s)."""
    from ..cluster import ClusterError
    from ..cluster import down as do_down

    try:
        return do_down(Path(data))
    except ClusterError as exc:
        raise InputError(str(exc)) from None


@click.group()
def node() -> None:
    """A single ledger node."""


@node.command("run")
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
def node_run(folder: str) -> int:
    """Run one node from its folder in the foreground."""
    from ..node_main import main as node_main

    return node_main([folder])


def register(group: click.Group) -> None:
    for cmd in (up, down, node):
        group.add_command(cmd)
