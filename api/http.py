"""The node's HTTP API (FastAPI): the app around a node.

Routes live in ``api/routes/`` (one router per resource) and reach the node only through the
dependencies of ``api/deps.py``; reads go through ``ledger.node.queries``, submissions through
``ledger.node.intake`` (decoding and signature checks in worker processes). Answers are
canonical JSON; ``api/schemas.py`` documents every request and response in the OpenAPI
document, and ``api/errors.py`` gives every error one shape. ``api/limits.py`` refuses bodies
over a route's limit before they are read whole. Routes are ``async``: the node (engine,
mempool, store handles) belongs to the event loop's thread alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ledger.node.intake import TxIntake
from ledger.node.queries import NodeQueries
from ledger.node.runtime import Node

from . import console, errors
from .auth import Authenticator
from .deps import NodeInfo
from .limits import BodyLimit
from .metrics import ApiTimer
from .operations import Operations
from .ratelimit import AddressLimit
from .routes import ROUTERS
from .routes.txs import REQUEST_MODELS
from .schemas_evidence import CaptureIn
from .service import Service

DESCRIPTION = ("A Rongxin consortium node: submit signed transactions, read blocks with their quorum "
               "certificates, transactions with inclusion and receipt proofs, state with Merkle proofs, "
               "events, the audit log and contracts. Errors: {\"error\": {\"code\", \"message\", \"details\"}}.")


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in (*REQUEST_MODELS, CaptureIn):  # bodies the routes read as raw bytes
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(js.pop("$defs", {}))
                schemas[model.__name__] = js
            app.openapi_schema = doc
        return app.openapi_schema

    return build


def create_app(node: Node, *, role: str, org: str, online: Callable[[], Iterable[str]],
               intake: TxIntake | None = None, auth: Authenticator | None = None,
               consortium: Path | None = None, folder: Path | None = None, peers: Iterable[str] = (),
               ops: Operations | None = None) -> FastAPI:
    """The API of ``node``. ``intake``: where submissions are verified (default: on this
    thread, ``TxIntake(workers=0)``; a node process passes worker processes). ``auth``: the
    checker of signed requests (default: no CRL, nonces in memory; a node process passes one
    with the consortium's CRL and a nonce file in its folder). ``folder``, ``peers``, ``ops``:
    the node's folder, the peers it links with and its operations settings, for metrics,
    readiness, alerts and rate limits (``api/service.py``)."""
    app = FastAPI(title="Rongxin node API", version="1", description=DESCRIPTION, docs_url="/docs",
                  redoc_url=None)
    app.state.node = node
    app.state.queries = NodeQueries(node)
    app.state.intake = intake if intake is not None else TxIntake(workers=0)
    app.state.info = NodeInfo(role=role, org=org, online=online)
    app.state.auth = auth if auth is not None else Authenticator(node)
    app.state.consortium = consortium  # its CRL and node certificates go into proof bundles
    queries: NodeQueries = app.state.queries
    app.state.service = Service(
        node, ops=ops or Operations(), auth=app.state.auth, intake=app.state.intake, online=online, peers=peers,
        folder=folder, consortium=consortium, info={"node_id": node.id, "role": role, "org": org, "chain": node.chain},
        status=lambda: queries.status(role=role, org=org, peers_online=list(online())))
    app.state.hub = app.state.service.hub
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    console.install(app)  # the web console and explorer at / (docs/console.md)
    app.add_middleware(BodyLimit)
    app.add_middleware(AddressLimit, limits=lambda: app.state.service.limits)
    app.add_middleware(ApiTimer, metrics=lambda: app.state.service.metrics)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app
