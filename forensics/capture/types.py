"""The capture's settings, its results and its one typed refusal (docs/capture.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.errors import LedgerError

__all__ = ["ROLES", "Artefact", "CaptureRefused", "CaptureResult", "CaptureSettings"]

ROLES = ("screenshot", "recording", "warc", "har", "dom", "environment", "custody", "facts", "resource")
MIB = 1 << 20


@dataclass(frozen=True)
class CaptureSettings:
    """How one capture runs. The first eight fields are the interface the filing side codes
    against; the rest have defaults and exist so that tests can point the checks elsewhere."""

    forbidden: tuple[tuple[str, int], ...] = ()  # (host, port) of the node's own API: refused (SSRF)
    chain_time_s: float | None = None  # latest block time from the chain (clock check)
    max_clock_skew_s: float = 60.0
    time_limit_s: float = 60.0  # whole capture, never exceeded by more than a few s
    size_limit_bytes: int = 256 * MIB  # all responses together
    chromium: str = "/usr/bin/chromium"
    expected_browser_sm3: str | None = None  # pinned build, else recorded only
    viewport: tuple[int, int] = (1280, 800)
    # -- additions (defaults keep the interface) --
    response_limit_bytes: int = 64 * MIB  # one response
    max_chain_lag_s: float = 90.0  # an idle chain's latest block may trail the clock this much more
    baseline_path: Path | None = None  # resolver baseline (JSON): created on first use, then compared
    hosts_path: Path = Path("/etc/hosts")
    resolv_path: Path = Path("/etc/resolv.conf")
    nsswitch_path: Path = Path("/etc/nsswitch.conf")
    chromium_flags_dir: Path = Path("/etc/chromium.d")
    chromium_policy_dir: Path = Path("/etc/chromium/policies")
    chromium_extensions_dir: Path = Path("/usr/share/chromium/extensions")
    environ: Mapping[str, str] | None = field(default=None, hash=False)  # None: os.environ
    ignore_tls_errors: bool = False  # when set, recorded in the report and the facts
    ffmpeg: str = "/usr/bin/ffmpeg"


@dataclass(frozen=True)
class Artefact:
    name: str  # file name inside out_dir (resources: "resources/<file>")
    path: Path
    sm3: str  # hex, of the bytes as written
    size: int
    media_type: str
    role: str  # one of ROLES


@dataclass(frozen=True)
class CaptureResult:
    url: str
    final_url: str | None
    artefacts: tuple[Artefact, ...]  # in out_dir; every one hashed with SM3 as written
    resources: tuple[Artefact, ...]  # each image/audio/video resource saved as a file
    facts: dict[str, Any]  # canonical-JSON-able (no floats)


class CaptureRefused(LedgerError):
    """The capture did not start: ``reason`` is ``bad_url``, ``forbidden_target`` or
    ``dirty_environment``; ``report`` is the environment report when there is one."""

    def __init__(self, reason: str, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.report = report
