"""Signed requests (docs/api-auth.md): who sent a request, as the node sees it.

A route that needs an identity takes ``require(roles=...)`` as a dependency::

    @router.post("/v1/evidence")
    async def file_evidence(ident: Annotated[Identity, Depends(require(roles=("legal",)))]) -> ...

The dependency checks, in this order, and answers the first failure with its own code
(``CODES``): the five headers are present and well formed; the timestamp is inside the window;
the certificate chains to the consortium root of the genesis, is valid now and is not on the
CRL the node knows; the SM2 signature over the canonical string (``api.signing``); the body's
SM3; the nonce is unseen (then it is spent); the on-chain user record (registered, active,
this certificate); the business role. Certificates and signatures are checked by
``ledger.crypto`` only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Header, Request

from ledger.contracts.context import account_of
from ledger.crypto import (
    Certificate,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevocationList,
    CertificateRevoked,
    CryptoError,
    InvalidSignature,
    MalformedSignature,
    sm3,
    verify_certificate,
)
from ledger.crypto.x509 import BUSINESS_ROLES
from ledger.node.runtime import Node

from .errors import ApiError
from .nonces import NonceStore
from .schemas import ErrorBody
from .signing import (
    H_BODY,
    H_CERT,
    H_NONCE,
    H_SIG,
    H_TIME,
    HEX64_RE,
    MAX_CERT_HEADER,
    MAX_SIG_HEADER,
    NONCE_RE,
    SIGNER_ID,
    TIME_RE,
    WINDOW_S,
    canonical_request,
)

log = logging.getLogger("rongxin.api.auth")

MAX_CRL_BYTES = 16 * 1024 * 1024

# code -> (status, meaning); docs/api-auth.md §6 lists the same table
CODES: dict[str, tuple[int, str]] = {
    "auth_missing": (401, "a signature header is absent"),
    "auth_malformed": (401, "a signature header is malformed"),
    "auth_stale": (401, "the timestamp is older than the window"),
    "auth_future": (401, "the timestamp is later than the window"),
    "auth_bad_certificate": (401, "the certificate cannot be read"),
    "auth_untrusted": (401, "the certificate does not chain to the consortium root"),
    "auth_expired": (401, "the certificate is expired or not yet valid"),
    "auth_revoked": (401, "the certificate is on the CRL"),
    "auth_bad_signature": (401, "the signature does not verify"),
    "auth_body_mismatch": (401, "the body's SM3 differs from the signed one"),
    "auth_replay": (401, "the nonce was already used"),
    "auth_unregistered": (403, "no on-chain user record for this key"),
    "auth_user_revoked": (403, "the on-chain user record is revoked"),
    "auth_certificate_mismatch": (403, "the on-chain record binds another certificate"),
    "auth_role": (403, "the business role may not use this route"),
}


# what routes that take a signed request document (each with the uniform error body)
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "signed request refused: " + "; ".join(
        f"{c} ({m})" for c, (s, m) in CODES.items() if s == 401)},
    403: {"model": ErrorBody, "description": "signer not allowed: " + "; ".join(
        f"{c} ({m})" for c, (s, m) in CODES.items() if s == 403)},
    503: {"model": ErrorBody, "description": "auth_busy: the nonce store is full or unavailable; "
          "auth_crl_unavailable: the node's CRL file cannot be used and no earlier one was"},
}


def _older(crl: CertificateRevocationList, than: CertificateRevocationList) -> bool:
    """A rollback: a lower CRL number (or, without numbers, an earlier thisUpdate)."""
    if crl.number is not None and than.number is not None:
        return crl.number < than.number
    return crl.this_update < than.this_update


def refuse(code: str, message: str, details: Any = None) -> ApiError:
    return ApiError(CODES[code][0], code, message, details)


@dataclass(frozen=True)
class Identity:
    """The signer of a request that passed every check."""

    common_name: str
    account: str
    organization: str
    role: str  # admin | user
    business: str | None
    certificate: Certificate
    record: dict[str, Any] = field(repr=False)
    body_sm3: str = ""

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint

    def wire(self) -> dict[str, Any]:
        c = self.certificate
        return {"common_name": self.common_name, "account": self.account, "organization": self.organization,
                "role": self.role, "business": self.business, "fingerprint": c.fingerprint,
                "serial": format(c.serial, "x"), "not_after": c.not_after.isoformat(),
                "registered_at": self.record.get("height"), "status": self.record.get("status")}


class Authenticator:
    """A node's checker of signed requests: its root (genesis), CRL file, nonce store, clock."""

    def __init__(self, node: Node, *, crl_path: Path | None = None, nonces: NonceStore | None = None,
                 window_s: int = WINDOW_S, clock: Callable[[], float] = time.time) -> None:
        self.node, self.crl_path, self.window_s, self.clock = node, crl_path, window_s, clock
        self.nonces = nonces if nonces is not None else NonceStore(None)
        self._crl: tuple[tuple[int, int], str | None] | None = None  # (file stamp, problem)
        self._good: CertificateRevocationList | None = None  # the last CRL that passed every check
        self.limit: Callable[[str], None] | None = None  # raises 429 for a signer over its rate limit
        self.refused: dict[str, int] = {}  # refusals by code (metrics)
        # a revoked certificate or user still signing requests: (kind, who) -> (count, first, last)
        self.revoked_tries: dict[tuple[str, str], tuple[int, float, float]] = {}
        self.revoked_counts: dict[str, int] = {}  # attempts by kind since start (metrics)

    @property
    def root(self) -> Certificate | None:
        gov = self.node.app.governance
        return gov.root if gov is not None else None

    def crl(self, root: Certificate) -> CertificateRevocationList | None:
        """The CRL in ``crl_path`` (re-read when the file changes), if the root signed it.

        Fails closed: a file that cannot be read, is not signed by the root or is older than
        the one in use (a rollback) leaves the last good CRL in force; with no good CRL ever
        read, requests are refused (503 ``auth_crl_unavailable``) until the file is fixed,
        rather than accepting certificates that may have been revoked. No file at all means
        the consortium has revoked nothing yet."""
        if self.crl_path is None:
            return None
        try:
            st = self.crl_path.stat()
        except FileNotFoundError:
            return self._good
        except OSError as exc:
            return self._fallback(f"cannot stat it: {exc}")
        stamp = (st.st_mtime_ns, st.st_size)
        if self._crl is None or self._crl[0] != stamp:
            problem: str | None = None
            try:
                if st.st_size > MAX_CRL_BYTES:
                    raise CryptoError(f"{st.st_size} bytes, over the {MAX_CRL_BYTES}-byte bound")
                crl = CertificateRevocationList.load(self.crl_path.read_bytes())
                crl.check_signed_by(root)
                if self._good is not None and _older(crl, self._good):
                    raise CryptoError(f"number {crl.number}, dated {crl.this_update.isoformat()}: older than "
                                      f"the CRL in use ({self._good.number}, {self._good.this_update.isoformat()})")
                self._good = crl
            except (OSError, CryptoError) as exc:
                problem = str(exc)
                log.warning("CRL %s not used: %s", self.crl_path, problem)
            self._crl = (stamp, problem)
        problem = self._crl[1]
        return self._good if problem is None else self._fallback(problem)

    def _fallback(self, problem: str) -> CertificateRevocationList:
        if self._good is None:
            raise ApiError(503, "auth_crl_unavailable",
                           f"the node's CRL cannot be used ({problem}); signed requests wait until it is fixed")
        return self._good

    def revoked_try(self, kind: str, who: str) -> None:
        """Remember a revoked identity that still tries (the alert of docs/operations.md §3)."""
        now = self.clock()
        n, first, _last = self.revoked_tries.get((kind, who), (0, now, now))
        self.revoked_tries[(kind, who)] = (n + 1, first, now)
        self.revoked_counts[kind] = self.revoked_counts.get(kind, 0) + 1
        if len(self.revoked_tries) > 1000:  # bounded: the oldest go first
            del self.revoked_tries[min(self.revoked_tries, key=lambda k: self.revoked_tries[k][2])]

    def check(self, method: str, target: str, headers: dict[str, str | None], body_sm3: str | None,
              roles: frozenset[str] | None) -> Identity:
        try:
            cert, claimed = self.verified(method, target, headers, body_sm3)
            if self.limit is not None:  # charged once the signature proves the signer (api/ratelimit.py)
                self.limit(cert.fingerprint)
            return self._identity(cert, claimed, roles)
        except ApiError as exc:
            self.refused[exc.code] = self.refused.get(exc.code, 0) + 1
            raise

    def verified(self, method: str, target: str, headers: dict[str, str | None],
                 body_sm3: str | None) -> tuple[Certificate, str]:
        """Steps 1-6 of docs/api-auth.md §5 (headers, timestamp, certificate, signature, body,
        nonce, which is spent): the signer's certificate and the signed body SM3."""
        cert, sig, ts, nonce, claimed = _parse(headers)
        now = int(self.clock())
        if ts < now - self.window_s:
            raise refuse("auth_stale", f"timestamp {ts} is more than {self.window_s} s before the node's {now}")
        if ts > now + self.window_s:
            raise refuse("auth_future", f"timestamp {ts} is more than {self.window_s} s after the node's {now}")
        self._check_certificate(cert, now)
        try:
            cert.public_key().verify(sig, canonical_request(method, target, claimed, ts, nonce), SIGNER_ID)
        except (InvalidSignature, MalformedSignature):
            raise refuse("auth_bad_signature", "the signature does not verify for this certificate and request") \
                from None
        if body_sm3 is not None and body_sm3 != claimed:
            raise refuse("auth_body_mismatch", f"the body's SM3 is {body_sm3}, the signed one {claimed}")
        if not self.nonces.use(cert.fingerprint, nonce, ts + self.window_s, now):
            raise refuse("auth_replay", f"nonce {nonce} was already used")
        return cert, claimed

    def _check_certificate(self, cert: Certificate, now: int) -> None:
        root = self.root
        if root is None:
            raise refuse("auth_untrusted", "this chain has no consortium root certificate")
        at = dt.datetime.fromtimestamp(now, tz=dt.UTC)
        try:
            verify_certificate(cert, root, self.crl(root), at=at, require_crl_fresh=False)
        except (CertificateExpired, CertificateNotYetValid) as exc:
            raise refuse("auth_expired", str(exc)) from None
        except CertificateRevoked as exc:
            self.revoked_try("certificate", f"{cert.common_name} (serial {cert.serial:x})")
            raise refuse("auth_revoked", str(exc)) from None
        except CryptoError as exc:
            raise refuse("auth_untrusted", str(exc)) from None

    def _identity(self, cert: Certificate, body_sm3: str, roles: frozenset[str] | None) -> Identity:
        account = account_of(cert.public_key().point)
        gov = self.node.app.governance
        rec = gov.user(self.node.app.read, account) if gov is not None else None
        if rec is None:
            raise refuse("auth_unregistered", f"no user {account} is registered on chain")
        if rec.get("status") != "active":
            if rec.get("status") == "revoked":
                self.revoked_try("user", account)
            raise refuse("auth_user_revoked", f"user {account} is {rec.get('status')} on chain")
        if rec.get("certificate") != cert.fingerprint:
            raise refuse("auth_certificate_mismatch",
                         f"user {account} is registered with certificate {rec.get('certificate')}")
        ident = Identity(cert.common_name, account, cert.organization, cert.role, cert.business, cert, rec,
                         body_sm3)
        return check_role(ident, roles)


def check_role(ident: Identity, roles: frozenset[str] | None) -> Identity:
    """``ident`` when its business role is one of ``roles`` (None: any), else ``auth_role``."""
    if roles is not None and ident.business not in roles:
        raise refuse("auth_role", f"business role {ident.business!r} may not use this; it needs one of "
                     f"{', '.join(sorted(roles))}", {"business": ident.business, "allowed": sorted(roles)})
    return ident


def _b64(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise refuse("auth_malformed", f"{name} is not base64") from None


def _parse(headers: dict[str, str | None]) -> tuple[Certificate, bytes, int, str, str]:
    missing = [h for h, v in headers.items() if v is None or v == ""]
    if missing:
        raise refuse("auth_missing", f"a signed request needs the header(s) {', '.join(missing)}",
                     {"missing": missing})
    cert_b64, sig_b64, ts_raw, nonce, claimed = (str(headers[h]) for h in (H_CERT, H_SIG, H_TIME, H_NONCE, H_BODY))
    if len(cert_b64) > MAX_CERT_HEADER or len(sig_b64) > MAX_SIG_HEADER:
        raise refuse("auth_malformed", f"{H_CERT} or {H_SIG} is too long")
    if not TIME_RE.fullmatch(ts_raw):
        raise refuse("auth_malformed", f"{H_TIME} is a decimal number of seconds since 1970")
    if not NONCE_RE.fullmatch(nonce):
        raise refuse("auth_malformed", f"{H_NONCE} is 32 to 64 lowercase hex characters")
    if not HEX64_RE.fullmatch(claimed):
        raise refuse("auth_malformed", f"{H_BODY} is 64 lowercase hex characters")
    sig = _b64(sig_b64, H_SIG)
    try:
        cert = Certificate(_b64(cert_b64, H_CERT))
        cert.business  # noqa: B018 - an unknown business role makes the certificate unreadable here
    except CryptoError as exc:
        raise refuse("auth_bad_certificate", f"{H_CERT}: {exc}") from None
    return cert, sig, int(ts_raw), nonce, claimed


def request_target(request: Request) -> str:
    """The path and query exactly as the request line sent them."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


Hdr = Annotated[str | None, Header(include_in_schema=True)]


def require(roles: Iterable[str] | None = None, *,
            stream_body: bool = False) -> Callable[..., Awaitable[Identity]]:
    """A dependency giving the request's :class:`Identity`. ``roles``: the business roles the
    route admits (None: any registered identity). ``stream_body``: the route streams the body
    itself and must compare its SM3 with ``Identity.body_sm3`` (else the body is read and
    checked here; the route reads it again from the request's cache)."""
    allowed = frozenset(roles) if roles is not None else None
    if allowed is not None and not allowed <= set(BUSINESS_ROLES):
        raise ValueError(f"business roles are {BUSINESS_ROLES}")

    async def identity(request: Request, x_rongxin_certificate: Hdr = None, x_rongxin_signature: Hdr = None,
                       x_rongxin_timestamp: Hdr = None, x_rongxin_nonce: Hdr = None,
                       x_rongxin_content_sm3: Hdr = None) -> Identity:
        auth: Authenticator = request.app.state.auth
        headers = {H_CERT: x_rongxin_certificate, H_SIG: x_rongxin_signature, H_TIME: x_rongxin_timestamp,
                   H_NONCE: x_rongxin_nonce, H_BODY: x_rongxin_content_sm3}
        body_sm3 = None if stream_body else sm3(await request.body()).hex()
        return auth.check(request.method, request_target(request), headers, body_sm3, allowed)

    return identity


def optional() -> Callable[..., Awaitable[Identity | ApiError | None]]:
    """A dependency for routes public in general that reveal private records (docs/api.md §7)
    only to those allowed: None for a request without any signature header, the
    :class:`Identity` of a request that passes every check (any business role), or the
    refusal (``ApiError``) of one that does not, returned, not raised: such a request still
    gets what is public, and the refusal is its answer only for something private."""

    async def identity(request: Request, x_rongxin_certificate: Hdr = None, x_rongxin_signature: Hdr = None,
                       x_rongxin_timestamp: Hdr = None, x_rongxin_nonce: Hdr = None,
                       x_rongxin_content_sm3: Hdr = None) -> Identity | ApiError | None:
        headers = {H_CERT: x_rongxin_certificate, H_SIG: x_rongxin_signature, H_TIME: x_rongxin_timestamp,
                   H_NONCE: x_rongxin_nonce, H_BODY: x_rongxin_content_sm3}
        if all(v is None for v in headers.values()):
            return None
        auth: Authenticator = request.app.state.auth
        try:
            return auth.check(request.method, request_target(request), headers, sm3(await request.body()).hex(), None)
        except ApiError as exc:
            return exc

    return identity
