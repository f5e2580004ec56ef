"""The genesis is pinned by the consortium root (docs/evidence-format.md §4, checks
``genesis-attestation`` and ``genesis-validators``): a chain forged by one validator operator
with its real root-issued node certificate is refused, and so is an attestation by another key
or of another genesis, and a genesis validator whose certificate was revoked, expired, not yet
valid or not a validator certificate at the genesis time. The honest package verifies."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from forensics import verify_chain as vc
from forensics.package import format as pf
from forensics.verify import MEANING, OPTIONAL_CHECKS, verify_package
from ledger.crypto import Certificate, SM2PrivateKey, sign_genesis_attestation, sm3
from ledger.crypto.ca import ConsortiumCA
from ledger.crypto.x509 import Revocation, build_crl

from .conftest import Exported
from .test_evidence_package import Members, cli, edit, members_of, resign, write

pytestmark = [pytest.mark.slow]


def _node(ex: Exported, nid: str) -> tuple[SM2PrivateKey, Certificate]:
    folder = ex.data / "nodes" / nid
    return (SM2PrivateKey.load((folder / "sm2.key.pem").read_bytes()),
            Certificate.load((folder / "sm2.crt.pem").read_bytes()))


def _verify(ex: Exported, m: Members, tmp: Path, name: str = "p.zip") -> Any:
    return verify_package(write(m, tmp / name), ex.root.read_bytes())


def _genesis(m: Members) -> dict[str, Any]:
    return dict(json.loads(m[pf.GENESIS]))


def _with_attestation(ex: Exported, m: Members, att: dict[str, Any] | None) -> Members:
    def put(doc: dict[str, Any]) -> None:
        doc.pop("attestation", None)
        if att is not None:
            doc["attestation"] = att
    return resign(edit(m, pf.GENESIS, put), ex.key)


def forge_one_validator_chain(ex: Exported, base: Members) -> tuple[Members, bytes]:
    """What val1's operator can do with its own key and real node certificate alone: a genesis
    naming val1 the only validator, every block re-linked and certified by val1 alone, the
    package re-signed by the filer. Returns the members (genesis attestation left as it was)
    and the forged genesis hash."""
    key, cert = _node(ex, "val1")
    vset = [{"id": "val1", "key": key.public_key().point.hex(), "org": cert.organization, "role": cert.role}]
    digest = sm3(pf.canonical(vset)).hex()
    gen = _genesis(base)
    gen["header"]["validators"] = digest
    genesis_hash = vc.header_hash(gen["header"])
    blocks = json.loads(base[pf.BLOCKS])["blocks"]
    hashes: dict[int, str] = {}
    for blk in blocks:
        hd = blk["header"]
        hd["validators"] = digest
        if hd["height"] - 1 in hashes:
            hd["parent"] = hashes[hd["height"] - 1]
        h = vc.header_hash(hd).hex()
        hashes[hd["height"]] = h
        vote = pf.canonical({"kind": "vote", "chain": hd["chain"], "height": hd["height"], "view": hd["view"],
                             "block": h})
        blk["qc"] = {"chain": hd["chain"], "height": hd["height"], "view": hd["view"], "block": h,
                     "sigs": [{"by": "val1", "sig": key.sign(vote).hex()}]}
    m = dict(base)
    m[pf.GENESIS] = pf.canonical(gen)
    m[pf.BLOCKS] = pf.canonical({"blocks": blocks})
    m[pf.VALIDATORS] = pf.canonical({"history": [{"certificates": [cert.der.hex()], "from_height": 0, "set": vset}]})
    m = edit(m, pf.MANIFEST, lambda man: man.update(genesis=genesis_hash.hex()))
    return resign(m, ex.key), genesis_hash


def test_the_node_serves_the_attestation_and_the_honest_package_verifies(exported: Exported, tmp_path: Path) -> None:
    att = json.loads((exported.data / "genesis.attestation.json").read_text())
    assert exported.bundle["genesis_attestation"] == att
    base = members_of(exported.pkg)
    assert _genesis(base)["attestation"] == att and att["genesis"] == vc.header_hash(_genesis(base)["header"]).hex()
    r = verify_package(exported.pkg, exported.root.read_bytes())
    assert r.ok and {"genesis-attestation", "genesis-validators"} <= set(r.checks) == set(MEANING) - set(OPTIONAL_CHECKS), r.checks
    assert verify_package(exported.one_call, exported.root.read_bytes()).ok


def test_a_forged_one_validator_chain_is_refused(exported: Exported, tmp_path: Path) -> None:
    forged, genesis_hash = forge_one_validator_chain(exported, members_of(exported.pkg))
    r = _verify(exported, forged, tmp_path)
    # every other check holds: without the root's attestation, this chain would verify
    assert r.failed() == ["genesis-attestation"], r.checks
    assert "is for genesis" in (r.checks["genesis-attestation"] or "")
    r = _verify(exported, _with_attestation(exported, forged, None), tmp_path)
    assert r.failed() == ["genesis-attestation"] and "carries no attestation" in (r.checks["genesis-attestation"] or "")
    # the forger attests its genesis with the key it holds: not the root's
    key, _ = _node(exported, "val1")
    chain = _genesis(forged)["header"]["chain"]
    r = _verify(exported, _with_attestation(exported, forged, sign_genesis_attestation(key, chain, genesis_hash)),
                tmp_path)
    assert r.failed() == ["genesis-attestation"] and "not signed by the consortium root" in (
        r.checks["genesis-attestation"] or "")
    p = cli(write(forged, tmp_path / "forged.zip"), exported.root)
    assert p.returncode == 1 and "genesis-attestation" in p.stdout and "Traceback" not in p.stdout + p.stderr
    # control: had the root attested this genesis, the forged chain would be the consortium's own
    att = exported.ca.attest_genesis(chain, genesis_hash)
    assert _verify(exported, _with_attestation(exported, forged, att), tmp_path).ok


def test_an_attestation_by_another_key_or_of_another_genesis_is_refused(exported: Exported, tmp_path: Path) -> None:
    base = members_of(exported.pkg)
    hd = _genesis(base)["header"]
    real = vc.header_hash(hd)
    other = ConsortiumCA.init(tmp_path / "ca2", "Other Consortium")
    real_att = _genesis(base)["attestation"]
    cases: list[tuple[dict[str, Any], str]] = [
        (other.attest_genesis(hd["chain"], real), "not signed by the consortium root"),
        (exported.ca.attest_genesis(hd["chain"], sm3(b"another genesis")), "is for genesis"),
        ({**exported.ca.attest_genesis(hd["chain"], sm3(b"another genesis")), "genesis": real.hex()},
         "not signed by the consortium root"),
        (exported.ca.attest_genesis("another-chain", real), "is for chain"),
        ({**real_att, "format": "rongxin-genesis-attestation/2"}, "format"),
        ({**real_att, "sig": real_att["sig"][:-2]}, "not signed by the consortium root"),
        ({**real_att, "note": "x"}, "exactly"),
    ]
    for att, why in cases:
        r = _verify(exported, _with_attestation(exported, base, att), tmp_path)
        assert r.failed() == ["genesis-attestation"] and why in (r.checks["genesis-attestation"] or ""), (att, r.checks)


def _genesis_time(m: Members) -> dt.datetime:
    return dt.datetime.fromtimestamp(_genesis(m)["header"]["time"] / 1000, tz=dt.UTC)


def _swap_certificate(ex: Exported, m: Members, old: Certificate, new: Certificate) -> Members:
    def put(doc: dict[str, Any]) -> None:
        certs = doc["history"][0]["certificates"]
        certs[certs.index(old.der.hex())] = new.der.hex()
    return resign(edit(m, pf.VALIDATORS, put), ex.key)


def test_a_revoked_genesis_validator_is_refused(exported: Exported, tmp_path: Path) -> None:
    base = members_of(exported.pkg)
    g = _genesis_time(base)
    _, cert = _node(exported, "val2")
    root = Certificate.load(exported.root.read_bytes())
    now = dt.datetime.now(dt.UTC)

    def crl(at: dt.datetime) -> bytes:
        return build_crl(issuer_key=exported.ca._root_key(), issuer=root,
                         revoked=[Revocation(cert.serial, at, "key_compromise")], number=77,
                         this_update=now, next_update=now + dt.timedelta(days=1)).der

    m = dict(base)
    m[pf.CRL] = crl(g)
    r = _verify(exported, resign(m, exported.key), tmp_path)
    assert r.failed() == ["genesis-validators"] and "genesis validator val2" in (r.checks["genesis-validators"] or "")
    assert "revoked" in (r.checks["genesis-validators"] or "")
    # a revocation dated after the genesis does not undo what val2 was at the genesis
    m[pf.CRL] = crl(g + dt.timedelta(hours=1))
    assert _verify(exported, resign(m, exported.key), tmp_path).ok


def test_an_expired_not_yet_valid_or_non_validator_certificate_is_refused(exported: Exported, tmp_path: Path) -> None:
    base = members_of(exported.pkg)
    g = _genesis_time(base)
    key, cert = _node(exported, "val3")
    pub, org = key.public_key(), cert.organization
    ca2 = ConsortiumCA.init(tmp_path / "ca3", "Other Consortium")
    cases = [
        (exported.ca.issue(kind="node", name="val3", org=org, role="consensus", public_key=pub,
                           not_before=g - dt.timedelta(days=2), not_after=g - dt.timedelta(days=1)), "expired"),
        (exported.ca.issue(kind="node", name="val3", org=org, role="consensus", public_key=pub,
                           not_before=g + dt.timedelta(days=1)), "not valid before"),
        (exported.ca.issue(kind="user", name="val3", org=org, role="user", public_key=pub, business="court"),
         "not a validator node certificate"),
        (exported.ca.issue(kind="node", name="val3", org=org, role="full", public_key=pub),
         "not a validator node certificate"),
        (exported.ca.issue(kind="node", name="val3", org="Another Org", role="consensus", public_key=pub),
         "not a validator node certificate"),
        (ca2.issue(kind="node", name="val3", org=org, role="consensus", public_key=pub), "val3"),
    ]
    for new, why in cases:
        r = _verify(exported, _swap_certificate(exported, base, cert, new), tmp_path)
        assert r.failed() == ["genesis-validators"] and why in (r.checks["genesis-validators"] or ""), (new, r.checks)

    def drop(doc: dict[str, Any]) -> None:
        doc["history"][0]["certificates"].remove(cert.der.hex())

    r = _verify(exported, resign(edit(base, pf.VALIDATORS, drop), exported.key), tmp_path)
    assert r.failed() == ["genesis-validators"] and "has no certificate" in (r.checks["genesis-validators"] or "")
