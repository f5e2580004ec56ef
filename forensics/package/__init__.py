"""The evidence package: its format (``format``), export from a node (``export``).

The offline verifier is ``forensics.verify``; docs/evidence-format.md specifies all three.
"""
