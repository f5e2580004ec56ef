"""Secure multiparty computation of joint statistics (issue 13, the engine core).

``run_computation`` runs one query among 3 to 16 party processes over mutually authenticated
TLS; see docs/privacy.md for the protocols, the security model and the message format.
"""

from .data import Column, Schema, load_csv
from .engine import OPS, Outputs, agreement, run_computation
from .errors import InputError, MPCError, PartyError, QueryError
from .transport import Listener, PartySpec, TLSFiles

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
