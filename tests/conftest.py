"""Shared fixtures: the real `rongxin` command and the real `openssl` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

RONGXIN = Path(sys.executable).with_name("rongxin")

# consortia started by tests on different xdist workers take ports from different ranges: two
# `rongxin up` probing free ports at the same moment could otherwise pick the same ones
# (set, not setdefault: xdist's controller imports this file first, as "gw0", and its workers
# inherit its environment; with setdefault every worker kept gw0's range and two workers' clusters
# could pick the same ports)
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
os.environ["RONGXIN_BASE_PORT"] = str(int(os.environ.get("RONGXIN_TEST_PORT_BASE", "26600"))
                                      + 1200 * (int(_WORKER[2:] or 0) + 1))


def run_rongxin(*args: str, cwd: Path | None = None, input: bytes | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RONGXIN), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, check=False,
                          input=input.decode() if input is not None else None)


def run_openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("openssl")
    assert exe, "the openssl command is missing: make test installs it"
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {proc.stderr}")
    return proc


@pytest.fixture
def rx() -> Callable[..., subprocess.CompletedProcess[str]]:
    assert RONGXIN.exists(), f"{RONGXIN} is missing: install the project into this venv"
    return run_rongxin


@pytest.fixture
def openssl() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_openssl
