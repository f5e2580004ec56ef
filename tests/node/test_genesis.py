"""The genesis hash covers the chain parameters, the consortium root certificate and the suite;
the consortium root attests the genesis (genesis.attestation.json), old folders included."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path

import pytest

from ledger.consensus.types import ValidatorSet, genesis_block
from ledger.crypto import Certificate, verify_genesis_attestation
from ledger.crypto.ca import ConsortiumCA
from ledger.node.config import (
    ATTESTATION_FILE,
    ConfigError,
    Genesis,
    _chain_params,
    attest_consortium,
    init_local_consortium,
    with_genesis_fields,
)
from ledger.node.runtime import Params

from ..conftest import run_rongxin


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_local_consortium(tmp_path_factory.mktemp("g") / "c", base_port=29100)


def _tampered(consortium: Path, tmp_path: Path, change: dict[str, object]) -> Path:
    raw = json.loads((consortium / "genesis.json").read_text())
    raw.update(change)
    out = tmp_path / "genesis.json"
    out.write_text(json.dumps(raw))
    return out


def test_genesis_records_suite_and_binds_params_and_root(consortium: Path) -> None:
    g = Genesis.load(consortium / "genesis.json")
    header = g.block.header
    assert header["suite"] == "sm" and len(header["params"]) == 64
    assert header["root_certificate"] == ConsortiumCA(consortium / "ca").root.fingerprint


def test_changing_a_parameter_the_root_or_the_suite_changes_the_genesis(consortium: Path, tmp_path: Path) -> None:
    raw = json.loads((consortium / "genesis.json").read_text())
    other_root = ConsortiumCA.init(tmp_path / "other-ca", "Another Consortium").root.to_pem().decode()
    changes: list[dict[str, object]] = [
        {"params": {**raw["params"], "max_block_txs": raw["params"]["max_block_txs"] + 1}},
        {"governance": {**raw["governance"], "exit_delay": raw["governance"]["exit_delay"] + 1}},
        {"root_certificate": other_root},
    ]
    for change in changes:
        with pytest.raises(ConfigError, match="hash does not match"):
            Genesis.load(_tampered(consortium, tmp_path, change))
    with pytest.raises(ConfigError, match="suite"):
        Genesis.load(_tampered(consortium, tmp_path, {"suite": "nist"}))


# ---------------------------------------------------------------- the root's attestation of the genesis


def test_a_new_consortium_has_its_genesis_attested_by_the_root(consortium: Path) -> None:
    g = Genesis.load(consortium / "genesis.json")
    root = ConsortiumCA(consortium / "ca").root
    att = json.loads((consortium / ATTESTATION_FILE).read_text())
    assert g.attestation == att and att["genesis"] == g.block.hash.hex() and att["chain"] == g.chain
    verify_genesis_attestation(att, root, g.chain, g.block.hash)
    # the genesis time is the creation time, when the validators' certificates are valid
    assert abs(g.block.header["time"] - time.time() * 1000) < 10 * 60 * 1000
    assert attest_consortium(consortium) is None  # already attested: nothing to do


def test_a_damaged_or_foreign_attestation_is_a_damaged_folder(consortium: Path, tmp_path: Path) -> None:
    g = Genesis.load(consortium / "genesis.json")
    other = ConsortiumCA.init(tmp_path / "other-ca", "Another Consortium")
    for att in (other.attest_genesis(g.chain, g.block.hash),  # another root's key
                ConsortiumCA(consortium / "ca").attest_genesis(g.chain, bytes(32)),  # another genesis
                {**json.loads((consortium / ATTESTATION_FILE).read_text()), "chain": "other"}):
        folder = tmp_path / f"f{secrets.token_hex(4)}"
        folder.mkdir()
        shutil.copy(consortium / "genesis.json", folder / "genesis.json")
        (folder / ATTESTATION_FILE).write_text(json.dumps(att))
        with pytest.raises(ConfigError, match="does not attest this genesis"):
            Genesis.load(folder / "genesis.json")


def _old_folder(tmp_path: Path, name: str, time_ms: int | None) -> Path:
    """A consortium folder as older code left it: no attestation (and, with ``time_ms``, that
    genesis time, the hash recomputed)."""
    data = init_local_consortium(tmp_path / name, base_port=29200)
    (data / ATTESTATION_FILE).unlink()
    if time_ms is not None:
        raw = json.loads((data / "genesis.json").read_text())
        vset = ValidatorSet.from_wire(raw["validators"])
        block = with_genesis_fields(genesis_block(raw["chain"], vset, bytes.fromhex(raw["app_root"]), time_ms),
                                    _chain_params(Params(**raw["params"]), raw["governance"]),
                                    raw["root_certificate"].encode(), "sm")
        raw.update(time=time_ms, hash=block.hash.hex())
        (data / "genesis.json").write_text(json.dumps(raw))
    assert Genesis.load(data / "genesis.json").attestation is None
    return data


def test_an_older_folder_is_attested_when_the_root_can_vouch_for_its_genesis(tmp_path: Path) -> None:
    data = _old_folder(tmp_path, "old", None)
    att = attest_consortium(data)
    assert att is not None and Genesis.load(data / "genesis.json").attestation == att


def test_an_older_folder_whose_genesis_predates_its_validators_is_refused(tmp_path: Path) -> None:
    data = _old_folder(tmp_path, "old0", 0)
    with pytest.raises(ConfigError, match="has no root attestation and the root cannot give one: validator sup1 at "
                                          "the genesis time 1970-01-01"):
        attest_consortium(data)
    assert not (data / ATTESTATION_FILE).exists()
    p = run_rongxin("up", "--detach", "--wait", "5", "--data", str(data), timeout=120)
    assert p.returncode == 2 and "create a new consortium folder" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (data / "cluster.json").exists() and not list((data / "nodes").glob("*/pid"))


def test_an_older_folder_with_a_revoked_validator_is_refused(tmp_path: Path) -> None:
    data = _old_folder(tmp_path, "oldr", None)
    ca = ConsortiumCA(data / "ca")
    val = Certificate.load((data / "nodes" / "val2" / "sm2.crt.pem").read_bytes())
    time.sleep(1.1)  # revocation dates have whole seconds
    ca.revoke(val.serial, "key_compromise")
    # a revocation after the genesis time does not undo what the validator was then
    assert attest_consortium(data) is not None
    (data / ATTESTATION_FILE).unlink()
    # a genesis dated after the revocation names a validator the root no longer vouches for
    data2 = _old_folder(tmp_path, "oldr2", None)
    ca2 = ConsortiumCA(data2 / "ca")
    ca2.revoke(Certificate.load((data2 / "nodes" / "val2" / "sm2.crt.pem").read_bytes()).serial, "key_compromise")
    raw = json.loads((data2 / "genesis.json").read_text())
    later = int(time.time() * 1000) + 60_000
    vset = ValidatorSet.from_wire(raw["validators"])
    block = with_genesis_fields(genesis_block(raw["chain"], vset, bytes.fromhex(raw["app_root"]), later),
                                _chain_params(Params(**raw["params"]), raw["governance"]),
                                raw["root_certificate"].encode(), "sm")
    raw.update(time=later, hash=block.hash.hex())
    (data2 / "genesis.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="validator val2's certificate was revoked"):
        attest_consortium(data2)
    assert not (data2 / ATTESTATION_FILE).exists()
