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
# the nodes the suite starts (some 150) skip loading the fingerprint decoders at start (about
# 0.7 s of CPU each): only a few of them ever fingerprint a file, and pay that then.
# tests/api/test_node_start_cost.py checks both settings on a real node.
os.environ["RONGXIN_WARM_UP"] = "0"
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
os.environ["RONGXIN_BASE_PORT"] = str(int(os.environ.get("RONGXIN_TEST_PORT_BASE", "26600"))
                                      + 1200 * (int(_WORKER[2:] or 0) + 1))


# -- how `make test` (pytest -n 2 --dist loadscope) shares the tests between its two workers -------
# A unit of work goes whole to one worker: one module's tests, so a module-scoped consortium,
# node or browser starts once (xdist's own loadscope splits a module's classes apart). The
# units that hold slow tests go first, the most slow tests first, so the longest ones start at
# once on both workers and none is left to run alone at the end. Two workers' consortia never
# share ports: each worker has its own range (RONGXIN_BASE_PORT above).
# (Grouping several modules with `xdist_group` is not used: pytest 9.2 ignores the node-id
# rewrite xdist 3.8 groups by, and one group of every consortium module would run serially.)


def _module(nodeid: str) -> str:
    return nodeid.split("::")[0]


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Modules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _module(nodeid)

    config.option.loadscopereorder = False  # the collection's order (below) is the schedule's
    return Modules(config, log)  # type: ignore[arg-type]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules with the most slow tests first, then the rest, each in collection order (every
    worker sorts alike, so the workers' collections stay identical)."""
    first: dict[str, int] = {}
    slow: dict[str, int] = {}
    for k, item in enumerate(items):
        m = _module(item.nodeid)
        first.setdefault(m, k)
        slow[m] = slow.get(m, 0) + (1 if item.get_closest_marker("slow") else 0)
    order = {id(item): k for k, item in enumerate(items)}
    items.sort(key=lambda it: (-slow[_module(it.nodeid)], first[_module(it.nodeid)], order[id(it)]))


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
