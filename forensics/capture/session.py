"""The browser phase of one capture (asyncio, Playwright's async API with a DevTools session
of its own): launch, verify the launch, guard every request, record the network and the
screencast, load, scroll to the end, take the full-page screenshot, read the DOM and the TLS
chains. Every step is bounded by the capture's deadline; whatever happens, what was collected
so far stays in ``State``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, CDPSession, Page, WebSocketRoute, async_playwright
from playwright.async_api import Error as PlaywrightError

from .browser import FLAGS, clean_env, kill_browser, process_facts
from .custody import CustodyLog
from .network import Recorder
from .target import Guard
from .types import CaptureRefused, CaptureSettings

__all__ = ["State", "browse"]

MAX_FRAMES = 3000
MAX_FRAME_BYTES = 200 << 20
MAX_SHOT_HEIGHT = 16000
MAX_SCROLL_STEPS = 80
ERRORS = (PlaywrightError, asyncio.TimeoutError, OSError)


@dataclass
class State:
    """What the browser phase collected (filled in as it goes)."""

    recorder: Recorder
    frames: list[tuple[float, bytes]] = field(default_factory=list)
    frame_bytes: int = 0
    screenshot: bytes | None = None
    screenshot_facts: dict[str, Any] = field(default_factory=dict)
    dom: str | None = None
    final_url: str | None = None
    main: dict[str, Any] = field(default_factory=dict)
    certificates: dict[str, list[bytes]] = field(default_factory=dict)
    browser: dict[str, Any] = field(default_factory=dict)
    scroll: dict[str, Any] = field(default_factory=dict)
    blocked: list[dict[str, str]] = field(default_factory=list)
    killed: bool = False


class Phase:
    def __init__(self, settings: CaptureSettings, log: CustodyLog, guard: Guard, deadline: float,
                 state: State, profile: Path) -> None:
        self.settings, self.log, self.guard, self.deadline = settings, log, guard, deadline
        self.state, self.profile = state, profile
        self.start = time.monotonic()
        self.cdp: CDPSession | None = None
        self._stopping = False

    def left(self, until: float | None = None) -> float:
        return max(0.0, (until if until is not None else self.deadline) - time.monotonic())

    def at(self, fraction: float) -> float:
        """The monotonic time ``fraction`` of the way from ``start`` to the deadline."""
        return self.start + (self.deadline - self.start) * fraction

    async def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
        assert self.cdp is not None
        return await asyncio.wait_for(self.cdp.send(method, params or {}), timeout=max(0.1, min(timeout, self.left())))

    # -- event handlers --
    async def on_paused(self, ev: dict[str, Any]) -> None:
        url = ev.get("request", {}).get("url", "")
        at_response = "responseStatusCode" in ev or "responseErrorReason" in ev
        if at_response:
            verdict = self._declared_too_large(ev)
        else:
            verdict = await self.guard.averdict(url) if url.lower().startswith(("http:", "https:")) else None
            if verdict is None and self.state.recorder.over_limit:
                verdict = ("size_limit", "the size limit of the capture was reached")
        try:
            if verdict is None:
                await self.send("Fetch.continueRequest", {"requestId": ev["requestId"]})
                return
            self.state.blocked.append({"url": url[:2048], "kind": verdict[0], "reason": verdict[1]})
            self.log.step("request blocked" if not at_response else "response refused", url=url[:2048],
                          kind=verdict[0], failure=verdict[1])
            await self.send("Fetch.failRequest", {"requestId": ev["requestId"], "errorReason": "BlockedByClient"})
        except ERRORS:
            pass  # the request went away (page stopped or closed)

    def _declared_too_large(self, ev: dict[str, Any]) -> tuple[str, str] | None:
        """At the response's headers: one that declares a Content-Length over the per-response
        limit is refused before its body is read (the rest of the page goes on loading)."""
        for header in ev.get("responseHeaders") or []:
            if str(header.get("name", "")).lower() == "content-length":
                try:
                    length = int(str(header.get("value", "")).strip())
                except ValueError:
                    return None
                if length > self.settings.response_limit_bytes:
                    return "size_limit", (f"the response declares {length} bytes, over the limit of "
                                          f"{self.settings.response_limit_bytes}")
        return None

    async def on_frame(self, ev: dict[str, Any]) -> None:
        data = ev.get("data", "")
        if len(self.state.frames) < MAX_FRAMES and self.state.frame_bytes < MAX_FRAME_BYTES:
            jpeg = base64.b64decode(data)
            self.state.frames.append((float(ev.get("metadata", {}).get("timestamp") or time.time()), jpeg))
            self.state.frame_bytes += len(jpeg)
        try:
            await self.send("Page.screencastFrameAck", {"sessionId": ev["sessionId"]})
        except ERRORS:
            pass

    def on_limit(self, reason: str) -> None:
        self.log.step("limit reached", failure=reason)
        if not self._stopping:
            self._stopping = True
            task = asyncio.ensure_future(self._stop_loading())
            self.state.recorder.pending.add(task)
            task.add_done_callback(self.state.recorder.pending.discard)

    async def _stop_loading(self) -> None:
        try:
            await self.send("Page.stopLoading")
            self.log.step("loading stopped")
        except ERRORS as exc:
            self.log.step("loading could not be stopped", failure=str(exc)[:300])
        await asyncio.sleep(0.5)
        self._stopping = False

    async def on_websocket(self, ws: WebSocketRoute) -> None:
        verdict = await self.guard.averdict(re.sub(r"^ws", "http", ws.url))
        if verdict is not None:
            self.state.blocked.append({"url": ws.url[:2048], "kind": verdict[0], "reason": verdict[1]})
            self.log.step("websocket blocked", url=ws.url[:2048], failure=verdict[1])
            await ws.close(code=1008, reason="refused by the capture")
        else:
            ws.connect_to_server()

    # -- wiring --
    def wire(self, cdp: CDPSession) -> None:
        rec = self.state.recorder
        handlers: dict[str, Callable[..., Any]] = {
            "Network.requestWillBeSent": rec.on_request, "Network.requestWillBeSentExtraInfo": rec.on_request_extra,
            "Network.responseReceived": rec.on_response, "Network.responseReceivedExtraInfo": rec.on_response_extra,
            "Network.dataReceived": rec.on_data, "Network.loadingFinished": rec.on_finished,
            "Network.loadingFailed": rec.on_failed, "Fetch.requestPaused": self.on_paused,
            "Page.screencastFrame": self.on_frame,
        }
        for event, handler in handlers.items():
            cdp.on(event, handler)

    async def verify_launch(self, ctx: BrowserContext, report: dict[str, Any], binary: Path,
                            written: Callable[[dict[str, Any]], None]) -> None:
        targets = (await self.send("Target.getTargets"))["targetInfos"]
        launch = process_facts(self.profile, binary, targets)
        report["launch"] = launch
        version = await self.send("Browser.getVersion")
        self.state.browser = {"product": version.get("product"), "revision": version.get("revision"),
                              "user_agent": version.get("userAgent"), "js_version": version.get("jsVersion"),
                              "protocol_version": version.get("protocolVersion"), "pid": launch.get("pid")}
        report["browser_version"] = self.state.browser
        if not launch["ok"]:
            report["clean"] = False
            report["failures"] = [*report["failures"], "launch"]
            self.log.step("launch verification failed", failure="; ".join(launch["problems"]))
            written(report)
            raise CaptureRefused("dirty_environment", "the started browser is not clean: " + "; ".join(launch["problems"]),
                                 report)
        self.log.step("launch verified", pid=launch["pid"], executable=launch["executable"])
        written(report)

    async def start_recording(self, ctx: BrowserContext, first: bool = True) -> None:
        await self.send("Network.enable", {"maxTotalBufferSize": self.settings.size_limit_bytes,
                                           "maxResourceBufferSize": self.settings.response_limit_bytes})
        await self.send("Page.enable")
        await self.send("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"},
                                                      {"urlPattern": "*", "requestStage": "Response"}]})
        if first:
            await ctx.route_web_socket(re.compile(".*"), self.on_websocket)
        w, h = self.settings.viewport
        await self.send("Page.startScreencast", {"format": "jpeg", "quality": 70, "maxWidth": w, "maxHeight": h})
        self.log.step("recording started", viewport=[w, h])

    async def reattach(self, ctx: BrowserContext, page: Page) -> None:
        """A failed navigation shows the browser's error page in another renderer, which ends
        the DevTools session: open a new one (guard and recording included)."""
        try:
            self.cdp = await asyncio.wait_for(ctx.new_cdp_session(page), timeout=max(0.2, min(3, self.left())))
            self.wire(self.cdp)
            await self.start_recording(ctx, first=False)
            self.log.step("devtools session reopened on the error page")
        except ERRORS as exc:
            self.log.step("devtools session not reopened", failure=_why(exc)[:300])

    async def navigate(self, page: Page, url: str) -> None:
        self.log.step("navigation started", url=url)
        loaded = False
        try:
            resp = await page.goto(url, wait_until="load", timeout=max(500, self.left(self.at(0.4)) * 1000))
            loaded = True
            if resp is not None:
                self.state.main = {"status": resp.status, "url": resp.url, "server_addr": await resp.server_addr(),
                                   "security_details": await resp.security_details()}
            self.log.step("page loaded", status=self.state.main.get("status"), url=page.url[:2048])
        except ERRORS as exc:
            self.log.step("navigation did not complete", failure=_why(exc)[:500])
        if not loaded:
            try:
                await self.send("Page.stopLoading", timeout=3)
                self.log.step("loading stopped")
            except ERRORS as exc:
                if "Not attached" in str(exc):
                    await self.reattach(page.context, page)
                else:
                    self.log.step("loading could not be stopped", failure=str(exc)[:300])
        await self.settle(min(2.0, self.left(self.at(0.45))))

    async def settle(self, seconds: float) -> None:
        """Wait until no request is open for 0.5 s, at most ``seconds``."""
        end, quiet_since = time.monotonic() + seconds, time.monotonic()
        while time.monotonic() < end:
            busy = any(not (e.finished or e.failure) for e in self.state.recorder.exchanges)
            if busy:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 0.5:
                return
            await asyncio.sleep(0.1)

    async def scroll(self, page: Page) -> None:
        end = self.at(0.6)
        steps, at_end = 0, False
        script = ("() => { const e = document.scrollingElement || document.documentElement;"
                  " if (!e) return true; window.scrollBy(0, Math.max(200, Math.floor(innerHeight * 0.8)));"
                  " return Math.ceil(scrollY + innerHeight) >= e.scrollHeight; }")
        while steps < MAX_SCROLL_STEPS and self.left(end) > 0.3:
            try:
                at_end = bool(await asyncio.wait_for(page.evaluate(script), timeout=max(0.2, self.left(end))))
            except ERRORS as exc:
                self.log.step("scrolling stopped", failure=_why(exc)[:300])
                break
            steps += 1
            await asyncio.sleep(0.25)
            if at_end:
                break
        await asyncio.sleep(min(0.8, self.left(end)))  # the end of the page stays in the recording
        self.state.scroll = {"steps": steps, "reached_end": at_end}
        self.log.step("scrolled", steps=steps, reached_end=at_end)
        try:
            await self.send("Page.stopScreencast", timeout=2)
            await asyncio.wait_for(page.evaluate("() => window.scrollTo(0, 0)"), timeout=max(0.2, min(2, self.left())))
        except ERRORS:
            pass

    async def screenshot(self, page: Page) -> None:
        w, _h = self.settings.viewport
        until = self.at(0.8)
        try:
            height = int(await asyncio.wait_for(page.evaluate(
                "() => (document.scrollingElement || document.documentElement || {scrollHeight: 0}).scrollHeight"),
                timeout=max(0.2, min(3, self.left(until)))))
            clip = {"x": 0, "y": 0, "width": w, "height": MAX_SHOT_HEIGHT} if height > MAX_SHOT_HEIGHT else None
            shot = await page.screenshot(full_page=True, type="png", clip=clip,  # type: ignore[arg-type]
                                         timeout=max(500, self.left(until) * 1000))
            self.state.screenshot = shot
            self.state.screenshot_facts = {"page_height": height, "full_page": clip is None,
                                           "clipped_to": MAX_SHOT_HEIGHT if clip else None}
            self.log.step("screenshot taken", page_height=height, full_page=clip is None)
            return
        except ERRORS as exc:
            self.log.step("full-page screenshot failed", failure=_why(exc)[:300])
        try:
            r = await self.send("Page.captureScreenshot", {"format": "png"}, timeout=max(0.5, self.left()))
            self.state.screenshot = base64.b64decode(r["data"])
            self.state.screenshot_facts = {"full_page": False, "viewport_only": True}
            self.log.step("viewport screenshot taken")
        except ERRORS as exc:
            self.log.step("screenshot failed", failure=_why(exc)[:300])

    async def read_page(self, page: Page) -> None:
        until = self.at(0.9)
        try:
            self.state.dom = await asyncio.wait_for(page.content(), timeout=max(0.2, self.left(until)))
            self.log.step("dom read", characters=len(self.state.dom))
        except ERRORS as exc:
            self.log.step("dom not read", failure=_why(exc)[:300])
        self.state.final_url = page.url
        origins = sorted({_origin(e.url) for e in self.state.recorder.exchanges if e.security})
        for origin in origins[:20]:
            try:
                r = await self.send("Network.getCertificate", {"origin": origin}, timeout=min(2, self.left(until)))
                self.state.certificates[origin] = [base64.b64decode(c) for c in r.get("tableNames", [])]
            except ERRORS as exc:
                self.log.step("certificate chain not read", origin=origin, failure=str(exc)[:300])
        if origins:
            self.log.step("certificate chains read", origins=origins[:20])
        await self.state.recorder.drain(min(3.0, self.left(until)))


def _why(exc: BaseException) -> str:
    """The first line of an error's message, or its type when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _origin(url: str) -> str:
    m = re.match(r"^(https?://[^/?#]+)", url, re.I)
    return m.group(1).lower() if m else url


async def _run(ph: Phase, url: str, report: dict[str, Any], binary: Path, har: Path,
               written: Callable[[dict[str, Any]], None]) -> None:
    s = ph.settings
    async with async_playwright() as pw:
        ctx = await pw.chromium.launch_persistent_context(
            str(ph.profile), executable_path=s.chromium, headless=True, args=list(FLAGS), env=clean_env(ph.profile),
            viewport={"width": s.viewport[0], "height": s.viewport[1]}, accept_downloads=False,
            service_workers="block", record_har_path=har, record_har_content="omit",
            ignore_https_errors=s.ignore_tls_errors, timeout=max(1000, ph.left(ph.at(0.7)) * 1000),
            handle_sigint=False, handle_sigterm=False, handle_sighup=False)
        try:
            ph.log.step("browser started", playwright=_playwright_version())
            page = ctx.pages[0] if ctx.pages else await ctx.new_page()
            ph.cdp = await ctx.new_cdp_session(page)
            ph.wire(ph.cdp)
            await ph.verify_launch(ctx, report, binary, written)
            ph.start = time.monotonic()  # the page's budget is shared out from here
            await ph.start_recording(ctx)
            await ph.navigate(page, url)
            await ph.scroll(page)
            await ph.screenshot(page)
            await ph.read_page(page)
            try:
                ph.state.browser["page_user_agent"] = await asyncio.wait_for(
                    page.evaluate("() => navigator.userAgent"), timeout=max(0.2, min(2, ph.left())))
            except ERRORS:
                pass
        finally:
            try:  # closing the page first cancels whatever is still loading
                await asyncio.wait_for(ctx.pages[0].close() if ctx.pages else asyncio.sleep(0), timeout=3)
            except ERRORS:
                pass
            try:
                await asyncio.wait_for(ctx.close(), timeout=max(3.0, min(10.0, ph.left() + 3)))
                ph.log.step("browser closed")
            except ERRORS as exc:
                ph.state.killed = bool(kill_browser(ph.profile))
                ph.log.step("browser killed", failure=f"it did not close: {str(exc)[:200]}")


def _playwright_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("playwright")
    except PackageNotFoundError:
        return "unknown"


async def browse(url: str, settings: CaptureSettings, log: CustodyLog, guard: Guard, deadline: float,
                 state: State, profile: Path, report: dict[str, Any], binary: Path, har: Path,
                 written: Callable[[dict[str, Any]], None]) -> None:
    """Run the browser phase; it ends (the browser killed if need be) by ``deadline``."""
    ph = Phase(settings, log, guard, deadline, state, profile)
    state.recorder.on_limit, state.recorder.send = ph.on_limit, ph.send
    try:
        await asyncio.wait_for(_run(ph, url, report, binary, har, written), timeout=ph.left() + 2.0)
    except TimeoutError:
        state.killed = bool(kill_browser(profile))
        log.step("browser phase cut at the time limit", failure="the time limit was reached; the browser was killed")
    except CaptureRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever broke, the capture keeps what it has and says why
        state.killed = bool(kill_browser(profile))
        log.step("browser failed", failure=f"{type(exc).__name__}: {_why(exc)[:500]}")
