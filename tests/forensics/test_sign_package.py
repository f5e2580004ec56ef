"""``sign_package``: a package a node wrote for a certificate (no ``manifest.sig``) is signed by
the holder of that certificate's key, once, and by no one else."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from forensics.package import format as pf
from forensics.package.export import ExportError, Identity, sign_package
from ledger.crypto import SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA


def _filer(ca: ConsortiumCA, name: str) -> Identity:
    key = SM2PrivateKey.generate()
    return Identity(key, ca.issue(kind="user", name=name, org="Demo Legal Centre", public_key=key.public_key(),
                                  business="legal"))


def _unsigned(path: Path, filer: Identity) -> bytes:
    manifest = pf.canonical({"chain": "c", "created_ms": 1, "filer": {"certificate": filer.certificate.fingerprint},
                             "format": pf.FORMAT, "genesis": "00" * 32, "members": {}, "statements": []})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(pf.FILER_CERT, filer.certificate.der)
        z.writestr(pf.MANIFEST, manifest)
    return manifest


def test_the_filer_signs_once_and_no_one_else(tmp_path: Path) -> None:
    ca = ConsortiumCA.init(tmp_path / "ca", "Rongxin Test Consortium")
    legal, other = _filer(ca, "legal"), _filer(ca, "other")
    pkg = tmp_path / "p.zip"
    manifest = _unsigned(pkg, legal)
    with pytest.raises(ExportError, match="another filer"):
        sign_package(pkg, other)
    assert pf.SIGNATURE not in zipfile.ZipFile(pkg).namelist()
    sign_package(pkg, legal)
    z = zipfile.ZipFile(pkg)
    assert sorted(z.namelist()) == sorted([pf.FILER_CERT, pf.MANIFEST, pf.SIGNATURE])
    legal.certificate.public_key().verify(z.read(pf.SIGNATURE), manifest)  # raises if not the filer's signature
    with pytest.raises(ExportError, match="already signed"):
        sign_package(pkg, legal)
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(bare, "w") as zz:
        zz.writestr("x", b"y")
    with pytest.raises(ExportError, match="no manifest"):
        sign_package(bare, legal)
