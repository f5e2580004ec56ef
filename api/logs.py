"""Structured logs of a node process (docs/operations.md §6): one JSON object a line on
stderr, ``{"ts", "level", "logger", "msg", ...}`` plus the record's ``extra`` fields and, for an
exception, ``exc_type`` and ``exc`` (the traceback as text).

Keys never reach a log: a PEM private key block or an SM2 private scalar labelled as such is
replaced by ``[redacted]`` in the message and the traceback, and ``extra`` fields whose names
say they hold a secret (``key``, ``password``, ``secret``, ``token``) are dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any

PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
                         re.DOTALL)
LABELLED_SECRET = re.compile(r"(?i)\b(private[_ ]?key|password|secret|passwd)(\s*[=:]\s*)(\S+)")
SECRET_FIELD = re.compile(r"(?i)(^|_)(key|password|passwd|secret|token)s?($|_)")
STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


def redact(text: str) -> str:
    text = PEM_PRIVATE.sub("[redacted private key]", text)
    return LABELLED_SECRET.sub(lambda m: m.group(1) + m.group(2) + "[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "msg": redact(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name in STANDARD or name.startswith("_") or SECRET_FIELD.search(name):
                continue
            out[name] = value if isinstance(value, (str, int, float, bool, type(None))) else redact(str(value))
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingFormatter(logging.Formatter):
    """The text format, with the same redaction."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(fmt: str = "json", level: str = "INFO") -> None:
    """Send the process's logs to stderr in ``fmt`` (``json`` or ``text``), replacing any handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # uvicorn's own loggers go the same way
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
