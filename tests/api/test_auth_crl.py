"""The node's CRL fails closed (docs/api-auth.md §5, step 3): a damaged, foreign or rolled-back
file never lifts a revocation the node already knows, and with no good CRL known a damaged file
stops signed requests instead of letting every certificate through."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from api.auth import Authenticator
from api.errors import ApiError
from ledger.crypto.ca import ConsortiumCA


def _auth(path: Path) -> Authenticator:
    return Authenticator(SimpleNamespace(), crl_path=path)  # type: ignore[arg-type]


def _number(auth: Authenticator, ca: ConsortiumCA) -> int | None:
    crl = auth.crl(ca.root)
    assert crl is not None
    return crl.number


def _replace(path: Path, data: bytes) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(data)
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a new stamp even within one tick


def test_a_bad_crl_file_keeps_the_last_good_one_in_force(tmp_path: Path) -> None:
    ca = ConsortiumCA.init(tmp_path / "ca", "Consortium")
    other = ConsortiumCA.init(tmp_path / "other", "Consortium")
    path = tmp_path / "crl.pem"
    auth = _auth(path)
    assert auth.crl(ca.root) is None  # no file: nothing revoked yet

    first = ca.crl()
    _replace(path, first.to_pem())
    assert _number(auth, ca) == first.number

    for bad in (b"not a CRL", other.crl().to_pem()):  # damaged; signed by another root
        _replace(path, bad)
        assert _number(auth, ca) == first.number

    second = ca.publish_crl()
    _replace(path, second.to_pem())
    assert _number(auth, ca) == second.number

    _replace(path, first.to_pem())  # a rollback to the CRL before
    assert _number(auth, ca) == second.number
    path.unlink()
    assert _number(auth, ca) == second.number


def test_with_no_good_crl_a_damaged_file_refuses_requests(tmp_path: Path) -> None:
    ca = ConsortiumCA.init(tmp_path / "ca", "Consortium")
    path = tmp_path / "crl.pem"
    path.write_bytes(b"-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n")
    auth = _auth(path)
    with pytest.raises(ApiError) as refused:
        auth.crl(ca.root)
    assert (refused.value.status, refused.value.code) == (503, "auth_crl_unavailable")
    shutil.copy(ca.folder / "crl.pem", path)
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    assert _number(auth, ca) == ca.crl().number  # fixed: requests go through again
