"""Non-fungible tokens (``ledger.contracts.nft``): classes, mint, transfer, approvals and
operators, time-bound licences, burn, provenance history; every class of bad input; key
predictions; the same through ``LedgerApp`` with real signed transactions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.codec import parse
from ledger.contracts import nft
from ledger.contracts.context import Event, account_of
from ledger.contracts.parallel import ParallelExecutor
from ledger.node.abci import BAD_PAYLOAD, OK
from ledger.tx import Transaction
from tests.contracts.test_ft import (
    ALICE,
    BOB,
    CAROL,
    CHAIN,
    DAVE,
    KEYS,
    SHOP,
    TX,
    Chain,
    Ledger,
    calls_of,
    signed,
    token_types,
)

A, B, C, D = KEYS
H1 = "a" * 64
H2 = "0123456789abcdef" * 4
URI = "ipfs://bafy/cert-1.json"


def ledger() -> Ledger:
    # a history entry's key has a sequence number kept in the token record: written, never read
    return Ledger(nft.METHODS, nft.predict, unpredicted_write=lambda key: b"/h/" in key)


def with_class(**more: Any) -> Ledger:
    led = ledger()
    led.ok("nft.create_class", {"class": "cert", "name": "版权登记证书", **more}, ALICE)
    return led


def minted(**more: Any) -> Ledger:
    led = with_class(**more)
    led.ok("nft.mint", {"class": "cert", "id": "2024-A-0001", "to": BOB, "meta_hash": H1, "uri": URI}, ALICE)
    return led


T = {"class": "cert", "id": "2024-A-0001"}


def ops(led: Ledger) -> list[str]:
    return [e["op"] for e in nft.history(led.read, "cert", "2024-A-0001")]


# --------------------------------------------------------------------------- classes
def test_create_class() -> None:
    led = ledger()
    out = led.call("nft.create_class", {"class": "cert", "name": "证书", "minters": [CAROL, BOB]}, ALICE)
    meta = {"class": "cert", "height": 1, "minters": sorted([BOB, CAROL]), "name": "证书", "owner": ALICE,
            "template": "nft/1", "transferable": True}
    assert out.refused is None and out.result == meta and nft.class_info(led.read, "cert") == meta
    assert out.events == [Event("nft.ClassCreated", ("cert", ALICE), meta)]
    led.ok("nft.create_class", {"class": "badge", "name": "x", "transferable": False}, SHOP)
    assert nft.class_info(led.read, "badge")["transferable"] is False  # type: ignore[index]
    assert nft.class_info(led.read, "nope") is None


@pytest.mark.parametrize(("args", "why"), [
    ({"class": "cert", "name": "again"}, "class cert already exists"),
    ({"class": "Cert", "name": "x"}, "class must be 2-64 characters"),
    ({"class": "c", "name": "x"}, "class must be 2-64"),
    ({"class": "9c", "name": "x"}, "starting with a letter"),
    ({"class": "c/d", "name": "x"}, "class must be"),
    ({"class": "c" * 65, "name": "x"}, "class must be"),
    ({"class": ["cert"], "name": "x"}, "class must be a string, not a list"),
    ({"class": "other", "name": ""}, "name must be 1 to 128 bytes"),
    ({"class": "other", "name": "x\ty"}, "control characters"),
    ({"class": "other", "name": "x", "transferable": 1}, "transferable must be true or false, not an integer"),
    ({"class": "other", "name": "x", "minters": BOB}, "minters must be a list of accounts, not a string"),
    ({"class": "other", "name": "x", "minters": [BOB, BOB]}, "minters must not repeat"),
    ({"class": "other", "name": "x", "minters": [BOB, "x"]}, r"minters\[1\] is not an account"),
    ({"class": "other", "name": "x", "minters": [f"contract:m{i}" for i in range(17)]}, "at most 16 minters"),
    ({"class": "other"}, "missing field 'name'"),
    ({"class": "other", "name": "x", "supply": 5}, "unknown field 'supply'"),
])
def test_create_class_refusals(args: dict[str, Any], why: str) -> None:
    with_class().no("nft.create_class", args, BOB, why)


def test_set_minters_and_class_owner() -> None:
    led = with_class()
    args = {"class": "cert", "id": "m1", "to": DAVE, "meta_hash": H1, "uri": URI}
    led.no("nft.mint", args, CAROL, "only the owner or a minter of class cert may mint")
    led.no("nft.set_minters", {"class": "cert", "minters": [CAROL]}, CAROL,
           rf"only the owner of class cert \({ALICE}\) may set its minters")
    out = led.call("nft.set_minters", {"class": "cert", "minters": [CAROL, SHOP]}, ALICE)
    assert out.events == [Event("nft.MintersChanged", ("cert",), {"class": "cert", "minters": sorted([CAROL, SHOP])})]
    led.ok("nft.mint", args, CAROL)
    led.ok("nft.set_minters", {"class": "cert", "minters": []}, ALICE)
    led.no("nft.mint", {**args, "id": "m2"}, CAROL, "only the owner or a minter")
    led.no("nft.set_minters", {"class": "nope", "minters": []}, ALICE, "there is no class nope")
    led.no("nft.set_minters", {"class": "cert", "minters": None}, ALICE, "minters must be a list")
    led.no("nft.set_class_owner", {"class": "cert", "owner": BOB}, BOB, "only the owner of class cert")
    led.no("nft.set_class_owner", {"class": "cert", "owner": ALICE}, ALICE, "already owns class cert")
    led.no("nft.set_class_owner", {"class": "cert", "owner": ""}, ALICE, "owner is not an account")
    out = led.call("nft.set_class_owner", {"class": "cert", "owner": BOB}, ALICE)
    assert out.events == [Event("nft.ClassOwnerChanged", ("cert", ALICE, BOB),
                                {"class": "cert", "from": ALICE, "to": BOB})]
    led.no("nft.mint", {**args, "id": "m3"}, ALICE, "only the owner or a minter")
    led.ok("nft.mint", {**args, "id": "m3"}, BOB)


# --------------------------------------------------------------------------- mint
def test_mint_records_the_token_its_first_history_entry_and_the_owner_count() -> None:
    led = with_class()
    args = {"class": "cert", "id": "2024-A-0001", "to": BOB, "meta_hash": H1, "uri": URI}
    out = led.call("nft.mint", args, ALICE)
    assert out.refused is None and out.result is None
    assert out.events == [Event("nft.Mint", ("cert/2024-A-0001", BOB),
                                {"class": "cert", "id": "2024-A-0001", "meta_hash": H1, "minter": ALICE, "to": BOB,
                                 "uri": URI})]
    assert nft.token(led.read, "cert", "2024-A-0001") == {
        "approved": None, "burned": False, "class": "cert", "history": 1, "id": "2024-A-0001", "meta_hash": H1,
        "minted_height": 1, "minted_time_ms": 1_000, "minter": ALICE, "owner": BOB, "uri": URI}
    assert nft.owner(led.read, "cert", "2024-A-0001") == BOB and nft.balance(led.read, "cert", BOB) == 1
    assert nft.history(led.read, "cert", "2024-A-0001") == [
        {"by": ALICE, "height": 1, "meta_hash": H1, "op": "mint", "seq": 0, "time_ms": 1_000, "to": BOB,
         "tx": TX.id.hex(), "uri": URI}]
    assert b"nft/cert/t/2024-A-0001/h/" + bytes(8) in led.state, "entries are keyed by 8-byte big-endian seq"
    led.ok("nft.mint", {**args, "id": "b", "to": SHOP}, ALICE)
    led.ok("nft.mint", {**args, "id": "c", "to": BOB}, ALICE)
    assert nft.balance(led.read, "cert", BOB) == 2 and nft.balance(led.read, "cert", SHOP) == 1
    assert nft.owner(led.read, "cert", "never") is None and nft.history(led.read, "cert", "never") == []


@pytest.mark.parametrize(("change", "why"), [
    ({"id": "2024-A-0001"}, "token cert/2024-A-0001 already exists"),
    ({"class": "nope"}, "there is no class nope"),
    ({"id": ""}, "id must be 1-128 characters"),
    ({"id": "a/b"}, "id must be 1-128"),
    ({"id": "-a"}, "starting with a letter or digit"),
    ({"id": "a" * 129}, "id must be 1-128"),
    ({"id": "证书"}, "id must be 1-128"),
    ({"id": 7}, "id must be a string, not an integer"),
    ({"to": "alice"}, "to is not an account"),
    ({"to": None}, "to must be an account string, not null"),
    ({"meta_hash": H1.upper()}, "meta_hash must be an SM3 digest: 64 lowercase hex digits"),
    ({"meta_hash": H1[:62]}, "meta_hash must be an SM3 digest"),
    ({"meta_hash": H1 + "00"}, "meta_hash must be an SM3 digest"),
    ({"meta_hash": 5}, "meta_hash must be an SM3 digest"),
    ({"uri": ""}, "uri must be 1 to 512 bytes"),
    ({"uri": "x" * 513}, "uri must be 1 to 512 bytes of UTF-8, got 513"),
    ({"uri": "a\u0000b"}, "control characters"),
    ({"uri": 3}, "uri must be a string, not an integer"),
    ({"royalty": 5}, "unknown field 'royalty'"),
])
def test_mint_refusals(change: dict[str, Any], why: str) -> None:
    led = minted()
    led.no("nft.mint", {"class": "cert", "id": "x1", "to": BOB, "meta_hash": H1, "uri": URI, **change}, ALICE, why)


def test_mint_by_others_and_missing_fields_are_refused() -> None:
    led = with_class()
    led.no("nft.mint", {"class": "cert", "id": "x", "to": BOB, "meta_hash": H1, "uri": URI}, BOB,
           "only the owner or a minter of class cert may mint")
    led.no("nft.mint", {"class": "cert", "id": "x", "to": BOB}, ALICE, "missing fields 'meta_hash', 'uri'")
    led.no("nft.mint", "cert/x", ALICE, "arguments must be a JSON object, not a string")


# --------------------------------------------------------------------------- transfer, approve, operators
def test_transfer_by_the_owner() -> None:
    led = minted()
    out = led.call("nft.transfer", {**T, "to": CAROL}, BOB)
    assert out.refused is None
    assert out.events == [Event("nft.Transfer", ("cert/2024-A-0001", BOB, CAROL),
                                {"by": BOB, "class": "cert", "from": BOB, "id": "2024-A-0001", "to": CAROL})]
    assert nft.owner(led.read, "cert", "2024-A-0001") == CAROL
    assert nft.balance(led.read, "cert", BOB) == 0 and nft.balance(led.read, "cert", CAROL) == 1
    assert nft.k_count("cert", BOB) not in led.state
    entry = nft.history(led.read, "cert", "2024-A-0001")[1]
    assert entry == {"by": BOB, "from": BOB, "height": 1, "op": "transfer", "seq": 1, "time_ms": 1_000,
                     "to": CAROL, "tx": TX.id.hex()}
    led.ok("nft.transfer", {**T, "to": BOB, "from": CAROL}, CAROL)  # from, when given, must be the owner
    assert ops(led) == ["mint", "transfer", "transfer"]


@pytest.mark.parametrize(("args", "caller", "why"), [
    ({**T, "to": CAROL}, CAROL, f"{CAROL} may not transfer cert/2024-A-0001: it is neither the owner"),
    ({**T, "to": CAROL}, ALICE, "may not transfer"),  # the class owner has no power over tokens
    ({**T, "to": BOB}, BOB, f"{BOB} already owns cert/2024-A-0001"),
    ({**T, "to": CAROL, "from": CAROL}, BOB, f"token cert/2024-A-0001 is owned by {BOB}, not {CAROL}"),
    ({**T, "to": CAROL, "from": "x"}, BOB, "from is not an account"),
    ({**T, "id": "nope", "to": CAROL}, BOB, "there is no token cert/nope"),
    ({**T, "class": "nope", "to": CAROL}, BOB, "there is no class nope"),
    ({**T, "to": "contract:bad name"}, BOB, "to is not an account"),
    ({**T, "to": CAROL, "amount": 1}, BOB, "unknown field 'amount'"),
    ({"class": "cert", "to": CAROL}, BOB, "missing field 'id'"),
])
def test_transfer_refusals(args: dict[str, Any], caller: str, why: str) -> None:
    # a non-owner naming no ``from`` reads the operator key of the real owner: not predictable
    minted().no("nft.transfer", args, caller, why, serial=caller != BOB)


def test_approved_account_transfers_once() -> None:
    led = minted()
    led.no("nft.approve", {**T, "spender": CAROL}, CAROL, rf"only the owner of cert/2024-A-0001 \({BOB}\)")
    out = led.call("nft.approve", {**T, "spender": CAROL}, BOB)
    assert out.events == [Event("nft.Approval", ("cert/2024-A-0001", BOB, CAROL),
                                {"class": "cert", "id": "2024-A-0001", "owner": BOB, "spender": CAROL})]
    assert nft.token(led.read, "cert", "2024-A-0001")["approved"] == CAROL  # type: ignore[index]
    led.no("nft.approve", {**T, "spender": CAROL}, BOB, f"{CAROL} is already approved for cert/2024-A-0001")
    led.no("nft.approve", {"class": "cert", "id": "2024-A-0001", "spender": CAROL, "x": 1}, BOB, "unknown field")
    led.no("nft.approve", {**T, "spender": BOB}, BOB, "the owner cannot approve itself")
    led.no("nft.approve", {**T, "spender": 1}, BOB, "spender must be an account string")
    led.ok("nft.transfer", {**T, "to": DAVE, "from": BOB}, CAROL)
    tok = nft.token(led.read, "cert", "2024-A-0001")
    assert tok is not None and tok["owner"] == DAVE and tok["approved"] is None, "a transfer clears the approval"
    led.no("nft.transfer", {**T, "to": CAROL, "from": DAVE}, CAROL, "may not transfer")
    # approving null withdraws an approval
    led.ok("nft.approve", {**T, "spender": SHOP}, DAVE)
    out = led.call("nft.approve", {**T, "spender": None}, DAVE)
    assert out.events[0].keys == ("cert/2024-A-0001", DAVE) and out.events[0].data["spender"] is None
    led.no("nft.transfer", {**T, "to": CAROL, "from": DAVE}, SHOP, "may not transfer")
    led.no("nft.transfer", {**T, "to": CAROL}, SHOP, "may not transfer", serial=True)
    led.no("nft.approve", {**T, "spender": None}, DAVE, "cert/2024-A-0001 has no approval to clear")


def test_operators_transfer_every_token_of_the_owner_in_the_class() -> None:
    led = minted()
    led.ok("nft.mint", {"class": "cert", "id": "two", "to": BOB, "meta_hash": H2, "uri": URI}, ALICE)
    out = led.call("nft.set_operator", {"class": "cert", "operator": SHOP, "approved": True}, BOB)
    assert out.events == [Event("nft.Operator", ("cert", BOB, SHOP),
                                {"approved": True, "class": "cert", "operator": SHOP, "owner": BOB})]
    assert nft.is_operator(led.read, "cert", BOB, SHOP) and not nft.is_operator(led.read, "cert", SHOP, BOB)
    led.ok("nft.transfer", {**T, "to": CAROL, "from": BOB}, SHOP)  # with from: predicted completely
    led.ok("nft.transfer", {"class": "cert", "id": "two", "to": CAROL}, SHOP, serial=True)  # without from
    assert nft.balance(led.read, "cert", CAROL) == 2
    led.no("nft.transfer", {**T, "to": BOB, "from": CAROL}, SHOP, "may not transfer")  # operator of BOB only
    led.no("nft.set_operator", {"class": "cert", "operator": SHOP, "approved": True}, BOB, "already an operator")
    led.ok("nft.set_operator", {"class": "cert", "operator": SHOP, "approved": False}, BOB)
    led.no("nft.set_operator", {"class": "cert", "operator": SHOP, "approved": False}, BOB, "is not an operator")
    led.no("nft.set_operator", {"class": "cert", "operator": BOB, "approved": True}, BOB, "its own operator")
    led.no("nft.set_operator", {"class": "cert", "operator": SHOP, "approved": "yes"}, BOB,
           "approved must be true or false")
    led.no("nft.set_operator", {"class": "nope", "operator": SHOP, "approved": True}, BOB, "there is no class")


def test_non_transferable_class() -> None:
    led = minted(transferable=False)
    led.no("nft.transfer", {**T, "to": CAROL}, BOB, "tokens of class cert are not transferable")
    led.no("nft.approve", {**T, "spender": CAROL}, BOB, "not transferable")
    led.no("nft.set_operator", {"class": "cert", "operator": CAROL, "approved": True}, BOB, "not transferable")
    led.ok("nft.license", {**T, "to": CAROL, "until_height": 10}, BOB)  # licences and burns still work
    led.ok("nft.burn", T, BOB)


# --------------------------------------------------------------------------- licences
def test_license_is_time_bound_and_does_not_transfer_ownership() -> None:
    led = minted()
    out = led.call("nft.license", {**T, "to": CAROL, "until_ms": 5_000, "scope": "broadcast:CN"}, BOB)
    assert out.refused is None and out.result == {"license": 1}
    assert out.events == [Event("nft.License", ("cert/2024-A-0001", BOB, CAROL),
                                {"class": "cert", "exclusive": False, "id": "2024-A-0001", "license": 1,
                                 "licensor": BOB, "scope": "broadcast:CN", "to": CAROL, "until_ms": 5_000})]
    lic = {"exclusive": False, "granted_height": 1, "granted_time_ms": 1_000, "license": 1, "licensor": BOB,
           "scope": "broadcast:CN", "to": CAROL, "until_ms": 5_000}
    assert nft.active_licenses(led.read, "cert", "2024-A-0001", height=1, time_ms=4_999) == [lic]
    assert nft.active_licenses(led.read, "cert", "2024-A-0001", height=1, time_ms=5_000) == []
    assert nft.owner(led.read, "cert", "2024-A-0001") == BOB
    led.ok("nft.license", {**T, "to": DAVE, "until_height": 3}, BOB)  # block-height bound, no scope
    assert [x["license"] for x in nft.active_licenses(led.read, "cert", "2024-A-0001", height=2, time_ms=0)] \
        == [1, 2]
    assert [x["license"] for x in nft.active_licenses(led.read, "cert", "2024-A-0001", height=3, time_ms=0)] \
        == [1]
    # licences survive a transfer; expired ones are dropped from the list at its next change
    led.ok("nft.transfer", {**T, "to": SHOP}, BOB)
    led.height, led.time_ms = 5, 6_000
    assert nft.active_licenses(led.read, "cert", "2024-A-0001", height=5, time_ms=6_000) == []
    out = led.call("nft.license", {**T, "to": CAROL, "until_ms": 9_000}, SHOP)
    assert out.result == {"license": 4}, "a licence's id is the sequence number of its history entry"
    assert [x["license"] for x in parse(led.state[nft.k_licenses("cert", "2024-A-0001")])] == [4]
    assert ops(led) == ["mint", "license", "license", "transfer", "license"]


def test_license_refusals() -> None:
    led = minted()
    base = {**T, "to": CAROL}
    led.no("nft.license", base, BOB, "give exactly one of until_ms and until_height")
    led.no("nft.license", {**base, "until_ms": 5_000, "until_height": 9}, BOB, "exactly one")
    led.no("nft.license", {**base, "until_ms": 1_000}, BOB,
           "until_ms 1000 is not after the block's time 1000: the licence would never be active")
    led.no("nft.license", {**base, "until_height": 1}, BOB, "until_height 1 is not after the block's height 1")
    led.no("nft.license", {**base, "until_ms": -1}, BOB, "until_ms must be at least 0")
    led.no("nft.license", {**base, "until_ms": 2**63}, BOB, "until_ms must be at most")
    led.no("nft.license", {**base, "until_ms": "9999"}, BOB, "until_ms must be an integer, not a string")
    led.no("nft.license", {**base, "until_height": True}, BOB, "until_height must be an integer, not a boolean")
    led.no("nft.license", {**base, "until_ms": 9_000, "scope": "s" * 129}, BOB, "scope must be 0 to 128 bytes")
    led.no("nft.license", {**base, "until_ms": 9_000, "scope": 1}, BOB, "scope must be a string")
    led.no("nft.license", {**base, "until_ms": 9_000, "exclusive": "no"}, BOB, "exclusive must be true or false")
    led.no("nft.license", {**base, "until_ms": 9_000}, CAROL, "only the owner of cert/2024-A-0001 .* may license")
    led.no("nft.license", {**base, "until_ms": 9_000}, ALICE, "only the owner")
    led.no("nft.license", {**base, "to": BOB, "until_ms": 9_000}, BOB, "the owner cannot license itself")
    led.no("nft.license", {**base, "id": "none", "until_ms": 9_000}, BOB, "there is no token cert/none")
    led.no("nft.license", {**base, "until_ms": 9_000, "fee": 5}, BOB, "unknown field 'fee'")


def test_exclusive_licences_and_the_limit() -> None:
    led = minted()
    led.ok("nft.license", {**T, "to": CAROL, "until_ms": 9_000, "scope": "film", "exclusive": True}, BOB)
    led.no("nft.license", {**T, "to": DAVE, "until_ms": 9_000, "scope": "film"}, BOB,
           f"licence 1 to {CAROL} for scope 'film' is exclusive and active")
    led.ok("nft.license", {**T, "to": DAVE, "until_ms": 9_000, "scope": "print"}, BOB)  # another scope
    led.no("nft.license", {**T, "to": SHOP, "until_ms": 9_000, "scope": "print", "exclusive": True}, BOB,
           f"an exclusive licence needs no other active licence for scope 'print', but licence 2 to {DAVE}")
    led.time_ms = 9_000  # both expired: an exclusive one can be granted again
    led.ok("nft.license", {**T, "to": SHOP, "until_ms": 20_000, "scope": "film", "exclusive": True}, BOB)
    for i in range(nft.MAX_LICENSES - 1):
        led.ok("nft.license", {**T, "to": DAVE, "until_ms": 20_000, "scope": f"s{i}"}, BOB)
    led.no("nft.license", {**T, "to": DAVE, "until_ms": 20_000, "scope": "one more"}, BOB,
           f"already has {nft.MAX_LICENSES} active licences")


def test_revoke_license_by_owner_or_licensee() -> None:
    led = minted()
    led.ok("nft.license", {**T, "to": CAROL, "until_ms": 9_000}, BOB)
    led.ok("nft.license", {**T, "to": DAVE, "until_ms": 9_000, "scope": "x"}, BOB)
    led.no("nft.revoke_license", {**T, "license": 1}, SHOP,
           rf"only the owner of cert/2024-A-0001 \({BOB}\) or the licensee \({CAROL}\) may revoke")
    out = led.call("nft.revoke_license", {**T, "license": 1}, BOB)
    assert out.events == [Event("nft.Revoke", ("cert/2024-A-0001", CAROL),
                                {"by": BOB, "class": "cert", "id": "2024-A-0001", "license": 1, "to": CAROL})]
    led.no("nft.revoke_license", {**T, "license": 1}, BOB, "cert/2024-A-0001 has no active licence 1")
    led.ok("nft.revoke_license", {**T, "license": 2}, DAVE)  # a licensee renounces
    assert nft.active_licenses(led.read, "cert", "2024-A-0001", height=1, time_ms=1_000) == []
    assert nft.k_licenses("cert", "2024-A-0001") not in led.state
    led.ok("nft.license", {**T, "to": DAVE, "until_ms": 2_000}, BOB)
    led.time_ms = 2_000
    led.no("nft.revoke_license", {**T, "license": 5}, BOB, "no active licence 5")  # expired
    led.no("nft.revoke_license", {**T, "license": -1}, BOB, "license must be at least 0")
    led.no("nft.revoke_license", {**T, "license": "5"}, BOB, "license must be an integer")
    led.no("nft.revoke_license", {**T, "license": 2**64}, BOB, "license must be at most")
    led.no("nft.revoke_license", {**T, "id": "zz", "license": 1}, BOB, "there is no token cert/zz")
    assert ops(led) == ["mint", "license", "license", "revoke", "revoke", "license"]
    revoke = nft.history(led.read, "cert", "2024-A-0001")[3]
    assert (revoke["by"], revoke["license"], revoke["to"]) == (BOB, 1, CAROL)


def test_licenses_at_rebuilds_any_past_moment_from_history() -> None:
    led = minted()
    led.height, led.time_ms = 2, 2_000
    led.ok("nft.license", {**T, "to": CAROL, "until_ms": 10_000}, BOB)  # 1
    led.ok("nft.license", {**T, "to": DAVE, "until_height": 6, "scope": "b"}, BOB)  # 2
    led.height, led.time_ms = 4, 4_000
    led.ok("nft.revoke_license", {**T, "license": 1}, CAROL)
    led.height, led.time_ms = 7, 7_000
    led.ok("nft.burn", T, BOB)

    def at(height: int, time_ms: int) -> list[int]:
        return [x["license"] for x in nft.licenses_at(led.read, "cert", "2024-A-0001", height=height,
                                                       time_ms=time_ms)]

    assert at(1, 1_000) == []
    assert at(2, 2_000) == [1, 2] and at(3, 3_000) == [1, 2]
    assert at(4, 4_000) == [2] and at(5, 5_000) == [2]
    assert at(6, 6_000) == []  # licence 2 ran until height 6
    assert at(9, 9_000) == []  # burned
    lic = nft.licenses_at(led.read, "cert", "2024-A-0001", height=3, time_ms=3_000)[1]
    assert lic == {"exclusive": False, "granted_height": 2, "granted_time_ms": 2_000, "license": 2,
                   "licensor": BOB, "scope": "b", "to": DAVE, "until_height": 6}


# --------------------------------------------------------------------------- burn and history
def test_burn_keeps_the_record_and_the_id_can_never_be_minted_again() -> None:
    led = minted()
    led.ok("nft.license", {**T, "to": CAROL, "until_ms": 9_000}, BOB)
    led.ok("nft.approve", {**T, "spender": DAVE}, BOB)
    led.no("nft.burn", T, CAROL, "only the owner of cert/2024-A-0001 .* may burn it")
    led.no("nft.burn", T, DAVE, "only the owner")  # an approved account may transfer, not burn
    out = led.call("nft.burn", T, BOB)
    assert out.events == [Event("nft.Burn", ("cert/2024-A-0001", BOB),
                                {"class": "cert", "from": BOB, "id": "2024-A-0001", "licenses_ended": [1]})]
    tok = nft.token(led.read, "cert", "2024-A-0001")
    assert tok is not None and tok["burned"] is True and tok["owner"] is None and tok["approved"] is None
    assert nft.owner(led.read, "cert", "2024-A-0001") is None and nft.balance(led.read, "cert", BOB) == 0
    assert nft.active_licenses(led.read, "cert", "2024-A-0001", height=1, time_ms=1_000) == []
    assert ops(led) == ["mint", "license", "burn"]
    led.no("nft.mint", {**T, "to": CAROL, "meta_hash": H2, "uri": URI}, ALICE,
           "token cert/2024-A-0001 was burned; burned ids cannot be minted again")
    after: list[tuple[str, dict[str, Any]]] = [
        ("nft.transfer", {"to": CAROL}), ("nft.burn", {}), ("nft.approve", {"spender": CAROL}),
        ("nft.license", {"to": CAROL, "until_ms": 9_000}), ("nft.revoke_license", {"license": 1})]
    for type_, more in after:
        led.no(type_, {**T, **more}, BOB, "token cert/2024-A-0001 was burned")
    led.no("nft.burn", {**T, "id": "x y"}, BOB, "id must be")
    led.no("nft.burn", {"class": "cert"}, BOB, "missing field 'id'")


def test_history_is_complete_and_pageable() -> None:
    led = minted()
    led.ok("nft.transfer", {**T, "to": CAROL}, BOB)
    led.ok("nft.license", {**T, "to": DAVE, "until_height": 50}, CAROL)
    led.ok("nft.revoke_license", {**T, "license": 2}, CAROL)
    led.ok("nft.transfer", {**T, "to": SHOP}, CAROL)
    led.ok("nft.burn", T, SHOP)
    full = nft.history(led.read, "cert", "2024-A-0001")
    assert [(e["seq"], e["op"], e["by"]) for e in full] == [
        (0, "mint", ALICE), (1, "transfer", BOB), (2, "license", CAROL), (3, "revoke", CAROL),
        (4, "transfer", CAROL), (5, "burn", SHOP)]
    assert nft.history(led.read, "cert", "2024-A-0001", start=2, limit=2) == full[2:4]
    assert nft.history(led.read, "cert", "2024-A-0001", start=5, limit=10) == full[5:]
    for e in full:
        assert led.state[nft.k_history("cert", "2024-A-0001", e["seq"])]
        assert e["tx"] == TX.id.hex() and e["height"] == 1


def test_read_helpers_refuse_malformed_queries() -> None:
    led = minted()
    with pytest.raises(nft.TokenRefused, match="class must be"):
        nft.owner(led.read, "C", "x")
    with pytest.raises(nft.TokenRefused, match="id must be"):
        nft.token(led.read, "cert", "a/b")
    with pytest.raises(nft.TokenRefused, match="account is not an account"):
        nft.balance(led.read, "cert", "bob")


def test_types_are_parallel_and_predicted() -> None:
    types = nft.types()
    assert set(types) == set(nft.METHODS) == {
        "nft.create_class", "nft.set_minters", "nft.set_class_owner", "nft.set_operator", "nft.mint",
        "nft.transfer", "nft.approve", "nft.license", "nft.revoke_license", "nft.burn"}
    assert {n for n, t in types.items() if t.admin} == {"nft.create_class", "nft.set_minters",
                                                        "nft.set_class_owner"}
    assert all(t.parallel and t.keys is not None for t in types.values())
    pay = {**T, "to": CAROL}
    tx = Transaction.build(B, chain=CHAIN, type="nft.transfer", payload=pay, expiry=9)
    keys = types["nft.transfer"].keys
    assert keys is not None and account_of(tx.sender) == BOB
    assert set(keys(tx) or ()) == {b"nft/cert/meta", b"nft/cert/t/2024-A-0001", f"nft/cert/n/{BOB}".encode(),
                                   f"nft/cert/n/{CAROL}".encode()}
    assert nft.predict("nft.mint", ALICE, {"class": "cert"}) is None


# --------------------------------------------------------------------------- property: any input, only refusals
NFT_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "nft.create_class": (("class", "name"), ("transferable", "minters")),
    "nft.set_minters": (("class", "minters"), ()),
    "nft.set_class_owner": (("class", "owner"), ()),
    "nft.set_operator": (("class", "operator", "approved"), ()),
    "nft.mint": (("class", "id", "to", "meta_hash", "uri"), ()),
    "nft.transfer": (("class", "id", "to"), ("from",)),
    "nft.approve": (("class", "id", "spender"), ()),
    "nft.license": (("class", "id", "to"), ("until_ms", "until_height", "scope", "exclusive")),
    "nft.revoke_license": (("class", "id", "license"), ()),
    "nft.burn": (("class", "id"), ()),
}
WHO = st.sampled_from([ALICE, BOB, BOB, CAROL, SHOP])
ACCOUNT = st.sampled_from([ALICE, BOB, CAROL, DAVE, SHOP, "contract:", BOB.upper()])
PLAUSIBLE: dict[str, Any] = {
    "class": st.sampled_from(["cert", "cert", "cert", "other", "C"]),
    "id": st.sampled_from(["2024-A-0001", "2024-A-0001", "t2", "x/y"]), "name": st.sampled_from(["n", ""]),
    "meta_hash": st.sampled_from([H1, H1, H1.upper()]), "uri": st.sampled_from([URI, URI, ""]),
    "until_ms": st.integers(0, 5_000), "until_height": st.integers(0, 5), "scope": st.sampled_from(["", "film"]),
    "exclusive": st.booleans(), "approved": st.booleans(), "transferable": st.booleans(),
    "license": st.integers(0, 8), "minters": st.lists(ACCOUNT, max_size=3),
    **{f: ACCOUNT for f in ("to", "from", "spender", "operator", "owner")},
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(calls_of(NFT_FIELDS, PLAUSIBLE), WHO, st.integers(0, 2)), max_size=12))
def test_any_arguments_are_accepted_or_refused_never_crash(
        calls: list[tuple[tuple[str, dict[str, Any]], str, int]]) -> None:
    """Whatever the arguments, a call is accepted or refused (never another exception), reads
    only predicted keys (but for transfers without ``from``) and changes nothing when refused;
    the owner counts always match the live tokens."""
    assert set(NFT_FIELDS) == set(nft.METHODS)
    led = minted()
    led.ok("nft.license", {**T, "to": CAROL, "until_ms": 3_000}, BOB)
    led.ok("nft.set_operator", {"class": "cert", "operator": SHOP, "approved": True}, BOB)
    for (type_, args), who, tick in calls:
        led.height += tick
        led.time_ms += 1_000 * tick
        led.call(type_, args, who, serial=type_ == "nft.transfer" and "from" not in args)
    counts: dict[bytes, int] = {}
    for key, raw in led.state.items():
        if b"/t/" in key and b"/h/" not in key and not key.endswith(b"/lic"):
            tok = parse(raw)
            if not tok["burned"]:
                k = nft.k_count(tok["class"], tok["owner"])
                counts[k] = counts.get(k, 0) + 1
    assert counts == {k: parse(v) for k, v in led.state.items() if b"/n/" in k}


# --------------------------------------------------------------------------- through the ledger application
def test_through_the_app() -> None:
    chain = Chain()
    mint = {"class": "cert", "id": "c1", "to": BOB, "meta_hash": H1, "uri": URI}
    r = chain.block([signed(A, "nft.create_class", {"class": "cert", "name": "证书"}),
                     signed(A, "nft.mint", mint),
                     signed(B, "nft.license", {"class": "cert", "id": "c1", "to": CAROL, "until_ms": 50_000})],
                    time_ms=10_000)
    assert [x.code for x in r] == [OK, OK, OK], [x.info for x in r]
    assert r[2].result == {"license": 1}
    assert [e.type for x in r for e in x.events] == ["nft.ClassCreated", "nft.Mint", "nft.License"]
    assert {"nft.create_class", "nft.set_minters", "nft.set_class_owner"} <= chain.app.admin_types
    lic = nft.active_licenses(chain.app.read, "cert", "c1", height=2, time_ms=49_999)
    assert [x["to"] for x in lic] == [CAROL] and lic[0]["granted_time_ms"] == 10_000
    root = chain.app.root()
    bad = [
        signed(C, "nft.transfer", {"class": "cert", "id": "c1", "to": CAROL}),
        signed(B, "nft.transfer", {"class": "cert", "id": "c1", "to": "0x" + CAROL}),
        signed(A, "nft.mint", mint),
        signed(A, "nft.mint", {**mint, "id": "c2", "meta_hash": "sm3:" + H1[4:]}),
        signed(B, "nft.license", {"class": "cert", "id": "c1", "to": DAVE, "until_ms": 10_000}),
        signed(D, "nft.burn", {"class": "cert", "id": "c1"}),
    ]
    r = chain.block(bad, time_ms=11_000)
    assert [x.code for x in r] == [BAD_PAYLOAD] * len(bad) and not any(x.events for x in r)
    assert [x.info for x in r] == [
        f"{CAROL} may not transfer cert/c1: it is neither the owner ({BOB}) nor approved for the token nor an "
        "operator of the owner",
        "to is not an account: expected 40 lowercase hex digits or 'contract:<name>', got '0x" + CAROL + "'",
        "token cert/c1 already exists",
        "meta_hash must be an SM3 digest: 64 lowercase hex digits",
        "until_ms 10000 is not after the block's time 11000: the licence would never be active",
        f"only the owner of cert/c1 ({BOB}) may burn it",
    ]
    assert chain.app.root() == root, "refused transactions changed no state"
    r = chain.block([signed(B, "nft.transfer", {"class": "cert", "id": "c1", "to": DAVE})], time_ms=12_000)
    assert r[0].code == OK and r[0].events[0].wire()["keys"] == ["cert/c1", BOB, DAVE]
    assert nft.owner(chain.app.read, "cert", "c1") == DAVE
    assert [e["height"] for e in nft.history(chain.app.read, "cert", "c1")] == [1, 1, 3]


def test_parallel_execution_only_unpredictable_paths_fall_back() -> None:
    """Jobs run in a worker that can read only predicted keys: mints, licences, transfers by
    owners and by operators naming ``from`` all come back usable; an operator's transfer
    without ``from`` is the documented fallback to block order. Results equal serial runs."""
    setup = [signed(A, "nft.create_class", {"class": "cert", "name": "c", "minters": [SHOP, BOB]}),
             signed(C, "nft.set_operator", {"class": "cert", "operator": DAVE, "approved": True}),
             signed(C, "nft.set_operator", {"class": "cert", "operator": ALICE, "approved": True})]
    work = [signed(A, "nft.mint", {"class": "cert", "id": f"t{i}", "to": CAROL, "meta_hash": H1, "uri": URI})
            for i in range(6)]
    work += [signed(C, "nft.transfer", {"class": "cert", "id": "t0", "to": BOB}),
             signed(C, "nft.license", {"class": "cert", "id": "t1", "to": BOB, "until_height": 99}),
             signed(C, "nft.revoke_license", {"class": "cert", "id": "t1", "license": 1}),
             signed(C, "nft.approve", {"class": "cert", "id": "t2", "spender": BOB}),
             signed(B, "nft.transfer", {"class": "cert", "id": "t2", "to": BOB, "from": CAROL}),
             signed(D, "nft.transfer", {"class": "cert", "id": "t3", "to": DAVE, "from": CAROL}),
             signed(C, "nft.burn", {"class": "cert", "id": "t4"}),
             signed(B, "nft.burn", {"class": "cert", "id": "t5"}),  # refused: not the owner
             signed(A, "nft.transfer", {"class": "cert", "id": "t5", "to": DAVE})]  # operator, no from
    serial = Chain()
    serial.block(setup)
    expected = serial.block(work)
    assert [r.code for r in expected] == [OK] * 13 + [BAD_PAYLOAD, OK]
    with ParallelExecutor(token_types, workers=1, use_main=False, min_ship_s=0.0) as executor:
        par = Chain(executor)
        par.block(setup)
        got = par.block(work)
        stats = executor.last
    assert stats.shipped == len(work) and stats.serial == 1
    assert par.app.last_stats["reused"] == len(work) - 1
    assert [r.wire() for r in got] == [r.wire() for r in expected]
    assert par.app.root() == serial.app.root()
