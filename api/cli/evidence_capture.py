"""``rongxin evidence capture URL --as ID_DIR --api URL [--json]``: one-click web evidence from
the legal centre's capture station (docs/api.md §6.1, docs/works.md §4.3).

The capture runs here, on the station: its own environment is checked first (a fresh browser
profile, no proxy variables, unmodified hosts and resolver files, the expected browser build,
the clock against the chain's latest block; ``forensics.capture.check_environment``), then the
page is captured in headless Chromium with the node's API address (``--api``) forbidden, and
the capture is filed through the node's API (``api.sdk_capture.file_capture``): the node
matches every picture, audio and video file against the registry and countersigns the upload,
this identity signs the manifest, and one ``evidence.file`` files it and opens or joins one
case per matched work.

``--json`` prints exactly ``{"evidence_id", "case_ids", "tx_id", "height", "artefacts":
[{"name", "sm3", "size"}], "matches": [{"work_id", "artefact", "score", "work_start_s",
"query_start_s", "duration_s", "region", "role", "method"}]}``.

Exit codes: 0 filed; 2 refused: the address (not http(s), the node's own API, …) or by the
node (not a legal centre, a contract's reason); 3 the station's environment is not clean (the
reason on one line: a proxy variable, an edited hosts file, the clock), or the node cannot be
reached; 1 the node prepared something other than what was captured (nothing signed).
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import click

from ..sdk import ClientError, Identity, LedgerClient
from .errors import EnvironmentProblem, InputError
from .identity import API_URL, AS_IDENTITY, call, client_for
from .io import emit

CLOCK_SKEW_S = 90.0  # an idle chain adds a heartbeat block a minute: its head may be that old


def capture_module() -> Any:
    try:
        return importlib.import_module("forensics.capture")
    except ImportError as exc:
        raise EnvironmentProblem(f"browser capture is not available here: {exc}") from None


def api_address(api: str) -> tuple[str, int]:
    """The (host, port) of ``--api``: what the capture may never fetch."""
    u = urllib.parse.urlsplit(api)
    if not u.hostname:
        raise InputError(f"--api {api[:200]!r} names no host")
    return u.hostname, u.port or (443 if u.scheme == "https" else 80)


def chain_time_s(client: LedgerClient) -> float | None:
    """The time of the chain's latest block, s since 1970 (None on an empty chain)."""
    height = int(client.status().get("height") or 0)
    if height <= 0:
        return None
    return float(client.block(height)["header"]["time"]) / 1000


def _refused(exc: Exception, environment: bool) -> Exception:
    why = str(getattr(exc, "reason", None) or exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    return EnvironmentProblem(f"capture refused: {why}") if environment else InputError(f"capture refused: {why}")


def _settings(mod: Any, client: LedgerClient, forbidden: tuple[str, int]) -> Any:
    """The capture settings with the chain's time; the node is asked only after a first check of
    the environment failed to reach it (a proxy variable is reported as the refusal it is)."""
    try:
        chain_s = chain_time_s(client)
    except ClientError as exc:
        if exc.status is not None:
            raise
        try:
            mod.check_environment(mod.CaptureSettings(forbidden=(forbidden,), max_clock_skew_s=CLOCK_SKEW_S))
        except mod.CaptureRefused as refused:
            raise _refused(refused, True) from None
        raise EnvironmentProblem(str(exc)) from None
    return mod.CaptureSettings(forbidden=(forbidden,), chain_time_s=chain_s, max_clock_skew_s=CLOCK_SKEW_S)


def _human(out: dict[str, Any]) -> str:
    lines = [f"evidence {out['evidence_id']} filed in block {out['height']} (tx {out['tx_id']}); "
             f"cases: {', '.join(out['case_ids']) or 'none (no registered work found)'}"]
    lines += [f"  {a['name']}  {a['size']} bytes  SM3 {a['sm3']}" for a in out["artefacts"]]
    for m in out["matches"]:
        where = (f", work {m['work_start_s']:.2f} s at {m['query_start_s'] or 0:.2f} s of the clip"
                 if m.get("work_start_s") is not None else (f", region {m['region']}" if m.get("region") else ""))
        lines.append(f"  MATCH work {m['work_id']} in {m['artefact']}: score {m['score']:.3f}{where}")
    return "\n".join(lines)


@click.command("capture")
@click.argument("url")
@AS_IDENTITY
@API_URL
@click.option("--party", "parties", multiple=True, metavar="ACCOUNT",
              help="Another party of each new case besides the work's holder (repeatable).")
@click.option("--note", default="", help="A note on the case steps.")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the capture's files in this new folder (default: a temporary folder, removed).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def capture_cmd(url: str, identity: Identity, api: str, parties: tuple[str, ...], note: str, keep: Path | None,
                as_json: bool) -> None:
    """Capture URL in a clean headless browser on this station, match what it shows against
    the registry and file it as evidence through the node (one case per matched work).

    \b
    Exit codes: 0 filed; 2 the address or the filing refused; 3 the environment is not clean
    (proxy variable, hosts file, clock, browser build) or the node cannot be reached."""
    from .. import sdk_capture

    if keep is not None and keep.exists():
        raise InputError(f"{keep} exists: --keep names a new folder")
    mod = capture_module()
    client = client_for(api, identity)
    settings = _settings(mod, client, api_address(api))
    try:
        mod.check_environment(settings)
    except mod.CaptureRefused as exc:
        raise _refused(exc, True) from None
    tmp = Path(tempfile.mkdtemp(prefix="rongxin-capture-"))
    folder = keep if keep is not None else tmp / "capture"
    try:
        try:
            page = mod.capture(url, folder, settings)
        except mod.CaptureRefused as exc:
            raise _refused(exc, False) from None
        out = call(lambda: sdk_capture.file_capture(client, page, where="station", parties=parties, note=note))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shown = {"artefacts": [{"name": a["name"], "sm3": a["sm3"], "size": a["size"]} for a in out["artefacts"]],
             "case_ids": out["case_ids"], "evidence_id": out["evidence_id"], "height": out["height"],
             "matches": out["matches"], "tx_id": out["tx_id"]}
    emit(shown, as_json, _human(out))


def register(group: click.Group) -> None:
    existing = group.commands.get("evidence")
    if isinstance(existing, click.Group):
        existing.add_command(capture_cmd)
