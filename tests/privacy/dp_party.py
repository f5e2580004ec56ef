"""A party process that also writes the noise share it drew to ``OUT.noise.json`` (test only: a
real party never writes or sends its share; the test uses it to check where the noise came from)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from privacy.mpc import party
from privacy.mpc.noise import Noise

_share = Noise.share


def recording_share(self: Noise, size: int) -> Any:
    z = _share(self, size)
    Path(OUT + ".noise.json").write_text(json.dumps(z.tolist()))
    return z


if __name__ == "__main__":
    OUT = sys.argv[2]
    Noise.share = recording_share  # type: ignore[method-assign]
    sys.exit(party.main(sys.argv))
