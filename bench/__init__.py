"""Benchmarks. Each prints one JSON object; none is part of the pass/fail suite.

Run through the CLI (``rongxin bench crypto --json``) or as modules
(``python -m bench.crypto``). Every figure that has an outside reference is printed
beside that reference measured in the same run (e.g. ``openssl speed``).
"""
