"""The web console and block explorer each node serves at ``/`` (docs/console.md).

``install(app)`` adds its pages to a node's FastAPI app: ``api.console.pages`` (routes,
Jinja2 templates with autoescaping, a strict Content-Security-Policy), ``api.console.reads``
(public reads over the node, bounded), ``api.console.signed`` (signed-in views: the page
signs with a key held in the browser) and ``api.console.i18n`` (Chinese and English).
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    from .pages import router
    from .roles import router as roles
    from .signed import router as signed

    app.include_router(router)
    app.include_router(signed)
    app.include_router(roles)
