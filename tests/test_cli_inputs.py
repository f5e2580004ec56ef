"""Every file the CLI reads is a regular file of bounded size: /dev/zero and a FIFO fed without
end are refused at once with exit 2 and one line, never read to their (missing) end."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ledger.files import FileInputError, open_regular, read_regular
from tests.conftest import run_rongxin

FEED = bytes(1 << 16)


@contextmanager
def endless_fifo(path: Path) -> Iterator[Path]:
    """A FIFO that a writer thread feeds with zeros, reader after reader, until the block ends."""
    os.mkfifo(path)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # ENXIO: no reader yet
                assert exc.errno == errno.ENXIO
                stop.wait(0.005)
                continue
            try:
                while not stop.is_set():
                    try:
                        os.write(fd, FEED)
                    except BlockingIOError:
                        stop.wait(0.001)
                    except BrokenPipeError:
                        break
            finally:
                os.close(fd)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        yield path
    finally:
        stop.set()
        writer.join(5)
        assert not writer.is_alive()


def test_the_fifo_really_is_endless(tmp_path: Path) -> None:
    with endless_fifo(tmp_path / "f") as fifo, open(fifo, "rb") as fh:
        got = sum(len(fh.read(1 << 16)) for _ in range(64))
    assert got == 64 << 16


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("inputs")
    paths = {n: str(d / n) for n in ("ca", "k", "p", "m", "s", "leaf_crt", "leaf_key")}
    Path(paths["m"]).write_bytes(b"a message")
    for args in (("keygen", "--out", paths["k"], "--pub", paths["p"]),
                 ("sign", "--key", paths["k"], paths["m"], "--out", paths["s"]),
                 ("ca", "init", "--dir", paths["ca"], "--name", "Inputs Consortium"),
                 ("ca", "issue", "--dir", paths["ca"], "--kind", "user", "--name", "u1", "--org", "O",
                  "--role", "user", "--new-key", paths["leaf_key"], "--out", paths["leaf_crt"])):
        proc = run_rongxin(*args)
        assert proc.returncode == 0, (args, proc.stderr)
    paths["root"] = str(Path(paths["ca"]) / "root.crt.pem")
    paths["crl"] = str(Path(paths["ca"]) / "crl.pem")
    return paths


# each case: the command line with BAD where the unbounded input goes
CASES = {
    "sign FILE": ("sign", "--key", "{k}", "BAD", "--out", "{out}"),
    "sign --key": ("sign", "--key", "BAD", "{m}", "--out", "{out}"),
    "sign --password-file": ("sign", "--key", "{k}", "--password-file", "BAD", "{m}", "--out", "{out}"),
    "keygen --password-file": ("keygen", "--out", "{out}", "--pub", "{out}.pub", "--password-file", "BAD"),
    "verify-sig --pub": ("verify-sig", "--pub", "BAD", "{m}", "{s}"),
    "verify-sig FILE": ("verify-sig", "--pub", "{p}", "BAD", "{s}"),
    "verify-sig SIGNATURE": ("verify-sig", "--pub", "{p}", "{m}", "BAD"),
    "ca verify CERT": ("ca", "verify", "--root", "{root}", "BAD"),
    "ca verify --root": ("ca", "verify", "--root", "BAD", "{leaf_crt}"),
    "ca verify --crl": ("ca", "verify", "--root", "{root}", "--crl", "BAD", "{leaf_crt}"),
    "ca issue --pub": ("ca", "issue", "--dir", "{ca}", "--kind", "user", "--name", "u2", "--org", "O",
                       "--role", "user", "--pub", "BAD", "--out", "{out}"),
    "ca revoke --cert": ("ca", "revoke", "--dir", "{ca}", "--cert", "BAD"),
    "ca init --password-file": ("ca", "init", "--dir", "{out}", "--name", "X", "--password-file", "BAD"),
    "fp add FILE": ("fp", "add", "BAD", "--id", "W", "--index", "{out}"),
    "evidence verify PACKAGE": ("evidence", "verify", "BAD", "--root", "{root}"),
    "evidence verify --root": ("evidence", "verify", "{m}", "--root", "BAD"),
}


@pytest.mark.parametrize("source", ["/dev/zero", "fifo"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_non_regular_inputs_are_refused_with_exit_2(material: dict[str, str], tmp_path: Path, case: str,
                                                    source: str) -> None:
    values = {**material, "out": str(tmp_path / "out")}
    with endless_fifo(tmp_path / "fifo") if source == "fifo" else _nothing(Path(source)) as bad:
        args = [str(bad) if a == "BAD" else a.format(**values) for a in CASES[case]]
        proc = run_rongxin(*args, timeout=60)
    assert proc.returncode == 2, (case, proc.returncode, proc.stderr)
    assert "only regular files are read" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists() or case.startswith("fp ")


def test_fp_query_refuses_a_fifo(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_text("天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。" * 20)
    assert run_rongxin("fp", "add", str(tmp_path / "w.txt"), "--id", "W", "--index",
                       str(tmp_path / "idx")).returncode == 0
    with endless_fifo(tmp_path / "fifo") as fifo:
        proc = run_rongxin("fp", "query", str(fifo), "--index", str(tmp_path / "idx"), timeout=60)
    assert proc.returncode == 2 and "FIFO" in proc.stderr and "Traceback" not in proc.stderr


@contextmanager
def _nothing(path: Path) -> Iterator[Path]:
    yield path


def test_read_regular_caps_size_and_refuses_devices_behind_symlinks(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 1001)
    assert read_regular(tmp_path / "big", 1001) == b"x" * 1001
    with pytest.raises(FileInputError, match="larger than the 1,000-byte limit"):
        read_regular(tmp_path / "big", 1000)
    (tmp_path / "link").symlink_to("/dev/zero")
    with pytest.raises(FileInputError, match="is a device"):
        read_regular(tmp_path / "link")
    with pytest.raises(FileInputError, match="is a directory"):
        open_regular(tmp_path)
    with pytest.raises(FileInputError, match="no such file"):
        open_regular(tmp_path / "missing")


def test_fp_add_dir_passes_over_fifos_and_devices(tmp_path: Path) -> None:
    folder = tmp_path / "works"
    folder.mkdir()
    (folder / "poem.txt").write_text("床前明月光，疑是地上霜。举头望明月，低头思故乡。" * 10)
    (folder / "zero").symlink_to("/dev/zero")
    with endless_fifo(folder / "pipe"):
        proc = run_rongxin("fp", "add-dir", str(folder), "--index", str(tmp_path / "idx"), "--json",
                           "--no-progress", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '"added": 1' in proc.stdout and "Traceback" not in proc.stderr
