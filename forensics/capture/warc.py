"""The page and every resource as one WARC 1.1 file (``warcio``), gzip-compressed per record.

Per exchange that got a response: a ``request`` record (the request line and the headers as
sent) and a ``response`` record (the status line and headers as received — the raw header
text when the browser reports it — and the body), linked by ``WARC-Concurrent-To``, with
``WARC-IP-Address`` and, when the body is not whole, ``WARC-Truncated``. The browser hands over
bodies decoded (no gzip/br, no chunking): such a header is kept under the ``X-Archive-Orig-``
prefix (the convention of web archives) and ``Content-Length`` states the stored body. One
``metadata`` record lists every request of the capture with its outcome. docs/capture.md §3.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterable
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from .custody import HashingWriter
from .network import Exchange

__all__ = ["write_warc"]

DECODED = ("content-encoding", "transfer-encoding")


METADATA_URI = "metadata://rongxin/capture/requests"  # the metadata record's WARC-Target-URI

def _warc_date(epoch_s: float) -> str:
    return str(datetime_to_iso_date(dt.datetime.fromtimestamp(epoch_s, dt.UTC).replace(tzinfo=None), use_micros=True))


def _response_headers(ex: Exchange) -> StatusAndHeaders:
    if ex.headers_text and ex.headers_text.startswith("HTTP/"):
        try:
            parsed = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1"], verify=False).parse(
                io.BytesIO(ex.headers_text.encode("iso-8859-1", "replace")))
            status = StatusAndHeaders(parsed.statusline, list(parsed.headers), protocol=parsed.protocol)
        except (ValueError, EOFError):
            status = StatusAndHeaders(f"{ex.status} {ex.status_text}".strip(), list(ex.response_headers), "HTTP/1.1")
    else:
        status = StatusAndHeaders(f"{ex.status} {ex.status_text or 'OK'}".strip(),
                                  [(k, v) for k, v in ex.response_headers if not k.startswith(":")], "HTTP/1.1")
    headers: list[tuple[str, str]] = []
    for name, value in status.headers:
        low = name.lower()
        if low in DECODED and value.strip().lower() not in ("", "identity"):
            headers.append(("X-Archive-Orig-" + name, value))
        elif low == "content-length":
            headers.append(("X-Archive-Orig-Content-Length", value))
        else:
            headers.append((name, value))
    headers.append(("Content-Length", str(ex.body_size)))
    return StatusAndHeaders(status.statusline, headers, protocol=status.protocol or "HTTP/1.1")


def _request_headers(ex: Exchange) -> StatusAndHeaders:
    parts = urlsplit(ex.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [(k, v) for k, v in ex.request_headers if not k.startswith(":")]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", parts.netloc))
    return StatusAndHeaders(f"{ex.method} {target} HTTP/1.1", headers, is_http_request=True)


def _write_exchange(writer: WARCWriter, ex: Exchange) -> None:
    warc_headers = {"WARC-Date": _warc_date(ex.started)}
    if ex.remote_ip:
        warc_headers["WARC-IP-Address"] = str(ex.remote_ip).strip("[]")
    if ex.truncated:
        warc_headers["WARC-Truncated"] = ex.truncated
    body: BinaryIO
    body = open(ex.body_path, "rb") if ex.body_path is not None else io.BytesIO(b"")
    with body:
        resp = writer.create_warc_record(ex.url, "response", payload=body, length=ex.body_size,
                                         http_headers=_response_headers(ex), warc_headers_dict=warc_headers)
        post = ex.post_data or b""
        req = writer.create_warc_record(ex.url, "request", payload=io.BytesIO(post), length=len(post),
                                        http_headers=_request_headers(ex),
                                        warc_headers_dict={"WARC-Date": warc_headers["WARC-Date"]})
        writer.write_request_response_pair(req, resp)


def write_warc(out: HashingWriter, name: str, exchanges: Iterable[Exchange], info: dict[str, Any]) -> int:
    """Write the WARC into ``out`` (hashed as written); returns the number of exchanges stored."""
    writer = WARCWriter(out, gzip=True, warc_version="1.1")
    writer.write_record(writer.create_warcinfo_record(name, {k: str(v) for k, v in info.items()}))
    stored, summary = 0, []
    for ex in exchanges:
        summary.append(ex.summary())
        if ex.status is None or not ex.url.lower().startswith(("http://", "https://")):
            continue
        _write_exchange(writer, ex)
        stored += 1
    data = json.dumps({"requests": summary}, ensure_ascii=False, indent=1).encode("utf-8")
    # not under the page's own URL: a replay tool (pywb) would serve this record as the page
    writer.write_record(writer.create_warc_record(METADATA_URI, "metadata", payload=io.BytesIO(data), length=len(data),
                                                  warc_content_type="application/json"))
    return stored
