"""SM2 verification across all cores, in a process pool.

Python threads do not run bytecode in parallel (ctypes drops the GIL only inside the C
call, while hashing and argument marshalling hold it), so separate processes, each with
its own libcrypto, are what scales. Work is sent in chunks so inter-process traffic stays small next to the ~0.2 ms a
verification costs. The pool uses the ``forkserver`` start method, so workers never
inherit a listening socket or a lock of the parent.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from .errors import CryptoError, InvalidSignature, MalformedSignature
from .sm2 import DEFAULT_SIGNER_ID, SM2PublicKey, use_tables

# one item: (65-byte public point, message, DER signature)
VerifyItem = tuple[bytes, bytes, bytes]

_keys: dict[bytes, SM2PublicKey] = {}


def _key(point: bytes) -> SM2PublicKey:
    key = _keys.get(point)
    if key is None:
        if len(_keys) > 4096:
            _keys.clear()
        key = _keys[point] = SM2PublicKey.from_point(point)
    return key


def verify_items(items: Sequence[VerifyItem], signer_id: bytes = DEFAULT_SIGNER_ID) -> list[bool]:
    """Verify in this process; one bool per item, never raising for a bad signature."""
    out = []
    for point, message, signature in items:
        try:
            _key(point).verify(signature, message, signer_id)
            out.append(True)
        except (InvalidSignature, MalformedSignature, CryptoError, ValueError):
            # a bad signature, or an unusable key, is a failed verification, not a crash
            out.append(False)
    return out


class VerifierPool:
    """A pool of worker processes that verify batches of SM2 signatures."""

    def __init__(self, workers: int | None = None, *, tables: bool = True) -> None:
        """``tables=False``: the workers verify with OpenSSL's plain SM2 verify only, never
        with precomputed tables of frequent keys (for measuring it)."""
        self.workers = workers or os.cpu_count() or 1
        ctx = multiprocessing.get_context("forkserver")
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                         initializer=use_tables, initargs=(tables,))

    def warm_up(self) -> None:
        list(self._pool.map(verify_items, [[] for _ in range(self.workers)]))

    def verify(self, items: Sequence[VerifyItem], signer_id: bytes = DEFAULT_SIGNER_ID) -> list[bool]:
        if not items:
            return []
        n = self.workers
        size = max(1, -(-len(items) // (n * 4)))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        results = self._pool.map(verify_items, chunks, [signer_id] * len(chunks))
        return [ok for chunk in results for ok in chunk]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
