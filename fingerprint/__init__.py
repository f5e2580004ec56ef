"""Robust content fingerprints for images, audio, video and text, their index and matching
(REQUIREMENTS F1–F4).

Modules, in dependency order: ``errors`` (typed errors), ``media`` (reading, SM3, modality
sniffing), ``image`` / ``audio`` / ``video`` / ``text`` (one modality each), ``formats`` (the
fingerprint envelope and dispatch), ``index`` (backend interface, SQLite + FAISS default),
``matching`` (thresholds, scores, offsets), ``service`` (add/query a file or a folder).

Imports nothing from ``ledger`` (SM3 comes from ``hashlib``) and never imports ``api``.
Heavy libraries (OpenCV, FAISS, PyAV, SciPy) load only when a modality needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["add_dir", "add_file", "fingerprint_file", "open_index", "query_dir", "query_file", "warm_up"]

if TYPE_CHECKING:
    from .formats import fingerprint_file
    from .index import open_index
    from .service import add_dir, add_file, query_dir, query_file


def __getattr__(name: str) -> Any:
    if name in ("add_dir", "add_file", "query_dir", "query_file"):
        from . import service

        return getattr(service, name)
    if name == "fingerprint_file":
        from .formats import fingerprint_file

        return fingerprint_file
    if name == "open_index":
        from .index import open_index

        return open_index
    raise AttributeError(name)


def warm_up() -> None:
    """Import what fingerprinting loads lazily (the decoders, scipy's signal and image filters,
    the compiled cell scan, code search and rectangle loops: about 1.5 s of CPU together, ~0.6 s more the first time
    they are compiled on a machine), for a long-lived process to pay at start rather than on the
    first file a user sends. A command-line run never calls it: it imports only what its
    file needs."""
    import importlib

    for name in ("fingerprint.audio", "fingerprint.image", "fingerprint.text", "fingerprint.video",
                 "scipy.signal", "scipy.ndimage", "soundfile", "av", "cv2", "PIL.Image"):
        importlib.import_module(name)
    import numpy as np

    from .scan import nearest_in_cells  # the compiled cell scan: loaded from its cache, or compiled

    one = np.zeros((1, 32), np.uint8)
    nearest_in_cells(one, np.zeros(1, np.int64), np.ones(1, np.int64), np.zeros(1, np.int32), one, None, 1)
    from .scan import knn, within  # the code searches, likewise

    knn(one, np.zeros((1, 4), np.uint64), 1)
    within(one, np.zeros((1, 4), np.uint64), 1)
    from .rects import warm_up as rects_warm_up  # the rectangles' loops, likewise

    rects_warm_up()
