"""``rongxin evidence verify PKG.zip --root ROOT.pem [--json]``: the offline court verifier.

Exit 0 when every check holds, 1 naming each failed check, 2 for a package that cannot be read
(not a zip, a zip bomb, a bad member name, too many or too large members) or an unusable root.
No network is used. The checks and what a court learns from each: docs/evidence-format.md §5.
"""

from __future__ import annotations

import json
from typing import Any

import click

from .errors import BAD_INPUT, NEGATIVE, OK, InputError
from .io import open_input, read_input

PAYLOAD_SHOWN = 600  # characters of a statement's payload in the text report (--json has it whole)
LEGEND = ("依据 References: 最高人民法院《人民法院在线诉讼规则》(2021) Supreme People's Court Online Litigation "
          "Rules, Art. 16-19; SF/T 0076-2020《电子数据存证技术规范》. 各项核验对应条款见 docs/evidence-format.md §5.")


def _safe(value: Any) -> str:
    """Text from the package shown without control characters (no terminal escapes)."""
    return "".join(c if c.isprintable() else "?" for c in str(value))


def _text(report: Any, meaning: dict[str, tuple[str, str, str]]) -> str:
    from forensics.verify import OPTIONAL_CHECKS

    lines = ["证据包核验 / Evidence package verification", ""]
    if report.filer:
        f = report.filer
        lines.append(f"提交方 Filer: {_safe(f['name'])} ({_safe(f['org'])}, {_safe(f['role'])}), 证书序列号 serial {f['serial']}, "
                     f"签署于 signed at {f['signed_at']}")
    for s in report.statements:
        who = s["sender"] or {}
        lines.append(f"- {_safe(who.get('name', '?'))} ({_safe(who.get('org', '?'))}) 提交 submitted {_safe(s['type'])} "
                     f"tx {s['tx']} 于区块 in block {s['height']} {s['block']} 时间 at {s['time']}; "
                     f"结果 result {s['code']} {_safe(s['info'])}")
        what = json.dumps(s["payload"], ensure_ascii=False, sort_keys=True)
        lines.append(f"    内容 payload {what[:PAYLOAD_SHOWN]}" + ("…" if len(what) > PAYLOAD_SHOWN else ""))
        if s.get("result") is not None:
            lines.append(f"    返回 result {json.dumps(s['result'], ensure_ascii=False, sort_keys=True)[:PAYLOAD_SHOWN]}")
        for a in s["artefacts"]:
            role = f"  ({_safe(a['role'])})" if a.get("role") else ""
            lines.append(f"    文件 artefact {a['name']}  SM3 {_safe(a.get('sm3'))}  {_safe(a.get('size'))} bytes{role}")
    if report.timestamp:
        t = report.timestamp
        lines.append(f"时间戳 RFC 3161 time stamp: {t['gen_time']} by {_safe(t['tsa'])} (TSA certificate SM3 "
                     f"{t['tsa_certificate_sm3']}, {t['hash']}) on the manifest of tx {t['tx']}")
    lines.append("")
    for key, (en, zh, law) in meaning.items():
        if key not in report.checks and key in OPTIONAL_CHECKS:
            continue  # an optional check the package gives nothing to (no time stamp)
        why = report.checks.get(key, "not run")
        mark = "通过 PASS" if why is None else "失败 FAIL"
        lines.append(f"[{mark}] {key}: {zh} / {en} [{law}]" + ("" if why is None else f"\n        {_safe(why)}"))
    lines.append("")
    lines.append(LEGEND)
    lines.append("结论 Result: " + ("全部核验通过 every check holds" if report.ok
                                   else "核验未通过 failed: " + ", ".join(report.failed())))
    return "\n".join(lines)


@click.group()
def evidence() -> None:
    """Evidence packages."""


@evidence.command("verify")
@click.argument("package", type=click.Path(dir_okay=False))
@click.option("--root", "root", required=True, type=click.Path(dir_okay=False),
              help="The consortium root certificate (PEM) the court trusts.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(package: str, root: str, as_json: bool) -> int:
    """Verify an evidence package offline against the consortium root."""
    from forensics.package.format import PackageUnreadable
    from forensics.verify import MEANING, verify_package
    from ledger.crypto import CryptoError

    root_pem = read_input(root, "root certificate")
    try:
        with open_input(package, "package") as fh:
            report = verify_package(fh, root_pem)
    except PackageUnreadable as exc:
        click.echo(f"unreadable package: {exc}", err=True)
        return BAD_INPUT
    except CryptoError as exc:
        raise InputError(f"unusable root certificate: {exc}") from None
    except OSError as exc:
        raise InputError(f"cannot read {package}: {exc.strerror}") from None
    if as_json:
        click.echo(json.dumps(report.wire(), ensure_ascii=False, indent=2))
    else:
        click.echo(_text(report, MEANING))
    return OK if report.ok else NEGATIVE


def register(group: click.Group) -> None:
    existing = group.commands.get("evidence")
    if isinstance(existing, click.Group):
        existing.add_command(verify)
    else:
        group.add_command(evidence)
