"""docs/evidence-format.md §8: every value of the worked example, recomputed (no cluster)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from forensics import verify_chain as vc
from forensics.package import format as pf
from ledger.crypto import SM2PrivateKey, SM2PublicKey, attestation_message, sm3

DOC = (Path(__file__).parents[2] / "docs" / "evidence-format.md").read_text()
ART = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
MANIFEST = pf.canonical({
    "chain": "rongxin-local", "created_ms": 1733356800000, "filer": {"certificate": "aa" * 32},
    "format": "rongxin-evidence/1", "genesis": "bb" * 32,
    "members": {"artefacts/abc.txt": {"sm3": ART, "size": 3}},
    "statements": [{"artefacts": ["artefacts/abc.txt"], "tx": "cc" * 32}]})
SIG = bytes.fromhex("30450220556d3dfe41fc0641182e03ba46d86b6cdb2e053bf8ce1bc2693b99c64f150d83022100af2e33c4fb1a"
                    "0779f6724a30785be758e178220519a07e283a3b16e1cd1e4eb3")


def test_worked_example_values() -> None:
    assert sm3(b"abc").hex() == ART and ART in DOC
    assert MANIFEST.decode() in DOC
    assert sm3(MANIFEST).hex() == "f870b0b7281c949283ff862df739bb5773499678b59411a2c1e021db1bb52153" in DOC
    key = SM2PrivateKey.from_scalar(int("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8", 16))
    point = key.public_key().point.hex()
    assert point in DOC and SIG.hex() in DOC
    SM2PublicKey.from_point(bytes.fromhex(point)).verify(SIG, MANIFEST)
    runs = pf.named_hashes({"key": "evidence/1", "value": ART + " " + "dd" * 32})
    assert {ART, "dd" * 32} <= runs and "66c7f0f4" not in runs
    att = attestation_message("rongxin-local", bytes.fromhex("bb" * 32))
    assert att == pf.canonical({"chain": "rongxin-local", "format": "rongxin-genesis-attestation/1", "genesis": "bb" * 32})
    assert att.decode() in DOC and sm3(att).hex() == "96e35469c68ca6e2858bd14d9a9964007aca381989a2c3b7c5c9550fb4da29e5" in DOC
    att_sig = ("3045022000b19c12012a9f84d89ac69c12baa51d0b0077b9f5ec4b38ec29784d47b1bd24022100f59c805902f0e5fcc548f0171b4d"
               "65597402ea4f938a023a92ec955971c3df98")
    assert att_sig in DOC
    SM2PublicKey.from_point(bytes.fromhex(point)).verify(bytes.fromhex(att_sig), att)
    vote = pf.canonical({"kind": "vote", "chain": "rongxin-local", "height": 41, "view": 57, "block": "9f" * 32})
    assert vote.decode() in DOC
    assert [n - (n - 1) // 3 for n in (4, 5, 7)] == [3, 4, 5]
    value = pf.canonical({"schedule": [[0, [{"id": "v1", "key": "04" + "11" * 64, "org": "A", "role": "consensus"}]]]})
    leaf = vc.smt_root(b"sys/validators", value, {"format": "rongxin-smt-proof/1", "siblings": [], "leaf": {
        "key_hash": sm3(b"sys/validators").hex(), "value_hash": sm3(value).hex()}})
    for h in (sm3(b"sys/validators").hex(), sm3(value).hex(), leaf.hex()):
        assert h in DOC
    assert leaf.hex() == "d2fa2012d53219c93e52799995ebabf55c39cd9731ceb95a2f52145fce9970d3"


def test_canonical_members_only() -> None:
    assert pf.parse_canonical(b'{"a":1,"b":[true,null,"x"]}') == {"a": 1, "b": [True, None, "x"]}
    for bad in (b'{"b":1,"a":2}', b'{"a": 1}', b'{"a":1.0}', b'{"a":1,"a":1}', b'{"a":-0}', b'"\\u00e9"',
                b'"\\ud800"', b"\xff", b"[" * 40 + b"]" * 40):
        with pytest.raises(pf.NotCanonical):
            pf.parse_canonical(bad)


def _zip(names: list[str]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n in names:
            z.writestr(n, b"x")
    buf.seek(0)
    return buf


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "artefacts/../x", "artefacts/a/b", "artefacts/",
                                  "artefacts/.hidden", "chain/", "Manifest.json", "artefacts/a\\b", "x" * 300])
def test_names_outside_the_layout_are_unreadable(name: str) -> None:
    with pytest.raises(pf.PackageUnreadable, match="outside the package layout"):
        pf.open_package(_zip([pf.MANIFEST, name]))


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_duplicate_and_lying_members_are_unreadable() -> None:
    with pytest.raises(pf.PackageUnreadable, match="twice"):
        pf.open_package(_zip([pf.MANIFEST, pf.MANIFEST]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(pf.MANIFEST, b"y" * 100)
    raw = bytearray(buf.getvalue())
    # shrink the declared size in the central directory: reading must stop, not trust it
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    pkg = pf.open_package(io.BytesIO(bytes(raw)))
    with pytest.raises(pf.PackageUnreadable):
        pkg.read(pf.MANIFEST)
