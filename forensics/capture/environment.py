"""The clean-environment check run before every capture (issue 15 item 1, SF/T 0091-2021).

``check_environment`` returns the report (canonical-JSON-able: no floats); ``report["clean"]``
is false and ``report["failures"]`` names each failed check when the capture must be refused.
What "unmodified" means for each file is stated in docs/capture.md §2; in short:

- proxy: none of ``http_proxy``, ``https_proxy``, ``all_proxy``, ``no_proxy``, ``ftp_proxy``,
  ``socks_proxy`` is set, in any letter case (only the names are recorded: values can hold
  credentials);
- hosts: every entry is a standard one (loopback and IPv6 multicast lines naming localhost-
  family names or single-label names, the machine's own host name on any address); an entry
  that gives a dotted name (a web site) an address is an edit. With a baseline its SM3 must match;
- resolver: ``resolv.conf`` holds only resolver keywords; with a baseline file its SM3 (and
  ``nsswitch.conf``'s and the hosts file's) must equal the recorded ones (the file is written
  on first use: "established");
- browser: the SM3 of the executable (and, for Debian's launcher script, of the ELF binary it
  runs) is recorded; a pinned build must match;
- extensions and policies: no extension directory content, no managed/recommended policy file;
  the launcher's flag files are hashed and recorded;
- clock: with the chain's latest block time, the node clock may be behind it by at most
  ``max_clock_skew_s`` and ahead by at most ``max_clock_skew_s + max_chain_lag_s``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import re
import socket
import time
from pathlib import Path
from typing import Any

from ledger.crypto import sm3_file, sm3_hex

from .custody import iso_time
from .types import CaptureSettings

__all__ = ["PROXY_VARIABLES", "browser_binary", "check_environment"]

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy", "socks_proxy")
LOCAL_NAMES = {"localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4", "localhost6",
               "localhost6.localdomain6", "ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
               "ip6-allnodes", "ip6-allrouters", "ip6-allhosts"}
RESOLV_KEYWORDS = {"nameserver", "search", "domain", "options", "sortlist"}
MAX_CONFIG_BYTES = 1 << 20
BASELINE_FORMAT = "rongxin-capture-baseline/1"
_HASH_CACHE: dict[tuple[int, int, int, int, int], str] = {}


def _read_small(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_CONFIG_BYTES + 1)
    except OSError:
        return None


def _file_sm3(path: Path) -> str | None:
    """SM3 of a file, remembered for this process while its inode, size, mtime and ctime stay
    the same (the browser binary is ~300 MB: about a second to hash on a loaded machine)."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _HASH_CACHE:
        try:
            _HASH_CACHE[key] = sm3_file(path).hex()
        except OSError:
            return None
    return _HASH_CACHE[key]


def _proxy(environ: Any) -> dict[str, Any]:
    found = sorted(k for k in environ if k.lower() in PROXY_VARIABLES)
    return {"ok": not found, "variables_set": found}


def _host_entry_ok(addr: str, names: list[str], hostname: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr.split("%")[0])
    except ValueError:
        return False
    for name in (n.lower().rstrip(".") for n in names):
        own = name == hostname or name.startswith(hostname + ".")
        if own or (name in LOCAL_NAMES and (ip.is_loopback or ip.is_multicast or ip.is_link_local
                                           or addr.lower().startswith("fe00"))):
            continue
        if ip.is_loopback and "." not in name:
            continue  # a single-label name on loopback cannot stand for a web site
        return False
    return True


def _hosts(path: Path) -> dict[str, Any]:
    data = _read_small(path)
    out: dict[str, Any] = {"path": str(path), "sm3": sm3_hex(data) if data is not None else None}
    if data is None or len(data) > MAX_CONFIG_BYTES:
        return {**out, "ok": False, "offending": ["unreadable or over 1 MiB"]}
    hostname = socket.gethostname().lower()
    offending = []
    entries = 0
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        entries += 1
        if len(line) < 2 or not _host_entry_ok(line[0], line[1:], hostname):
            offending.append(raw.strip()[:200])
    return {**out, "ok": not offending, "entries": entries, "offending": offending, "hostname": hostname}


def _resolv(path: Path) -> dict[str, Any]:
    data = _read_small(path)
    out: dict[str, Any] = {"path": str(path), "sm3": sm3_hex(data) if data is not None else None}
    if data is None or len(data) > MAX_CONFIG_BYTES:
        return {**out, "ok": False, "offending": ["unreadable or over 1 MiB"]}
    offending, servers = [], []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = re.split(r"[#;]", raw, maxsplit=1)[0].split()
        if not line:
            continue
        if line[0] not in RESOLV_KEYWORDS:
            offending.append(raw.strip()[:200])
        elif line[0] == "nameserver" and len(line) > 1:
            servers.append(line[1])
    return {**out, "ok": not offending, "nameservers": servers, "offending": offending}


def _baseline(settings: CaptureSettings, current: dict[str, str | None]) -> dict[str, Any]:
    path = settings.baseline_path
    if path is None:
        return {"ok": True, "state": "none", "path": None}
    data = _read_small(path)
    if data is None:
        record = {"format": BASELINE_FORMAT, "created": iso_time(time.time()), "files": current}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(record, sort_keys=True, indent=1), encoding="utf-8")
        os.replace(tmp, path)
        return {"ok": True, "state": "established", "path": str(path)}
    try:
        files = json.loads(data)["files"]
        changed = sorted(k for k in current if files.get(k) != current[k])
    except (ValueError, KeyError, TypeError, AttributeError):
        return {"ok": False, "state": "unreadable", "path": str(path), "changed": []}
    return {"ok": not changed, "state": "matched" if not changed else "changed", "path": str(path),
            "changed": changed, "baseline_sm3": sm3_hex(data)}


def browser_binary(chromium: str) -> Path:
    """The ELF file the browser command runs: the command itself, or for Debian's launcher
    script ``/usr/bin/chromium`` the ``/usr/lib/chromium/chromium`` it executes."""
    path = Path(chromium)
    head = _read_head(path)
    if head.startswith(b"#!"):
        candidate = Path("/usr/lib") / path.name / path.name
        if candidate.is_file():
            return candidate
    return path


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(2)
    except OSError:
        return b""


def _browser(settings: CaptureSettings) -> dict[str, Any]:
    command = Path(settings.chromium)
    binary = browser_binary(settings.chromium)
    command_sm3, binary_sm3 = _file_sm3(command), _file_sm3(binary)
    expected = settings.expected_browser_sm3
    ok = binary_sm3 is not None and (expected is None or expected.lower() == binary_sm3)
    return {"ok": ok, "command": str(command), "command_sm3": command_sm3, "binary": str(binary),
            "sm3": binary_sm3, "expected_sm3": expected, "pinned": expected is not None}


def _dir_files(root: Path, limit: int = 200) -> list[Path]:
    if not root.is_dir():
        return []
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            found.append(Path(dirpath) / name)
            if len(found) >= limit:
                return found
    return found


def _extensions(settings: CaptureSettings) -> dict[str, Any]:
    ext = [str(p) for p in _dir_files(settings.chromium_extensions_dir)]
    policies = [str(p) for p in _dir_files(settings.chromium_policy_dir)
                if p.parent.name in ("managed", "recommended")]
    flags = {p.name: _file_sm3(p) for p in _dir_files(settings.chromium_flags_dir)}
    return {"ok": not ext and not policies, "extension_files": ext, "policy_files": policies,
            "launcher_flag_files": flags}


def _clock(settings: CaptureSettings, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {"node_time": iso_time(now), "max_skew_ms": int(settings.max_clock_skew_s * 1000),
                           "max_chain_lag_ms": int(settings.max_chain_lag_s * 1000)}
    if settings.chain_time_s is None:
        return {**out, "ok": True, "state": "unchecked (no chain time given)", "chain_time": None}
    ahead_ms = int((now - settings.chain_time_s) * 1000)
    ok = -settings.max_clock_skew_s * 1000 <= ahead_ms <= (settings.max_clock_skew_s + settings.max_chain_lag_s) * 1000
    return {**out, "ok": ok, "state": "checked", "chain_time": iso_time(settings.chain_time_s),
            "clock_ahead_of_chain_ms": ahead_ms}


def check_environment(settings: CaptureSettings) -> dict[str, Any]:
    """Run every check; the report says which failed (``failures``) and whether the
    environment is clean. Nothing is refused here: ``capture`` refuses on an unclean report."""
    now = time.time()
    environ = os.environ if settings.environ is None else settings.environ
    hosts, resolv = _hosts(settings.hosts_path), _resolv(settings.resolv_path)
    nss = _read_small(settings.nsswitch_path)
    current = {"hosts": hosts["sm3"], "resolv.conf": resolv["sm3"],
               "nsswitch.conf": sm3_hex(nss) if nss is not None else None}
    checks: dict[str, dict[str, Any]] = {
        "proxy": _proxy(environ),
        "hosts": hosts,
        "resolver": {**resolv, "nsswitch_sm3": current["nsswitch.conf"]},
        "baseline": _baseline(settings, current),
        "browser": _browser(settings),
        "extensions": _extensions(settings),
        "profile": {"ok": True, "policy": "a new empty temporary directory per capture, removed after it"},
        "clock": _clock(settings, now),
    }
    failures = [name for name, check in checks.items() if not check["ok"]]
    return {
        "format": "rongxin-capture-environment/1",
        "checked_at": iso_time(now),
        "clean": not failures,
        "failures": failures,
        "checks": checks,
        "host": {"hostname": socket.gethostname(), "system": platform.platform(),
                 "python": platform.python_version(), "tz": environ.get("TZ")},
        "tls_errors_ignored": settings.ignore_tls_errors,
        "tools": _tools(settings),
    }


def _tools(settings: CaptureSettings) -> dict[str, Any]:
    """The other programs a capture's artefacts depend on: ffmpeg (its SM3) and the Python
    packages that drive the browser and write the WARC (their versions)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Any] = {"ffmpeg": {"path": settings.ffmpeg, "sm3": _file_sm3(Path(settings.ffmpeg))}}
    for package in ("playwright", "warcio"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out
