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


def _addr(_ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, int] | None:
    from ledger.node.config import ConfigError

    from ..node_ops import parse_addr

    if value is None:
        return None
    try:
        return parse_addr(value, f"--{param.name}")
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _peers(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    from ledger.node.config import ConfigError

    from ..node_ops import parse_addr

    out = {}
    for v in values:
        pid, _, addr = v.partition("=")
        try:
            out[pid] = parse_addr(addr, f"--peer {pid}")
        except ConfigError as exc:
            raise click.BadParameter(f"{exc} (the form is ID=HOST:PORT)") from None
    return out


@node.command("init")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--consortium", required=True, type=click.Path(file_okay=False, exists=True),
              help="The consortium's public folder: genesis.json, ca/*.crt.pem, ca/crl.pem, nodes/*/sm2.crt.pem "
                   "(a local consortium's DATA folder will do; no key is read from it).")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The node's SM2 identity key (PEM; the key that sent its node.join).")
@click.option("--cert", "cert_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="Its node certificate issued by the consortium CA (`rongxin ca issue --kind node`).")
@click.option("--ca", "ca_dir", type=click.Path(file_okay=False, exists=True),
              help="The consortium CA folder: issue the node's transport (TLS) certificate from it.")
@click.option("--ca-password-file", type=click.Path(dir_okay=False, exists=True),
              help="File holding the password of the CA's keys, when they are encrypted.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="Or: a transport key already issued.")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="... and its certificate.")
@click.option("--listen", required=True, callback=_addr, help="HOST:PORT of its peer-to-peer listener.")
@click.option("--api", required=True, callback=_addr, help="HOST:PORT of its HTTP API and console.")
@click.option("--org", help="Its organisation (default: the certificate's O).")
@click.option("--peer", "peers", multiple=True, callback=_peers, metavar="ID=HOST:PORT",
              help="A peer beyond the consortium folder's nodes (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def node_init(folder: str, consortium: str, key_file: str, cert_file: str, ca_dir: str | None,
              ca_password_file: str | None, tls_key: str | None, tls_cert: str | None, listen: tuple[str, int], api: tuple[str, int], org: str | None,
              peers: dict[str, tuple[str, int]], as_json: bool) -> None:
    """Write a node's folder and its settings file (node.toml) for a node outside the local consortium."""
    from ..node_ops import NODE_FILE, init
    from .io import emit, read_password

    if (tls_key is None) != (tls_cert is None):
        raise InputError("give both --tls-key and --tls-cert, or --ca")
    tls = (Path(tls_key), Path(tls_cert)) if tls_key and tls_cert else None
    out = init(Path(folder), consortium=Path(consortium), key_file=Path(key_file), cert_file=Path(cert_file),
               listen=listen, api=api, org=org, ca_dir=Path(ca_dir) if ca_dir else None, tls=tls, peers=peers,
               ca_password=read_password(ca_password_file))
    emit({"node": out.name, "folder": str(out), "settings": str(out / NODE_FILE)}, as_json,
         f"node {out.name} in {out}; settings: {out / NODE_FILE}; start it with `rongxin node start {folder}`")


@node.command("start")
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
def node_start(folder: str) -> None:
    """Check node.toml and run the node in the foreground (SIGTERM or Ctrl-C stops it gracefully)."""
    from ..node_ops import start

    start(Path(folder))


@node.command("status")
@click.argument("folder", required=False, type=click.Path(file_okay=False, exists=True))
@click.option("--api", "url", help="The node's API address (default: node.api of the folder's node.toml).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def node_status(folder: str | None, url: str | None, as_json: bool) -> int:
    """Ask a node for /readyz and /v1/status and summarise them (exit 1: not ready)."""
    from ..node_ops import node_config, node_folder, read_toml, status
    from .io import emit

    if (folder is None) == (url is None):
        raise InputError("give the node's folder or --api URL")
    if url is None:
        assert folder is not None
        nf = node_folder(Path(folder))
        url = node_config(nf, read_toml(nf / "node.toml")).api_url()
    if not url.startswith(("http://", "https://")):
        raise InputError(f"--api must be http://HOST:PORT, not {url!r}")
    try:
        doc = status(url.rstrip("/"))
    except (OSError, ValueError) as exc:
        raise EnvironmentProblem(f"the node at {url} does not answer: {exc}") from None
    failed = [k for k in ("serving", "synced", "linked") if doc["checks"].get(k) is False]
    emit(doc, as_json, f"{doc['node_id']} ({doc['role']}, {doc['org']}) on {doc['chain']}: height {doc['height']}, "
                       f"{'ready' if doc['ready'] else 'NOT READY (' + ', '.join(failed) + ')'}, "
                       f"peers online {', '.join(doc['peers_online'] or []) or 'none'}")
    return 0 if doc["ready"] else 1


def register(group: click.Group) -> None:
    for cmd in (up, down, node):
        group.add_command(cmd)
