"""Starting Debian's Chromium through Playwright for one capture, checking what was started,
and stopping it for certain.

The browser runs with a new empty profile directory (also its HOME and XDG directories, so no
user certificate store or configuration is read), a minimal environment (no proxy variable can
reach it), the flags of DESIGN.md, downloads refused and service workers blocked. After the
start, the running process is checked: its executable is the hashed binary, its command line
holds no proxy, host-mapping or extension-loading switch, its environment no proxy variable,
and no extension target exists. docs/capture.md §2.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from .environment import PROXY_VARIABLES

__all__ = ["FLAGS", "FORBIDDEN_SWITCHES", "browser_pids", "clean_env", "kill_browser", "process_facts"]

FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-extensions", "--autoplay-policy=no-user-gesture-required",
         "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
         "--mute-audio", "--no-default-browser-check", "--password-store=basic")
FORBIDDEN_SWITCHES = ("--proxy-server", "--proxy-pac-url", "--proxy-auto-detect", "--host-resolver-rules",
                      "--host-rules", "--load-extension=", "--ignore-certificate-errors-spki-list",
                      "--remote-debugging-port", "--user-agent")


def clean_env(profile: Path) -> dict[str, str | float | bool]:
    """The browser's whole environment: a search path, a locale and the profile as home."""
    env: dict[str, str | float | bool] = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(profile), "LANG": "C.UTF-8",
           "XDG_CONFIG_HOME": str(profile / ".config"), "XDG_CACHE_HOME": str(profile / ".cache"),
           "XDG_DATA_HOME": str(profile / ".local")}
    tz = os.environ.get("TZ")
    if tz:
        env["TZ"] = tz
    return env


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


def browser_pids(profile: Path) -> list[int]:
    """Every process whose command line names this capture's profile directory (the browser
    and its helpers), the main process (no ``--type=``) first."""
    mark = f"--user-data-dir={profile}"
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            args = _cmdline(int(entry.name))
            if mark in args:
                found.append((any(a.startswith("--type=") for a in args), int(entry.name)))
    return [pid for _helper, pid in sorted(found)]


def kill_browser(profile: Path) -> list[int]:
    """SIGKILL the browser of this profile and all its processes; returns the pids signalled."""
    pids = browser_pids(profile)
    own_group = os.getpgid(0)
    for pid in pids:
        with contextlib.suppress(OSError):
            group = os.getpgid(pid)
            if group != own_group and group == pid:
                os.killpg(group, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    return pids


def _environ_names(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return []
    return [item.split(b"=", 1)[0].decode("utf-8", "replace") for item in raw.split(b"\0") if item]


def process_facts(profile: Path, binary: Path, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """The launch verification: ``ok`` false and ``problems`` listed when the started browser
    is not the checked one or carries a proxy, host mapping or extension."""
    pids = browser_pids(profile)
    problems: list[str] = []
    if not pids:
        return {"ok": False, "problems": ["the browser process was not found"], "pid": None}
    pid = pids[0]
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    if exe.removesuffix(" (deleted)") != str(binary.resolve()):
        problems.append(f"the running executable is {exe or 'unknown'}, not {binary}")
    args = _cmdline(pid)
    for arg in args[1:]:
        for switch in FORBIDDEN_SWITCHES:
            if arg.startswith(switch) and not (switch == "--load-extension=" and arg == switch):
                problems.append(f"browser started with {arg[:120]}")
    proxies = sorted(n for n in _environ_names(pid) if n.lower() in PROXY_VARIABLES)
    if proxies:
        problems.append(f"browser environment has {', '.join(proxies)}")
    extensions = [t.get("url", "") for t in targets if str(t.get("url", "")).startswith("chrome-extension://")]
    if extensions:
        problems.append(f"extensions are running: {', '.join(extensions)[:300]}")
    return {"ok": not problems, "problems": problems, "pid": pid, "executable": exe,
            "arguments": [a for a in args[1:] if a][:80], "processes": len(pids), "extension_targets": extensions}
