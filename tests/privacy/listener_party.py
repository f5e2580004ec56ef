"""A party process with an always-on listener (as ``rongxin mpc serve`` has) running several
computations side by side, each after its own delay (used by test_mpc_listener):

    python -m tests.privacy.listener_party CONFIG.json OUT.json

CONFIG: as ``privacy.mpc.party`` plus ``"runs": [{"computation_id", "query", "delay"}]``.
OUT: ``{computation_id: {"ok": true, "outputs"} | {"ok": false, "error", "party"}}``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from privacy.mpc import Listener, MPCError, PartyError, PartySpec, Schema, TLSFiles, load_csv, run_computation


def main(argv: list[str]) -> int:
    cfg = json.loads(Path(argv[1]).read_text())
    parties = [PartySpec(p["id"], p["host"], int(p["port"]), Path(p["cert_file"]).read_bytes())
               for p in cfg["parties"]]
    tls = TLSFiles(Path(cfg["tls"]["cert"]), Path(cfg["tls"]["key"]), Path(cfg["tls"]["ca"]))
    me = next(p for p in parties if p.id == cfg["me"])
    listener = Listener(me.id, me.host, me.port, tls, float(cfg["timeout"]))
    listener.start()
    data = load_csv(cfg["data_csv"], Schema.parse(cfg["schema"]))
    out: dict[str, Any] = {}

    def one(run: dict[str, Any]) -> None:
        time.sleep(float(run["delay"]))
        try:
            res = run_computation(me.id, parties, run["query"], data, cfg["schema"], run["computation_id"], tls,
                                  float(cfg["timeout"]), listener)
            out[run["computation_id"]] = {"ok": True, "outputs": res.values}
        except MPCError as exc:
            out[run["computation_id"]] = {"ok": False, "error": str(exc),
                                          "party": exc.party if isinstance(exc, PartyError) else me.id}

    threads = [threading.Thread(target=one, args=(run,)) for run in cfg["runs"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listener.stop()
    Path(argv[2]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
