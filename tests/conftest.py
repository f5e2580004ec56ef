"""Shared fixtures: the real `rongxin` command and the real `openssl` command."""

from __future__ import annotations

import os
import re
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


# -- how `make test` (pytest -n 2 --dist loadgroup) shares the tests between its two workers --------
# A unit of work goes whole to one worker: a module's tests (so its module-scoped consortium,
# node or browser starts once), or every module naming one `xdist_group` in its `pytestmark`
# (tests that must not run beside each other). pytest-xdist's own loadgroup marks a test's group
# by rewriting its node id, which pytest 9.2 no longer honours: every "grouped" module was dealt
# out test by test to both workers, each starting the module's consortium. The units are read
# here from the files themselves, so they hold whatever either library does with node ids.
_GROUP_MARK = re.compile(r'^pytestmark\s*=.*xdist_group\(\s*"([^"]+)"', re.M)
_GROUPS: dict[str, str] = {}


def _groups(root: Path) -> dict[str, str]:
    """Module node path (``tests/api/test_x.py``) -> its ``xdist_group`` name."""
    if not _GROUPS:
        for f in sorted((root / "tests").rglob("test_*.py")):
            m = _GROUP_MARK.search(f.read_text(encoding="utf-8"))
            if m:
                _GROUPS[f.relative_to(root).as_posix()] = m.group(1)
    return _GROUPS


def _unit(root: Path, nodeid: str) -> str:
    module = nodeid.split("::")[0]
    return _groups(root).get(module, module)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(config.rootpath, nodeid.split("@")[0])

    config.option.loadscopereorder = False  # the collection's order (below) is the schedule's
    return Units(config, log)  # type: ignore[arg-type]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest units first, so they start at once on both workers and none is left to run
    alone at the end: the consortium groups (the largest first), then modules with slow tests,
    then the rest, each in collection order (every worker sorts alike: identical collections)."""
    root = config.rootpath
    first: dict[str, int] = {}
    size: dict[str, int] = {}
    slow: set[str] = set()
    for k, item in enumerate(items):
        u = _unit(root, item.nodeid.split("@")[0])
        first.setdefault(u, k)
        size[u] = size.get(u, 0) + 1
        if item.get_closest_marker("slow"):
            slow.add(u)
    grouped = set(_groups(root).values())

    def rank(u: str) -> tuple[int, int, int]:
        return (0 if u in grouped else 1 if u in slow else 2, -size[u] if u in grouped else 0, first[u])

    order = {id(item): k for k, item in enumerate(items)}
    items.sort(key=lambda it: (rank(_unit(root, it.nodeid.split("@")[0])), order[id(it)]))


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
