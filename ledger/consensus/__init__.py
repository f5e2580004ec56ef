"""Chained HotStuff BFT (2-chain commit, as DiemBFT v4 / Jolteon) among the validators.

Knows nothing of contracts or state: it orders transaction ids into blocks, certifies them
with quorum certificates of ``n − f`` SM2 signatures and reports commits. ``types`` holds
the data, ``engine`` the deterministic protocol core (events in, actions out, no I/O).
"""
