"""Bounded reads of files a user names: regular files only, never more bytes than a cap.

A path may name a FIFO, a character device such as ``/dev/zero`` or a socket; reading one
of those to its end never ends (or blocks for ever), so every input the product reads on a
user's say-so goes through :func:`open_regular` or :func:`read_regular`:

1. ``stat`` the path (following symbolic links) and refuse anything but a regular file,
   before opening it (opening a device can have effects of its own);
2. open it with ``O_NONBLOCK`` (a FIFO swapped in meanwhile does not block the open) and
   ``fstat`` the open descriptor, refusing again if it is not a regular file;
3. refuse a file whose size is over ``limit``, then read at most ``limit + 1`` bytes and
   refuse the file if there were more than ``limit`` (it grew meanwhile).

Refusals raise :class:`FileInputError` (a :class:`~ledger.errors.LedgerError`), whose
message names the file and the reason; callers in other packages map it to their own typed
errors.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import LedgerError

#: Cap for documents: keys, certificates, CRLs, signatures, password files.
DOCUMENT_LIMIT = 16 * 1024**2


class FileInputError(LedgerError):
    """A named input cannot be read: missing, not a regular file, unreadable or too large."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _refuse_irregular(path: str | Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise FileInputError(path, f"is {_kind(mode)}; only regular files are read")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or type(exc).__name__


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for binary reading, after checking that it is a regular file."""
    try:
        _refuse_irregular(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise FileInputError(path, _os_reason(exc)) from None
    try:
        _refuse_irregular(path, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, limit: int = DOCUMENT_LIMIT) -> bytes:
    """The whole content of the regular file ``path``, refused when over ``limit`` bytes."""
    too_large = f"is larger than the {limit:,}-byte limit for this input"
    with open_regular(path) as fh:
        if os.fstat(fh.fileno()).st_size > limit:
            raise FileInputError(path, too_large)
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise FileInputError(path, _os_reason(exc)) from None
    if len(data) > limit:
        raise FileInputError(path, too_large)
    return data
