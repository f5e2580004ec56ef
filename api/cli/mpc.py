"""``rongxin mpc``: joint computations between platforms, authorised and recorded on chain.

    rongxin mpc serve --as ID_DIR --api URL --data FILE.csv --listen HOST:PORT [--dataset NAME ...]
    rongxin mpc propose --as ID_DIR --api URL --parties A,B,C --query JSON [--dataset D] [--json]
    rongxin mpc show ID --api URL [--json]
    rongxin mpc approve ID --as ID_DIR --api URL [--proposal-sm3 HEX] [--json]
    rongxin mpc result ID --as ID_DIR --api URL [--json]
    rongxin mpc audit ID --api URL [--json]
    rongxin mpc dataset NAME --as ID_DIR --api URL --columns JSON
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from ..sdk import ClientError, Identity, IdentityError, LedgerClient
from .errors import InputError, NegativeResult
from .identity import API_URL, AS_IDENTITY, call, client_for
from .io import emit

LISTEN = re.compile(r"(?P<host>[A-Za-z0-9.:-]{1,253}):(?P<port>[0-9]{1,5})")
CID = re.compile(r"[0-9a-f]{64}")
DATASET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _cid(value: str) -> str:
    if not CID.fullmatch(value):
        raise InputError(f"{value[:80]!r} is not a computation id (64 lowercase hex digits)")
    return value


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object")
    return value


@click.group()
def mpc() -> None:
    """Joint statistics by secure multiparty computation, authorised and recorded on chain.

    \b
    A computation runs only after every named party approved the exact proposal; each
    platform's `mpc serve` process checks that on chain itself, files a commitment to its
    input, computes with the others over mutually authenticated TLS and records the result.
    Exit codes: 0 ok; 1 the audit does not hold (the reason is printed); 2 unusable input or
    a refusal by the node or the contract (its reason is printed); 3 the node cannot be reached.
    """


@mpc.command("serve")
@click.option("--as", "id_dir", required=True, metavar="ID_DIR", type=click.Path(file_okay=False),
              help="The platform's identity folder: key.pem, cert.pem and its transport certificate "
                   "(transport.crt.pem, transport.key.pem, transport-ca.crt.pem).")
@API_URL
@click.option("--data", "data", required=True, type=click.Path(dir_okay=False), help="This platform's CSV "
              "(content_id and integer columns).")
@click.option("--listen", required=True, metavar="HOST:PORT", help="Where this party accepts the others' links.")
@click.option("--dataset", "datasets", multiple=True, metavar="NAME",
              help="The data set --data holds (repeatable; default: default). A computation on any other "
                   "data set is refused (recorded aborted with the reason), whatever its columns: the data "
                   "set's privacy policy binds this data only through this option.")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between looks at the chain.")
@click.option("--commit-wait", default=60.0, show_default=True,
              help="Seconds to wait for every party's commitment before aborting naming the missing ones.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds a peer may stay silent during a run.")
@click.option("--outlive-parent", is_flag=True,
              help="Keep running when the process that started this one exits (by default it exits with it).")
def serve(id_dir: str, api: str, data: str, listen: str, datasets: tuple[str, ...], poll: float,
          commit_wait: float, timeout: float, outlive_parent: bool) -> None:
    """Run this platform's party process (long-lived): register HOST:PORT and the transport
    certificate of ID_DIR on chain, then compute every approved computation naming this
    platform and record its result. It runs until stopped (SIGTERM, Ctrl-C) and, unless
    --outlive-parent, exits when the process that started it exits."""
    from ..mpc_party import PartyProcess, exit_with_parent, transport_files

    if not outlive_parent:
        exit_with_parent()

    try:
        identity = Identity.load(id_dir)
        transport_files(Path(id_dir))
    except (IdentityError, ClientError) as exc:
        raise InputError(str(exc)) from None
    m = LISTEN.fullmatch(listen)
    if m is None or not 0 < int(m["port"]) < 65536:
        raise InputError(f"--listen must be HOST:PORT, got {listen!r}")
    if not Path(data).is_file():
        raise InputError(f"--data {data}: no such file")
    if not (poll > 0 and commit_wait > 0 and timeout > 0):
        raise InputError("--poll, --commit-wait and --timeout must be positive numbers of seconds")
    names = datasets or ("default",)
    bad = [d for d in names if not DATASET.fullmatch(d)]
    if bad:
        raise InputError(f"--dataset {bad[0][:80]!r} is not a data set name")
    proc = PartyProcess(client_for(api, identity), Path(id_dir), Path(data), m["host"], int(m["port"]), poll=poll,
                        commit_wait=commit_wait, timeout=timeout, log=lambda line: print(line, flush=True),
                        datasets=tuple(dict.fromkeys(names)))
    call(proc.serve)


@mpc.command("propose")
@AS_IDENTITY
@API_URL
@click.option("--parties", required=True, metavar="A,B,C", help="The parties by their certificates' common names.")
@click.option("--query", required=True, metavar="JSON", help='e.g. {"op": "sum", "column": "views", "ids": [...]}; '
              "without ids: every registered work's content id.")
@click.option("--dataset", default=None, help="A declared data set (default: the built-in 'default': views, likes).")
@click.option("--readers", default=None, metavar="R1,R2",
              help="Who may read the outputs on chain: party names or accounts (they are sealed to them); "
                   "default: public. Every computing party learns the outputs from the run itself.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def propose(identity: Identity, api: str, parties: str, query: str, dataset: str | None, readers: str | None,
            as_json: bool) -> None:
    """Propose a computation; the proposer's own approval is included when it is a party."""
    from .. import sdk_mpc

    names = [p.strip() for p in parties.split(",") if p.strip()]
    q = _json_object(query, "--query")
    who = None if readers is None else [r.strip() for r in readers.split(",") if r.strip()]
    res = call(lambda: sdk_mpc.propose(client_for(api, identity), names, q, dataset=dataset, readers=who))
    emit({"computation_id": res["computation_id"], "proposal_sm3": res["proposal_sm3"], "tx_id": res["tx_id"]},
         as_json, res["computation_id"])


@mpc.command("approve")
@click.argument("computation_id")
@AS_IDENTITY
@API_URL
@click.option("--proposal-sm3", "pin", default=None, metavar="HEX",
              help="The SM3 of the proposal you reviewed (rongxin mpc show ID): refused (exit 2) if the "
                   "proposal on chain is another one. Without it the proposal as it stands now is approved.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def approve(computation_id: str, identity: Identity, api: str, pin: str | None, as_json: bool) -> None:
    """Approve COMPUTATION_ID: the approval binds its proposal's SM3 (pin the one you reviewed
    with --proposal-sm3)."""
    from .. import sdk_mpc

    if pin is not None and not CID.fullmatch(pin):
        raise InputError("--proposal-sm3 must be 64 lowercase hex digits")
    res = call(lambda: sdk_mpc.approve(client_for(api, identity), _cid(computation_id), pin))
    waiting = ", ".join(res["waiting_for"]) or "nobody"
    emit(res, as_json, f"approved {computation_id}; waiting for {waiting}")


@mpc.command("result")
@click.argument("computation_id")
@AS_IDENTITY
@API_URL
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def result(computation_id: str, identity: Identity, api: str, as_json: bool) -> None:
    """Status (proposed, running, done, aborted, or disputed: a party's record disagrees with
    the first) and result of COMPUTATION_ID."""
    from .. import sdk_mpc

    res = call(lambda: sdk_mpc.result(client_for(api, identity), _cid(computation_id)))
    out = {k: res.get(k) for k in ("status", "outputs", "transcript_sm3", "tx_id", "error", "blame", "proposal",
                                   "proposal_sm3", "confirmations")}
    human = f"{res['status']}" + (f": {res['error']}" if res.get("error") else "")
    emit(out, as_json, human if not res.get("outputs") else human + "\n" + json.dumps(res["outputs"], sort_keys=True))


@mpc.command("show")
@click.argument("computation_id")
@API_URL
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def show(computation_id: str, api: str, as_json: bool) -> None:
    """What approving COMPUTATION_ID would bind: its proposal (parties, data set, query with its
    ids, readers), its proposal_sm3 (pass it to `mpc approve --proposal-sm3`), who approved, status."""
    from .. import sdk_mpc

    try:
        client = LedgerClient(api)
    except ClientError as exc:
        raise click.BadParameter(str(exc), param_hint="--api") from None
    res = call(lambda: sdk_mpc.result(client, _cid(computation_id)))
    out = {k: res.get(k) for k in ("computation_id", "status", "proposal", "proposal_sm3", "approvals")}
    emit(out, as_json, json.dumps(out, sort_keys=True, indent=2, ensure_ascii=False))


@mpc.command("audit")
@click.argument("computation_id")
@API_URL
@click.option("--as", "id_dir", default=None, metavar="ID_DIR", type=click.Path(file_okay=False),
              help="A reader's identity, to open outputs the proposal sealed to named readers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def audit(computation_id: str, api: str, id_dir: str | None, as_json: bool) -> None:
    """Check from chain data that every published total of COMPUTATION_ID is exactly the sum
    of what the parties committed to before it ran (exit 0), else exit 1 with the reason.
    Up to 400 ids each total is checked; above, the commitments cover buckets of consecutive
    ids and only each bucket's sum of totals is checked (a change keeping every bucket's sum
    passes)."""
    from .. import sdk_mpc

    try:
        client = LedgerClient(api) if id_dir is None else client_for(api, Identity.load(id_dir))
    except IdentityError as exc:
        raise InputError(str(exc)) from None
    except ClientError as exc:
        raise click.BadParameter(str(exc), param_hint="--api") from None
    try:
        res = call(lambda: sdk_mpc.audit_computation(client, _cid(computation_id)))
    except sdk_mpc.AuditFailed as exc:
        raise NegativeResult(f"audit fails: {exc}") from None
    emit(res, as_json, f"ok: {res['buckets_checked']} of {res['buckets']} commitment buckets check out")


@mpc.command("dataset")
@click.argument("name")
@AS_IDENTITY
@API_URL
@click.option("--columns", required=True, metavar="JSON", help='e.g. {"views": {"min": 0, "max": 100000}}')
@click.option("--policy", default=None, metavar="JSON",
              help='Differential-privacy policy, e.g. {"epsilon": "1.0", "delta": "1e-6", "min_group": 10, '
                   '"min_difference": 5} (docs/privacy.md); without one the data set refuses noisy queries.')
def dataset(name: str, identity: Identity, api: str, columns: str, policy: str | None) -> None:
    """Declare data set NAME on chain: its integer columns and their bounds, and its privacy policy."""
    from .. import sdk_mpc

    cols = _json_object(columns, "--columns")
    pol = _json_object(policy, "--policy") if policy is not None else None
    res = call(lambda: sdk_mpc.declare_dataset(client_for(api, identity), name, cols, policy=pol))
    emit(res, False, f"data set {name} declared in tx {res['tx_id']}")


def register(group: click.Group) -> None:
    group.add_command(mpc)
