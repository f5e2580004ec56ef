"""Secure multiparty computation of joint statistics (issue 13, the engine core).

``run_computation`` runs one query among 3 to 16 party processes over mutually authenticated
TLS; see docs/privacy.md for the protocols, the security model and the message format.
"""

import importlib
from typing import TYPE_CHECKING

from .data import Column, Schema, load_csv
from .errors import InputError, MPCError, PartyError, QueryError

if TYPE_CHECKING:
    from .engine import OPS, Outputs, agreement, run_computation
    from .transport import Listener, PartySpec, TLSFiles

# the engine (numpy, the protocols) loads on first use: a node imports this package for the
# schemas its contracts check, and would otherwise pay about 0.3 s of CPU at every start
_LAZY = {"OPS": "engine", "Outputs": "engine", "agreement": "engine", "run_computation": "engine",
         "Listener": "transport", "PartySpec": "transport", "TLSFiles": "transport"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "OPS",
    "Column",
    "InputError",
    "Listener",
    "MPCError",
    "Outputs",
    "PartyError",
    "PartySpec",
    "QueryError",
    "Schema",
    "TLSFiles",
    "agreement",
    "load_csv",
    "run_computation",
]
