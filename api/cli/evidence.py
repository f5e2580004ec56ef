"""``rongxin evidence file|export|show`` and ``rongxin case show|move``: a legal centre's
filings and the cases they open (docs/api.md, "Evidence and cases"). ``rongxin evidence
verify`` is in ``evidence_verify.py``.

Exit codes: 0 done; 2 a refusal by the node (wrong role, unknown work, empty or unreadable file,
over the size limit, a contract's reason) or a bad option, with one line saying why; 3 the node
cannot be reached.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..sdk import Identity
from .errors import InputError
from .identity import API_URL, AS_IDENTITY, call, client_for
from .io import emit

CASE_STATES = ("notified", "settled", "litigated", "closed")


@click.group()
def evidence() -> None:
    """Evidence: file it with a node (legal centre), export and verify packages."""


@evidence.command("file")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@AS_IDENTITY
@API_URL
@click.option("--work", "work_id", required=True, metavar="WORK_ID", help="The registered work the files copy.")
@click.option("--case", "case_id", metavar="CASE_ID",
              help="Attach to this case if it exists, else open it (default: a new case c-<evidence id>).")
@click.option("--party", "parties", multiple=True, metavar="ACCOUNT",
              help="Another party of a new case besides the work's holder (repeatable).")
@click.option("--note", default="", help="A note on the case step.")
@click.option("--source", default="", help="Where the copies were found (kept in the manifest's capture).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def file_cmd(files: tuple[Path, ...], identity: Identity, api: str, work_id: str, case_id: str | None,
             parties: tuple[str, ...], note: str, source: str, as_json: bool) -> None:
    """Upload FILES as evidence about a work, sign the node's manifest and file it on chain
    (evidence.file, opening or joining a case). Prints the evidence, case and transaction ids,
    the block height and each file's match against the work.

    \b
    Exit codes: 0 filed; 2 refused (not a legal centre, unknown work, empty, unreadable or
    too large a file, ...); 3 the node cannot be reached."""
    for f in files:
        if not f.is_file():
            raise InputError(f"{f}: not a readable file")
        if f.stat().st_size == 0:
            raise InputError(f"{f} is empty: there is nothing to file")
    client = client_for(api, identity)
    out = call(lambda: client.file_evidence(list(files), work_id, case_id=case_id, parties=parties, note=note,
                                            source=source))
    lines = [f"evidence {out['evidence_id']} filed in block {out['height']} (tx {out['tx_id']}), case {out['case_id']}"]
    for m in out["matches"]:
        lines.append(f"  {m['file']}: " + (f"matches work {work_id}, score {m['score']:.3f}" if m["matched"]
                                            else "no match"))
    emit(out, as_json, "\n".join(lines))


@evidence.command("export")
@click.argument("evidence_id")
@AS_IDENTITY
@API_URL
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Package to write (zip).")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def export_cmd(evidence_id: str, identity: Identity, api: str, out: Path, force: bool) -> None:
    """Download the evidence package of EVIDENCE_ID (streamed) and sign it as this identity:
    the filer, the work's holder, a court or the regulator (a court's or regulator's package
    names no statement it sent, so ``evidence verify`` fails its check filer-certificate).

    \b
    Exit codes: 0 written; 2 refused or OUT exists; 3 the node cannot be reached."""
    if out.exists() and not force:
        raise InputError(f"{out} exists (use --force to overwrite)")
    path = call(client_for(api, identity).export_evidence, evidence_id, out)
    click.echo(f"evidence package written to {path} ({path.stat().st_size} bytes)")


@evidence.command("show")
@click.argument("evidence_id")
@AS_IDENTITY
@API_URL
def show_cmd(evidence_id: str, identity: Identity, api: str) -> None:
    """The filing record of EVIDENCE_ID as JSON (exit 2 if refused or unknown)."""
    emit(call(client_for(api, identity).evidence, evidence_id), True)


@click.group()
def case() -> None:
    """Cases: open → notified → settled | litigated → closed."""


@case.command("show")
@click.argument("case_id")
@AS_IDENTITY
@API_URL
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def case_show(case_id: str, identity: Identity, api: str, as_json: bool) -> None:
    """A case with its history (its opener, a party, a court or the regulator; else exit 2)."""
    rec = call(client_for(api, identity).case, case_id)
    lines = [f"case {rec['case_id']} about work {rec['work_id']}: {rec['state']}",
             f"  parties: {', '.join(rec['parties'])}", f"  evidence: {', '.join(rec['evidence'])}"]
    lines += [f"  {s['height']}: {s['state']} by {s['by']}" + (f" ({s['note']})" if s.get("note") else "")
              for s in rec["history"]]
    emit(rec, as_json, "\n".join(lines))


@case.command("move")
@click.argument("case_id")
@click.argument("to", type=click.Choice(CASE_STATES))
@AS_IDENTITY
@API_URL
@click.option("--note", default="", help="A note on the step.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def case_move(case_id: str, to: str, identity: Identity, api: str, note: str, as_json: bool) -> None:
    """Move CASE_ID to state TO by a signed case.move (exit 2 with the contract's reason if
    this identity may not)."""
    out = call(client_for(api, identity).move_case, case_id, to, note)
    emit(out, as_json, f"case {case_id} is {out['state']} (block {out['height']}, tx {out['tx_id']})")


def register(group: click.Group) -> None:
    existing = group.commands.get("evidence")
    if isinstance(existing, click.Group):
        for cmd in (file_cmd, export_cmd, show_cmd):
            existing.add_command(cmd)
    else:
        group.add_command(evidence)
    group.add_command(case)
