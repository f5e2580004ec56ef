"""File and output helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from ledger.crypto.ca import atomic_write
from ledger.files import DOCUMENT_LIMIT, FileInputError, open_regular, read_regular

from .errors import EnvironmentProblem, InputError


def read_input(path: str | Path, what: str, limit: int = DOCUMENT_LIMIT) -> bytes:
    """A small input (key, certificate, CRL, signature, password): a regular file of at most
    ``limit`` bytes; a FIFO, a device or a folder is refused without being read."""
    try:
        return read_regular(path, limit)
    except FileInputError as exc:
        raise InputError(f"{what} {exc}") from None


def open_input(path: str | Path, what: str) -> BinaryIO:
    """A large input read in chunks (a file to sign or verify): a regular file, opened."""
    try:
        return open_regular(path)
    except FileInputError as exc:
        raise InputError(f"{what} {exc}") from None


PASSWORD_LIMIT = 64 * 1024


def read_password(path: str | Path | None) -> bytes | None:
    """A password file's content without its trailing newline (as OpenSSL's ``file:``)."""
    if path is None:
        return None
    raw = read_input(path, "password file", PASSWORD_LIMIT).rstrip(b"\r\n")
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
