"""A party process that misbehaves in a chosen round (config key "fault": {"mode", "round"})."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from pathlib import Path

from privacy.mpc import party
from privacy.mpc.transport import KIND_DATA, Network, header

_send = Network.send


async def faulty_send(self: Network, peer: str, rnd: int, payload: bytes) -> None:
    fault = FAULT
    if rnd != fault["round"]:
        return await _send(self, peer, rnd, payload)
    mode = fault["mode"]
    if mode == "die":
        os._exit(3)
    if mode == "hang":
        await asyncio.sleep(3600)
    link = self.links[peer]
    if mode == "garbage":
        link.writer.write(secrets.token_bytes(64 + len(payload)))
    elif mode == "wrong-length":
        link.writer.write(header(KIND_DATA, rnd, len(payload) + 8) + payload + b"\0" * 8)
    elif mode == "random-values":
        return await _send(self, peer, rnd, secrets.token_bytes(len(payload)))
    await link.writer.drain()
    await asyncio.sleep(3600)


if __name__ == "__main__":
    FAULT = json.loads(Path(sys.argv[1]).read_text())["fault"]
    Network.send = faulty_send  # type: ignore[method-assign]
    sys.exit(party.main(sys.argv))
