"""Evidence filing figures on a real local consortium (`rongxin up --detach`, the demo
identities), as JSON; never part of the test suite.

``filing(flow)`` is one figure function for ``rongxin bench evidence`` (bench/evidence.py,
``@figure``): ``flow`` has ``data``, ``api``, ``ids``, ``root``, ``tmp``.
``python -m bench.evidence_filing [--data DIR]`` runs it alone.

- ``file_3_artefacts_s``: three pictures uploaded, matched, signed and committed as one
  ``evidence.file`` through the SDK (``LedgerClient.file_evidence``), after one warm-up filing
  (target <= 3 s);
- ``provable_after_s``: from that commit until the node can export it (the block after its
  certifying block must be committed; the chain adds it right after), for information;
- ``export_s``: the package streamed, signed and written once provable (target <= 1 s);
- ``verify_s``: ``rongxin evidence verify`` as a court runs it, a new process (target <= 2 s);
- ``package_bytes``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from api.sdk import ClientError, Identity, LedgerClient

TARGETS = {"file_3_artefacts_s": 3.0, "export_s": 1.0, "verify_s": 2.0}


def picture(seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    im = np.zeros((600, 800, 3), np.uint8)
    for _ in range(40):
        c = tuple(int(x) for x in r.integers(0, 255, 3))
        p = (int(r.integers(0, 800)), int(r.integers(0, 800)))
        if r.random() < .5:
            cv2.circle(im, p, int(r.integers(10, 120)), c, -1)
        else:
            cv2.rectangle(im, p, (p[0] + int(r.integers(20, 200)), p[1] + int(r.integers(20, 200))), c, -1)
    return cv2.GaussianBlur(im, (3, 3), 0)


def media(folder: Path) -> tuple[Path, list[Path]]:
    w = picture(11)
    cv2.imwrite(str(folder / "work.png"), w)
    h, wd = w.shape[:2]
    cv2.imwrite(str(folder / "copy.jpg"), cv2.resize(w[int(.05 * h):, int(.05 * wd):], None, fx=.7, fy=.7),
                [cv2.IMWRITE_JPEG_QUALITY, 60])
    cv2.imwrite(str(folder / "mirror.png"), cv2.flip(w, 1))
    cv2.imwrite(str(folder / "other.png"), picture(12))
    return folder / "work.png", [folder / "copy.jpg", folder / "mirror.png", folder / "other.png"]


def filing(flow: Any) -> dict[str, Any]:
    tmp = Path(flow.tmp) / "filing"
    tmp.mkdir(exist_ok=True)
    work, files = media(tmp)
    legal = LedgerClient(flow.api, identity=Identity.load(Path(flow.ids) / "legal"), timeout=120)
    holder = LedgerClient(flow.api, identity=Identity.load(Path(flow.ids) / "holder"), timeout=120)
    wid = holder.register_work(work, {"title": "Bench work", "type": "picture"})["work_id"]
    t = time.perf_counter()
    legal.file_evidence(files[:1], wid)  # warm-up: first upload, first matching on this node
    warm = time.perf_counter() - t
    t = time.perf_counter()
    out = legal.file_evidence(files, wid)
    file_s = time.perf_counter() - t
    t = time.perf_counter()
    deadline = t + 150
    pkg = tmp / "pkg.zip"
    while True:  # the first export that succeeds: provable
        try:
            legal.export_evidence(out["evidence_id"], pkg)
            break
        except ClientError as exc:
            if exc.code != "not_yet_provable" or time.perf_counter() > deadline:
                raise
            time.sleep(0.5)
    provable = time.perf_counter() - t
    pkg.unlink()
    t = time.perf_counter()
    legal.export_evidence(out["evidence_id"], pkg)
    export_s = time.perf_counter() - t
    rongxin = Path(sys.executable).with_name("rongxin")
    t = time.perf_counter()
    v = subprocess.run([str(rongxin), "evidence", "verify", str(pkg), "--root", str(flow.root)], capture_output=True,
                       text=True, timeout=120, check=False)
    verify_s = time.perf_counter() - t
    result: dict[str, Any] = {"file_warmup_s": round(warm, 3), "file_3_artefacts_s": round(file_s, 3),
              "provable_after_s": round(provable, 3), "export_s": round(export_s, 3), "verify_s": round(verify_s, 3),
              "verify_exit": v.returncode, "package_bytes": pkg.stat().st_size,
              "copy_matched": [m["matched"] for m in out["matches"]]}
    result["within_targets"] = all(result[k] <= lim for k, lim in TARGETS.items()) and v.returncode == 0
    return result


def evidence_filing(flow: Any) -> dict[str, Any]:
    """The ``rongxin bench evidence`` figure: ``filing`` under the key ``evidence_filing``."""
    return {"evidence_filing": filing(flow)}


def measure(data: Path | None = None) -> dict[str, Any]:
    """``filing`` on the consortium in ``data`` (running), else on a fresh one started and stopped here."""
    rongxin = Path(sys.executable).with_name("rongxin")
    with tempfile.TemporaryDirectory(prefix="rongxin-bench-evidence-") as tmp:
        folder = data or Path(tmp) / "c"
        if data is None:
            subprocess.run([str(rongxin), "up", "--detach", "--data", str(folder)], check=True, capture_output=True,
                           timeout=240)
        try:
            nodes = json.loads((folder / "cluster.json").read_text())["nodes"]
            api = next(n["api"] for n in nodes if n["role"] == "supervisor")
            flow = SimpleNamespace(data=folder, api=api, ids=folder / "identities", root=folder / "ca" / "root.crt.pem",
                                   tmp=Path(tmp))
            return filing(flow)
        finally:
            if data is None:
                subprocess.run([str(rongxin), "down", "--data", str(folder)], capture_output=True, timeout=120,
                               check=False)


if __name__ == "__main__":
    arg = Path(sys.argv[2]) if len(sys.argv) == 3 and sys.argv[1] == "--data" else None
    print(json.dumps(measure(arg), sort_keys=True))
