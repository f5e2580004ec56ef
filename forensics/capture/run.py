"""``capture(url, out_dir, settings)``: refuse or capture, then write and hash every artefact.

Order (each step in the custody log): the URL is checked; the environment is checked (a
failure refuses: ``CaptureRefused``); the target's addresses are resolved and the node's own
API refused; the browser phase (``session.browse``) runs within 85 % of the time limit; then
the recording is encoded, the WARC, HAR, DOM, screenshot, resources and facts are written and
the custody log is closed. docs/capture.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import mimetypes
import re
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ledger.codec import canonical
from ledger.crypto import MalformedCertificate
from ledger.crypto.webpki import certificate_pem, describe_certificate

from .custody import Artefacts, CustodyLog, iso_time, plain
from .environment import browser_binary, check_environment
from .network import Exchange, Recorder
from .recording import encode_recording
from .session import State, browse
from .target import Guard, check_url
from .types import Artefact, CaptureRefused, CaptureResult, CaptureSettings
from .warc import write_warc

__all__ = ["capture"]

BROWSER_SHARE = 0.85
MEDIA_PREFIXES = ("image/", "audio/", "video/")
MAX_RESOURCES = 500


def _refuse_early(url: str, out_dir: Path, settings: CaptureSettings) -> tuple[dict[str, Any], Guard]:
    check_url(url)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise CaptureRefused("bad_output", f"{out_dir} is not empty")
    if settings.time_limit_s <= 0 or settings.size_limit_bytes <= 0 or settings.response_limit_bytes <= 0:
        raise CaptureRefused("bad_settings", "the time and size limits must be positive")
    report = check_environment(settings)
    if not report["clean"]:
        details = "; ".join(_failure_text(name, report["checks"][name]) for name in report["failures"])
        raise CaptureRefused("dirty_environment", f"the capture environment is not clean: {details}", report)
    guard = Guard(settings.forbidden)
    verdict = guard.verdict(url)
    if verdict is not None and verdict[0] == "forbidden_target":
        raise CaptureRefused("forbidden_target", verdict[1], report)
    return report, guard


def _failure_text(name: str, check: dict[str, Any]) -> str:
    if name == "proxy":
        return f"proxy variables set ({', '.join(check['variables_set'])})"
    if name in ("hosts", "resolver"):
        return f"{check.get('path')} is modified ({'; '.join(check.get('offending', []))[:200]})"
    if name == "baseline":
        return f"resolver files differ from the baseline {check.get('path')}: {', '.join(check.get('changed', []))}"
    if name == "clock":
        return (f"the node clock is {check.get('clock_ahead_of_chain_ms')} ms ahead of the chain's latest block "
                f"(allowed: -{check['max_skew_ms']} .. {check['max_skew_ms'] + check['max_chain_lag_ms']} ms)")
    if name == "browser":
        return f"the browser build {check.get('sm3')} is not the pinned {check.get('expected_sm3')}"
    if name == "extensions":
        return f"extensions or policies present ({', '.join(check['extension_files'] + check['policy_files'])[:200]})"
    return name


def capture(url: str, out_dir: Path, settings: CaptureSettings) -> CaptureResult:
    """Capture ``url`` into the empty (or new) ``out_dir``. Refusals raise ``CaptureRefused``
    before any browser starts; every other failure (unreachable, slow, huge, endless) is
    captured as far as it goes and recorded in the custody log and the facts. Call it from a
    thread without a running asyncio loop (it runs its own)."""
    t0 = time.monotonic()
    wall0 = time.time()
    deadline = t0 + settings.time_limit_s
    out_dir = Path(out_dir)
    report, guard = _refuse_early(url, out_dir, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    arts = Artefacts(out_dir)
    log = CustodyLog(arts)
    log.step("capture requested", url=url, time_limit_ms=int(settings.time_limit_s * 1000),
             size_limit_bytes=settings.size_limit_bytes, response_limit_bytes=settings.response_limit_bytes)
    log.step("environment checked", clean=True, checked_at=report["checked_at"],
             browser_sm3=report["checks"]["browser"]["sm3"])
    verdict = guard.verdict(url)
    log.step("target resolved", addresses=guard.addresses(url), failure=verdict[1] if verdict else None)

    def written(rep: dict[str, Any]) -> None:
        if not any(a.role == "environment" for a in arts.items):
            art = arts.add_bytes("environment.json", canonical(plain(rep)), "application/json", "environment")
            log.step("artefact written", name=art.name, sm3=art.sm3, size=art.size)

    binary = browser_binary(settings.chromium)
    with tempfile.TemporaryDirectory(prefix="rongxin-capture-") as tmp:
        work = Path(tmp)
        profile, spool, har = work / "profile", work / "spool", work / "capture.har"
        profile.mkdir()
        spool.mkdir()
        state = State(Recorder(spool, settings.response_limit_bytes, settings.size_limit_bytes))
        log.step("profile created", path=str(profile), entries=len(list(profile.iterdir())))
        browser_deadline = t0 + settings.time_limit_s * BROWSER_SHARE
        try:
            _run_loop(browse(url, settings, log, guard, browser_deadline, state, profile, report, binary, har,
                             written))
        except CaptureRefused:
            log.close()
            raise
        state.recorder.finish()
        _drop_forbidden(state, guard, log)
        _write_all(url, out_dir, settings, arts, log, state, har, deadline, wall0, report)
    return _result(url, state, arts, log, wall0, report, settings)


def _run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """Run the browser phase on an event loop of its own: in this thread, or in a helper
    thread when this one already runs a loop (an ASGI route that called us directly)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="capture") as pool:
        pool.submit(asyncio.run, coro).result()


def _drop_forbidden(state: State, guard: Guard, log: CustodyLog) -> None:
    """A response that came from the node's own API address anyway (a name that resolved
    elsewhere when checked: DNS rebinding) is recorded as a failure and its body not kept."""
    for ex in state.recorder.exchanges:
        if ex.remote_ip and ex.remote_port and guard.forbidden_address(str(ex.remote_ip), int(ex.remote_port)):
            ex.body_path, ex.body_size, ex.truncated = None, 0, "unspecified"
            ex.failure = "answered from the node's own API address: body discarded"
            log.step("response discarded", url=ex.url[:2048], failure=ex.failure)


def _written(log: CustodyLog, art: Artefact) -> None:
    log.step("artefact written", name=art.name, sm3=art.sm3, size=art.size, role=art.role)


def _resource_name(index: int, ex: Exchange) -> str:
    base = unquote(urlsplit(ex.url).path.rsplit("/", 1)[-1]) or "resource"
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base)[-80:].lstrip(".") or "resource"
    if "." not in base:
        base += mimetypes.guess_extension(ex.mime_type.split(";")[0].strip()) or ""
    return f"resources/{index:03d}-{base}"


def _is_media(ex: Exchange) -> bool:
    """A successful http(s) response with a body that is a picture, sound or video: by its MIME
    type, or (no or a generic type) by the browser loading it as an image or media."""
    mime = ex.mime_type.lower().split(";")[0].strip()
    if ex.body_path is None or ex.body_size == 0 or not ex.url.lower().startswith(("http:", "https:")):
        return False
    if ex.status is None or not 200 <= ex.status < 300:
        return False
    generic = mime in ("", "application/octet-stream", "binary/octet-stream")
    return mime.startswith(MEDIA_PREFIXES) or (generic and ex.resource_type in ("Image", "Media"))


def _write_recording(arts: Artefacts, log: CustodyLog, state: State, settings: CaptureSettings, work: Path,
                     deadline: float) -> dict[str, Any]:
    out = work / "recording.mp4"
    try:
        facts = encode_recording(state.frames, out, settings.ffmpeg, timeout=max(5.0, deadline - time.monotonic()))
    except RuntimeError as exc:
        log.step("recording not encoded", failure=str(exc))
        return {"error": str(exc)}
    _written(log, arts.add_file("recording.mp4", out, "video/mp4", "recording"))
    log.step("recording encoded", **facts)
    return facts


def _write_all(url: str, out_dir: Path, settings: CaptureSettings, arts: Artefacts, log: CustodyLog, state: State,
               har: Path, deadline: float, wall0: float, report: dict[str, Any]) -> None:
    work = har.parent
    state.browser["recording"] = _write_recording(arts, log, state, settings, work, deadline)
    if state.screenshot is not None:
        _written(log, arts.add_bytes("screenshot.png", state.screenshot, "image/png", "screenshot"))
    if state.dom is not None:
        _written(log, arts.add_bytes("dom.html", state.dom.encode("utf-8", "replace"), "text/html; charset=utf-8", "dom"))
    w = arts.writer("capture.warc.gz")
    info = {"software": "rongxin capture (warcio)", "format": "WARC File Format 1.1", "isPartOf": url,
            "browser": state.browser.get("product"), "user-agent": state.browser.get("user_agent"),
            "created": iso_time(wall0)}
    stored = write_warc(w, "capture.warc.gz", state.recorder.exchanges, info)
    _written(log, arts.done(w, "application/warc", "warc"))
    log.step("warc written", exchanges=stored)
    if har.is_file():
        _written(log, arts.add_file("capture.har", har, "application/json", "har"))
    else:
        data = canonical(plain(_fallback_har(state)))
        _written(log, arts.add_bytes("capture.har", data, "application/json", "har"))
        log.step("har rebuilt from the network record", failure="the browser wrote no HAR (it was stopped)")
    media = [ex for ex in state.recorder.exchanges if _is_media(ex)][:MAX_RESOURCES]
    for i, ex in enumerate(media):
        assert ex.body_path is not None
        art = arts.add_file(_resource_name(i, ex), ex.body_path, ex.mime_type or "application/octet-stream", "resource")
        ex.body_path = None
        log.step("resource saved", name=art.name, url=ex.url[:2048], sm3=art.sm3, size=art.size, mime=art.media_type)


def _fallback_har(state: State) -> dict[str, Any]:
    entries = []
    for ex in state.recorder.exchanges:
        entries.append({
            "startedDateTime": iso_time(ex.started),
            "request": {"method": ex.method, "url": ex.url, "httpVersion": "HTTP/1.1",
                        "headers": [{"name": k, "value": v} for k, v in ex.request_headers]},
            "response": {"status": ex.status or 0, "statusText": ex.status_text, "httpVersion": ex.protocol,
                         "headers": [{"name": k, "value": v} for k, v in ex.response_headers],
                         "content": {"size": ex.body_size, "mimeType": ex.mime_type}},
            "serverIPAddress": ex.remote_ip, "_failure": ex.failure,
        })
    return {"log": {"version": "1.2", "creator": {"name": "rongxin capture", "version": "1"}, "entries": entries}}


def _tls(state: State) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seen: dict[str, dict[str, Any]] = {}
    for ex in state.recorder.exchanges:
        found = re.match(r"^(https?://[^/?#]+)", ex.url, re.I)
        if ex.security and found:
            seen.setdefault(found.group(1).lower(), ex.security)
    for origin, details in seen.items():
        chain = []
        for der in state.certificates.get(origin, []):
            try:
                chain.append({**describe_certificate(der), "pem": certificate_pem(der)})
            except MalformedCertificate as exc:
                chain.append({"error": str(exc), "der_hex": der.hex()[:4096]})
        out[origin] = {"security_details": plain(details), "chain": chain}
    return out


def _addresses(state: State) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for ex in state.recorder.exchanges:
        if ex.remote_ip:
            host = (urlsplit(ex.url).hostname or "").lower()
            out.setdefault(host, set()).add(f"{ex.remote_ip}:{ex.remote_port}")
    return {h: sorted(v) for h, v in sorted(out.items())}


def _result(url: str, state: State, arts: Artefacts, log: CustodyLog, wall0: float, report: dict[str, Any],
            settings: CaptureSettings) -> CaptureResult:
    exchanges = state.recorder.exchanges
    failures = [{"step": e["step"], "failure": e["failure"]} for e in log.failures()]
    facts: dict[str, Any] = {
        "format": "rongxin-capture-facts/1", "url": url, "final_url": state.final_url,
        "started_at": iso_time(wall0), "finished_at": iso_time(time.time()),
        "duration_ms": int((time.time() - wall0) * 1000),
        "chain_time": iso_time(settings.chain_time_s) if settings.chain_time_s is not None else None,
        "clock": report["checks"]["clock"],
        "browser": {**state.browser, "binary": report["checks"]["browser"]["binary"],
                    "sm3": report["checks"]["browser"]["sm3"]},
        "user_agent": state.browser.get("page_user_agent") or state.browser.get("user_agent"),
        "viewport": list(settings.viewport),
        "main_response": state.main, "addresses": _addresses(state), "tls": _tls(state),
        "tls_errors_ignored": settings.ignore_tls_errors,
        "screenshot": state.screenshot_facts, "scroll": state.scroll,
        "requests": {"total": len(exchanges), "with_response": sum(1 for e in exchanges if e.status is not None),
                     "failed": sum(1 for e in exchanges if e.failure), "blocked": len(state.blocked),
                     "bytes_received": state.recorder.total_received, "bytes_saved": state.recorder.saved_total},
        "blocked": state.blocked[:200], "browser_killed": state.killed,
        "limits": {"time_limit_ms": int(settings.time_limit_s * 1000), "size_limit_bytes": settings.size_limit_bytes,
                   "response_limit_bytes": settings.response_limit_bytes},
        "failures": failures[:500],
        "artefacts": [{"name": a.name, "sm3": a.sm3, "size": a.size, "role": a.role} for a in arts.items],
    }
    facts = plain(facts)
    art = arts.add_bytes("facts.json", canonical(facts), "application/json", "facts")
    _written(log, art)
    log.step("capture finished", artefacts=len(arts.items) + 1, failures=len(failures))
    log.close()
    items = tuple(arts.items)
    return CaptureResult(url=url, final_url=state.final_url, artefacts=tuple(a for a in items if a.role != "resource"),
                         resources=tuple(a for a in items if a.role == "resource"), facts=facts)
