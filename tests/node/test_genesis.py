"""The genesis hash covers the chain parameters, the consortium root certificate and the suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.crypto.ca import ConsortiumCA
from ledger.node.config import ConfigError, Genesis, init_local_consortium


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
