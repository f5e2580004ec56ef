"""The `rongxin fp` commands: the JSON interface the checks use, and errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.fingerprint import media as M
from tests.conftest import run_rongxin


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory: pytest.TempPathFactory,
              photo_sets: tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    reg = root / "reg"
    reg.mkdir()
    for name, a in photo_sets[0][:5]:
        (reg / f"{name}.png").write_bytes(M.encode(a))
    (reg / "tune.wav").write_bytes(M.wav_bytes(M.music(30, 11), 22050))
    proc = run_rongxin("fp", "add-dir", str(reg), "--index", str(root / "index"), "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["added"] == 6
    return root, reg


def test_add_and_query_print_the_documented_json(cli_index: tuple[Path, Path], tmp_path: Path,
                                                 photo_sets: tuple[list[tuple[str, np.ndarray]], list]) -> None:
    root, _ = cli_index
    a = photo_sets[1][0][1]
    (tmp_path / "new.png").write_bytes(M.encode(a))
    proc = run_rongxin("fp", "add", str(tmp_path / "new.png"), "--id", "W-1", "--index", str(root / "index"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["modality"] == "image"
    (tmp_path / "copy.jpg").write_bytes(M.encode(M.crop(a, 0.1, np.random.default_rng(0)), ".jpg", 50))
    proc = run_rongxin("fp", "query", str(tmp_path / "copy.jpg"), "--index", str(root / "index"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["modality"] == "image"
    assert out["matches"][0]["work_id"] == "W-1"
    base = {"work_id", "score", "query_start_s", "work_start_s", "duration_s"}
    # an image match also says where the work sits in the query (and, when keypoints placed
    # it, how many independent keypoints agreed and how much of the work they cover)
    assert base | {"region", "query_share"} <= set(out["matches"][0]) <= base | {"region", "query_share",
                                                                             "inliers", "spread"}
    assert len(out["matches"][0]["region"]) == 4
    assert [m["score"] for m in out["matches"]] == sorted((m["score"] for m in out["matches"]), reverse=True)


def test_audio_query_gives_offsets(cli_index: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = cli_index
    x = M.music(30, 11)
    (tmp_path / "clip.wav").write_bytes(M.wav_bytes(M.add_noise(x[22050 * 7:22050 * 17], 15, np.random.default_rng(1)), 22050))
    out = json.loads(run_rongxin("fp", "query", str(tmp_path / "clip.wav"), "--index", str(root / "index"), "--json").stdout)
    m = out["matches"][0]
    assert out["modality"] == "audio" and m["work_id"] == "tune.wav"
    assert abs(m["work_start_s"] - m["query_start_s"] - 7.0) < 0.1
    assert m["duration_s"] > 5


def test_query_dir_prints_one_object_per_file(cli_index: tuple[Path, Path], tmp_path: Path,
                                              photo_sets: tuple[list[tuple[str, np.ndarray]], list]) -> None:
    root, _ = cli_index
    q = tmp_path / "q"
    q.mkdir()
    name, a = photo_sets[0][2]
    (q / "hit.jpg").write_bytes(M.encode(M.resize(a, 0.5), ".jpg", 60))
    (q / "miss.png").write_bytes(M.encode(photo_sets[1][5][1]))
    (q / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    proc = run_rongxin("fp", "query-dir", str(q), "--index", str(root / "index"), "--json")
    assert proc.returncode == 0, proc.stderr
    lines = {o["file"]: o for o in map(json.loads, proc.stdout.splitlines())}
    assert set(lines) == {"hit.jpg", "miss.png", "bad.png"}
    assert lines["hit.jpg"]["matches"][0]["work_id"] == f"{name}.png"
    assert lines["miss.png"]["matches"] == []
    assert lines["bad.png"]["matches"] == [] and "bad.png" in lines["bad.png"]["error"]


def test_bad_input_exits_2_naming_the_file_without_traceback(cli_index: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = cli_index
    (tmp_path / "empty.mp3").write_bytes(b"")
    proc = run_rongxin("fp", "query", str(tmp_path / "empty.mp3"), "--index", str(root / "index"), "--json")
    assert proc.returncode == 2
    assert "empty.mp3" in proc.stderr and "empty" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_rongxin("fp", "query", str(tmp_path / "empty.mp3"), "--index", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "no index" in proc.stderr


def test_bulk_add_reports_a_bad_file_and_keeps_the_rest(tmp_path: Path,
                                                        photo_sets: tuple[list[tuple[str, np.ndarray]], list]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    for name, a in photo_sets[0][:3]:
        (d / f"{name}.png").write_bytes(M.encode(a))
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    ramp = np.tile(np.linspace(0, 255, 320).astype(np.uint8), (240, 1))
    (d / "ramp.png").write_bytes(M.encode(ramp))  # a smooth gradient: registered (image format v2)
    proc = run_rongxin("fp", "add-dir", str(d), "--index", str(tmp_path / "i"), "--json", "--no-progress")
    assert proc.returncode == 0
    assert "corrupt.jpg" in proc.stderr and "ramp.png" not in proc.stderr
    out = json.loads(proc.stdout)
    failed = {f["file"]: f["error"] for f in out["failed"]}
    assert out["added"] == 4 and set(failed) == {"corrupt.jpg"}
    flat = d / "flat.png"
    flat.write_bytes(M.encode(np.full((240, 320, 3), 90, np.uint8)))
    proc = run_rongxin("fp", "add", str(flat), "--id", "F", "--index", str(tmp_path / "i"), "--json")
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)["recognition"]
    assert rec["level"] == "exact-only" and rec["keypoints"] == 0 and json.loads(proc.stdout)["format_version"] == 2


def test_cli_start_up_loads_no_media_library() -> None:
    code = ("import sys, api.cli; "
            "print(sorted(m for m in ('cv2', 'librosa', 'numba', 'faiss', 'av', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_query_lists_every_occurrence_of_a_looped_passage(tmp_path: Path) -> None:
    """`fp query`: the JSON match carries the three repeats as segments; the table prints a row
    per occurrence."""
    x, starts = M.looped(10, (6, 12, 5, 7), seed=8)
    (tmp_path / "loop.wav").write_bytes(M.wav_bytes(x, 22050))
    index = str(tmp_path / "index")
    assert run_rongxin("fp", "add", str(tmp_path / "loop.wav"), "--id", "loop", "--index", index).returncode == 0
    t0 = starts[0] + 1.0
    (tmp_path / "q.wav").write_bytes(M.wav_bytes(x[int(t0 * 22050):int((t0 + 8) * 22050)], 22050))
    proc = run_rongxin("fp", "query", str(tmp_path / "q.wav"), "--index", index, "--json")
    assert proc.returncode == 0, proc.stderr
    (m,) = json.loads(proc.stdout)["matches"]
    offsets = sorted(s["work_start_s"] - s["query_start_s"] for s in m["segments"])
    assert np.allclose(offsets, [s + 1.0 for s in starts], atol=0.1), (offsets, starts)
    table = run_rongxin("fp", "query", str(tmp_path / "q.wav"), "--index", index)
    assert "1 match(es), 3 occurrence(s)" in table.stdout, table.stdout
    assert sum(line.startswith("loop ") for line in table.stdout.splitlines()) == 3
