"""Finding a font that draws Chinese text.

The Makefile installs Debian's ``fonts-wqy-zenhei`` (WenQuanYi Zen Hei, TrueType outlines in a
TrueType collection). ``RONGXIN_CJK_FONT`` names another file (``.ttf`` or ``.ttc``, face 0)
if the machine keeps its fonts elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import CjkFontMissing

ENV_VAR = "RONGXIN_CJK_FONT"

# TrueType-outline CJK fonts from Debian, in order of preference. (CFF-outline fonts such as
# fonts-noto-cjk are left out: the PDF writer subsets TrueType outlines only.)
CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


@dataclass(frozen=True)
class FontFile:
    path: Path
    face: int  # face number inside a TrueType collection (0 for a plain .ttf)


def find_cjk_font(env: dict[str, str] | None = None,
                  candidates: tuple[str, ...] = CANDIDATES) -> FontFile:
    """The CJK font to use, or ``CjkFontMissing`` naming what to install."""
    environ = os.environ if env is None else env
    chosen = environ.get(ENV_VAR)
    if chosen:
        p = Path(chosen)
        if not p.is_file():
            raise CjkFontMissing(f"{ENV_VAR}={chosen} is not a readable font file")
        if p.suffix.lower() not in (".ttf", ".ttc"):
            raise CjkFontMissing(f"{ENV_VAR}={chosen}: only TrueType fonts (.ttf, .ttc) are supported")
        return FontFile(p, 0)
    for c in candidates:
        p = Path(c)
        if p.is_file():
            return FontFile(p, 0)
    raise CjkFontMissing(
        "no font that draws Chinese was found: install Debian's fonts-wqy-zenhei "
        f"(`make system-packages` does) or set {ENV_VAR} to a TrueType CJK font file"
    )
