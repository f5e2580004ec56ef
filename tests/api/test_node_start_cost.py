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
