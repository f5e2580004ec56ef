"""One ``APIRouter`` per resource; ``ROUTERS`` in the order the OpenAPI document lists them."""

from __future__ import annotations

from fastapi import APIRouter

from . import (
                            audit,
                            blocks,
                            capture,
                            cases,
                            contracts,
                            events,
                            evidence,
                            health,
                            identity,
                            mpc,
                            proofs,
                            state,
                            status,
                            txs,
                            verify,
                            works,
                            ws,
)

ROUTERS: list[APIRouter] = [status.router, txs.router, blocks.router, state.router, events.router,
                            audit.router, contracts.router, identity.router, proofs.router,
                            works.router, verify.router, evidence.router, capture.router, cases.router, mpc.router, health.router,
                            ws.router]
