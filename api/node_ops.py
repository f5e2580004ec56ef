"""``rongxin node init | start | status``: one node run by an organisation outside the local
consortium (docs/operations.md §8).

A *station folder* holds what one node needs and nothing secret of anyone else::

    DIR/genesis.json, DIR/genesis.attestation.json      copied from the consortium
    DIR/ca/root.crt.pem, transport-ca.crt.pem, transport-ca.endorsement, crl.pem
    DIR/nodes/<peer>/sm2.crt.pem                        the known nodes' certificates
    DIR/nodes/<id>/node.toml                            THE settings file (every setting documented)
    DIR/nodes/<id>/sm2.key.pem, sm2.crt.pem, tls.key, tls.crt, db/, node.log

``node.toml`` holds the node's identity and addresses (``[node]``, ``[peers]``) and the
operations settings of docs/operations.md §5 (``[logging]``, ``[limits]``, ``[service]``,
``[alerts]``); ``node start`` checks all of it and writes ``node.json`` (what the node process
reads) from it, so the TOML file is the only one an operator edits.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ledger.crypto import Certificate, CryptoError, SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA, atomic_write
from ledger.files import FileInputError, read_regular
from ledger.node.config import ConfigError, Genesis, NodeConfig

from . import operations

NODE_FILE = operations.NODE_FILE
ID_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
ADDR_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})")
PUBLIC_CA_FILES = ("root.crt.pem", "transport-ca.crt.pem", "transport-ca.endorsement", "crl.pem")
ROLES = ("consensus", "full", "supervisor")
NODE_KEYS = ("id", "role", "org", "chain", "listen", "api", "api_tls")

OPERATIONS_TEXT = '''
# ---- operations (docs/operations.md §5): every value below is the default ----
[logging]
format = "json"            # json | text (one JSON object a line on stderr); RONGXIN_LOG_FORMAT overrides
level = "INFO"             # DEBUG | INFO | WARNING | ERROR; RONGXIN_LOG overrides

[limits]
identity_rate = 50.0       # signed requests a second per identity (429 past it), 0: no limit   [0, 1e6]
identity_burst = 200       # bucket size per identity                                          [1, 1e7]
address_rate = 0.0         # unsigned requests a second per client IP address, 0: off          [0, 1e6]
address_burst = 400        # bucket size per address                                           [1, 1e7]

[service]
ws_max_clients = 2048      # WebSocket subscribers at once                                     [1, 100000]
shutdown_grace_s = 30.0    # seconds requests in flight get to finish on SIGTERM               [0, 3600]
ready_max_lag = 3          # blocks behind the highest peer at which /readyz still says ready  [0, 1e6]

[alerts]
evaluate_every_s = 15.0    # how often the node evaluates its alert rules                      [0.2, 3600]
node_down_after_s = 120.0  # RongxinNodeDown: a peer without a link this long                  [0, 1e7]
stall_after_s = 180.0      # RongxinChainStalled: no block committed this long                 [1, 1e7]
missed_turns = 3           # RongxinValidatorMissingTurns: leader turns missed in a row        [1, 1e6]
disk_free_ratio = 0.10     # RongxinDiskNearlyFull: free share of the folder's file system     [0, 1]
cert_expiry_days = 30.0    # RongxinCertificateExpiring: days before a certificate expires     [0, 3650]
revoked_window_s = 3600.0  # RongxinRevokedIdentityActive: how long a revoked try keeps firing [1, 1e7]
repeat_every_s = 14400.0   # re-notify a firing alert this often                               [1, 1e8]
report_at = "08:00"        # daily report by e-mail, HH:MM UTC; "" = none
external_url = ""          # put in the webhook body's externalURL and generatorURL

# Webhooks (Alertmanager's webhook body, version 4): any number, none by default.
# [[alerts.webhooks]]
# url = "https://alerts.example.org/rongxin"   # http:// or https://
# timeout_s = 5.0                              # [0.1, 300]

# E-mail: absent by default (no e-mail).
# [alerts.smtp]
# host = "smtp.example.org"      # required
# from = "rongxin@example.org"   # required
# to = ["ops@example.org"]       # required: an address or a list
# port = 25                      # [1, 65535]
# starttls = false               # STARTTLS on a plain connection
# ssl = false                    # SMTP over TLS (usually port 465)
# username = ""
# password_env = ""              # the environment variable holding the password (never in this file)
# timeout_s = 10.0               # [0.1, 300]
'''


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a TOML basic string


def render(cfg: NodeConfig) -> str:
    """The text of ``node.toml`` for ``cfg``, every setting with its comment."""
    peers = "\n".join(f"{pid} = {_q(_addr(a))}" for pid, a in sorted(cfg.peers.items()) if pid != cfg.id)
    return f'''# Rongxin node settings: the only file an operator edits (docs/operations.md §8).
# `rongxin node start` checks every value (a bad one: one line on stderr, exit 2) and writes
# node.json beside this file from [node] and [peers]; do not edit node.json.

[node]
id = {_q(cfg.id)}{' ' * max(1, 20 - len(cfg.id))}# the node id: its certificate's CN (sm2.crt.pem); [a-z][a-z0-9_-]{{0,31}}
role = {_q(cfg.role)}{' ' * max(1, 18 - len(cfg.role))}# consensus | full | supervisor: its certificate's role (OU)
org = {_q(cfg.org)}  # organisation, as in its join request (node.join)
chain = {_q(cfg.chain)}  # chain id: must be genesis.json's "chain"
listen = {_q(_addr(cfg.listen))}  # HOST:PORT of its peer-to-peer TLS listener (the join request's address)
api = {_q(_addr(cfg.api))}  # HOST:PORT of its HTTP API and console (/, /v1/..., /healthz, /readyz, /metrics)
api_tls = {_q(_addr(cfg.api_tls) if cfg.api_tls else "")}  # HOST:PORT of the API over HTTPS (tls.crt), "" = none

[peers]
# ID = "HOST:PORT": nodes this node dials and accepts links from (their peer-to-peer address).
# A peer is admitted if DIR/nodes/ID/sm2.crt.pem holds its certificate (not on ca/crl.pem),
# or it was admitted on chain (node.certify). Consensus nodes certified later are linked by the chain itself.
{peers}
{OPERATIONS_TEXT}'''


def _addr(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_addr(text: Any, what: str) -> tuple[str, int]:
    m = ADDR_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None or not 1 <= int(m.group(2)) <= 65535:
        raise ConfigError(f"{what} must be \"HOST:PORT\" (port 1-65535), not {text!r}")
    return m.group(1).strip("[]"), int(m.group(2))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = read_regular(path, 1 << 20).decode("utf-8")
        return tomllib.loads(text)
    except FileInputError as exc:
        raise ConfigError(str(exc)) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def node_config(folder: Path, raw: dict[str, Any]) -> NodeConfig:
    """The ``[node]`` and ``[peers]`` sections of a node.toml, checked."""
    node = raw.get("node")
    if not isinstance(node, dict):
        raise ConfigError(f"{folder / NODE_FILE} has no [node] section")
    unknown = sorted(set(node) - set(NODE_KEYS))
    missing = [k for k in NODE_KEYS[:6] if k not in node]
    if unknown or missing:
        raise ConfigError(f"node: unknown setting(s) {unknown}" if unknown else f"node: missing setting(s) {missing}")
    for k in NODE_KEYS:
        if k in node and not isinstance(node[k], str):
            raise ConfigError(f"node.{k} must be a string")
    if not ID_RE.fullmatch(node["id"]):
        raise ConfigError(f"node.id must match [a-z][a-z0-9_-]{{0,31}}, not {node['id']!r}")
    if node["role"] not in ROLES:
        raise ConfigError(f"node.role is one of {', '.join(ROLES)}, not {node['role']!r}")
    if not node["org"].strip() or not node["chain"]:
        raise ConfigError("node.org and node.chain must not be empty")
    peers_raw = raw.get("peers", {})
    if not isinstance(peers_raw, dict):
        raise ConfigError("peers must be a table of ID = \"HOST:PORT\"")
    peers = {}
    for pid, addr in peers_raw.items():
        if not ID_RE.fullmatch(pid):
            raise ConfigError(f"peers: {pid!r} is not a node id")
        peers[pid] = parse_addr(addr, f"peers.{pid}")
    listen, api = parse_addr(node["listen"], "node.listen"), parse_addr(node["api"], "node.api")
    tls = node.get("api_tls", "")
    if listen == api:
        raise ConfigError("node.listen and node.api must differ")
    return NodeConfig(folder, node["id"], node["role"], node["org"], node["chain"], listen, api,
                      {**peers, node["id"]: listen}, parse_addr(tls, "node.api_tls") if tls else None)


def check(folder: Path) -> tuple[NodeConfig, operations.Operations]:
    """Every setting of ``folder/node.toml`` and the files it names, or ``ConfigError``."""
    path = folder / NODE_FILE
    if not path.is_file():
        raise ConfigError(f"{folder} has no {NODE_FILE} (make one with `rongxin node init`)")
    raw = read_toml(path)
    cfg = node_config(folder, raw)
    ops = operations.parse({k: v for k, v in raw.items() if k not in ("node", "peers")}, NODE_FILE)
    genesis = Genesis.load(cfg.consortium / "genesis.json")
    if genesis.chain != cfg.chain:
        raise ConfigError(f"node.chain is {cfg.chain!r} but {cfg.consortium / 'genesis.json'} is of {genesis.chain!r}")
    try:
        key = SM2PrivateKey.load(read_regular(folder / "sm2.key.pem", 64 * 1024))
        cert = Certificate.load(read_regular(folder / "sm2.crt.pem", 64 * 1024))
    except (FileInputError, CryptoError) as exc:
        raise ConfigError(f"the node's key or certificate: {exc}") from None
    if cert.public_key().point != key.public_key().point:
        raise ConfigError(f"{folder / 'sm2.key.pem'} is not the key of {folder / 'sm2.crt.pem'}")
    if cert.common_name != cfg.id or cert.role != cfg.role:
        raise ConfigError(f"node.id/role are {cfg.id}/{cfg.role} but the certificate is of "
                          f"{cert.common_name}/{cert.role}")
    for name in ("tls.key", "tls.crt"):
        if not (folder / name).is_file():
            raise ConfigError(f"{folder / name} is missing (its transport certificate: `rongxin node init --ca`)")
    return cfg, ops


def write_node_json(cfg: NodeConfig) -> None:
    atomic_write(cfg.folder / "node.json", json.dumps(cfg.wire(), indent=2).encode())


def _copy_public(consortium: Path, station: Path) -> None:
    station.mkdir(parents=True, exist_ok=True)
    for name in ("genesis.json", "genesis.attestation.json"):
        if (consortium / name).is_file():
            shutil.copyfile(consortium / name, station / name)
    (station / "ca").mkdir(parents=True, exist_ok=True)
    for name in PUBLIC_CA_FILES:
        if not (consortium / "ca" / name).is_file():
            raise ConfigError(f"{consortium / 'ca' / name} is missing: give the consortium's public folder")
        shutil.copyfile(consortium / "ca" / name, station / "ca" / name)
    Genesis.load(station / "genesis.json")  # complete and self-consistent


def _known_peers(consortium: Path, station: Path, node_id: str) -> dict[str, tuple[str, int]]:
    """Copy the known nodes' certificates; their peer addresses from their node.json."""
    peers: dict[str, tuple[str, int]] = {}
    nodes = consortium / "nodes"
    for folder in sorted(nodes.iterdir()) if nodes.is_dir() else []:
        if folder.name == node_id or not (folder / "sm2.crt.pem").is_file():
            continue
        (station / "nodes" / folder.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / "sm2.crt.pem", station / "nodes" / folder.name / "sm2.crt.pem")
        if (folder / "node.json").is_file():
            peers[folder.name] = NodeConfig.load(folder).listen
    return peers


def init(station: Path, *, consortium: Path, key_file: Path, cert_file: Path, listen: tuple[str, int],
         api: tuple[str, int], org: str | None = None, ca_dir: Path | None = None,
         tls: tuple[Path, Path] | None = None, peers: dict[str, tuple[str, int]] | None = None,
         ca_password: bytes | None = None) -> Path:
    """Write a station folder for the node whose SM2 key and certificate (issued by the
    consortium CA) are given; returns the node folder. The transport key and certificate come
    from ``tls`` or are issued by the CA folder ``ca_dir`` (which holds the transport CA's key)."""
    try:
        key = SM2PrivateKey.load(read_regular(key_file, 64 * 1024))
        cert = Certificate.load(read_regular(cert_file, 64 * 1024))
    except (FileInputError, CryptoError) as exc:
        raise ConfigError(f"the node's key or certificate: {exc}") from None
    if cert.public_key().point != key.public_key().point:
        raise ConfigError(f"{key_file} is not the key of {cert_file}")
    node_id, role = cert.common_name, cert.role
    if not ID_RE.fullmatch(node_id) or role not in ROLES:
        raise ConfigError(f"{cert_file} is not a node certificate (CN {node_id!r}, role {role!r})")
    folder = station / "nodes" / node_id
    if (folder / NODE_FILE).exists():
        raise ConfigError(f"{folder / NODE_FILE} already exists; edit it, or init another folder")
    if (tls is None) == (ca_dir is None):
        raise ConfigError("give the transport certificate (--tls-key and --tls-cert) or the CA folder (--ca)")
    _copy_public(consortium, station)
    known = _known_peers(consortium, station, node_id)
    folder.mkdir(parents=True, exist_ok=True)
    if ca_dir is not None:
        try:
            tls_key, tls_cert = ConsortiumCA(ca_dir, ca_password).issue_transport(node_id, cert)
        except (CryptoError, OSError) as exc:
            raise ConfigError(f"the CA in {ca_dir} cannot issue the transport certificate: {exc}") from None
    else:
        assert tls is not None
        try:
            tls_key, tls_cert = read_regular(tls[0], 64 * 1024), read_regular(tls[1], 64 * 1024)
        except FileInputError as exc:
            raise ConfigError(str(exc)) from None
    atomic_write(folder / "sm2.key.pem", key.to_pem(), mode=0o600)
    atomic_write(folder / "sm2.crt.pem", cert.to_pem())
    atomic_write(folder / "tls.key", tls_key, mode=0o600)
    atomic_write(folder / "tls.crt", tls_cert)
    chain = Genesis.load(station / "genesis.json").chain
    cfg = NodeConfig(folder, node_id, role, org or cert.organization, chain, listen, api,
                     {**known, **(peers or {}), node_id: listen})
    atomic_write(folder / NODE_FILE, render(cfg).encode())
    check(folder)
    return folder


def node_folder(path: Path) -> Path:
    """A node folder, or a station folder holding exactly one node."""
    if (path / NODE_FILE).is_file():
        return path
    found = sorted(p.parent for p in (path / "nodes").glob(f"*/{NODE_FILE}")) if (path / "nodes").is_dir() else []
    if len(found) != 1:
        raise ConfigError(f"{path} is not a node folder nor a station folder with one node "
                          f"({len(found)} {NODE_FILE} files under nodes/)")
    return found[0]


def start(path: Path) -> None:
    """Check the settings, write node.json, and become the node process (same pid: SIGTERM
    reaches the node, which stops gracefully)."""
    folder = node_folder(path).resolve()
    cfg, _ops = check(folder)
    write_node_json(cfg)
    os.execv(sys.executable, [sys.executable, "-m", "api.node_main", str(folder)])  # noqa: S606 - our own node


def _get(url: str, timeout: float) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - the operator's own node
            return int(r.status), json.loads(r.read(1 << 20))
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read(1 << 20))
        except ValueError:
            return exc.code, {}


def status(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """``/readyz`` and ``/v1/status`` of the node at ``url``, summarised; ``OSError`` when the
    node does not answer."""
    code, ready = _get(url + "/readyz", timeout)
    _, st = _get(url + "/v1/status", timeout)
    checks = ready.get("checks") or ready.get("error", {}).get("details") or {}
    return {"api": url, "ready": code == 200, "checks": checks, "node_id": st.get("node_id"),
            "role": st.get("role"), "org": st.get("org"), "chain": st.get("chain"), "height": st.get("height"),
            "head_hash": st.get("head_hash"), "peers_online": st.get("peers_online"), "validators": st.get("validators")}
