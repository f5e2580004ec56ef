"""Node-to-node networking: authenticated TLS links, framing, heartbeats, block sync.

Uses ``ssl`` with the transport certificates of ``ledger.crypto.tls``; knows nothing
of consensus rules (it moves bytes between admitted peers).
"""
