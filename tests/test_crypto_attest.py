"""The root's genesis attestation (ledger/crypto/attest.py): the signed bytes, and every way an
attestation can be wrong is a typed GenesisAttestationError."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.crypto import (
    GenesisAttestationError,
    SM2PrivateKey,
    attestation_message,
    sign_genesis_attestation,
    verify_genesis_attestation,
)
from ledger.crypto.ca import ConsortiumCA

G = bytes(range(32))


def test_attestation_round_trip_and_refusals(tmp_path: Path) -> None:
    ca = ConsortiumCA.init(tmp_path / "ca", "Attesting Consortium")
    att = ca.attest_genesis("c1", G)
    assert set(att) == {"chain", "format", "genesis", "sig"} and att["genesis"] == G.hex()
    verify_genesis_attestation(att, ca.root, "c1", G)
    assert attestation_message("c1", G) == (
        b'{"chain":"c1","format":"rongxin-genesis-attestation/1","genesis":"' + G.hex().encode() + b'"}')
    other = ConsortiumCA.init(tmp_path / "ca2", "Other Consortium")
    cases = [
        (att, other.root, "c1", G, "not signed by the consortium root"),
        (att, ca.root, "c2", G, "is for chain"),
        (att, ca.root, "c1", bytes(32), "is for genesis"),
        (sign_genesis_attestation(SM2PrivateKey.generate(), "c1", G), ca.root, "c1", G, "not signed"),
        ({**ca.attest_genesis("c1", bytes(32)), "genesis": G.hex()}, ca.root, "c1", G, "not signed"),
        ({**att, "genesis": G.hex().upper()}, ca.root, "c1", G, "not lowercase hex"),
        ({**att, "sig": "00" * 81}, ca.root, "c1", G, "not lowercase hex"),
        ({**att, "sig": "3000"}, ca.root, "c1", G, "not signed"),
        ({**att, "format": "x"}, ca.root, "c1", G, "format"),
        ({k: v for k, v in att.items() if k != "sig"}, ca.root, "c1", G, "exactly"),
        ([att], ca.root, "c1", G, "exactly"),
    ]
    for a, root, chain, g, why in cases:
        with pytest.raises(GenesisAttestationError, match=why):
            verify_genesis_attestation(a, root, chain, g)
    for chain, g in (("", G), ("x" * 257, G), ("c1", b"short")):
        with pytest.raises(GenesisAttestationError):
            attestation_message(chain, g)
