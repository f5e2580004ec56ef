"""Digital art and illustrations: what image format v2 adds to v1 for pictures that v1
describes poorly — smooth gradients, soft shapes, flat colours, line art, striped designs.

* **Art keypoints.** ORB's corner test (FAST, threshold 12) finds few or no corners on a
  picture whose luminance changes slowly. When the v1 detection yields fewer than its budget,
  the rest of the budget is filled with keypoints detected on a *local-contrast-normalised*
  copy of the picture at half the ORB frame's resolution with a low FAST threshold: the
  picture's own soft structure (the edge of a wave, a fold of silk, a stripe's end) becomes
  corners of ordinary contrast. The query side does the same, so both describe the soft
  structure alike; photographs, which fill the budget at v1, are described exactly as before.
* **Colour layout.** A picture whose DCT code is decided by noise (low hash quality: flat,
  gradient, stripes) keeps a small colour thumbnail (:func:`layout_vector`) that JPEG, blur,
  noise and gamma barely move; a query is compared with the registered thumbnails of such
  pictures (see ``fingerprint.matching``).
* **Recognition report.** :func:`recognition` says how well a registered picture can be
  recognised: ``robust``, ``limited`` or ``exact-only`` (docs/fingerprints.md, "Image format v2").

Format and figures: ``docs/fingerprints.md`` ("Image format v2").
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .image import orb_detect

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

ART_DOWN = 2  # art keypoints are detected on the picture reduced by this factor (area filter)
# Gaussian σ, in pixels of the reduced picture, of the local mean and deviation: small, so that
# a picture shown inside a page is normalised alike (a page's strong edges around it reach
# only ~3σ into it); 16 did as well on whole pictures but lost the pictures inside pages
LCN_SIGMA = 4.0
LCN_FLOOR = 4.0  # grey levels added to the local deviation: flat areas are not blown up into noise
LCN_GAIN = 40.0  # output = 128 + gain × (value − local mean) / (local deviation + floor)
ART_FAST = 3  # FAST threshold on the normalised picture
ART_DEDUP_PX = 3.0  # an art keypoint this close (ORB frame) to a v1 keypoint is the same corner
# colour layout: the border-trimmed picture reduced to LAYOUT_SIDE × LAYOUT_SIDE in CIE Lab
LAYOUT_SIDE = 8
LAYOUT_BYTES = LAYOUT_SIDE * LAYOUT_SIDE * 3


def contrast_normalised(gray: U8) -> U8:
    """Local contrast normalisation: ``128 + LCN_GAIN · (g − μ) / (σ + LCN_FLOOR)``, with μ
    and σ the Gaussian-weighted (``LCN_SIGMA``) local mean and standard deviation of ``g``,
    clipped to 0–255 and rounded down (``astype(uint8)``) after clipping."""
    f = gray.astype(np.float32)
    mean = cv2.GaussianBlur(f, (0, 0), LCN_SIGMA)
    dev = np.sqrt(np.maximum(cv2.GaussianBlur((f - mean) ** 2, (0, 0), LCN_SIGMA), 0.0))
    out = 128.0 + LCN_GAIN * (f - mean) / (dev + LCN_FLOOR)
    return np.asarray(np.clip(out, 0, 255).astype(np.uint8), dtype=np.uint8)


def reduced_normalised(gray: U8) -> U8:
    """The picture reduced ``ART_DOWN`` times (area filter, sides rounded) and contrast-normalised."""
    h, w = gray.shape
    small = np.asarray(cv2.resize(gray, (max(1, round(w / ART_DOWN)), max(1, round(h / ART_DOWN))),
                                  interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return contrast_normalised(small)


def art_orb() -> Any:
    return cv2.ORB_create(  # type: ignore[attr-defined]
        nfeatures=1200, edgeThreshold=15, patchSize=15, fastThreshold=ART_FAST)


def fill_keypoints(gray: U8, pts: F32, desc: U8, budget: int) -> tuple[F32, U8]:
    """``pts``/``desc`` (v1 keypoints of ``gray``, the ORB-frame picture) followed by art
    keypoints up to ``budget`` in all: detected on :func:`reduced_normalised` (ORB, FAST
    threshold ``ART_FAST``, in ORB's response order), their points multiplied by ``ART_DOWN``,
    those within ``ART_DEDUP_PX`` of a v1 keypoint left out."""
    need = budget - pts.shape[0]
    if need <= 0 or min(gray.shape) < 2 * ART_DOWN:
        return pts, desc
    kps, d2 = orb_detect(art_orb(), reduced_normalised(gray))
    if d2 is None or not kps:
        return pts, desc
    p2 = np.array([kp.pt for kp in kps], dtype=np.float32) * np.float32(ART_DOWN)
    if pts.shape[0]:
        near = np.sqrt(((p2[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).min(axis=1)
        keep = near >= ART_DEDUP_PX
        p2, d2 = p2[keep], d2[keep]
    p2, d2 = p2[:need], np.asarray(d2[:need], dtype=np.uint8)
    return np.concatenate([pts, p2]).astype(np.float32), np.concatenate([desc, d2]).astype(np.uint8)


def layout_vector(img: U8, box: tuple[int, int, int, int]) -> U8:
    """The colour layout: the picture's ``box`` (x, y, w, h: its border-trimmed part) reduced
    to ``LAYOUT_SIDE`` × ``LAYOUT_SIDE`` (area filter) in 8-bit CIE Lab (OpenCV's
    ``COLOR_BGR2LAB``: L·255/100, a + 128, b + 128), flattened row by row, L a b per cell
    (``LAYOUT_BYTES`` bytes). A grey picture gives a = b = 128."""
    x, y, w, h = box
    part: U8 = img[y:y + h, x:x + w]
    if part.ndim == 2:
        part = np.asarray(cv2.cvtColor(part, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    small = cv2.resize(part, (LAYOUT_SIDE, LAYOUT_SIDE), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2LAB), dtype=np.uint8).reshape(-1)


def layout_variants(v: U8) -> list[U8]:
    """The eight dihedral variants of a layout (same order as the DCT code's variants)."""
    a = v.reshape(LAYOUT_SIDE, LAYOUT_SIDE, 3)
    out = []
    for base in (a, a[:, ::-1]):
        for k in range(4):
            out.append(np.ascontiguousarray(np.rot90(base, k)).reshape(-1))
    return out


def layout_distance(q: U8, w: U8) -> float:
    """Distance between two layouts: the root mean square, over cells, of the Lab colour
    difference (ΔE in OpenCV's 8-bit Lab units: L scaled by 2.55), after the query's L is
    shifted so that both have the same mean L (a global brightness or gamma change moves
    every cell alike)."""
    qa = q.reshape(-1, 3).astype(np.float32)
    wa = w.reshape(-1, 3).astype(np.float32)
    qa[:, 0] += float(wa[:, 0].mean() - qa[:, 0].mean())
    return float(np.sqrt(((qa - wa) ** 2).sum(axis=1).mean()))


# -- recognition report ---------------------------------------------------------------------------

# a picture needs this many keypoints to be found under crops, rotations and overlays and
# inside pages as reliably as a photograph (part search found 95 % of the works with at least
# 150 keypoints, docs/fingerprints.md "Part search"); fewer than LIMITED_KEYPOINTS (twice
# what a match needs) leave geometric copies to chance
ROBUST_KEYPOINTS = 150
LIMITED_KEYPOINTS = 22
# a colour layout is indexed only when its cells differ: a flat or nearly flat picture's layout
# (one colour) would match any picture of that colour. RMS distance of the cells from their
# mean colour, in 8-bit Lab units.
LAYOUT_MIN_SPREAD = 7.5


def layout_spread(v: U8) -> float:
    a = v.reshape(-1, 3).astype(np.float32)
    return float(np.sqrt(((a - a.mean(axis=0)) ** 2).sum(axis=1).mean()))


def layout_indexed(quality: float, layout: U8 | None) -> bool:
    """Whether a registered picture's colour layout goes into the index: only when its DCT
    code is not usable (quality below ``image.MIN_QUALITY``) and its layout has colours to
    tell (``LAYOUT_MIN_SPREAD``)."""
    from .image import MIN_QUALITY

    return quality < MIN_QUALITY and layout is not None and layout_spread(layout) >= LAYOUT_MIN_SPREAD


def indexed_parts(fp: Any, version: int) -> tuple[bytes | None, bytes | None]:
    """What of a registered picture (an ``ImageFingerprint`` of format ``version``) goes into
    the index besides its keypoints: its DCT code unless v2 found it decided by noise
    (quality below ``image.MIN_QUALITY``), and its layout when :func:`layout_indexed`."""
    from .image import MIN_QUALITY

    code = fp.code if fp.quality >= MIN_QUALITY or version < 2 else None
    ok = layout_indexed(fp.quality, fp.layout) and fp.layout is not None
    return code, (fp.layout.astype(np.uint8).tobytes() if ok else None)


def recognition(fp: Any) -> dict[str, Any]:
    """How well a registered picture (an ``ImageFingerprint``) can be recognised:

    * ``robust``: its DCT code is usable (quality ≥ ``MIN_QUALITY``) and it has at least
      ``ROBUST_KEYPOINTS`` keypoints — found like a photograph;
    * ``limited``: some robust feature, not all: a usable code or an indexed colour layout
      (whole-picture copies under JPEG, resizing, blur, noise, gamma) or at least
      ``LIMITED_KEYPOINTS`` keypoints (crops, rotations, overlays, inside pages: fewer found);
    * ``exact-only``: none of these (a flat or nearly flat picture): only a byte-identical
      copy is found, by its SM3.

    Also: ``keypoints`` (of which ``art_keypoints`` from the v2 fill), ``hash_quality``,
    ``global_code`` and ``colour_layout`` (whether each is indexed)."""
    from .image import MIN_QUALITY

    n = int(fp.points.shape[0])
    code_ok = fp.quality >= MIN_QUALITY
    layout_ok = layout_indexed(fp.quality, fp.layout)
    if code_ok and n >= ROBUST_KEYPOINTS:
        level = "robust"
    elif code_ok or layout_ok or n >= LIMITED_KEYPOINTS:
        level = "limited"
    else:
        level = "exact-only"
    return {"level": level, "keypoints": n, "art_keypoints": n - int(fp.v1_points),
            "hash_quality": round(float(fp.quality), 2), "global_code": code_ok, "colour_layout": layout_ok}
