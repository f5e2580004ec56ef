"""Secure shuffle of an arithmetic replicated sharing (one round per share index).

For each share index ``T`` in ascending order, the holders of ``T`` (the ``n - t`` parties
outside ``T``, who alone know ``seed_T``) apply the permutation
``pi_T = argsort(PRG(seed_T, "permutation <round>", N), stable)``: each component ``U`` is given
to the first holder of ``T`` outside ``U``, each holder permutes the sum of its components
(``y[j] = x[pi_T[j]]``, on every block of ``N`` elements alike) and the parties reshare these
terms into a fresh sharing (parties inside ``T`` contribute 0). A coalition of ``t`` parties
``C`` never learns ``pi_C``, so the composed permutation is uniformly random to it.
"""

from __future__ import annotations

import numpy as np

from .replicated import ROWS, Replicated
from .sharing import prg, subsets


async def shuffle(rep: Replicated, rows: ROWS, blocks: int) -> ROWS:
    """Permute the ``N = L / blocks`` elements of every block with one secret permutation."""
    n = rep.n
    size = rows.shape[1] // blocks
    for k, subset in enumerate(subsets(n)):
        holders = [p for p in range(n) if p not in subset]
        term = np.zeros(rows.shape[1], dtype=np.uint64)
        if rep.me in holders:
            mine = rep.partial_sum(rows, holders)
            assert mine is not None
            perm = np.argsort(prg(rep.seeds[k], b"permutation %d" % rep.round, size), kind="stable")
            term = mine.reshape(blocks, size)[:, perm].reshape(-1)
        rows = await rep.reshare(term, xor=False)
    return rows
