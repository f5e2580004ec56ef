"""``--as ID_DIR`` and ``--api URL``, the options every command acting as an identity reuses,
and ``rongxin identity show``.

    @click.command()
    @AS_IDENTITY
    @API_URL
    def register(identity: Identity, api: str) -> None: ...

``--as`` loads the identity when the command line is parsed: a missing folder, an unreadable
``key.pem`` or ``cert.pem`` or a key that is not the certificate's ends with one line and exit 2.
"""

from __future__ import annotations

import os
from typing import Any

import click

from ..sdk import ClientError, Identity, IdentityError, LedgerClient
from .errors import EnvironmentProblem
from .io import emit


def _load(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Identity | None:
    if value is None:
        return None
    try:
        return Identity.load(value)
    except IdentityError as exc:
        raise click.BadParameter(str(exc)) from None


AS_IDENTITY = click.option(
    "--as", "identity", required=True, metavar="ID_DIR", callback=_load,
    help="Identity folder holding key.pem and cert.pem (e.g. DATA/identities/legal); requests are signed with it.")
API_URL = click.option("--api", required=True, envvar="RONGXIN_API", metavar="URL",
                       help="A node's API address, e.g. http://127.0.0.1:26601 (env RONGXIN_API).")


def client_for(api: str, identity: Identity) -> LedgerClient:
    """A client of ``api`` signing as ``identity``; for an ``https://`` node whose certificate
    the system does not trust, ``RONGXIN_CA_FILE`` names the CA to trust instead (e.g.
    ``DATA/ca/transport-ca.crt.pem``)."""
    try:
        return LedgerClient(api, identity=identity, ca_file=os.environ.get("RONGXIN_CA_FILE") or None)
    except ClientError as exc:
        raise click.BadParameter(str(exc), param_hint="--api") from None


def call(fn: Any, *args: Any) -> Any:
    """``fn(*args)``; a node that cannot be reached is an environment problem (exit 3), a
    refusal by the node keeps its message (exit 2)."""
    try:
        return fn(*args)
    except ClientError as exc:
        if exc.status is None:
            raise EnvironmentProblem(str(exc)) from None
        raise


@click.group()
def identity() -> None:
    """Identities (an ID_DIR: key.pem + cert.pem) as the consortium sees them."""


@identity.command("show")
@AS_IDENTITY
@API_URL
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def show(identity: Identity, api: str, as_json: bool) -> None:
    """Ask a node who this identity is (GET /v1/identity, a signed request)."""
    info = call(client_for(api, identity).whoami)
    emit(info, as_json, f"{info['common_name']} ({info.get('business') or 'no business role'}) of "
                        f"{info['organization']}: account {info['account']}, {info['status']} since height "
                        f"{info['registered_at']}")


def register(group: click.Group) -> None:
    group.add_command(identity)
