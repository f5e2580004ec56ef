"""Run one party of one computation from a JSON file (used by the tests and the bench):

    python -m privacy.mpc.party CONFIG.json OUT.json

CONFIG: ``{"me", "parties": [{"id", "host", "port", "cert_file"}], "tls": {"cert", "key", "ca"},
"query", "schema", "data_csv", "computation_id", "timeout"}``. OUT receives
``{"ok": true, "outputs", "transcript_sm3", "bytes_sent", "bytes_received", "seconds"}`` or
``{"ok": false, "error", "kind", "party"}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from .data import Schema, load_csv
from .engine import run_computation
from .errors import MPCError, PartyError
from .transport import PartySpec, TLSFiles


def run_config(cfg: dict[str, Any]) -> dict[str, Any]:
    parties = [PartySpec(p["id"], p["host"], int(p["port"]), Path(p["cert_file"]).read_bytes())
               for p in cfg["parties"]]
    tls = TLSFiles(Path(cfg["tls"]["cert"]), Path(cfg["tls"]["key"]), Path(cfg["tls"]["ca"]))
    try:
        started = time.perf_counter()
        data = load_csv(cfg["data_csv"], Schema.parse(cfg["schema"]))
        loaded = time.perf_counter() - started
        out = run_computation(cfg["me"], parties, cfg["query"], data, cfg["schema"], cfg["computation_id"],
                              tls, float(cfg.get("timeout", 30)))
    except MPCError as exc:
        return {"ok": False, "error": str(exc), "kind": type(exc).__name__,
                "party": exc.party if isinstance(exc, PartyError) else cfg["me"]}
    formatted = time.perf_counter()
    values = out.values
    formatted = time.perf_counter() - formatted
    return {"ok": True, "outputs": values, "format_seconds": formatted, "transcript_sm3": out.transcript_sm3,
            "bytes_sent": out.bytes_sent, "bytes_received": out.bytes_received, "seconds": out.seconds,
            "link_seconds": out.link_seconds,
            "load_seconds": loaded}


def main(argv: list[str]) -> int:
    cfg = json.loads(Path(argv[1]).read_text())
    result = run_config(cfg)
    Path(argv[2]).write_text(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
