"""The demo identities of a local consortium (``rongxin up``): ``DATA/identities/NAME/``
holding ``key.pem`` (0600) and ``cert.pem``, each a user of its own member organisation with
a business role, registered on chain (docs/api-auth.md §8).

``ensure_demo_identities`` is idempotent: it issues only what is missing on disk, proposes
``org.add`` (signed by the genesis supervisor's key) only for organisations not yet members,
and submits ``user.register`` only for identities the chain holds no record of (a revoked
one stays revoked). Each step is one
batch, so a new consortium pays two block commits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger.crypto import CryptoError, SM2PrivateKey, verify_certificate
from ledger.crypto.ca import ConsortiumCA, atomic_write
from ledger.crypto.tls import transport_identity
from ledger.tx import Transaction

from .sdk import DEFAULT_TTL_BLOCKS, ClientError, Identity, IdentityError, LedgerClient, _settle

# (folder and common name, business role, organisation, the organisation's role in sys/orgs)
DEMO_IDENTITIES: tuple[tuple[str, str, str, str], ...] = (
    ("holder", "holder", "Demo Rights Holder A", "media"),
    ("holder2", "holder", "Demo Rights Holder B", "media"),
    ("legal", "legal", "Demo Legal Centre", "legal"),
    ("court", "court", "Demo Internet Court", "court"),
    ("regulator", "regulator", "Demo Copyright Regulator", "regulator"),
    ("platform-a", "platform", "Demo Platform A", "platform"),
    ("platform-b", "platform", "Demo Platform B", "platform"),
    ("platform-c", "platform", "Demo Platform C", "platform"),
    ("platform-d", "platform", "Demo Platform D", "platform"),
    ("platform-e", "platform", "Demo Platform E", "platform"),
)
TRANSPORT_KEY, TRANSPORT_CERT, TRANSPORT_CA = "transport.key.pem", "transport.crt.pem", "transport-ca.crt.pem"


def _transport(folder: Path, ca: ConsortiumCA, ident: Identity) -> None:
    """A platform's party transport certificate (``rongxin mpc serve``): a P-256 key and
    certificate from the consortium's transport CA, CN = the identity's name, bound to its SM2
    certificate; issued again when missing or bound to another certificate."""
    try:
        bound = transport_identity((folder / TRANSPORT_CERT).read_bytes())
        if (bound.node_id, bound.sm2_cert_fingerprint) == (ident.name, ident.certificate.fingerprint) \
                and (folder / TRANSPORT_KEY).is_file() and (folder / TRANSPORT_CA).is_file():
            return
    except (OSError, CryptoError):
        pass
    key_pem, cert_pem = ca.issue_transport(ident.name, ident.certificate)
    atomic_write(folder / TRANSPORT_KEY, key_pem, mode=0o600)
    atomic_write(folder / TRANSPORT_CERT, cert_pem)
    atomic_write(folder / TRANSPORT_CA, (ca.folder / TRANSPORT_CA).read_bytes())


def _on_disk(data: Path, ca: ConsortiumCA, name: str, business: str, org: str) -> Identity:
    """The identity in ``data/identities/name``, issued now if it is missing or incomplete
    (with its transport certificate when it is a platform)."""
    folder = data / "identities" / name
    ident = _issued(folder, ca, name, business, org)
    if business == "platform":
        _transport(folder, ca, ident)
    return ident


def _issued(folder: Path, ca: ConsortiumCA, name: str, business: str, org: str) -> Identity:
    try:
        ident = Identity.load(folder)
        verify_certificate(ident.certificate, ca.root)  # this consortium's, and valid now
        if ident.certificate.business == business and ident.certificate.common_name == name:
            return ident
    except (IdentityError, CryptoError):
        pass  # missing, damaged, of another root or expired: issued afresh
    key = SM2PrivateKey.generate()
    cert = ca.issue(kind="user", name=name, org=org, role="user", business=business, public_key=key.public_key())
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    atomic_write(folder / "key.pem", key.to_pem(), mode=0o600)
    atomic_write(folder / "cert.pem", cert.to_pem())
    return Identity(key, cert)


def _supervisor_key(data: Path, genesis: dict[str, Any]) -> SM2PrivateKey:
    for v in genesis["validators"]:
        if v.get("role") == "supervisor":
            return SM2PrivateKey.load((data / "nodes" / str(v["id"]) / "sm2.key.pem").read_bytes())
    raise ClientError("the genesis has no supervisor to add the demo organisations")


def _commit(client: LedgerClient, txs: list[Transaction], what: str, timeout: float) -> int:
    """Submit ``txs`` in one batch, wait for each to commit with code 0 (or, for a user, as
    one registered meanwhile); the top height."""
    for tx, res in zip(txs, client.submit_many(txs), strict=True):
        if res.get("accepted") is False:
            raise ClientError(f"{what} {tx.id_hex} refused: {res.get('reason')}")
    top = 0
    for tx in txs:
        rec = client.wait(tx.id_hex, timeout, poll=0.05, certified=False)
        if rec["receipt"]["code"] != 0 and "already registered" not in str(rec["receipt"]["info"]):
            raise ClientError(f"{what} refused on chain: {rec['receipt']['info']}")
        top = max(top, int(rec.get("height", 0)))
    return top


def _freshest(apis: list[str], genesis: str) -> tuple[LedgerClient, dict[str, Any]]:
    """Of this chain's nodes (genesis hash ``genesis``: another consortium's node listening on
    one of the ports is skipped), the one that has committed the most (its state is read to
    decide what is missing)."""
    best: tuple[LedgerClient, dict[str, Any]] | None = None
    for api in apis:
        client = LedgerClient(api, timeout=5.0)
        try:
            st = client.status()
        except ClientError:
            continue
        if st.get("genesis") != genesis:
            continue
        if best is None or int(st["height"]) > int(best[1]["height"]):
            best = (client, st)
    if best is None:
        raise ClientError("no node of this consortium answers")
    return best


def ensure_demo_identities(data: Path, apis: list[str], *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Make every demo identity exist on disk and on chain (talking to the freshest node of
    ``apis``); what each is, as a list."""
    ca = ConsortiumCA(data / "ca")
    genesis = json.loads((data / "genesis.json").read_text())
    idents = [(_on_disk(data, ca, n, b, o), o, r) for n, b, o, r in DEMO_IDENTITIES]
    client, status = _freshest(apis, str(genesis["hash"]))
    chain, expiry = str(status["chain"]), int(status["height"]) + DEFAULT_TTL_BLOCKS
    top = 0
    members = client.state_json("sys/orgs") or {}
    missing = sorted({o: r for _, o, r in idents if members.get(o, {}).get("status") != "member"}.items())
    if missing:
        sup = _supervisor_key(data, genesis)
        txs = [Transaction.build(sup, chain=chain, type="gov.propose", expiry=expiry,
                                 payload={"action": {"kind": "org.add", "org": o, "roles": [r]}}) for o, r in missing]
        top = _commit(client, txs, "org.add", timeout)
    regs = []
    for ident, _, _ in idents:
        rec = client.state_json(f"sys/user/{ident.account}")
        if rec is None:  # a revoked record stays revoked: `up` does not re-register behind the chain's back
            regs.append(Transaction.build(ident.key, chain=chain, type="user.register", expiry=expiry,
                                          payload={"certificate": ident.certificate.to_pem().decode()}))
    if regs:
        top = max(top, _commit(client, regs, "user.register", timeout))
    if top:
        _settle(data, top)
    return [{"name": i.name, "business": i.certificate.business, "org": o, "account": i.account,
             "dir": str(data / "identities" / i.name)} for i, o, _ in idents]
