"""Dependencies of the routes, as ``Annotated`` aliases. The node, its read service and its
transaction intake live on ``app.state`` (set by ``api.http.create_app``); routes never close
over them, so a test can build an app around any node. The getters are coroutines: FastAPI
runs a plain ``def`` dependency in its thread pool, a hop per dependency per request that
cost more than the look-up (and waited for a thread under load)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ledger.node.intake import TxIntake
from ledger.node.queries import NodeQueries
from ledger.node.runtime import Node


@dataclass(frozen=True)
class NodeInfo:
    """What the node process knows of itself beyond the node object."""

    role: str
    org: str
    online: Callable[[], Iterable[str]]


async def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def get_queries(request: Request) -> NodeQueries:
    queries: NodeQueries = request.app.state.queries
    return queries


async def get_intake(request: Request) -> TxIntake:
    intake: TxIntake = request.app.state.intake
    return intake


async def get_info(request: Request) -> NodeInfo:
    info: NodeInfo = request.app.state.info
    return info


NodeDep = Annotated[Node, Depends(get_node)]
QueriesDep = Annotated[NodeQueries, Depends(get_queries)]
IntakeDep = Annotated[TxIntake, Depends(get_intake)]
InfoDep = Annotated[NodeInfo, Depends(get_info)]
