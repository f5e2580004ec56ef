"""One platform's long-lived party process (``rongxin mpc serve``), next to its node.

It registers its address and transport certificate (``mpc.register``), then watches the chain:
for every computation naming it whose every named party approved the proposal as it stands,
it checks the other parties itself (registered, certificate not revoked, transport certificate
bound to the current one), loads its CSV against the proposal's schema, files its commitment
(``mpc.commit``) to every ready computation before waiting on any, then starts each one as
soon as every party committed, checking the parties again, and runs it with the others
(``privacy.mpc.run_computation``, in a worker thread; its links come through the process's
always-on listener, which routes them by computation id, so runs go on side by side and a peer
that starts first is never refused), opens the sum of the commitments' randomness jointly (a
second run), and records the result (``mpc.record``): done, or aborted with the error naming
the party at fault. docs/privacy.md ("On chain", "The party process") is the specification.
"""

from __future__ import annotations

import csv
import ctypes
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.crypto import Scalar, sm3_hex
from ledger.errors import LedgerError
from ledger.tx import InvalidTransaction
from privacy.chain import (
    APPROVAL_WINDOW_MS,
    DEFAULT_DATASET,
    LIMB_SCHEMA,
    PUBLIC,
    bucket_count,
    commitments,
    input_values,
    limb_ids,
    limbs,
    outputs_text,
    randomness_sums,
    seal,
    unapproved,
)
from privacy.mpc import (
    InputError,
    Listener,
    MPCError,
    PartyError,
    PartySpec,
    QueryError,
    Schema,
    TLSFiles,
    load_csv,
    run_computation,
)

from . import sdk_mpc
from .sdk import ClientError, LedgerClient

__all__ = ["PartyProcess", "Refusal", "exit_with_parent", "public_outputs", "transport_files"]

FINAL = ("done", "aborted", "disputed")
TRANSPORT_FILES = ("transport.crt.pem", "transport.key.pem", "transport-ca.crt.pem")
PR_SET_PDEATHSIG = 1
PRUNE_MARGIN_MS = 3600 * 1000  # past the approval window, for clocks that disagree with the block time


class Refusal(Exception):
    """This party will not compute; ``party`` is the one at fault."""

    def __init__(self, party: str, reason: str, blame: str | None = None) -> None:
        super().__init__(f"party {party}: {reason}")
        self.party, self.reason = party, reason
        self.blame = party if blame is None else blame


def exit_with_parent() -> None:
    """Linux: have the kernel send this process SIGTERM when the process that started it dies
    (``prctl(PR_SET_PDEATHSIG)``), so a party never outlives its launcher or supervisor."""
    if sys.platform != "linux":
        return
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the call
        os.kill(os.getpid(), signal.SIGTERM)


def public_outputs(query: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What is recorded of a run's outputs: all of them, except a ``shares`` run's ``share``
    (this party's own figure over the pool: recording it would publish its input, and it
    differs at every party); that one stays with the party process (its log)."""
    if query.get("op") == "shares" and "share" in values:
        return {k: v for k, v in values.items() if k != "share"}
    return values


def transport_files(folder: Path) -> TLSFiles:
    """The party's transport key and certificate and the transport CA, from its identity folder."""
    missing = [n for n in TRANSPORT_FILES if not (folder / n).is_file()]
    if missing:
        raise ClientError(f"identity {folder} has no {', '.join(missing)}: a platform's transport certificate is "
                          "issued under the consortium root (rongxin up issues one for each demo platform)")
    return TLSFiles(folder / TRANSPORT_FILES[0], folder / TRANSPORT_FILES[1], folder / TRANSPORT_FILES[2])


@dataclass
class Prepared:
    """A computation this party committed to: the record it committed to, its data, the
    commitments' randomness and when it stops waiting for the others' commitments."""

    rec: dict[str, Any]
    data: dict[str, dict[str, int]]
    rnd: list[Scalar]
    deadline: float


@dataclass
class PartyProcess:
    client: LedgerClient
    folder: Path
    data: Path
    host: str
    port: int
    poll: float = 1.0
    commit_wait: float = 60.0
    timeout: float = 30.0
    log: Callable[[str], None] = print
    datasets: tuple[str, ...] = (DEFAULT_DATASET,)
    seen: int = 0
    pending: list[str] = field(default_factory=list)  # computations naming this party, not yet committed to
    order: dict[str, int] = field(default_factory=dict)  # computation id -> its place in chain order
    prepared: dict[str, Prepared] = field(default_factory=dict)  # committed to, not yet run
    unrecorded: dict[str, dict[str, Any]] = field(default_factory=dict)  # records the node did not take yet
    watched: set[str] = field(default_factory=set)  # seen not yet final by this process
    running: dict[str, Future[dict[str, Any]]] = field(default_factory=dict)  # started, not yet recorded
    listener: Listener | None = None  # the always-on listener (serve); None: each run listens for itself

    @property
    def me(self) -> str:
        assert self.client.identity is not None
        return self.client.identity.name

    # ------------------------------------------------------------ registration
    def register(self) -> None:
        tls = transport_files(self.folder)
        cert = tls.cert.read_text()
        reg = sdk_mpc.party(self.client, self.me)
        if reg is not None and (reg["host"], reg["port"], reg["transport_cert"]) == (self.host, self.port, cert):
            self.log(f"{self.me}: registered at {self.host}:{self.port} (unchanged)")
            return
        sdk_mpc.file_tx(self.client, "mpc.register", {"host": self.host, "port": self.port, "transport_cert": cert})
        self.log(f"{self.me}: registered at {self.host}:{self.port}")

    # ------------------------------------------------------------ the watch
    def step(self) -> None:
        """Pick up new computations; commit to every ready one naming this party before waiting
        on any (docs/privacy.md "The party process"), start every committed one once every party
        committed, and record the runs that ended. A computation whose commitment the node refused is looked at
        again at the next step."""
        n = sdk_mpc.count(self.client)
        for k in range(self.seen, n):
            cid = sdk_mpc.nth(self.client, k)
            self.pending.append(cid)
            self.order[cid] = k
        self.seen = n
        self.retry_records()
        for cid in list(self.pending):
            rec = sdk_mpc.computation(self.client, cid)
            if rec is None or self.me not in rec["proposal"]["parties"] or rec["status"] in FINAL:
                self.pending.remove(cid)
                if rec is not None and cid in self.watched:
                    self.dissent(rec)
                continue
            self.watched.add(cid)
            if unapproved(rec):  # nobody computes before every named party approved this exact proposal
                if time.time() * 1000 > int(rec["time_ms"]) + APPROVAL_WINDOW_MS + PRUNE_MARGIN_MS:
                    self.pending.remove(cid)  # closed to approvals on chain: it can never run
                continue
            try:
                self.commit(rec)
            except ClientError as exc:  # e.g. amended meanwhile: read again next time
                self.log(f"{self.me}: {cid[:16]}… not committed ({exc}); will look again")
                continue
            self.pending.remove(cid)
        self.start_ready()
        self.collect()

    def serve(self) -> None:
        self.listener = Listener(self.me, self.host, self.port, self.tls, self.timeout)
        try:
            self.listener.start()
        except OSError as exc:
            raise ClientError(f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc})") from None
        try:
            self.register()
            while True:
                try:
                    self.step()
                except (ClientError, LedgerError) as exc:
                    self.log(f"{self.me}: the node did not answer or refused ({exc}); retrying")
                except (ValueError, KeyError, TypeError) as exc:  # a malformed record: skipped, never fatal
                    self.log(f"{self.me}: skipped a malformed record ({type(exc).__name__}: {exc})")
                time.sleep(self.poll)
        finally:
            self.listener.stop()

    # ------------------------------------------------------------ one computation
    def commit(self, rec: dict[str, Any]) -> None:
        """Check the computation, load the data and file the commitment (``ClientError`` when
        the node refuses it); a refusal to compute is recorded as aborted at once."""
        cid, proposal = rec["computation_id"], rec["proposal"]
        self.log(f"{self.me}: computation {cid} approved by every party; committing")
        try:
            data = self.check(rec)
            blob, rnd = commitments(input_values(proposal["query"], data))
        except ClientError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded as aborted, never left hanging
            self.finish(cid, self.failure(exc))
            return
        sdk_mpc.file_tx(self.client, "mpc.commit", {"computation_id": cid, "proposal_sm3": rec["proposal_sm3"],
                                                    "commitments": blob})
        self.prepared[cid] = Prepared(rec, data, rnd, time.monotonic() + self.commit_wait)

    def check(self, rec: dict[str, Any]) -> dict[str, dict[str, int]]:
        proposal = rec["proposal"]
        if proposal["dataset"] not in self.datasets:  # its data is what --dataset says, whatever the columns
            raise Refusal(self.me, f"its CSV holds the data set(s) {', '.join(self.datasets)}, not "
                                   f"{proposal['dataset']!r}: it does not compute on another data set", blame="")
        self.specs(list(proposal["parties"]))
        data = self.load(proposal["schema"])
        if self.me in rec["committed"]:
            raise Refusal(self.me, "restarted after filing its commitment; the commitment's randomness is lost")
        return data

    def start_ready(self) -> None:
        """Start every committed computation that every party committed to, oldest first (chain
        order), each at once in a thread of its own, its links through the always-on listener
        (no cap: a run queued here while its peers start it would time out on both sides);
        abort naming the missing parties ``commit_wait`` after this party's own commitment. A
        result recorded by another party once every party committed does not stop this one:
        it runs and records its own view. Without a listener (each run binding the port for
        itself) one run at a time."""
        for cid in sorted(self.prepared, key=lambda c: self.order.get(c, 0)):
            if self.listener is None and self.running:
                return
            prep = self.prepared[cid]
            parties = list(prep.rec["proposal"]["parties"])
            rec = sdk_mpc.computation(self.client, cid)
            missing = parties if rec is None else [p for p in parties if p not in rec["committed"]]
            if missing and (rec is None or rec["status"] in FINAL):
                # an end recorded before every commitment: no commitment can follow it, and the
                # missing ones may have been kept out by that end itself, so this party has no view
                # of its own to record (a party it blames falsely records its dissent: ``dissent``)
                del self.prepared[cid]
                self.log(f"{self.me}: computation {cid} ended before every party committed (missing {missing})")
                continue
            if missing and time.monotonic() <= prep.deadline:
                continue
            del self.prepared[cid]
            if missing:
                self.finish(cid, self.failure(Refusal(",".join(missing), f"did not file its commitment within "
                                                      f"{self.commit_wait:g} s (its party process is not running?)")))
                continue
            proposal = prep.rec["proposal"]
            try:  # again: a party revoked since the commitment is refused
                specs = self.specs(list(proposal["parties"]))
                keys = {} if proposal["readers"] == [PUBLIC] else self.reader_keys(proposal["readers"])
            except ClientError as err:  # reading the parties or readers: again next step
                self.prepared[cid] = prep
                self.log(f"{self.me}: {cid[:16]}… the node did not answer ({err}); will try again")
                continue
            except Exception as err:  # noqa: BLE001 - the others must not wait for a result that never comes
                self.finish(cid, self.failure(err))
                continue
            self.running[cid] = self.start(prep, specs, keys)

    def collect(self) -> None:
        """Record the view of every run that ended."""
        for cid, job in list(self.running.items()):
            if not job.done():
                continue
            del self.running[cid]
            try:
                fields = job.result()
            except Exception as err:  # noqa: BLE001 - the others must not wait for a result that never comes
                fields = self.failure(err)
            self.finish(cid, fields)

    def start(self, prep: Prepared, specs: list[PartySpec], keys: dict[str, bytes]) -> Future[dict[str, Any]]:
        """``run`` in a daemon thread of its own (a process stopping does not wait for it)."""
        job: Future[dict[str, Any]] = Future()

        def work() -> None:
            try:
                job.set_result(self.run(prep, specs, keys))
            except BaseException as exc:  # noqa: BLE001 - recorded as aborted by collect
                job.set_exception(exc)

        threading.Thread(target=work, name=f"mpc-run-{prep.rec['computation_id'][:12]}", daemon=True).start()
        return job

    def dissent(self, rec: dict[str, Any]) -> None:
        """Another party recorded an abort blaming this one while it was watching the
        computation and before it committed: it records its own view (blaming the recorder),
        which the contract marks as a dispute."""
        res = rec.get("result") or {}
        by = str(res.get("by", ""))
        if (rec["status"] == "aborted" and by != self.me and self.me in str(res.get("blame", "")).split(",")
                and self.me not in rec["committed"] and self.me not in rec.get("confirmations", {})):
            self.finish(rec["computation_id"], {
                "status": "aborted", "blame": by,
                "error": f"party {by}: recorded the computation aborted blaming {self.me} while {self.me} was "
                         "running and watching it, before it could commit"})

    def failure(self, exc: Exception) -> dict[str, Any]:
        """The ``aborted`` record of an exception: the party at fault as ``blame``."""
        if isinstance(exc, Refusal):
            return {"status": "aborted", "error": str(exc), "blame": exc.blame}
        if isinstance(exc, PartyError):
            return {"status": "aborted", "error": str(exc), "blame": exc.party}
        if isinstance(exc, InputError):  # its own data: the rule broken, never the value
            return {"status": "aborted", "error": f"InputError: party {self.me}: {exc.public}", "blame": self.me}
        if isinstance(exc, QueryError):
            return {"status": "aborted", "error": f"QueryError: {exc}", "blame": ""}
        if isinstance(exc, MPCError):
            return {"status": "aborted", "error": str(exc), "blame": ""}
        return {"status": "aborted", "error": f"party {self.me}: internal error {type(exc).__name__}: {exc}",
                "blame": self.me}

    def finish(self, cid: str, fields: dict[str, Any]) -> None:
        """Record this party's view; when the node cannot be reached, again at the next steps."""
        fields["error"] = str(fields.get("error", ""))[:1000]
        try:
            self.record(cid, fields)
        except ClientError as exc:
            if exc.status is None:
                self.unrecorded[cid] = fields
            self.log(f"{self.me}: could not record {cid}: {exc}")
            return
        self.log(f"{self.me}: computation {cid} {fields['status']}"
                 + (f": {fields['error']}" if fields["status"] == "aborted" else ""))

    def retry_records(self) -> None:
        for cid, fields in list(self.unrecorded.items()):
            del self.unrecorded[cid]
            self.finish(cid, fields)

    def record(self, cid: str, fields: dict[str, Any]) -> None:
        """``mpc.record``; a result that cannot be signed into one transaction (over 64 KiB)
        is recorded as aborted with the reason instead, so nobody waits for it."""
        try:
            sdk_mpc.file_tx(self.client, "mpc.record", {"computation_id": cid, **fields})
        except InvalidTransaction as exc:
            fields.clear()
            fields.update(status="aborted", blame="",
                          error=f"party {self.me}: the result cannot be recorded in one transaction ({exc})")
            sdk_mpc.file_tx(self.client, "mpc.record", {"computation_id": cid, **fields})

    def run(self, prep: Prepared, specs: list[PartySpec], keys: dict[str, bytes]) -> dict[str, Any]:
        """One run and the joint opening of its randomness (a worker thread: no node calls)."""
        cid, proposal = prep.rec["computation_id"], prep.rec["proposal"]
        query, schema = proposal["query"], proposal["schema"]
        readers = proposal["readers"]
        started = time.perf_counter()
        out = run_computation(self.me, specs, query, prep.data, schema, cid, self.tls, self.timeout, self.listener)
        values = public_outputs(query, out.values)
        if values is not out.values:
            self.log(f"{self.me}: {cid[:16]}… own share {out.values.get('share')} (kept here, never recorded)")
        ran = time.perf_counter() - started
        buckets = bucket_count(len(query["ids"]))
        opened = run_computation(self.me, specs, {"op": "sum", "column": "r", "ids": limb_ids(buckets)},
                                 limbs(prep.rnd), LIMB_SCHEMA, cid + "/randomness", self.tls, self.timeout,
                                 self.listener)
        self.log(f"{self.me}: {cid[:16]}… query {ran:.2f} s ({out.bytes_sent} bytes sent), randomness opened in "
                 f"{time.perf_counter() - started - ran:.2f} s ({opened.bytes_sent} bytes sent)")
        text = outputs_text(values)
        sealed = {"outputs": text} if readers == [PUBLIC] else {"sealed": seal(cid, text, keys)}
        return {"status": "done", **sealed, "outputs_sm3": sm3_hex(text.encode()),
                "transcript_sm3": out.transcript_sm3, "randomness_transcript_sm3": opened.transcript_sm3,
                "randomness": randomness_sums(opened.values["totals"], buckets)}

    @property
    def tls(self) -> TLSFiles:
        return transport_files(self.folder)

    def reader_keys(self, readers: list[str]) -> dict[str, bytes]:
        """Each reader account's public key (its user record's ``key``)."""
        out = {}
        for acct in readers:
            user = self.client.state_json(f"sys/user/{acct}")
            if not isinstance(user, dict) or not isinstance(user.get("key"), str):
                raise Refusal(self.me, f"reader {acct} has no user record to seal the outputs to")
            out[acct] = bytes.fromhex(user["key"])
        return out

    def specs(self, parties: list[str]) -> list[PartySpec]:
        """Every named party as registered, each checked here: registered, its user record
        active (not revoked), its transport certificate bound to its current certificate."""
        out = []
        for name in parties:
            reg = sdk_mpc.party(self.client, name)
            if reg is None:
                raise Refusal(name, "has not registered a party address")
            user = self.client.state_json(f"sys/user/{reg['account']}")
            if not isinstance(user, dict) or user.get("status") != "active":
                raise Refusal(name, "its certificate was revoked; refusing to compute with it")
            if user.get("certificate") != reg.get("certificate"):
                raise Refusal(name, "its registered transport certificate is bound to a certificate it no longer holds")
            out.append(PartySpec(name, str(reg["host"]), int(reg["port"]), str(reg["transport_cert"]).encode()))
        return out

    def load(self, schema: dict[str, Any]) -> dict[str, dict[str, int]]:
        """This party's CSV against the proposal's schema: the schema's columns are taken from
        it (other columns are ignored); a row breaking the schema blames this party."""
        try:
            parsed = Schema.parse(schema)
            with open(self.data, newline="", encoding="utf-8") as f, \
                    tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", suffix=".csv") as tmp:
                reader, writer = csv.reader(f, strict=True), csv.writer(tmp)
                head = next(reader, [])
                cols = ["content_id", *parsed.columns]
                if head[:1] != ["content_id"] or any(c not in head for c in cols) or len(set(head)) != len(head):
                    raise InputError(f"the CSV header {head[:8]} lacks a column of the data set {cols} or repeats "
                                     "one", row=1, rule=f"the CSV header must name each column once, {cols} among "
                                                        "them")
                pos = [head.index(c) for c in cols]
                writer.writerow(cols)
                for row in reader:
                    if len(row) != len(head):
                        raise InputError(f"{len(row)} fields where the header has {len(head)}", row=reader.line_num)
                    writer.writerow([row[i] for i in pos])
                tmp.flush()
                return load_csv(tmp.name, parsed)
        except (OSError, csv.Error, UnicodeDecodeError) as exc:  # the details (path, bytes) stay in the log
            self.log(f"{self.me}: cannot read its data {self.data}: {exc}")
            raise Refusal(self.me, f"cannot read its data ({type(exc).__name__})") from None
        except InputError as exc:
            self.log(f"{self.me}: its data breaks the declared schema: {exc}")
            raise Refusal(self.me, f"its data breaks the declared schema: {exc.public}") from None
        except QueryError as exc:  # the schema itself (public, from the proposal)
            raise Refusal(self.me, f"the data set's schema is refused: {exc}") from None
