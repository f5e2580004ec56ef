"""The fingerprint benchmark: ``python -m bench.fingerprint [--scale small|full] [--json]``
(or ``rongxin bench fingerprint``). Prints one JSON object with recall per transform at the
operating thresholds, false positives on never-registered material, offset errors, speed and
index size. Never part of the test suite.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from .run import main as run_main

    return run_main(argv)
