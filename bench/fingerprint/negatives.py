"""Negative material for the calibration: pictures, audio and video from Debian packages that
the benchmark never registers.

The packages are fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into a
cache folder outside the repository (``$RONGXIN_FPBENCH_CACHE``, default
``~/.cache/rongxin-fpbench``): nothing is installed system-wide and nothing is committed. What
is derived from them (pictures reduced to a long side of 640 and stored as JPEG q95, audio
resampled to 22 050 Hz mono int16, the generated slide-show videos) is cached there too, so
only the first run pays for unpacking and decoding. See ``docs/fingerprints.md``
("Calibration").
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import media as M

CACHE = Path(os.environ.get("RONGXIN_FPBENCH_CACHE") or Path.home() / ".cache" / "rongxin-fpbench")
SR = 22050

# package → what its pictures are (look-alikes of the registered material: desktop wallpapers
# of the same styles, photographs of the same kinds of scene, game art and clip art)
PICTURE_PACKAGES: dict[str, str] = {
    "gnome-backgrounds": "wallpaper", "plasma-workspace-wallpapers": "wallpaper",
    "desktop-base": "wallpaper", "openclipart-png": "clipart", "tuxpaint-stamps-default": "clipart",
    "supertuxkart-data": "game-art", "extremetuxracer-data": "game-art", "hedgewars-data": "game-art",
    "widelands-data": "game-art", "freedroidrpg-data": "game-art", "supertux-data": "game-art",
    "megaglest-data": "game-art", "lincity-ng-data": "game-art", "frozen-bubble-data": "game-art",
    "neverball-data": "game-art", "pingus-data": "game-art", "freeciv-data": "game-art",
    "warzone2100-data": "game-art",
}
# package → what its audio is (game music and effects, music on hold, telephone prompts)
AUDIO_PACKAGES: dict[str, str] = {
    "warzone2100-music": "music", "supertuxkart-data": "music", "hedgewars-data": "music+effects",
    "widelands-data": "music+effects", "freedroidrpg-data": "music+speech", "supertux-data": "music",
    "megaglest-data": "music+effects", "extremetuxracer-data": "music", "frozen-bubble-data": "music",
    "lincity-ng-data": "music", "xmoto-data": "music", "tuxpaint-stamps-default": "effects+speech",
    "asterisk-moh-opsound-wav": "music", "asterisk-core-sounds-en-wav": "speech",
    "asterisk-core-sounds-es-wav": "speech",
    "asterisk-core-sounds-fr-wav": "speech", "asterisk-core-sounds-it-wav": "speech",
    "asterisk-core-sounds-ru-wav": "speech", "fretsonfire-songs-muldjord": "music",
    "fretsonfire-songs-sectoid": "music",
}
MAX_SIDE = 640
MIN_SIDE = 128  # smaller pictures (sprites, icons) are not what a court case is about
MIN_STD = 20.0  # nearly uniform pictures (masks, blank tiles) carry no content
PER_PACKAGE = 1200  # at most this many pictures per package (taken evenly in path-hash order)


def log(msg: str) -> None:
    print(f"[negatives] {msg}", file=sys.stderr, flush=True)


def unpacked(pkg: str) -> Path:
    """The package's files, unpacked in the cache (fetched with apt-get download once)."""
    root = CACHE / "pkgs" / pkg
    if (root / ".done").exists():
        return root
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if not found:
        log(f"apt-get download {pkg}")
        subprocess.run(["apt-get", "download", "-q", pkg], cwd=debs, check=True, capture_output=True)
        found = sorted(debs.glob(f"{pkg}_*.deb"))
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(root)], check=True)
    (root / ".done").touch()
    return root


def _key(p: Path) -> str:
    return hashlib.sha256(str(p).encode()).hexdigest()


def _big_enough(p: Path) -> bool:
    """The picture's size read from its header (no decoding): short side ≥ ``MIN_SIDE``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            return min(im.size) >= MIN_SIDE
    except (OSError, UnidentifiedImageError, ValueError):
        return False


def _load_picture(p: Path) -> Any:
    if not _big_enough(p):
        return None
    img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim not in (2, 3) or min(img.shape[:2]) < MIN_SIDE:
        return None
    if img.dtype != np.uint8:
        img = (img / 257).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255.0
        if float(a.mean()) < 0.3:
            return None  # mostly transparent: a sprite sheet or a mask
        img = (img[..., :3] * a + 96 * (1 - a)).astype(np.uint8)
    elif img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    out = np.asarray(np.ascontiguousarray(img[..., :3]), dtype=np.uint8)
    if float(out.std()) < MIN_STD:
        return None
    s = MAX_SIDE / max(out.shape[:2])
    return M.resize(out, s) if s < 1 else out


def _picture_files(pkg: str) -> list[Path]:
    root = unpacked(pkg)
    files = [p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
             and p.is_file() and p.stat().st_size > 2000]
    return sorted(files, key=_key)


def package_pictures(pkg: str) -> list[dict[str, Any]]:
    """The usable pictures of one package (cached: a JPEG q95 each and a manifest)."""
    folder = CACHE / "derived" / "pictures" / pkg
    manifest = folder / "manifest.json"
    if manifest.exists():
        done: list[dict[str, Any]] = json.loads(manifest.read_text())
        return done
    folder.mkdir(parents=True, exist_ok=True)
    out: list[dict[str, Any]] = []
    for p in _picture_files(pkg):
        if len(out) >= PER_PACKAGE:
            break
        dst = folder / f"{_key(p)[:16]}.jpg"
        if not dst.exists():  # (an interrupted earlier run kept what it had accepted)
            img = _load_picture(p)
            if img is None:
                continue
            cv2.imwrite(str(dst), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        rel = str(p.relative_to(CACHE / "pkgs" / pkg))
        out.append({"package": pkg, "kind": PICTURE_PACKAGES[pkg], "name": f"{pkg}:{rel}", "path": str(dst)})
    manifest.write_text(json.dumps(out))
    log(f"{pkg}: {len(out)} pictures")
    return out


def pictures() -> list[dict[str, Any]]:
    """Every usable picture of ``PICTURE_PACKAGES`` (long side ≤ 640, short side ≥ 128 before
    reduction, not mostly transparent, not nearly uniform), at most ``PER_PACKAGE`` per
    package: ``{"package", "kind", "name", "path"}`` with ``path`` the cached JPEG, in a fixed
    order that interleaves the packages (by the hash of the name), so that any prefix is a
    sample of all of them. Near-duplicates are left to the caller (``calib.dedupe``)."""
    out = [d for pkg in PICTURE_PACKAGES for d in package_pictures(pkg)]
    return sorted(out, key=lambda d: hashlib.sha256(d["name"].encode()).hexdigest())


def _decode_audio(p: Path) -> Any:
    """The file as 22 050 Hz mono float32 (decoded and resampled by ffmpeg), or None when it
    is unreadable, shorter than half a second or silence."""
    proc = subprocess.run(["ffmpeg", "-v", "quiet", "-i", str(p), "-ac", "1", "-ar", str(SR), "-f", "s16le",
                           "pipe:1"], capture_output=True, check=False)
    y = np.frombuffer(proc.stdout, np.int16).astype(np.float32) / 32767
    if proc.returncode != 0 or y.size < SR // 2 or float(np.sqrt(np.mean(y ** 2))) < 1e-3:
        return None
    return y


def audio_streams() -> list[dict[str, Any]]:
    """One stream per package of ``AUDIO_PACKAGES``: its audio files (Vorbis, Opus, WAV, FLAC) played
    end to end, resampled to 22 050 Hz mono; ``{"package", "kind", "files", "seconds",
    "path"}`` with ``path`` the cached int16 ``.npy``."""
    manifest = CACHE / "derived" / "audio.json"
    if manifest.exists():
        out: list[dict[str, Any]] = json.loads(manifest.read_text())
        if all(Path(d["path"]).exists() for d in out):
            return out
    out = []
    folder = CACHE / "derived" / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    for pkg, kind in AUDIO_PACKAGES.items():
        dst, meta = folder / f"{pkg}.npy", folder / f"{pkg}.json"
        if dst.exists() and meta.exists():
            out.append(json.loads(meta.read_text()))
            continue
        files = sorted(p for p in unpacked(pkg).rglob("*")
                       if p.suffix.lower() in (".ogg", ".opus", ".wav", ".flac") and p.is_file())
        parts = [y for y in map(_decode_audio, files) if y is not None]
        if not parts:
            continue
        stream = np.concatenate(parts)
        np.save(dst, (np.clip(stream, -1, 1) * 32767).astype(np.int16))
        d = {"package": pkg, "kind": kind, "files": len(parts), "seconds": round(stream.size / SR, 1),
             "path": str(dst)}
        meta.write_text(json.dumps(d))
        out.append(d)
        log(f"{pkg}: {len(parts)} files, {stream.size / SR / 3600:.2f} h")
    manifest.write_text(json.dumps(out))
    return out


def load_stream(d: dict[str, Any]) -> Any:
    return np.load(d["path"], mmap_mode="r")


def excerpts(streams: list[dict[str, Any]], seconds: float, hop: float) -> Iterator[tuple[str, float, Any]]:
    """(package, start s, float32 samples) of ``seconds`` every ``hop`` seconds of each stream."""
    for d in streams:
        x = load_stream(d)
        n = int(seconds * SR)
        for i in range(0, x.shape[0] - n + 1, int(hop * SR)):
            yield d["package"], i / SR, (np.asarray(x[i:i + n], np.float32) / 32767).astype(np.float32)
