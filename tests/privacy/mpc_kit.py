"""Party processes on loopback for the MPC tests: certificates, CSV files, configs, launch."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.crypto import SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA
from tests.ports import free_port

SCHEMA = {"columns": {"views": {"min": 0, "max": 100000}, "likes": {"min": 0, "max": 5000}}}


@dataclass
class Cluster:
    root: Path
    ids: list[str]
    ports: dict[str, int] = field(default_factory=dict)
    ca: ConsortiumCA | None = None

    @classmethod
    def create(cls, root: Path, n: int) -> Cluster:
        c = cls(root, [f"platform-{chr(97 + k)}" for k in range(n)])
        c.ca = ConsortiumCA.init(root / "ca", "MPC Consortium")
        for pid in [*c.ids, "intruder"]:
            c.issue(pid)
        c.ports = {pid: free_port() for pid in c.ids}
        return c

    def issue(self, pid: str) -> None:
        assert self.ca is not None
        cert = self.ca.issue(kind="node", name=pid, org="Org", role="consensus",
                             public_key=SM2PrivateKey.generate().public_key())
        key_pem, cert_pem = self.ca.issue_transport(pid, cert)
        d = self.root / pid
        d.mkdir(exist_ok=True)
        (d / "tls.key").write_bytes(key_pem)
        (d / "tls.crt").write_bytes(cert_pem)

    def random_data(self, seed: int, n_ids: int, present: float = 0.75) -> tuple[list[str], dict[str, dict]]:
        rnd = random.Random(seed)
        ids = [f"w{k:05d}" for k in range(n_ids)]
        data: dict[str, dict] = {}
        for pid in self.ids:
            rows = {i: {"views": rnd.randrange(0, 100001), "likes": rnd.randrange(0, 5001)}
                    for i in ids if rnd.random() < present}
            data[pid] = rows
            with open(self.root / f"{pid}.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["content_id", "views", "likes"])
                for i, r in rows.items():
                    w.writerow([i, r["views"], r["likes"]])
        return ids, data

    def config(self, pid: str, query: dict[str, Any], cid: str = "c1", timeout: float = 20,
               tls_as: str | None = None) -> dict[str, Any]:
        who = tls_as or pid
        return {
            "me": pid, "computation_id": cid, "timeout": timeout, "query": query, "schema": SCHEMA,
            "data_csv": str(self.root / f"{pid}.csv"),
            "parties": [{"id": p, "host": "127.0.0.1", "port": self.ports[p],
                         "cert_file": str(self.root / p / "tls.crt")} for p in self.ids],
            "tls": {"cert": str(self.root / who / "tls.crt"), "key": str(self.root / who / "tls.key"),
                    "ca": str(self.ca.folder / "transport-ca.crt.pem") if self.ca else ""},
        }

    def launch(self, configs: dict[str, dict[str, Any]], module: str = "privacy.mpc.party",
               modules: dict[str, str] | None = None) -> dict[str, subprocess.Popen[bytes]]:
        procs = {}
        for pid, cfg in configs.items():
            (self.root / f"{pid}.cfg.json").write_text(json.dumps(cfg))
            mod = (modules or {}).get(pid, module)
            procs[pid] = subprocess.Popen([sys.executable, "-m", mod, str(self.root / f"{pid}.cfg.json"),
                                           str(self.root / f"{pid}.out.json")])
        return procs

    def results(self, procs: dict[str, subprocess.Popen[bytes]], timeout: float = 120,
                faulty: frozenset[str] = frozenset()) -> dict[str, dict]:
        """Wait for the honest parties, then stop the faulty ones (which may hang on purpose)."""
        out = {}
        for pid, p in sorted(procs.items(), key=lambda kv: kv[0] in faulty):
            if pid in faulty and p.poll() is None:
                p.kill()
            p.wait(timeout)
            f = self.root / f"{pid}.out.json"
            out[pid] = json.loads(f.read_text()) if f.exists() else {"ok": False, "error": "no output"}
        return out

    def run(self, query: dict[str, Any], cid: str = "c1", **kw: Any) -> dict[str, dict]:
        return self.results(self.launch({p: self.config(p, query, cid, **kw) for p in self.ids}))
