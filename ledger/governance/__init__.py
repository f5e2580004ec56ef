"""Consortium governance as system transactions (REQUIREMENTS L2-L4).

Everything here is state in the SM3 sparse Merkle tree under ``sys/``, so every node derives
the same validator set and parameters for every height, and a light client can prove them:

=============================  ===========================================================
key                            value (canonical JSON)
=============================  ===========================================================
``sys/params``                 the consensus parameters changed by governance (ms, counts)
``sys/validators``             ``{"schedule": [[from_height, [validator...]], ...]}``
``sys/proposal/<tx id>``       a supervisors' proposal: action, approvals, expiry, status
``sys/join/<node id>``         a join request and where it stands
``sys/node/<node id>``         an admitted node: org, role, key, certificate, address
``sys/revoked/<node id>``      an exited or evicted node: key, height, reason
``sys/missed``                 consecutive missed leader turns per validator
``sys/evidence/<id>/<view>``   an offence already punished (evidence counts once)
``sys/orgs``                   member organisations: ``{org: {"roles", "height"}}``
``sys/user/<account>``         a user bound to a certificate: org, role (admin|user), status
``sys/policy``                 voting policy per action kind (absent: supervisors' majority)
``sys/perms``                  who may send each transaction type (absent: anyone)
=============================  ===========================================================

Transaction types (the payload of a signed transaction, docs/governance.md):

- ``gov.propose {"action", "ttl"}`` and ``gov.vote {"proposal", "approve"?}`` by the voters of
  the action's voting policy: ``{"rule": "supervisors", "need": "majority"|"all"|k}`` counts
  supervisor validators, ``{"rule": "orgs", "role": r, "need": ...}`` counts organisations
  (those running validators for ``r = "consensus"``, else those holding role ``r``), each
  voting through a validator key or an admin user of its own. An action runs when enough
  voters approved it before its expiry; it is rejected once it can no longer pass.
  Actions: ``params``, ``admit`` (approve a join request), ``remove`` (force a validator
  out), ``org.add`` / ``org.remove``, ``policy``, ``perms``, ``user.revoke``,
  ``contract.approve`` (the review of a user-contract version), ``contract.freeze`` /
  ``contract.unfreeze`` / ``contract.destroy``.
- ``user.register {"certificate"}`` by the key the consortium CA certified for a user of a
  member organisation; ``user.revoke {"account", "reason"}`` by that user or an admin of its
  organisation.
- ``node.join`` by the joining node's own key; ``node.certify`` by a supervisor once the
  request is approved, carrying the certificate the consortium CA issued (verified here
  against the root certificate of the genesis, at the block's time) and the height from
  which the node votes.
- ``node.exit`` by the validator itself (active exit).
- ``node.evidence`` by anyone: two proposals or two votes signed by one validator for
  different blocks in the same view. Passive exit also follows ``missed_turns_limit``
  consecutive leader turns without a block of its own in the chain.

Every change to the validator set takes effect at a stated height at least
``exit_delay`` blocks after the block that decides it, on every node alike; exits and
evictions also revoke the node, after which every peer refuses its links.

Modules: ``base`` (keys, refusal, block context), ``params`` (``ChainParams``), ``views``
(read-only views), ``schedule`` (validator schedule, removals, missed turns), ``voting``
(policies, thresholds), ``actions`` (one class per action kind, the ``ACTIONS`` registry),
``proposals`` (``gov.propose``/``gov.vote``), ``members`` (users, node join/certify/exit),
``evidence``, ``admission`` (permission rules, who may transact) and ``core`` (``Governance``).
"""

from .actions import ACTION_KINDS, ACTIONS, Action
from .base import (
    K_EVIDENCE,
    K_JOIN,
    K_MISSED,
    K_NODE,
    K_ORGS,
    K_PARAMS,
    K_PERMS,
    K_POLICY,
    K_PROPOSAL,
    K_REVOKED,
    K_USER,
    K_VALIDATORS,
    MIN_VALIDATORS,
    ORG_ROLES,
    BlockContext,
    GovernanceRefused,
    Reader,
)
from .core import TX_RULES, Governance
from .params import ChainParams
from .views import DEFAULT_POLICY, vset_in

__all__ = [
    "ACTIONS", "ACTION_KINDS", "DEFAULT_POLICY", "K_EVIDENCE", "K_JOIN", "K_MISSED", "K_NODE", "K_ORGS",
    "K_PARAMS", "K_PERMS", "K_POLICY", "K_PROPOSAL", "K_REVOKED", "K_USER", "K_VALIDATORS", "MIN_VALIDATORS",
    "ORG_ROLES", "TX_RULES", "Action", "BlockContext", "ChainParams", "Governance", "GovernanceRefused",
    "Reader", "vset_in",
]
