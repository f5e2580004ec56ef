"""The trust anchor: national cryptography, certificates, consensus, state and contracts.

``ledger`` imports nothing from ``api``, ``forensics``, ``privacy`` or ``fingerprint``;
they import it. Only ``ledger.crypto`` touches the national-crypto and certificate
libraries.
"""
