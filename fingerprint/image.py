"""Image fingerprints: a 256-bit DCT hash (PDQ family) of the border-trimmed picture, its eight
dihedral variants (query side), ORB keypoints for geometric verification of crops, pads,
rotations and overlays (filled up with art keypoints on smooth pictures, ``fingerprint.art``),
and a colour layout.

Owns image decoding and its limits. Format: ``docs/fingerprints.md`` (image v2).
"""

from __future__ import annotations

import io
import warnings
from concurrent import futures
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .errors import MediaTooLarge, UnreadableMedia

IMAGE_FORMAT_VERSION = 2
HASH_BITS = 256
HASH_SIDE = 64  # the picture is reduced to 64 × 64 before the DCT
HASH_KEEP = 16  # the 16 × 16 lowest DCT frequencies give the 256 bits
# Decoding costs about 6 bytes of memory per pixel (the BGR picture, its grey copy, the border
# test's difference), so the pixel limit bounds a worker's memory to about 300 MB whatever the
# file's size: a 350 KB PNG may declare 120 Mpx. 50 Mpx admits camera originals up to 50 Mpx and
# 8K frames (33 Mpx). Both limits are checked from the header, before anything is decoded.
MAX_PIXELS = 50_000_000
# A query (never a registration) may declare up to this many pixels (20 000 × 20 000): it is
# decoded reduced (see decode_image); peak memory: JPEG, the reduced grey picture (≤ 50 MB)
# plus the fingerprint's working copies; other formats, one byte per declared pixel (≤ 400 MB).
MAX_QUERY_PIXELS = 400_000_000
MAX_SIDE = 30_000
ORB_SIDE = 512  # keypoints are detected on the picture scaled so its long side is at most this
ORB_MIN_SIDE = 320
ORB_FEATURES = 400
# Below this quality (see ``hash_quality``) the DCT code is decided by noise: it is not indexed
# (the picture is still registered, see ``fingerprint.art.recognition``). Measured on 365 real
# pictures (bench/fingerprint): the flat, gradient and repetitive ones that lost their own
# copies under blur, ¼ scaling, JPEG q30 or noise scored 0.24–1.95 (opencv-doc's gradient and
# chessboard, three abstract wallpapers); the lowest picture that survived every transform
# scored 2.87. The threshold sits between the two.
MIN_QUALITY = 2.4

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


def _pil_limit() -> None:
    """PIL only reads the declared size here; its own bomb guard (which refuses at twice
    ``MAX_IMAGE_PIXELS``) is set to our largest limit, so ours decide."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_QUERY_PIXELS // 2


@dataclass(frozen=True)
class ImageFingerprint:
    """``code``: 32-byte DCT hash of the picture as given; ``variants``: the eight dihedral
    variants (index 0 = identity, 1–3 = rotations by 90°, 4 = mirror, 5–7 = mirror + rotations);
    ``points``: ORB keypoint coordinates (N × 2, in the ORB-scaled frame); ``descriptors``:
    ORB descriptors (N × 32 bytes); ``quality``: see :func:`hash_quality` (registration
    refuses pictures below ``MIN_QUALITY``); ``parts_points`` / ``parts_descriptors`` (query
    side only): the dense features of :func:`fingerprint.parts.parts_features`, points in the
    file's own pixels, for finding a registered picture inside this one. ``width`` and
    ``height`` are the file's, also for a query decoded reduced (see :func:`decode_image`)."""

    code: bytes
    variants: tuple[bytes, ...]
    points: F32
    descriptors: U8
    width: int
    height: int
    mirror_points: F32 | None = None
    mirror_descriptors: U8 | None = None
    quality: float = 0.0
    parts_points: F32 | None = None
    parts_descriptors: U8 | None = None
    layout: U8 | None = None
    v1_points: int = 0
    # query side: rectangles that show a picture inside the query (fingerprint.rects), in the
    # file's pixels, and for each its DCT codes as it is and mirrored (2 × 32 bytes) and
    # quality; a box appears once per distinct border trim (``box_codes``)
    rect_boxes: tuple[tuple[int, int, int, int], ...] = ()
    rect_codes: tuple[tuple[bytes, ...], ...] = ()
    rect_quality: tuple[float, ...] = ()
    # query side: for each of those, the border-trimmed box its codes were taken of (file's
    # pixels); not part of the fingerprint digest, which it postdates
    rect_cuts: tuple[tuple[int, int, int, int], ...] = field(default=(), metadata={"digest": False})
    # query side: the picture's colour copy, long side at most 512 (fingerprint.colours); not
    # part of the fingerprint digest (docs/works.md §6.1), which it postdates
    thumb: U8 | None = field(default=None, metadata={"digest": False})


def _check_header(data: bytes, path: str, query: bool = False) -> tuple[int, int]:
    from PIL import Image

    _pil_limit()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        raise MediaTooLarge(path, f"declared image dimensions exceed the limit of {MAX_PIXELS} pixels") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadableMedia(path, f"not a decodable image ({exc})") from None
    if w <= 0 or h <= 0:
        raise UnreadableMedia(path, f"image has zero size ({w} × {h})")
    limit = MAX_QUERY_PIXELS if query else MAX_PIXELS
    if w > MAX_SIDE or h > MAX_SIDE or w * h > limit:
        raise MediaTooLarge(path, f"image of {w} × {h} pixels: dimensions exceed the limit "
                                  f"({MAX_SIDE} per side, {limit} pixels)")
    if data[:3] == b"\xff\xd8\xff" and b"\xff\xd9" not in data[-64:]:
        raise UnreadableMedia(path, "JPEG is truncated (no end-of-image marker)")
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-32:]:
        raise UnreadableMedia(path, "PNG is truncated (no IEND chunk)")
    return w, h


_REDUCED = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
            8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def query_reduction(w: int, h: int) -> int:
    """1, or the factor (2, 4 or 8) a query over ``MAX_PIXELS`` is decoded reduced by."""
    for f in (1, 2, 4, 8):
        if (w // f) * (h // f) <= MAX_PIXELS:
            return f
    return 8


def decode_image(data: bytes, path: str = "<bytes>", *, query: bool = False) -> U8:
    """The picture as a 3-channel BGR array; :class:`MediaError` when it cannot be used.
    A query over ``MAX_PIXELS`` (up to ``MAX_QUERY_PIXELS``) is decoded in grey, reduced by
    :func:`query_reduction` (JPEG in the DCT domain: memory of the reduced picture only;
    other formats are decoded in grey, one byte per pixel, then reduced)."""
    w, h = _check_header(data, path, query)
    buf = np.frombuffer(data, dtype=np.uint8)
    f = query_reduction(w, h) if query else 1
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR if f == 1 else _REDUCED[f])
    if img is None or img.size == 0:
        raise UnreadableMedia(path, "image data is corrupt or of an unsupported encoding")
    return np.ascontiguousarray(img, dtype=np.uint8)


def to_gray(img: U8) -> U8:
    if img.ndim == 2:
        return img
    return np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def trim_borders(gray: U8, tolerance: float = 6.0) -> U8:
    """Remove uniform borders (padding, letterbox bars) of near-constant colour.

    A border row or column is removed while its values stay within ``tolerance`` of the
    corner colour; at most 45 % of each dimension is removed, so a flat picture survives."""
    x, y, w, h = trim_box(gray, tolerance)
    return gray[y:y + h, x:x + w]


def trim_box(gray: U8, tolerance: float = 6.0) -> tuple[int, int, int, int]:
    """The part of ``gray`` that :func:`trim_borders` keeps, as (x, y, w, h)."""
    h, w = gray.shape
    corners = sorted((int(gray[0, 0]), int(gray[0, -1]), int(gray[-1, 0]), int(gray[-1, -1])))
    ref = (corners[1] + corners[2]) // 2  # the corners' median, rounded down
    # |gray - ref| as uint8 in one pass: one byte per pixel of working memory, not eight
    diff = np.asarray(cv2.absdiff(gray, np.full_like(gray, ref)), dtype=np.uint8)
    row_ok = diff.max(axis=1) <= tolerance
    col_ok = diff.max(axis=0) <= tolerance
    del diff

    def run(flags: npt.NDArray[np.bool_]) -> int:
        first = int(np.argmin(flags))  # the first line that is not border, if any
        return flags.size if flags[first] else first

    top, bottom = run(row_ok), run(row_ok[::-1])
    left, right = run(col_ok), run(col_ok[::-1])
    if top + bottom > 0.45 * h:
        top = bottom = 0
    if left + right > 0.45 * w:
        left = right = 0
    return left, top, w - left - right, h - top - bottom


def dct_code(small: npt.NDArray[np.float32]) -> bytes:
    """256 bits: signs of the 16 × 16 lowest DCT coefficients of a 64 × 64 picture against
    their median."""
    coeffs = cv2.dct(small)[:HASH_KEEP, :HASH_KEEP].ravel()
    bits = coeffs > _median(coeffs)
    return np.packbits(bits).tobytes()


def _median(a: npt.NDArray[Any]) -> np.float32:
    """``np.median`` of an even number of values, as it computes it (the mean of the two
    middle ones, in the values' precision), without its generic overhead."""
    if a.size % 2:
        raise ValueError("_median takes an even number of values")
    n = a.size // 2
    mid = np.partition(a, (n - 1, n))[n - 1:n + 1]
    return np.float32((mid[0] + mid[1]) / np.float32(2))


def _dihedral(a: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    out = []
    for base in (a, a[:, ::-1]):
        for k in range(4):
            out.append(np.ascontiguousarray(np.rot90(base, k)))
    return out


def reduce_for_hash(gray: U8) -> npt.NDArray[np.float32]:
    trimmed = trim_borders(gray)
    small = cv2.resize(trimmed, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.float32)


def global_codes(gray: U8) -> tuple[bytes, ...]:
    """The DCT codes of the eight dihedral variants; element 0 is the picture as given."""
    return tuple(dct_code(v) for v in _dihedral(reduce_for_hash(gray)))


def hash_quality(small: npt.NDArray[np.float32]) -> float:
    """How firmly the DCT code's bits are decided: the median distance, in grey levels
    (orthonormal DCT of the 64 × 64 picture), of the 256 kept coefficients from their median,
    which is the bits' decision level: half the bits lie closer than this to flipping, so a
    copy that moves coefficients by this much flips many of them. Flat pictures, smooth
    gradients and fine repetitive patterns (a chessboard) have almost no low-frequency
    structure and score near 0; photographs and paintings 3 to 100."""
    coeffs = cv2.dct(small)[:HASH_KEEP, :HASH_KEEP].ravel()
    return float(_median(np.abs(coeffs - _median(coeffs))))


def orb_scale(width: int, height: int) -> float:
    """The factor from a picture's pixels to the frame its ORB keypoints are given in: the
    long side is brought to at most ``ORB_SIDE``, and small pictures are enlarged to
    ``ORB_MIN_SIDE`` so that they still yield keypoints."""
    side = max(width, height, 1)
    return min(ORB_SIDE / side, max(1.0, ORB_MIN_SIDE / side))


# OpenCV's ORB fails on a picture with a side under a few pixels (a pyramid level resized to
# nothing: a 1 × 500 picture raised an internal error); with a 15-pixel patch and edge no
# keypoint fits below 31 pixels anyway, so pictures (and tiles) under this are not searched
ORB_MIN_INPUT = 16


def orb_detect(orb: Any, img: U8, mask: U8 | None = None) -> tuple[Any, Any]:
    """``orb.detectAndCompute(img, mask)``, or no keypoints for a picture with a side under
    ``ORB_MIN_INPUT``."""
    if min(img.shape[:2]) < ORB_MIN_INPUT:
        return (), None
    kps, desc = orb.detectAndCompute(img, mask)
    return kps, desc


def orb_features(gray: U8, nfeatures: int = ORB_FEATURES) -> tuple[F32, U8, int]:
    """Keypoints (ORB frame) and descriptors of ``gray``: the v1 keypoints, then art
    keypoints up to ``nfeatures`` (:func:`fingerprint.art.fill_keypoints`); and how many are v1."""
    from .art import fill_keypoints

    h, w = gray.shape
    scale = orb_scale(w, h)
    if scale != 1.0:
        gray = np.asarray(cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC), dtype=np.uint8)
    orb = cv2.ORB_create(  # type: ignore[attr-defined]
        nfeatures=nfeatures, edgeThreshold=15, patchSize=15, fastThreshold=12)
    kps, desc = orb_detect(orb, gray)
    pts = np.zeros((0, 2), np.float32)
    d = np.zeros((0, 32), np.uint8)
    if desc is not None and kps:
        pts, d = np.array([kp.pt for kp in kps], dtype=np.float32), np.asarray(desc, dtype=np.uint8)
    n1 = int(pts.shape[0])
    pts, d = fill_keypoints(gray, pts, d, nfeatures)
    return pts, d, n1


# A query's rectangle (fingerprint.rects) is JPEG-compressed with the page around it: a
# registered picture's flat border (trimmed at registration) comes back with compression
# noise in it, and the rectangle's outer rows and columns ring with the page's edge. The
# rectangle is therefore also trimmed after shaving RECT_SHAVE pixels off each side, and at a
# second tolerance; every distinct trimmed box gives codes.
RECT_TRIM_TOLERANCES = (6.0, 16.0)
RECT_SHAVE = 8


def box_codes(gray: U8, box: tuple[int, int, int, int], *, dihedral: bool = False
              ) -> list[tuple[tuple[bytes, ...], float, tuple[int, int, int, int]]]:
    """For the part of ``gray`` in ``box`` (x, y, w, h), border-trimmed as a registered
    picture is (``trim_box``) at each of ``RECT_TRIM_TOLERANCES``, as it is and with its
    outer ``RECT_SHAVE`` pixels left out of the trimming (a side where the shaved part trims
    nothing more is not trimmed at all), once per distinct trimmed box, and reduced to
    64 × 64: its DCT codes as it is and mirrored (a picture turned sideways inside a page is
    rare; each code searched costs as much as the whole query's eight at 10⁶ works; all
    eight dihedral codes with ``dihedral``, for the benchmark), their quality, and the trimmed
    box they were taken of (x, y, w, h in ``gray``)."""
    x, y, w, h = box
    part = gray[y:y + h, x:x + w]
    out: list[tuple[tuple[bytes, ...], float, tuple[int, int, int, int]]] = []
    seen: set[tuple[int, int, int, int]] = set()
    for shave in (0, RECT_SHAVE):
        if shave and min(w, h) <= 4 * shave + 8:
            continue
        inner = part[shave:h - shave, shave:w - shave]
        for tol in RECT_TRIM_TOLERANCES:
            tx, ty, tw, th = trim_box(inner, tol)
            iw, ih = inner.shape[1], inner.shape[0]
            cut = [tx, ty, iw - tx - tw, ih - ty - th]  # left, top, right, bottom of the inner part
            left, top, right, bottom = (c + shave if c > 0 else 0 for c in cut)
            key = (left, top, w - left - right, h - top - bottom)
            if key in seen:
                continue
            seen.add(key)
            small = np.asarray(cv2.resize(part[top:h - bottom, left:w - right], (HASH_SIDE, HASH_SIDE),
                                          interpolation=cv2.INTER_AREA), dtype=np.float32)
            codes = tuple(dct_code(v) for v in _dihedral(small)) if dihedral else (
                dct_code(small), dct_code(np.ascontiguousarray(small[:, ::-1])))
            out.append((codes, hash_quality(small), (x + key[0], y + key[1], key[2], key[3])))
    return out


def _rect_codes(img: U8, gray: U8) -> tuple[tuple[tuple[int, int, int, int], ...], tuple[tuple[bytes, ...], ...],
                                             tuple[float, ...], tuple[tuple[int, int, int, int], ...]]:
    """The rectangles of a query (:mod:`fingerprint.rects`), each once per distinct trim, with
    their DCT codes, hash qualities and trimmed boxes."""
    from .rects import boxes

    rb: list[tuple[int, int, int, int]] = []
    rcodes: list[tuple[bytes, ...]] = []
    rqual: list[float] = []
    rcuts: list[tuple[int, int, int, int]] = []
    for b in boxes(img):
        for c, qb, cut in box_codes(gray, b):
            rb.append(b)
            rcodes.append(c)
            rqual.append(qb)
            rcuts.append(cut)
    return tuple(rb), tuple(rcodes), tuple(rqual), tuple(rcuts)


def fingerprint_image_array(img: U8, *, query: bool = False) -> ImageFingerprint:
    """The fingerprint of a decoded picture; ``query`` also computes the ORB features of the
    mirror image (needed only on the query side)."""
    from . import threads

    gray = to_gray(img)
    # a query's rectangles (numpy and OpenCV, mostly outside the GIL) beside its keypoints
    rects = threads.pool().submit(_rect_codes, img, gray) if query and threads.shared() > 1 else None
    try:
        return _fingerprint(img, gray, rects, query)
    except BaseException:
        if rects is not None:  # not left running (holding the picture) after a failure
            rects.cancel()
            futures.wait([rects])
        raise


def _fingerprint(img: U8, gray: U8, rects: futures.Future[Any] | None, query: bool) -> ImageFingerprint:
    from .art import layout_vector

    box = trim_box(gray)
    x, y, bw, bh = box
    small = np.asarray(cv2.resize(gray[y:y + bh, x:x + bw], (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA),
                       dtype=np.float32)
    codes = tuple(dct_code(v) for v in _dihedral(small))
    pts, desc, n1 = orb_features(gray)
    mpts, mdesc = orb_features(np.ascontiguousarray(gray[:, ::-1]))[:2] if query else (None, None)
    ppts, pdesc = None, None
    rboxes: tuple[tuple[int, int, int, int], ...] = ()
    rcodes: tuple[tuple[bytes, ...], ...] = ()
    rqual: tuple[float, ...] = ()
    rcuts: tuple[tuple[int, int, int, int], ...] = ()
    thumb = None
    if query:
        from .colours import thumbnail
        from .parts import parts_features

        thumb = thumbnail(img)
        if rects is None:
            rects = futures.Future()
            rects.set_result(_rect_codes(img, gray))
        # the enlarged pass looks at the rectangles shown small (found meanwhile in the pool)
        ppts, pdesc = parts_features(gray, lambda: sorted(set(rects.result()[0])))
        rboxes, rcodes, rqual, rcuts = rects.result()
    return ImageFingerprint(code=codes[0], variants=codes, points=pts, descriptors=desc,
                            width=int(gray.shape[1]), height=int(gray.shape[0]),
                            mirror_points=mpts, mirror_descriptors=mdesc, quality=hash_quality(small),
                            parts_points=ppts, parts_descriptors=pdesc, layout=layout_vector(img, box),
                            v1_points=n1, rect_boxes=rboxes, rect_codes=rcodes, rect_quality=rqual,
                            rect_cuts=rcuts, thumb=thumb)


def fingerprint_image(data: bytes, path: str = "<bytes>", *, query: bool = False) -> ImageFingerprint:
    img = decode_image(data, path, query=query)
    fp = fingerprint_image_array(img, query=query)
    if not query:
        return fp
    w, h = _check_header(data, path, query)
    if (fp.width, fp.height) == (w, h):
        return fp
    # a reduced query: the ORB frame is the same (long side ORB_SIDE); part-search points and
    # the size are given back in the file's own pixels, so regions are too
    k = np.float32(w / fp.width)
    pp = None if fp.parts_points is None else fp.parts_points * k
    kb = w / fp.width
    rb, rc = (tuple((round(x * kb), round(y * kb), round(bw * kb), round(bh * kb)) for x, y, bw, bh in boxes)
              for boxes in (fp.rect_boxes, fp.rect_cuts))
    return replace(fp, width=w, height=h, parts_points=pp, rect_boxes=rb, rect_cuts=rc)


def hamming(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())
