"""What the console shows, read from the node: public data only, every read bounded.

Everything here is what an unsigned reader of the JSON API may see (docs/api.md §7): a block's
receipts go through ``api.private.redact_block``, a transaction of an evidence filing or a case
step shows its place and proofs but not its body, events of those types are never listed, and
no state key under ``evidence/``, ``case/`` or ``blob/`` is read for display. The reads run on
the node's event loop (as the JSON routes do): each is a few store reads, and lists stop at
fixed bounds (``PAGE`` rows, ``WINDOW`` blocks of statistics, ``SCAN_BLOCKS`` blocks walked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from forensics.access import may_read_tx, private_key, private_tx
from forensics.contracts import work as work_record
from forensics.rules import ID_RE
from ledger.codec import parse
from ledger.contracts.context import account_of
from ledger.contracts.ft import balance
from ledger.contracts.lifecycle import contract_history, contract_info
from ledger.contracts.nft import history
from ledger.crypto.merkle import inclusion_proof
from ledger.node.chainstore import MAX_QUERY
from ledger.node.runtime import Node

from ..private import redact_block

PAGE = 25  # rows of a list page
WINDOW = 120  # blocks behind the charts and the production table
SCAN_BLOCKS = 300  # blocks walked back at most to fill a list of recent transactions
MAX_SHOWN_TXS = 200  # transactions of one block listed on its page
TITLE_SCAN = MAX_QUERY  # latest registrations searched by title
HEX64 = re.compile(r"[0-9a-f]{64}")
HEX40 = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Summary:
    """One committed block as the lists and charts need it."""

    height: int
    hash: str
    time_ms: int
    count: int
    proposer: str
    view: int
    justify_view: int


class Reads:
    """The console's read service over one node (kept on ``app.state``; its cache holds
    summaries of committed blocks, which never change)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._summaries: dict[int, Summary] = {}

    # ------------------------------------------------------------------ blocks
    @property
    def head(self) -> int:
        return int(self.node.app.chain.head)

    def block(self, height: int) -> dict[str, Any] | None:
        """The public view of a committed block (receipts of private transactions redacted)."""
        if height == 0:
            g = self.node.genesis
            return {"height": 0, "hash": g.hash.hex(), "header": g.header, "qc": None, "tx_ids": [], "receipts": []}
        raw = self.node.app.chain.block_view(height)
        if raw is None:
            return None
        return redact_block(dict(parse(raw)), self.node, None)

    def summary(self, height: int) -> Summary | None:
        got = self._summaries.get(height)
        if got is not None:
            return got
        if height == 0:
            view = self.block(0)
        else:  # header and transaction count only: no receipt is shown, none needs redacting
            raw = self.node.app.chain.block_view(height)
            view = None if raw is None else dict(parse(raw))
        if view is None:
            return None
        hd = view["header"]
        s = Summary(height, view["hash"], int(hd.get("time", 0)), len(view["tx_ids"]), str(hd.get("proposer", "")),
                    int(hd.get("view", 0)), int((hd.get("justify") or {}).get("view", 0)))
        if height > 0:
            if len(self._summaries) >= 4 * WINDOW:
                self._summaries.pop(min(self._summaries))
            self._summaries[height] = s
        return s

    def recent(self, n: int = PAGE, before: int | None = None) -> list[Summary]:
        """Up to ``n`` blocks below ``before`` (default: from the head), newest first."""
        top = self.head if before is None else min(before - 1, self.head)
        out = []
        for h in range(top, max(top - n, -1), -1):
            s = self.summary(h)
            if s is not None:
                out.append(s)
        return out

    def height_of(self, block_hash: str) -> int | None:
        if block_hash == self.node.genesis.hash.hex():
            return 0
        h = self.node.app.chain.height_of(bytes.fromhex(block_hash))
        return None if h is None else int(h)

    # ------------------------------------------------------------------ charts
    def window(self) -> list[Summary]:
        """The last ``WINDOW`` blocks, oldest first."""
        return list(reversed(self.recent(WINDOW)))

    def charts(self) -> dict[str, list[tuple[int, float]]]:
        """Per block of the window: committed TPS (its transactions over the time since its
        parent) and, for blocks with transactions, commit latency (its proposal to the
        proposal of the block carrying the QC of its child: the 2-chain rule commits it then)."""
        w = self.window()
        tps: list[tuple[int, float]] = []
        latency: list[tuple[int, float]] = []
        for i, s in enumerate(w):
            if i > 0:
                dt = max(s.time_ms - w[i - 1].time_ms, 1)
                tps.append((s.height, s.count * 1000.0 / dt))
            if i + 2 < len(w) and s.count:
                latency.append((s.height, float(w[i + 2].time_ms - s.time_ms)))
        return {"tps": tps, "latency": latency}

    def production(self) -> list[dict[str, Any]]:
        """Per validator of the current set: blocks proposed and leader turns missed in the
        window (views between a block's QC and it, their round-robin leaders, as
        ``ledger.governance.schedule.missed_turns`` counts them), the on-chain count of turns
        missed in a row, and whether this node sees it online."""
        proposed: dict[str, int] = {}
        missed: dict[str, int] = {}
        for s in self.window():
            proposed[s.proposer] = proposed.get(s.proposer, 0) + 1
            vset = self.node.vset_at(s.height)
            for v in range(s.justify_view + 1, s.view):
                leader = vset.leader(v)
                missed[leader] = missed.get(leader, 0) + 1
        raw = self.node.app.read(b"sys/missed")
        in_row = dict(parse(raw)) if raw else {}
        return [{"id": v.id, "org": v.org, "role": v.role, "proposed": proposed.get(v.id, 0),
                 "missed": missed.get(v.id, 0), "in_row": int(in_row.get(v.id, 0))}
                for v in self.node.vset.validators]

    def orgs(self) -> list[tuple[str, dict[str, Any]]]:
        raw = self.node.app.read(b"sys/orgs")
        return sorted(dict(parse(raw)).items()) if raw else []

    # ------------------------------------------------------------ transactions
    def tx_record(self, tx_id: str) -> dict[str, Any] | None:
        """A committed transaction's public view, or None. ``tx`` is None (and ``private``
        True) for an evidence or case transaction: its body is not public."""
        rec = self.node.app.chain.tx(bytes.fromhex(tx_id))
        if rec is None:
            return None
        tx = rec.tx if isinstance(rec.tx, dict) else {}
        body: dict[str, Any] = tx["body"] if isinstance(tx.get("body"), dict) else {}
        hidden = private_tx(body.get("type")) and not may_read_tx(self.node.app.read, body, None)
        sender = body.get("sender")
        return {"id": tx_id, "height": int(rec.height), "index": int(rec.index),
                "type": None if hidden else body.get("type"), "private": hidden,
                "body": None if hidden else body,
                "account": account_of(bytes.fromhex(sender)) if isinstance(sender, str) and not hidden else None}

    def pending(self, tx_id: str) -> bool:
        return bytes.fromhex(tx_id) in self.node.mempool

    def transaction(self, tx_id: str) -> dict[str, Any] | None:
        """A committed transaction with its receipt (redacted for a private one), its events
        and both proofs, as ``GET /v1/txs/{id}`` answers an unsigned reader."""
        rec = self.tx_record(tx_id)
        if rec is None:
            return None
        view = self.block(rec["height"]) or {}
        receipts = view.get("receipts") or []
        receipt = receipts[rec["index"]] if rec["index"] < len(receipts) else {}
        proven = self.node.app.chain.receipt_proof(bytes.fromhex(tx_id))
        rec.update(block_hash=view.get("hash"), time_ms=int((view.get("header") or {}).get("time", 0)),
                   receipt=receipt, events=[] if rec["private"] else list(receipt.get("events") or []),
                   receipt_proof=proven[1] if proven else None,
                   proof={"root": (view.get("header") or {}).get("txs"), "size": len(view.get("tx_ids") or [])})
        ids = [bytes.fromhex(t) for t in view.get("tx_ids") or []]
        if rec["index"] < len(ids):
            rec["proof"]["path"] = [p.hex() for p in inclusion_proof(ids, rec["index"])]
        return rec

    def block_txs(self, view: dict[str, Any], only_protected: bool = False,
                  last: int | None = None) -> list[dict[str, Any]]:
        """The first ``MAX_SHOWN_TXS`` transactions of a block view (or its ``last`` ones, or
        only its protected ones: their receipts are the redacted ones, no lookup needed for
        the others)."""
        out = []
        receipts = view.get("receipts") or []
        ids = view.get("tx_ids") or []
        start = 0 if last is None else max(0, len(ids) - last)
        for i in range(start, min(len(ids), start + MAX_SHOWN_TXS)):
            receipt = receipts[i] if i < len(receipts) else {}
            if only_protected and not receipt.get("redacted"):
                continue
            rec = self.tx_record(ids[i]) or {"id": ids[i], "type": None, "private": False, "account": None}
            rec["code"] = receipt.get("code")
            rec["height"] = view["height"]
            out.append(rec)
        return out

    def recent_txs(self, n: int = PAGE, before: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """Up to ``n`` transactions of the blocks below ``before`` (newest first, at most
        ``SCAN_BLOCKS`` blocks walked) and the height to continue below (None: genesis
        reached). A block with more than fit shows its newest: its page lists them all."""
        top = self.head if before is None else min(before - 1, self.head)
        out: list[dict[str, Any]] = []
        h = top
        while h >= 1 and top - h < SCAN_BLOCKS and len(out) < n:
            view = self.block(h)
            if view is not None and view["tx_ids"]:
                out.extend(reversed(self.block_txs(view, last=n - len(out))))
            h -= 1
        return out, (h + 1 if h >= 1 else None)

    def protected_txs(self) -> list[dict[str, Any]]:
        """The evidence and case transactions of the last ``SCAN_BLOCKS`` blocks (public facts only)."""
        out: list[dict[str, Any]] = []
        for h in range(self.head, max(self.head - SCAN_BLOCKS, 0), -1):
            view = self.block(h)
            if view is None or not view["tx_ids"]:
                continue
            out.extend(r for r in self.block_txs(view, only_protected=True) if r["private"])
            if len(out) >= PAGE:
                break
        return out[:PAGE]

    # ------------------------------------------------------------ events
    def events(self, type_: str, key: str | None = None, limit: int = PAGE, from_height: int = 0) -> list[dict[str, Any]]:
        """Public events of one type (never ``evidence.*``/``case.*``)."""
        if type_.startswith(("evidence.", "case.")):
            return []
        return list(self.node.app.chain.events(type_, key, from_height=from_height, limit=limit))

    def latest_events(self, type_: str, key: str | None = None, n: int = PAGE) -> list[dict[str, Any]]:
        """The newest ``n`` public events of a type (and key), newest first."""
        if type_.startswith(("evidence.", "case.")):
            return []
        return list(self.node.app.chain.latest_events(type_, key, n))

    def audit(self, type_: str | None, n: int = PAGE) -> list[dict[str, Any]]:
        return list(self.node.app.chain.audit(type_=type_, limit=n))

    # ------------------------------------------------------------ accounts
    def state_json(self, key: str) -> Any:
        if private_key(key):
            return None
        raw = self.node.app.read(key.encode())
        return None if raw is None else parse(raw)

    def user(self, account: str) -> dict[str, Any] | None:
        got = self.state_json(f"sys/user/{account}")
        return dict(got) if isinstance(got, dict) else None

    def users(self) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for r in self.audit("user.register", MAX_QUERY):
            if r.get("code") == 0 and r["actor"] not in seen:
                seen[r["actor"]] = self.user(r["actor"]) or {"account": r["actor"]}
        return list(seen.values())

    def account(self, account: str) -> dict[str, Any]:
        """A user's record, token balances and NFTs held (found through the events indexed
        under the account), the works it registered and its token activity."""
        activity = self.latest_events("ft.Transfer", account) + self.latest_events("ft.Mint", account)
        symbols = sorted({str(e["event"]["data"].get("symbol")) for e in activity if e["event"]["data"].get("symbol")})
        tokens = [(s, balance(self.node.app.read, s, account)) for s in symbols[:PAGE]]
        nfts = []
        candidates = self.latest_events("nft.Mint", account, MAX_QUERY) + self.latest_events("nft.Transfer", account)
        for key in dict.fromkeys(f"{e['event']['data'].get('class')}/t/{e['event']['data'].get('id')}" for e in candidates):
            tok = self.state_json(f"nft/{key}")
            if isinstance(tok, dict) and tok.get("owner") == account and not tok.get("burned"):
                nfts.append(tok)
            if len(nfts) >= PAGE:
                break
        works = [self.work(e["event"]["data"]["work_id"]) for e in self.latest_events("works.Registered", account)]
        return {"account": account, "user": self.user(account), "tokens": tokens, "nfts": nfts,
                "works": [w for w in works if w], "activity": sorted(activity, key=lambda e: -e["height"])[:PAGE]}

    def nft(self, cls: str, tid: str) -> dict[str, Any] | None:
        """A token's state and its newest ``PAGE`` provenance entries (newest first)."""
        if not (ID_RE.fullmatch(cls) and ID_RE.fullmatch(tid)):
            return None
        tok = self.state_json(f"nft/{cls}/t/{tid}")
        if not isinstance(tok, dict):
            return None
        count = int(tok.get("history", 0))
        entries = history(self.node.app.read, cls, tid, start=max(0, count - PAGE), limit=PAGE)
        return dict(tok, provenance=list(reversed(entries)))

    # ------------------------------------------------------------ contracts
    def contract_names(self) -> list[str]:
        names = [str(e["event"]["data"].get("name") or (e["event"].get("keys") or [""])[0])
                 for e in self.events("contract.upload", limit=MAX_QUERY)]
        return [n for n in dict.fromkeys(names) if n]

    def contract(self, name: str) -> dict[str, Any] | None:
        info = contract_info(self.node.app.read, name)
        if info is None:
            return None
        info["name"] = name
        info["history"] = contract_history(self.node.app.read, name)
        info["audit"] = [r for r in self.audit("contract.*", MAX_QUERY)
                         if isinstance(r.get("payload"), dict) and name in (r["payload"].get("name"),
                                                                             r["payload"].get("contract"))][-PAGE:]
        return info

    # ------------------------------------------------------------ works
    def work(self, work_id: str) -> dict[str, Any] | None:
        if not ID_RE.fullmatch(work_id):
            return None
        return work_record(self.node.app.read, work_id)

    def works(self, n: int = PAGE) -> list[dict[str, Any]]:
        out = []
        for e in self.latest_events("works.Registered", None, n):
            w = self.work(str(e["event"]["data"].get("work_id", "")))
            if w:
                out.append(w)
        return out

    # ------------------------------------------------------------ search
    def search(self, q: str) -> list[tuple[str, str, str]]:
        """What ``q`` names: ``(kind, label, path)`` for a height, a block hash, a
        transaction id, an account, a work id or a file's SM3, a contract name, or words of
        a work title (the latest ``TITLE_SCAN`` registrations)."""
        q = q.strip()[:256]
        low = q.lower()
        hits: list[tuple[str, str, str]] = []
        if q.isdigit() and int(q) <= self.head:
            hits.append(("block", q, f"/blocks/{int(q)}"))
        if HEX64.fullmatch(low):
            h = self.height_of(low)
            if h is not None:
                hits.append(("block", low, f"/blocks/{h}"))
            if self.node.app.chain.tx(bytes.fromhex(low)) is not None or self.pending(low):
                hits.append(("transaction", low, f"/txs/{low}"))
            for e in self.latest_events("works.Registered", low):
                wid = str(e["event"]["data"].get("work_id"))
                hits.append(("work", wid, f"/works/{wid}"))
        if HEX40.fullmatch(low):
            hits.append(("account", low, f"/accounts/{low}"))
        if self.work(q) is not None:
            hits.append(("work", q, f"/works/{q}"))
        if ID_RE.fullmatch(q) and contract_info(self.node.app.read, q) is not None:
            hits.append(("contract", q, f"/contracts/{q}"))
        if q and not hits:
            for w in self.works(TITLE_SCAN):
                title = str((w.get("attributes") or {}).get("title", ""))
                if low in title.lower():
                    hits.append(("work", f"{title} ({w['work_id']})", f"/works/{w['work_id']}"))
                if len(hits) >= PAGE:
                    break
        return hits
