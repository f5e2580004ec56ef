"""Every notebook in notebooks/ runs top to bottom without an error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import RONGXIN

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
# what each walkthrough must visibly show, beyond running without an error
EXPECTED = {"01_national_crypto.ipynb": ["tampered message refused", "refused: certificate"],
            "02_joint_statistics.ipynb": ["after platform-a alone: proposed", "totals equal the plaintext: True",
                                          "audit ok: True", "top-5 equals the plaintext: True",
                                          "second noisy query refused", "budget", "consortium stopped: True"]}


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ holds no walkthrough"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:  # a walkthrough that failed half-way leaves no consortium running
        for genesis in tmp_path.glob("*/*/genesis.json"):
            subprocess.run([str(RONGXIN), "down", "--data", str(genesis.parent)], capture_output=True, timeout=180,
                           check=False)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    for expected in EXPECTED.get(path.name, []):
        assert expected in text, f"{path.name} no longer shows {expected!r}"
