"""The doors: the ``rongxin`` CLI, node entry points, the HTTP API and the Python SDK.

Nothing in the product imports ``api``; ``api`` imports ``forensics``, ``privacy``,
``fingerprint`` and ``ledger``.
"""
