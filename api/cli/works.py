"""``rongxin works``: register a work, show one, verify a registration certificate offline.

    rongxin works register FILE --as ID_DIR --api URL [--title T] [--json]
    rongxin works show WORK_ID --api URL [--json]
    rongxin works verify-certificate CERT.pdf --root ROOT.pem [--json]
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any

import click

from ..sdk import ClientError, Identity, LedgerClient
from ..sdk_works import DEFAULT_PLEDGE
from .errors import BAD_INPUT, NEGATIVE, OK, InputError
from .identity import API_URL, AS_IDENTITY, call, client_for
from .io import emit, read_input

KINDS = {"image": "picture", "audio": "audio", "video": "video", "text": "text"}


def _file(path: str) -> Path:
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if not p.is_file():
        raise InputError(f"{path} is not a regular file")
    if st.st_size == 0:
        raise InputError(f"{path} is empty: there is nothing to register")
    try:
        with p.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    return p


@click.group()
def works() -> None:
    """The works registry: register works, show them, verify their certificates.

    \b
    Exit codes: 0 ok; 1 a certificate that does not verify (the failed checks are named);
    2 unusable input or a refusal by the node (wrong role, unregistered or revoked identity,
    a file too large, empty or unreadable); 3 the node cannot be reached.
    """


def recognition_hint(rec: dict[str, Any]) -> str:
    """One line on what a registration's recognition level means (docs/fingerprints.md)."""
    if rec.get("level") == "exact-only":
        return "too little content for robust features: only byte-identical copies will be found"
    return (f"{rec.get('keypoints', 0)} keypoints, global code {'yes' if rec.get('global_code') else 'no'}, "
            f"colour layout {'yes' if rec.get('colour_layout') else 'no'}: some transformed copies may be missed")


@works.command("register")
@click.argument("file", type=click.Path(dir_okay=False))
@AS_IDENTITY
@API_URL
@click.option("--title", help="The work's title (default: the file's name without extension).")
@click.option("--type", "work_type", help="Type of work (default from the file name: picture, audio, video, text, work).")
@click.option("--author", "authors", multiple=True, help="An author (repeat for several; default: none).")
@click.option("--created", default="", help="Date of creation, YYYY-MM-DD.")
@click.option("--licence", default="", help="Licence terms.")
@click.option("--pledge", default=DEFAULT_PLEDGE, show_default=True, help="The originality pledge you sign.")
@click.option("--out", type=click.Path(), default=".", help="Where to write the certificate PDF (a file or a folder).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def register(file: str, identity: Identity, api: str, title: str | None, work_type: str | None,
             authors: tuple[str, ...], created: str, licence: str, pledge: str, out: str, as_json: bool) -> None:
    """Register FILE as your work: upload it (signed), sign the works.register transaction, wait
    until it is committed, and write the registration certificate (PDF). Conflicts with earlier
    works (the same file, or a transformed copy) are reported with their scores."""
    path = _file(file)
    kind = (mimetypes.guess_type(path.name)[0] or "").split("/")[0]
    attrs: dict[str, Any] = {"title": title or path.stem or path.name, "type": work_type or KINDS.get(kind, "work"),
                             "authors": list(authors), "created": created, "licence": licence}
    client = client_for(api, identity)
    res = call(lambda: client.register_work(path, attrs, pledge=pledge, out=Path(out)))
    res["certificate"] = str(Path(res["certificate"]).resolve())
    lines = [f"work {res['work_id']} registered in tx {res['tx_id']} at height {res['height']}",
             f"sm3 {res['sm3']}", f"certificate {res['certificate']}"]
    lines += [f"CONFLICT with {c['work_id']} (score {c['score']:.3f})" for c in res["conflicts"]]
    rec = res.get("recognition") or {}
    if rec.get("level") and rec["level"] != "robust":
        lines.append(f"recognition: {rec['level']} ({recognition_hint(rec)})")
    emit(res, as_json, "\n".join(lines))


@works.command("show")
@click.argument("work_id")
@API_URL
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def show(work_id: str, api: str, as_json: bool) -> None:
    """Show a work's public registration record."""
    try:
        client = LedgerClient(api)
    except ClientError as exc:
        raise click.BadParameter(str(exc), param_hint="--api") from None
    rec = call(client.work, work_id)
    a = rec["attributes"]
    emit(rec, as_json, f"{rec['work_id']}: {a['title']} ({a['type']}) by {rec.get('holder_name') or rec['holder']}, "
                       f"sm3 {rec['sm3']}, tx {rec['tx']} at height {rec['height']}, "
                       f"{len(rec['conflicts'])} conflict(s)")


@works.command("verify-certificate")
@click.argument("certificate", type=click.Path(dir_okay=False))
@click.option("--root", required=True, type=click.Path(dir_okay=False), help="The consortium root certificate (PEM).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_certificate(certificate: str, root: str, as_json: bool) -> int:
    """Verify a registration certificate offline: its embedded proof bundle against the
    consortium root (every check of `rongxin evidence verify`), then each printed fact (work
    id, SM3, chain, transaction, height, block time, holder, attributes) against what the
    bundle proves. Exit 0 when all hold, 1 naming each failed check, 2 for an unreadable file
    or root. Uses no network."""
    from forensics.certificate import MAX_PDF_BYTES, CertificatePdfError
    from forensics.certificate_check import check_certificate
    from forensics.package.format import PackageUnreadable
    from ledger.crypto import CryptoError

    pdf = read_input(certificate, "certificate", MAX_PDF_BYTES)
    root_pem = read_input(root, "root certificate")
    try:
        result = check_certificate(pdf, root_pem)
    except CertificatePdfError as exc:
        click.echo(f"rongxin: error: {certificate} is not a readable certificate: {exc}", err=True)
        return BAD_INPUT
    except PackageUnreadable as exc:
        click.echo(f"rongxin: no: the certificate's proof bundle is not a package: {exc}", err=True)
        return NEGATIVE
    except CryptoError as exc:
        raise InputError(f"unusable root certificate: {exc}") from None
    f = result.facts
    if as_json:
        click.echo(json.dumps({"ok": result.ok, "failed": result.failed(), "checks": result.checks,
                               "facts": {"work_id": f.work_id, "sm3": f.sm3, "chain": f.chain, "tx_id": f.tx_id,
                                         "height": f.height, "block_time_ms": f.block_time_ms,
                                         "holder": f.holder_cn, "organization": f.holder_org, "title": f.title}},
                              ensure_ascii=False, indent=2))
    else:
        click.echo(f"作品登记证书核验 / Certificate verification: work {f.work_id}, tx {f.tx_id}, height {f.height}")
        for k, why in result.checks.items():
            click.echo(f"[{'PASS' if why is None else 'FAIL'}] {k}" + ("" if why is None else f": {why}"))
        click.echo("Result: " + ("every check holds" if result.ok else "FAILED: " + ", ".join(result.failed())))
    return OK if result.ok else NEGATIVE


def register_cli(group: click.Group) -> None:
    group.add_command(works)
