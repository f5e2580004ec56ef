"""Chained HotStuff BFT (2-chain commit, as DiemBFT v4 / Jolteon) among the validators.

Knows nothing of contracts or state: it orders transaction ids into blocks, certifies them
with quorum certificates of ``n − f`` SM2 signatures, stamps them with a block time the
validators find timely, and reports commits. ``types`` holds the data, ``actions`` what the
engine asks its host to do, ``config`` its settings and the ``Payload`` the host provides,
``timing`` the block-time rule, ``pacemaker`` the idle rule, ``catchup`` restart and sync
checks, ``engine`` the deterministic protocol core (events in, actions out, no I/O).
"""
