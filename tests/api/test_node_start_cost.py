"""What a node process pays at start, and what its helper processes pay.

Worker processes started with ``forkserver`` (contract execution, verification) import the
node's main module again: ``api.node_main`` must stay light, or each worker would import the
whole node (HTTP app, PDF renderer: about 1 s of CPU each). A node loads the fingerprint
decoders at start (``fingerprint.warm_up``) so the first registration costs what the next do.
Fresh interpreters, so nothing the test runner imported hides an import."""

from __future__ import annotations

import subprocess
import sys


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
