"""Copyright forensics: the works registry, evidence filing and cases (REQUIREMENTS E1, E3, E4),
later the evidence packages and the court's offline verifier.

Modules: ``rules`` (argument checks, user business roles, the signed messages), ``contracts``
(the ``works/1`` system contract and ``types(views)``, every forensics transaction type),
``cases`` (``evidence.file`` and the case state machine), ``service`` (the registering node's
side: hash, fingerprint, store, match, countersign), ``precheck`` (the node's dry run of the
contracts before it stores a file or submits a transaction). docs/works.md is the specification.
Builds on ``fingerprint`` (matching) and ``ledger`` (contracts, crypto, the content store).
"""
