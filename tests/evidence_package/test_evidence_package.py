"""The evidence package from a real consortium: it verifies offline, fast, and every tampering
fails naming the check (docs/evidence-format.md §5, issue 12 items 6 and 7)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from forensics.package import format as pf
from forensics.verify import MEANING, OPTIONAL_CHECKS, verify_package
from ledger.crypto import SM3, Certificate, SM2PrivateKey, generate_private_key
from ledger.crypto.ca import ConsortiumCA
from ledger.crypto.x509 import Revocation, build_crl

from ..conftest import RONGXIN
from .conftest import Exported

pytestmark = [pytest.mark.slow]

Members = dict[str, bytes]


def members_of(pkg: Path) -> Members:
    with zipfile.ZipFile(pkg) as z:
        return {n: z.read(n) for n in z.namelist()}


def write(members: Members, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return path


def resign(m: Members, key: SM2PrivateKey, cert: Certificate | None = None) -> Members:
    """Re-hash every member into the manifest and sign it again (as a forger with a key would)."""
    m = dict(m)
    if cert is not None:
        m[pf.FILER_CERT] = cert.der
    man = json.loads(m[pf.MANIFEST])
    man["members"] = {}
    for n, b in m.items():
        if n not in (pf.MANIFEST, pf.SIGNATURE):
            h = SM3()
            h.update(b)
            man["members"][n] = {"sm3": h.hexdigest(), "size": len(b)}
    man["filer"] = {"certificate": Certificate(m[pf.FILER_CERT]).fingerprint}
    m[pf.MANIFEST] = pf.canonical(man)
    m[pf.SIGNATURE] = key.sign(m[pf.MANIFEST])
    return m


def edit(m: Members, name: str, fn: Callable[[dict], None]) -> Members:
    m = dict(m)
    doc = json.loads(m[name])
    fn(doc)
    m[name] = pf.canonical(doc)
    return m


def failed(ex: Exported, m: Members, tmp: Path) -> list[str]:
    r = verify_package(write(m, tmp / "t.zip"), ex.root.read_bytes())
    assert not r.ok
    return r.failed()


def cli(pkg: Path, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["unshare", "-n", str(RONGXIN), "evidence", "verify", str(pkg), "--root", str(root), *extra],
                          capture_output=True, text=True, timeout=60, check=False)


def test_untouched_package_verifies_offline_fast(exported: Exported) -> None:
    s = time.perf_counter()
    p = cli(exported.pkg, exported.root, "--json")
    took = time.perf_counter() - s
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr
    out = json.loads(p.stdout)
    assert out["ok"] and set(out["checks"]) == set(MEANING) - set(OPTIONAL_CHECKS) and all(c["ok"] for c in out["checks"].values())
    assert [s["type"] for s in out["statements"]] == ["kv.set", "kv.set"]
    assert out["statements"][0]["sender"]["name"] == "Legal Centre A" and out["statements"][0]["code"] == 0
    assert len(out["statements"][0]["artefacts"]) == 2
    assert cli(exported.one_call, exported.root).returncode == 0
    text = cli(exported.pkg, exported.root).stdout
    assert "全部核验通过" in text and "Art. 16" in text and "SF/T 0076-2020" in text
    for a in out["statements"][0]["artefacts"] + out["statements"][1]["artefacts"]:
        assert a["sm3"] in text and a["name"].startswith("artefacts/")
    print(f"export {exported.export_s:.2f} s, verify {took:.2f} s (CLI, offline), "
          f"package {exported.pkg.stat().st_size} bytes")


def test_every_byte_flip_removal_and_addition_fails(exported: Exported, tmp_path: Path) -> None:
    base = members_of(exported.pkg)
    for n, b in base.items():
        for i in (0, len(b) // 2, len(b) - 1):
            m = dict(base)
            m[n] = b[:i] + bytes([b[i] ^ 0x10]) + b[i + 1:]
            assert failed(exported, m, tmp_path), n
        m = dict(base)
        del m[n]
        assert failed(exported, m, tmp_path)
    m = dict(base)
    m["artefacts/extra.bin"] = b"not evidence"
    assert "members" in failed(exported, m, tmp_path)
    del m["artefacts/extra.bin"]
    art = next(n for n in base if n.startswith("artefacts/"))
    del m[art]
    assert "members" in failed(exported, m, tmp_path)


def test_another_root_and_cli_exit_codes(exported: Exported, tmp_path: Path) -> None:
    ConsortiumCA.init(tmp_path / "ca2", "Other Consortium")
    root2 = tmp_path / "ca2" / "root.crt.pem"
    p = cli(exported.pkg, root2)
    assert p.returncode == 1 and "genesis" in p.stdout and "Traceback" not in p.stdout + p.stderr
    base = members_of(exported.pkg)
    m = dict(base)
    m[pf.STATEMENTS] = m[pf.STATEMENTS].replace(b'"code":0', b'"code":4', 1)
    p = cli(write(m, tmp_path / "x.zip"), exported.root)
    assert p.returncode == 1 and "member-hashes" in p.stdout and "receipts" in p.stdout


def test_qc_too_few_duplicate_outsider_signers(exported: Exported, tmp_path: Path) -> None:
    base = members_of(exported.pkg)

    def few(doc: dict) -> None:
        doc["blocks"][0]["qc"]["sigs"] = doc["blocks"][0]["qc"]["sigs"][:2]

    def dup(doc: dict) -> None:
        s = doc["blocks"][0]["qc"]["sigs"]
        s.insert(0, s[0])

    def outsider(doc: dict) -> None:
        doc["blocks"][0]["qc"]["sigs"][-1]["by"] = "zz-outsider"

    for fn, why in ((few, "a quorum"), (dup, "twice"), (outsider, "non-members")):
        r = verify_package(write(resign(edit(base, pf.BLOCKS, fn), exported.key), tmp_path / "q.zip"),
                           exported.root.read_bytes())
        assert r.failed() == ["quorum-certificates"] or "quorum-certificates" in r.failed()
        assert why in (r.checks["quorum-certificates"] or "")


def test_uncertified_validator_set_and_forged_genesis_set(exported: Exported, tmp_path: Path) -> None:
    base = members_of(exported.pkg)
    keys = [generate_private_key() for _ in range(4)]
    org = json.loads(base[pf.VALIDATORS])["history"][0]["set"][0]["org"]
    certs = [exported.ca.issue(kind="user", name=f"f{i}", org=org, role="user", public_key=k.public_key())
             for i, k in enumerate(keys)]
    forged = [{"id": f"f{i}", "key": k.public_key().point.hex(), "org": org, "role": "consensus"}
              for i, k in enumerate(keys)]
    top = max(b["header"]["height"] for b in json.loads(base[pf.BLOCKS])["blocks"])

    def change(doc: dict) -> None:
        first = doc["history"][0]
        doc["history"].append({"from_height": top, "set": forged, "handover": {
            "height": top - 1, "value": json.dumps({"schedule": [[top, forged]]}), "proof": {
                "format": "rongxin-smt-proof/1", "leaf": None, "siblings": []}}})
        assert first["from_height"] == 0

    r = verify_package(write(resign(edit(base, pf.VALIDATORS, change), exported.key), tmp_path / "v.zip"),
                       exported.root.read_bytes())
    assert "validator-history" in r.failed()

    def genesis_set(doc: dict) -> None:
        doc["history"][0]["set"] = forged
        doc["history"][0]["certificates"] = [c.der.hex() for c in certs]

    r = verify_package(write(resign(edit(base, pf.VALIDATORS, genesis_set), exported.key), tmp_path / "g.zip"),
                       exported.root.read_bytes())
    assert {"genesis-validators", "genesis", "quorum-certificates"} <= set(r.failed())
    assert "not a validator node certificate" in (r.checks["genesis-validators"] or "")


def test_paths_for_another_transaction(exported: Exported, tmp_path: Path) -> None:
    base = members_of(exported.pkg)

    def swap(field: str) -> Callable[[dict], None]:
        def fn(doc: dict) -> None:
            a, b = doc["statements"]
            a[field], b[field] = b[field], a[field]
        return fn

    r = verify_package(write(resign(edit(base, pf.STATEMENTS, swap("proof")), exported.key), tmp_path / "i.zip"),
                       exported.root.read_bytes())
    assert "inclusion" in r.failed()
    r = verify_package(write(resign(edit(base, pf.STATEMENTS, swap("receipt_proof")), exported.key),
                             tmp_path / "r.zip"), exported.root.read_bytes())
    assert "receipts" in r.failed()


def _ms(d: dt.datetime) -> int:
    return int(d.timestamp() * 1000)


def test_filer_certificates_other_root_revoked_expired_resigned(exported: Exported, tmp_path: Path) -> None:
    base = members_of(exported.pkg)
    root = exported.root.read_bytes()
    pub = exported.key.public_key()
    org = exported.cert.organization
    block_ms = min(b["header"]["time"] for b in json.loads(base[pf.BLOCKS])["blocks"])
    block_t = dt.datetime.fromtimestamp(block_ms / 1000, tz=dt.UTC)
    # another root: same key, certificate from another CA
    ca2 = ConsortiumCA.init(tmp_path / "ca2o", "Other Consortium")
    c2 = ca2.issue(kind="user", name="Legal Centre A", org=ca2.consortium, role="user", public_key=pub)
    assert "filer-certificate" in verify_package(write(resign(base, exported.key, c2), tmp_path / "a.zip"), root).failed()
    # expired at the block time
    old = exported.ca.issue(kind="user", name="Legal Centre A", org=org, role="user", public_key=pub,
                            not_before=block_t - dt.timedelta(days=2), not_after=block_t - dt.timedelta(days=1))
    assert "filer-certificate" in verify_package(write(resign(base, exported.key, old), tmp_path / "e.zip"), root).failed()
    # revoked before the block time (a CRL the root signs); after the signing time it still holds
    rkey = exported.ca._root_key()
    rootc = Certificate.load(root)

    def crl_revoking(at: dt.datetime) -> bytes:
        return build_crl(issuer_key=rkey, issuer=rootc, revoked=[Revocation(exported.cert.serial, at, "key_compromise")],
                         number=99, this_update=dt.datetime.now(dt.UTC), next_update=dt.datetime.now(dt.UTC)
                         + dt.timedelta(days=1)).der

    m = dict(base)
    m[pf.CRL] = crl_revoking(block_t - dt.timedelta(hours=1))
    got = verify_package(write(resign(m, exported.key), tmp_path / "rv.zip"), root).failed()
    assert {"filer-certificate", "sender-certificates"} <= set(got)
    m[pf.CRL] = crl_revoking(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert verify_package(write(resign(m, exported.key), tmp_path / "ok.zip"), root).ok
    # re-signed by a different identity of the same consortium
    k3 = generate_private_key()
    c3 = exported.ca.issue(kind="user", name="Someone Else", org=org, role="user", public_key=k3.public_key())
    got = verify_package(write(resign(base, k3, c3), tmp_path / "s.zip"), root).failed()
    assert got == ["filer-certificate"], got
    # a forged filer signature alone
    m = dict(base)
    m[pf.SIGNATURE] = k3.sign(m[pf.MANIFEST])
    assert verify_package(write(m, tmp_path / "fs.zip"), root).failed() == ["filer-signature"]


def test_unreadable_packages_exit_2(exported: Exported, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z, z.open("artefacts/zeros", "w") as f:
        for _ in range(64):
            f.write(bytes(1 << 20))
    trav = write({"../evil": b"x", **members_of(exported.pkg)}, tmp_path / "trav.zip")
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        for i in range(10_000):
            z.writestr(f"artefacts/f{i}", b"")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    for p, why in ((bomb, "zip bomb"), (trav, "outside the package layout"), (many, "the limit is"), (junk, "not a zip")):
        r = cli(p, exported.root)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stdout + r.stderr, (p, r.stderr)


def test_artefact_no_statement_names_and_swapped_artefacts(exported: Exported, tmp_path: Path) -> None:
    base = members_of(exported.pkg)
    m = dict(base)
    m["artefacts/loose.bin"] = b"signed by the filer but recorded by no transaction"
    r = verify_package(write(resign(m, exported.key), tmp_path / "l.zip"), exported.root.read_bytes())
    assert r.failed() == ["artefacts"] and "no statement names" in (r.checks["artefacts"] or "")

    def swap(doc: dict) -> None:
        a, b = doc["statements"]
        a["artefacts"], b["artefacts"] = b["artefacts"], a["artefacts"]

    r = verify_package(write(resign(edit(base, pf.MANIFEST, swap), exported.key), tmp_path / "w.zip"),
                       exported.root.read_bytes())
    assert r.failed() == ["artefacts"] and "not named by transaction" in (r.checks["artefacts"] or "")


def test_fetch_bundle_refusals(exported: Exported) -> None:
    unknown, malformed = exported.refusals
    assert "no proof bundle within" in unknown and "no transaction" in unknown
    assert "refused the proof bundle: 400" in malformed


def test_crl_older_than_the_statements_and_backdated_signing(exported: Exported, tmp_path: Path) -> None:
    """A CRL published before the latest statement's block cannot show a revocation up to that
    act: refused (check ``crl``), even though the root signed it and it revokes nothing. A
    package claiming to be signed before its statements' blocks fails ``filer-certificate``."""
    base = members_of(exported.pkg)
    root = exported.root.read_bytes()
    latest = max(b["header"]["time"] for b in json.loads(base[pf.BLOCKS])["blocks"])
    latest_t = dt.datetime.fromtimestamp(latest / 1000, tz=dt.UTC)
    rkey, rootc = exported.ca._root_key(), Certificate.load(root)

    def crl_at(this_update: dt.datetime) -> bytes:
        return build_crl(issuer_key=rkey, issuer=rootc, revoked=[], number=77, this_update=this_update,
                         next_update=this_update + dt.timedelta(days=30)).der

    m = dict(base)
    m[pf.CRL] = crl_at(latest_t - dt.timedelta(minutes=10))
    r = verify_package(write(resign(m, exported.key), tmp_path / "old.zip"), root)
    assert r.failed() == ["crl"] and "before the latest statement" in str(r.checks["crl"]), r.checks
    m[pf.CRL] = crl_at(latest_t + dt.timedelta(seconds=1))
    assert verify_package(write(resign(m, exported.key), tmp_path / "new.zip"), root).ok
    back = edit(base, pf.MANIFEST, lambda d: d.update(created_ms=latest - 60_000))
    r = verify_package(write(resign(back, exported.key), tmp_path / "back.zip"), root)
    assert r.failed() == ["filer-certificate"] and "signed before the statements" in str(r.checks["filer-certificate"])
