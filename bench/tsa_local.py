"""A local RFC 3161 time-stamping authority on loopback, built on the real ``openssl ts -reply``
(for tests, the capture bench and trials: ``python -m bench.tsa_local DIR`` serves until
Ctrl-C and prints its URL).

``LocalTSA(folder)`` makes a P-256 key and a self-signed TSA certificate (extended key usage
``timeStamping``, critical) with ``openssl``, writes the ``[tsa]`` section ``openssl ts``
needs (SM3 and SHA-256 imprints accepted; ESS signing-certificate v2 with SHA-256) and serves
``POST /`` (``application/timestamp-query``, at most 64 KiB) by running ``openssl ts -reply``
on the request. ``url`` is its address, ``certificate`` the certificate's DER.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

MAX_QUERY = 64 * 1024

CONFIG = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = Rongxin local test TSA
O = Rongxin test
[ ext ]
basicConstraints = critical,CA:FALSE
extendedKeyUsage = critical,timeStamping
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sm3, sha256
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> bytes:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} {args[1] if len(args) > 1 else ''} failed: "
                           f"{proc.stderr.decode(errors='replace')[-300:]}")
    return proc.stdout


class LocalTSA:
    def __init__(self, folder: Path | None = None) -> None:
        self._tmp = None if folder is not None else tempfile.TemporaryDirectory(prefix="rx-tsa-")
        self.dir = Path(folder if folder is not None else self._tmp.name)  # type: ignore[union-attr]
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "tsa.cnf"
        self.config.write_text(CONFIG.format(dir=self.dir))
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "tsa.key", cwd=self.dir)
        _openssl("req", "-new", "-x509", "-key", "tsa.key", "-out", "tsa.crt", "-days", "30", "-sha256",
                 "-config", str(self.config), "-extensions", "ext", cwd=self.dir)
        (self.dir / "serial").write_text("01\n")
        self.certificate = _openssl("x509", "-in", "tsa.crt", "-outform", "DER", cwd=self.dir)
        self.issued = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-tsa", daemon=True)

    def reply(self, query: bytes) -> bytes:
        """``openssl ts -reply`` on ``query`` (one at a time: the serial file is shared)."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.dir) as t:
            (Path(t) / "q.tsq").write_bytes(query)
            _openssl("ts", "-reply", "-config", str(self.config), "-queryfile", "q.tsq", "-out", "r.tsr", cwd=Path(t))
            self.issued += 1
            return (Path(t) / "r.tsr").read_bytes()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                if not 0 < n <= MAX_QUERY or self.headers.get("content-type") != "application/timestamp-query":
                    self.send_error(400, "a timestamp-query of at most 64 KiB")
                    return
                try:
                    body = tsa.reply(self.rfile.read(n))
                except RuntimeError:
                    self.send_error(500, "openssl ts -reply failed")
                    return
                self.send_response(200)
                self.send_header("content-type", "application/timestamp-reply")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> LocalTSA:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._tmp is not None:
            self._tmp.cleanup()


if __name__ == "__main__":
    with LocalTSA(Path(sys.argv[1]) if len(sys.argv) > 1 else None) as tsa:
        print(tsa.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
