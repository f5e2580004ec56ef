"""The node's JSON log lines: one object a line with the record's facts, and no key material
in a message, a traceback or an ``extra`` field."""

from __future__ import annotations

import io
import json
import logging

from api.logs import JsonFormatter, RedactingFormatter
from ledger.crypto import SM2PrivateKey


def _line(record: logging.LogRecord, fmt: logging.Formatter | None = None) -> str:
    return (fmt or JsonFormatter()).format(record)


def test_a_record_is_one_json_object_with_its_facts_and_extras() -> None:
    rec = logging.makeLogRecord({"name": "rongxin.node", "levelno": logging.INFO, "levelname": "INFO",
                                 "msg": "node %s up at height %d", "args": ("val1", 7), "peer": "val2",
                                 "color_message": "\x1b[1mnoise\x1b[0m"})
    out = json.loads(_line(rec))
    assert out["msg"] == "node val1 up at height 7" and out["level"] == "INFO" and out["logger"] == "rongxin.node"
    assert out["peer"] == "val2" and "color_message" not in out and out["ts"].endswith("+00:00")
    assert "\n" not in _line(rec)


def test_keys_never_reach_a_line() -> None:
    pem = SM2PrivateKey.generate().to_pem().decode()
    body = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    try:
        raise ValueError("cannot load " + pem)
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    rec = logging.makeLogRecord({"name": "x", "levelno": 40, "levelname": "ERROR", "msg": "bad key %s; password=hunter2",
                                 "args": (pem,), "exc_info": exc_info, "private_key": pem, "smtp_password": "hunter2",
                                 "api_token": "t0ken"})
    for fmt in (JsonFormatter(), RedactingFormatter("%(message)s")):
        text = _line(rec, fmt)
        assert not any(b in text for b in body) and "PRIVATE KEY-----\n" not in text
        assert "hunter2" not in text and "t0ken" not in text
    out = json.loads(_line(rec))
    assert out["exc_type"] == "ValueError" and "[redacted private key]" in out["exc"]


def test_configure_sends_json_to_stderr() -> None:
    import sys

    from api.logs import configure

    buf = io.StringIO()
    old, root = sys.stderr, logging.getLogger()
    handlers, level = list(root.handlers), root.level
    sys.stderr = buf
    try:
        configure("json", "INFO")
        logging.getLogger("rongxin.test").info("hello %s", "world")
    finally:
        sys.stderr = old
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
    assert json.loads(buf.getvalue().splitlines()[-1])["msg"] == "hello world"
