"""File and output helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger.crypto.ca import atomic_write

from .errors import EnvironmentProblem, InputError


def read_input(path: str | Path, what: str) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} {p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{what} {p} is a directory, not a file") from None
    except PermissionError:
        raise InputError(f"{what} {p}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{what} {p}: {exc.strerror}") from None


def read_password(path: str | Path | None) -> bytes | None:
    """A password file's content without its trailing newline (as OpenSSL's ``file:``)."""
    if path is None:
        return None
    raw = read_input(path, "password file").rstrip(b"\r\n")
    if not raw:
        raise InputError(f"password file {path} is empty")
    return raw


def write_output(path: str | Path, data: bytes, *, secret: bool = False, force: bool = False) -> None:
    p = Path(path)
    if p.exists() and not force:
        raise InputError(f"{p} already exists; refusing to overwrite it (use --force)")
    try:
        atomic_write(p, data, mode=0o600 if secret else 0o644)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {p}: {exc.strerror or exc}") from None


def emit(obj: dict[str, Any], as_json: bool, human: str | None = None) -> None:
    if as_json:
        json.dump(obj, sys.stdout, ensure_ascii=False, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(human if human is not None else "\n".join(f"{k}: {v}" for k, v in obj.items()))


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), line, *(fmt.format(*map(str, r)) for r in rows)]
    return "\n".join(s.rstrip() for s in out)
