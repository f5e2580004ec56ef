"""The consortium root's attestation of a chain's genesis block.

The consortium root is what a court trusts; the genesis block (docs/transactions.md §11) is
what every later block and validator set hangs from. The root pins a genesis by signing::

    message = canonical({"chain": CHAIN, "format": "rongxin-genesis-attestation/1",
                         "genesis": GENESIS_HASH_HEX})
    sig     = SM2-with-SM3(root key, message), signer ID 1234567812345678, DER

``canonical`` is the canonical JSON of docs/transactions.md §1 (keys sorted, no spaces,
UTF-8). The ``format`` member names the purpose: besides these the root key signs DER
(certificates, CRLs: first byte 0x30, never ``{``) and the transport-CA endorsement
(``tls.endorsement_message``, bytes beginning ``{"ca":``), so neither can pass as an
attestation (bytes beginning ``{"chain":``). The attestation
object kept beside ``genesis.json`` and carried in evidence packages is the message's members
plus ``sig`` (lowercase hex of the DER signature)::

    {"chain": ..., "format": "rongxin-genesis-attestation/1", "genesis": ..., "sig": ...}
"""

from __future__ import annotations

import json
from typing import Any

from .errors import GenesisAttestationError, InvalidSignature, MalformedSignature
from .sm2 import SM2PrivateKey
from .x509 import Certificate

ATTESTATION_FORMAT = "rongxin-genesis-attestation/1"
ATTESTATION_KEYS = frozenset({"chain", "format", "genesis", "sig"})
MAX_CHAIN_ID = 256
MAX_SIG_BYTES = 80  # a DER SM2 signature is at most 72 bytes
_HEX = frozenset("0123456789abcdef")

__all__ = ["ATTESTATION_FORMAT", "attestation_message", "sign_genesis_attestation", "verify_genesis_attestation"]


def attestation_message(chain: str, genesis_hash: bytes) -> bytes:
    """The bytes the root signs to attest genesis ``genesis_hash`` of chain ``chain``."""
    if not isinstance(chain, str) or not 0 < len(chain) <= MAX_CHAIN_ID:
        raise GenesisAttestationError(f"a chain id is a string of 1 to {MAX_CHAIN_ID} characters")
    if not isinstance(genesis_hash, bytes) or len(genesis_hash) != 32:
        raise GenesisAttestationError("a genesis hash is 32 bytes (SM3)")
    return json.dumps({"chain": chain, "format": ATTESTATION_FORMAT, "genesis": genesis_hash.hex()},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_genesis_attestation(root_key: SM2PrivateKey, chain: str, genesis_hash: bytes) -> dict[str, str]:
    """The attestation object of ``genesis_hash`` signed with the root's key."""
    sig = root_key.sign(attestation_message(chain, genesis_hash))
    return {"chain": chain, "format": ATTESTATION_FORMAT, "genesis": genesis_hash.hex(), "sig": sig.hex()}


def _hex(value: Any, what: str, size: int | None = None, limit: int = 64) -> bytes:
    if not isinstance(value, str) or not value or len(value) > 2 * limit or len(value) % 2 or not set(value) <= _HEX:
        raise GenesisAttestationError(f"the attestation's {what} is not lowercase hex")
    raw = bytes.fromhex(value)
    if size is not None and len(raw) != size:
        raise GenesisAttestationError(f"the attestation's {what} is {len(raw)} bytes, not {size}")
    return raw


def verify_genesis_attestation(att: Any, root: Certificate, chain: str, genesis_hash: bytes) -> None:
    """Raise ``GenesisAttestationError`` unless ``att`` is the attestation object of exactly
    ``chain`` and ``genesis_hash`` and its signature verifies with ``root``'s public key."""
    if not isinstance(att, dict) or set(att) != ATTESTATION_KEYS:
        raise GenesisAttestationError("a genesis attestation is exactly {chain, format, genesis, sig}")
    if att["format"] != ATTESTATION_FORMAT:
        raise GenesisAttestationError(f"attestation format {str(att['format'])[:60]!r} is not {ATTESTATION_FORMAT}")
    if att["chain"] != chain:
        raise GenesisAttestationError(f"the attestation is for chain {str(att['chain'])[:60]!r}, not {chain!r}")
    if _hex(att["genesis"], "genesis", 32) != genesis_hash:
        raise GenesisAttestationError(f"the attestation is for genesis {att['genesis']}, not {genesis_hash.hex()}")
    sig = _hex(att["sig"], "signature", None, MAX_SIG_BYTES)
    try:
        root.public_key().verify(sig, attestation_message(chain, genesis_hash))
    except (InvalidSignature, MalformedSignature):
        raise GenesisAttestationError(
            f"the genesis attestation is not signed by the consortium root {root.common_name!r}") from None
