"""What a node process pays at start, and what its helper processes pay.

Worker processes started with ``forkserver`` (contract execution, verification) import the
node's main module again: ``api.node_main`` must stay light, or each worker would import the
whole node (HTTP app, PDF renderer: about 1 s of CPU each). A node loads the fingerprint
decoders at start (``fingerprint.warm_up``) so the first registration costs what the next do.
Fresh interpreters, so nothing the test runner imported hides an import."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.works_node import WARM_UP_ENV


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)


def test_the_node_entry_module_imports_no_node() -> None:
    r = _run("import sys, api.node_main\n"
             "heavy = [m for m in ('api.http', 'api.node_run', 'uvicorn', 'fastapi', 'fpdf', 'ledger.node.runtime')"
             " if m in sys.modules]\n"
             "print(heavy)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_warm_up_loads_the_decoders_a_cli_run_loads_lazily() -> None:
    r = _run("import sys, fingerprint\n"
             "before = 'scipy.signal' in sys.modules or 'av' in sys.modules\n"
             "fingerprint.warm_up()\n"
             "print(before, all(m in sys.modules for m in ('scipy.signal', 'scipy.ndimage', 'av', 'soundfile',"
             " 'fingerprint.audio', 'fingerprint.video')))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]


def test_a_node_loads_the_pdf_libraries_and_the_mpc_engine_only_when_used() -> None:
    """What a node imports to start (its HTTP app and runtime) leaves out what only some
    requests need: pypdf and fpdf (certificates: about 0.4 s of CPU) and the MPC engine (about
    0.3 s); the first use loads them, through the packages' names as before."""
    lazy = ("fpdf", "pypdf", "segno", "privacy.mpc.engine", "privacy.mpc.transport")
    r = _run("import sys, api.node_run, api.http\n"
             f"print([m for m in {lazy!r} if m in sys.modules])\n"
             "import forensics.certificate as c, privacy.mpc as p\n"
             "print(callable(c.render_certificate_bytes), callable(c.read_certificate), callable(p.run_computation),"
             " isinstance(c.MAX_PDF_BYTES, int))\n"
             f"print([m for m in {lazy!r} if m not in sys.modules])\n"
             "try:\n    c.no_such_name\nexcept AttributeError as e:\n    print('AttributeError', e)\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "[]", lines[0]
    assert lines[1] == "True True True True"
    assert lines[2] == "[]", lines[2]
    assert lines[3].startswith("AttributeError") and "no_such_name" in lines[3]


def _decoders_mapped(pid: int) -> bool:
    """Whether process ``pid`` has loaded PyAV's bundled libraries (the video decoder)."""
    return any("/av.libs/" in line for line in Path(f"/proc/{pid}/maps").read_text().splitlines())


@pytest.mark.parametrize("setting", ["1", "0"])
def test_a_node_loads_the_decoders_at_start_unless_told_not_to(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    """A real node process, by default (the suite sets RONGXIN_WARM_UP=0 for the ~150 nodes it
    starts, see tests/conftest.py), loads the decoders without waiting for a registration;
    with RONGXIN_WARM_UP=0 it does not."""
    from tests.api.test_live_node import _start, _stop

    monkeypatch.setenv(WARM_UP_ENV, setting)
    node, proc = _start(tmp_path, offset=700)
    try:
        deadline = time.monotonic() + 60
        while not _decoders_mapped(node.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
            if setting == "0" and time.monotonic() > deadline - 55:
                break  # 5 s after its API answered: a warm-up would have loaded them by now
        assert _decoders_mapped(node.pid) == (setting == "1")
    finally:
        _stop(proc)
