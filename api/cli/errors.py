"""Exit codes and the one place that maps errors to them.

=====  ===================================================================
code   meaning
=====  ===================================================================
0      success; for a verification: it holds
1      a negative answer: signature invalid, certificate revoked, expired,
       not yet valid or not from this root, a known-answer test failed, or
       what a node prepared for signing is not what was asked for
       (``api.sdk_check.UnsafeToSign``: nothing was signed or submitted)
2      unusable input: wrong usage, unreadable or malformed file, key,
       signature, certificate or CRL, wrong password, refused overwrite
3      the environment: OpenSSL missing, a file that cannot be written
4      an internal error (a bug): one line is printed; set RONGXIN_DEBUG=1
       for the traceback
130    interrupted (Ctrl-C)
=====  ===================================================================
"""

from __future__ import annotations

import os
import sys
import traceback

from ledger.crypto.errors import (
    BackendError,
    BackendUnavailable,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CryptoError,
    InvalidSignature,
    UntrustedCertificate,
)
from ledger.errors import LedgerError

from ..sdk_check import UnsafeToSign

OK = 0
NEGATIVE = 1
BAD_INPUT = 2
ENVIRONMENT = 3
INTERNAL = 4
INTERRUPTED = 130

NEGATIVE_ERRORS: tuple[type[Exception], ...] = (
    InvalidSignature,
    CertificateRevoked,
    CertificateExpired,
    CertificateNotYetValid,
    UntrustedCertificate,
    UnsafeToSign,
)


class InputError(Exception):
    """A user mistake found by the CLI itself (missing file, refused overwrite, ...)."""


class EnvironmentProblem(Exception):
    """Something about the machine, not the input (a tool missing, disk full, ...)."""


class NegativeResult(Exception):
    """A check ran and said no; the message says which."""


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, (NegativeResult, *NEGATIVE_ERRORS)):
        return NEGATIVE
    if isinstance(exc, BackendUnavailable | BackendError | EnvironmentProblem):
        return ENVIRONMENT
    if isinstance(exc, InputError | CryptoError | LedgerError):
        return BAD_INPUT
    if isinstance(exc, OSError):
        return ENVIRONMENT
    return INTERNAL


def report(exc: BaseException) -> int:
    """Print one line for ``exc`` on stderr and return its exit code."""
    code = exit_code_for(exc)
    if code == INTERRUPTED:
        print("rongxin: interrupted", file=sys.stderr)
        return code
    label = {NEGATIVE: "no", BAD_INPUT: "error", ENVIRONMENT: "environment error",
             INTERNAL: "internal error"}[code]
    message = str(exc) or type(exc).__name__
    print(f"rongxin: {label}: {message}", file=sys.stderr)
    if code == INTERNAL:
        if os.environ.get("RONGXIN_DEBUG"):
            traceback.print_exception(exc)
        else:
            print("rongxin: this is a bug; rerun with RONGXIN_DEBUG=1 for details",
                  file=sys.stderr)
    return code
