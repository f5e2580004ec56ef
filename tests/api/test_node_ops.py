"""`rongxin node init | start | status`: a node outside the local consortium joins it as a
consensus node (node.join, the supervisor's admit vote, the CA's certificate, node.certify),
runs from its own station folder with one node.toml, catches up, and stops on SIGTERM; bad
settings are refused with one line and exit 2."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from api.sdk import LedgerClient
from ledger.crypto import SM2PrivateKey
from ledger.node.config import pick_ports
from tests.conftest import RONGXIN, run_rongxin

pytestmark = [pytest.mark.slow]
ORG = "County C Media Centre"


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = pred()
            if got:
                return got
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("nodeops") / "c"
    proc = run_rongxin("up", "--detach", "--data", str(data), timeout=240)
    assert proc.returncode == 0, proc.stderr
    # what `make run` shows a new user: where the console is and the identities' folders
    sup = next(n for n in json.loads((data / "cluster.json").read_text())["nodes"] if n["id"] == "sup1")
    assert f"console: {sup['api']}/" in proc.stdout
    for name in ("holder", "legal", "court"):
        assert f"--as {data.resolve() / 'identities' / name}\n" in proc.stdout, proc.stdout
    yield data, json.loads((data / "cluster.json").read_text())["nodes"]
    run_rongxin("down", "--data", str(data), timeout=120)


def _admit(data: Path, api: str, key: SM2PrivateKey, cert_out: Path, listen: int) -> None:
    """The governance steps of docs/governance.md §12 for node val5 (role consensus)."""
    new = LedgerClient(api, key)
    sup = LedgerClient(api, SM2PrivateKey.load((data / "nodes/sup1/sm2.key.pem").read_bytes()))
    r = new.submit_and_wait("node.join", {"id": "val5", "org": ORG, "role": "consensus",
                                          "address": ["127.0.0.1", listen]})
    assert r["receipt"]["code"] == 0, r["receipt"]
    r = sup.submit_and_wait("gov.propose", {"action": {"kind": "admit", "node": "val5"}})
    assert r["receipt"]["code"] == 0, r["receipt"]
    pub = cert_out.with_suffix(".pub")
    pub.write_bytes(key.public_key().to_pem())
    p = run_rongxin("ca", "issue", "--dir", str(data / "ca"), "--kind", "node", "--name", "val5", "--org", ORG,
                    "--role", "consensus", "--pub", str(pub), "--out", str(cert_out))
    assert p.returncode == 0, p.stderr
    start = sup.status()["height"] + 20
    r = sup.submit_and_wait("node.certify", {"node": "val5", "certificate": cert_out.read_text(),
                                             "from_height": start})
    assert r["receipt"]["code"] == 0, r["receipt"]


def test_join_init_start_status_stop(consortium, tmp_path: Path) -> None:
    data, nodes = consortium
    api = next(n["api"] for n in nodes if n["id"] == "val1")
    listen, api_port = pick_ports("127.0.0.1", 2, 27900)
    key = SM2PrivateKey.generate()
    (tmp_path / "val5.key").write_bytes(key.to_pem())
    _admit(data, api, key, tmp_path / "val5.crt", listen)

    station = tmp_path / "station"
    p = run_rongxin("node", "init", str(station), "--consortium", str(data), "--key", str(tmp_path / "val5.key"),
                    "--cert", str(tmp_path / "val5.crt"), "--ca", str(data / "ca"),
                    "--listen", f"127.0.0.1:{listen}", "--api", f"127.0.0.1:{api_port}", "--json")
    assert p.returncode == 0, p.stderr
    folder = Path(json.loads(p.stdout)["folder"])
    toml = (folder / "node.toml").read_text()
    # one file: identity, addresses, peers and every operations setting, each with a comment
    for setting in ("id = \"val5\"", "role = \"consensus\"", "[peers]", "sup1 =", "identity_rate = 50.0",
                    "shutdown_grace_s", "ready_max_lag", "evaluate_every_s", "report_at"):
        assert setting in toml, setting
    assert not list(station.glob("ca/*.key.pem")), "the station must hold no CA key"
    assert (station / "nodes/sup1/sm2.crt.pem").is_file() and not (station / "nodes/sup1/sm2.key.pem").exists()

    # not running yet: status says the node does not answer (environment, exit 3)
    p = run_rongxin("node", "status", str(station))
    assert p.returncode == 3 and "does not answer" in p.stderr

    log = open(tmp_path / "val5.log", "wb")
    proc = subprocess.Popen([str(RONGXIN), "node", "start", str(station)], stdout=log, stderr=subprocess.STDOUT)
    try:
        def synced():
            p = run_rongxin("node", "status", str(station), "--json")
            doc = json.loads(p.stdout) if p.returncode in (0, 1) else None
            head = json.loads(run_rongxin("node", "status", "--api", api, "--json").stdout)["height"]
            return doc if doc and doc["ready"] and doc["height"] >= head - 1 and doc["height"] > 0 else None

        doc = _wait(synced, 180, "val5 ready and caught up")
        assert doc["node_id"] == "val5" and doc["role"] == "consensus" and doc["org"] == ORG
        assert doc["checks"]["synced"] and doc["checks"]["linked"] and doc["peers_online"]
        human = run_rongxin("node", "status", str(station))
        assert human.returncode == 0 and human.stdout.startswith("val5 (consensus") and "ready" in human.stdout
        # the consortium sees val5 as a validator and linked
        _wait(lambda: "val5" in json.loads(run_rongxin("node", "status", "--api", api, "--json").stdout)
              ["peers_online"], 60, "val1 linked with val5")
        again = run_rongxin("node", "start", str(station), timeout=120)  # the folder is locked by the running node
        assert again.returncode == 2 and "already running" in again.stderr, again.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "val5.log").read_text()
    assert "node val5 stopping" in text and "node val5 stopped at height" in text
    assert json.loads((folder / "node.json").read_text())["id"] == "val5"

    # bad settings: one line on stderr, exit 2, the node not started
    good = (folder / "node.toml").read_text()
    for bad, said in ((good.replace("identity_rate = 50.0", "identity_rate = -1.0"), "limits.identity_rate"),
                      (good.replace('role = "consensus"', 'role = "boss"'), "node.role"),
                      (good.replace(f'listen = "127.0.0.1:{listen}"', 'listen = "nowhere"'), "node.listen"),
                      (good + "\n[colour]\nx = 1\n", "unknown section"),
                      (good.replace("[logging]", "[logging]\nvolume = 3"), "unknown setting"),
                      (good.replace('chain = "rongxin-local"', 'chain = "other"'), "node.chain"),
                      ("[node\n", "node.toml")):
        (folder / "node.toml").write_text(bad)
        p = run_rongxin("node", "start", str(station), timeout=60)
        assert p.returncode == 2, (said, p.stderr)
        assert said in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    (folder / "node.toml").write_text(good)
    (folder / "operations.toml").write_text("[limits]\n")
    p = run_rongxin("node", "start", str(station), timeout=60)
    assert p.returncode == 2 and "both node.toml and operations.toml" in p.stderr


def test_init_refuses_bad_input(consortium, tmp_path: Path) -> None:
    data, _ = consortium
    key = SM2PrivateKey.generate()
    (tmp_path / "k.pem").write_bytes(key.to_pem())
    base = ["node", "init", str(tmp_path / "s"), "--consortium", str(data), "--key", str(tmp_path / "k.pem"),
            "--ca", str(data / "ca"), "--listen", "127.0.0.1:27990", "--api", "127.0.0.1:27991"]
    # a certificate of another key
    p = run_rongxin(*base, "--cert", str(data / "nodes/val1/sm2.crt.pem"))
    assert p.returncode == 2 and "is not the key of" in p.stderr
    # an address that is not HOST:PORT
    p = run_rongxin(*[a if a != "127.0.0.1:27991" else "127.0.0.1:99999" for a in base],
                    "--cert", str(data / "nodes/val1/sm2.crt.pem"))
    assert p.returncode == 2 and "--api" in p.stderr
    p = run_rongxin("node", "status", "--api", "ftp://x")
    assert p.returncode == 2


def test_node_toml_documents_the_defaults(tmp_path: Path) -> None:
    """The operations part node.toml is written with holds exactly the code's defaults, and a
    node folder with a node.toml takes its operations settings from there."""
    import tomllib

    from api import operations
    from api.node_ops import OPERATIONS_TEXT, render
    from ledger.node.config import NodeConfig

    assert operations.parse(tomllib.loads(OPERATIONS_TEXT)) == operations.Operations()
    cfg = NodeConfig(tmp_path, "val9", "full", "Org", "rongxin-local", ("127.0.0.1", 1), ("127.0.0.1", 2),
                     {"sup1": ("127.0.0.1", 3)})
    text = render(cfg).replace("identity_rate = 50.0", "identity_rate = 7.5")
    (tmp_path / "node.toml").write_text(text)
    assert operations.load(tmp_path).limits.identity_rate == 7.5
    raw = tomllib.loads(text)
    assert raw["node"]["id"] == "val9" and raw["peers"] == {"sup1": "127.0.0.1:3"}
