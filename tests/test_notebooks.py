"""Every notebook in notebooks/ runs top to bottom without an error. The walkthroughs of the
product's roles (03-05) share one local consortium started here (each starts its own when run
alone: RONGXIN_NOTEBOOK_DATA unset)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from api.node_main import is_running
from tests.conftest import RONGXIN

pytestmark = pytest.mark.slow  # each notebook runs a consortium or joint computation

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
# what each walkthrough must visibly show, beyond running without an error
EXPECTED = {"01_national_crypto.ipynb": ["tampered message refused", "refused: certificate"],
            "02_joint_statistics.ipynb": ["after platform-a alone: proposed", "totals equal the plaintext: True",
                                          "audit ok: True", "top-5 equals the plaintext: True",
                                          "second noisy query refused", "budget", "consortium stopped: True"],
            "03_register_work.ipynb": ["certificate verifies: True", "another root refuses it: True",
                                       "conflict with the first work: True"],
            "04_evidence_court.ipynb": ["matched the work: [True]", "package verifies: True",
                                        "changed package refused: True"],
            "05_admit_node.ipynb": ["node.join: ok", "admit proposal: executed", "join request: approved",
                                    "node.certify: ok", "member record: validator", "[node]", "val5 ready: True",
                                    "val5 stopped cleanly: True"]}
SHARED = {"03_register_work.ipynb", "04_evidence_court.ipynb", "05_admit_node.ipynb"}


@pytest.fixture(scope="module")
def shared_consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = tmp_path_factory.mktemp("walkthroughs") / "consortium"
    base = int(os.environ.get("RONGXIN_BASE_PORT", "26600")) + 700
    p = subprocess.run([str(RONGXIN), "up", "--detach", "--data", str(data), "--base-port", str(base)],
                       capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr
    yield data
    subprocess.run([str(RONGXIN), "down", "--data", str(data)], capture_output=True, timeout=180, check=False)


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ holds no walkthrough"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, request: pytest.FixtureRequest,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    if path.name in SHARED:
        monkeypatch.setenv("RONGXIN_NOTEBOOK_DATA", str(request.getfixturevalue("shared_consortium")))
    else:
        monkeypatch.delenv("RONGXIN_NOTEBOOK_DATA", raising=False)
    nb = nbformat.read(path, as_version=4)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:  # a walkthrough that failed half-way leaves no consortium running
        for genesis in tmp_path.glob("*/*/genesis.json"):
            subprocess.run([str(RONGXIN), "down", "--data", str(genesis.parent)], capture_output=True, timeout=180,
                           check=False)
        for pid_file in tmp_path.glob("*/station/nodes/*/pid"):  # a node a walkthrough started (`node start`)
            if is_running(pid_file.parent):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, "\n".join(o.get("evalue", "") for o in errors)
    text = "".join(o.get("text", "") for o in outputs)
    for expected in EXPECTED.get(path.name, []):
        assert expected in text, f"{path.name} no longer shows {expected!r}"
