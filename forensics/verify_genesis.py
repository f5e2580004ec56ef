"""The genesis half of the offline verifier (docs/evidence-format.md §4, §5): the consortium
root attested this genesis (``genesis-attestation``), and each genesis validator held a node
certificate of its role and organisation from that root, valid and not revoked at the
genesis time (``genesis-validators``).

Without both, anyone holding one certificate of the root (a validator operator) could write
a genesis naming themselves the only validator, sign every block alone and hand a court a
chain of their own. Depends on ``ledger.crypto`` and the package format only.
"""

from __future__ import annotations

from typing import Any

from ledger.crypto import Certificate, CertificateRevocationList, CryptoError, verify_genesis_attestation

from .verify_chain import CheckFailed, header_hash, hexb, need

VALIDATOR_ROLES = ("consensus", "supervisor")  # the node roles (certificate OU) of validators


class GenesisNotAttested(CheckFailed):
    """The genesis carries no attestation, or one the trusted root did not sign for it."""


class GenesisValidatorRefused(CheckFailed):
    """A genesis validator lacks a valid, unrevoked node certificate of the root for its entry."""


def genesis_header(gen: Any) -> dict[str, Any]:
    need(isinstance(gen, dict) and isinstance(gen.get("header"), dict), 'chain/genesis.json is {"attestation", "header"}')
    return dict(gen["header"])


def check_attestation(gen: Any, root: Certificate) -> None:
    """``gen["attestation"]`` is the root's signature over this genesis's chain and hash."""
    hd = genesis_header(gen)
    if "attestation" not in gen:
        raise GenesisNotAttested("the genesis carries no attestation by the consortium root")
    try:
        verify_genesis_attestation(gen["attestation"], root, str(hd.get("chain")), header_hash(hd))
    except CryptoError as exc:
        raise GenesisNotAttested(str(exc)) from None


def _certificates(first: Any) -> dict[str, Certificate]:
    need(isinstance(first, dict) and isinstance(first.get("certificates"), list) and isinstance(first.get("set"), list),
         "the history does not start with the genesis set and its certificates")
    out = {}
    for der in first["certificates"]:
        c = Certificate(hexb(der))
        out[c.public_key().point.hex()] = c
    return out


def check_genesis_validators(first: Any, gen: Any, root: Certificate, crl: CertificateRevocationList | None) -> None:
    """Each member of the genesis set (``first``, the history's first entry) has a certificate
    in ``first["certificates"]`` for its key, issued by ``root``, with role (OU) and
    organisation (O) equal to its entry and a validator role, valid at the genesis header's
    ``time`` and not revoked at or before it by ``crl``."""
    from .verify import check_cert

    t = genesis_header(gen).get("time")
    need(isinstance(t, int) and not isinstance(t, bool), "the genesis header has no time")
    assert isinstance(t, int)
    certs = _certificates(first)
    for v in first["set"]:
        need(isinstance(v, dict) and isinstance(v.get("key"), str), "a genesis validator has no key")
        vid = v.get("id")
        c = certs.get(v["key"])
        if c is None:
            raise GenesisValidatorRefused(f"genesis validator {vid} has no certificate")
        if c.role not in VALIDATOR_ROLES or c.role != v.get("role") or c.organization != v.get("org"):
            raise GenesisValidatorRefused(f"genesis validator {vid}'s certificate (role {c.role!r}, organisation "
                                          f"{c.organization!r}) is not a validator node certificate of its entry")
        try:
            check_cert(c, root, crl, t, f"genesis validator {vid} at the genesis time")
        except CheckFailed as exc:
            raise GenesisValidatorRefused(str(exc)) from None
