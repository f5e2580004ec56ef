"""Copyright forensics: the works registry, evidence capture, evidence packages, the court's
offline verifier and cases (REQUIREMENTS E1–E6).

Builds on ``fingerprint`` (matching) and ``ledger`` (filing and proofs). Nothing is
implemented here yet; the package exists so the layer has its place.
"""
