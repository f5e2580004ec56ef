#!/usr/bin/env bash
# The offline install of `make dist` (L15, docs/operations.md §9): a fresh venv, pip told to use
# dist/ and nothing else (no index, no configured find-links, no network when `unshare -n` is
# allowed), then the SDK is imported and a client built. Exit 0 when it works.
set -euo pipefail
DIST="$(cd "${1:-dist}" && pwd)"
PY="${PYTHON:-python3}"
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
ls "$DIST"/rongxin-*.whl >/dev/null
"$PY" -m venv "$T/venv"
# pip reads no configuration: only dist/ is offered
clean_env=(env -i PATH="$PATH" HOME="$T" PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1)
offline=()
if unshare -n true 2>/dev/null; then offline=(unshare -n); fi
"${offline[@]}" "${clean_env[@]}" "$T/venv/bin/pip" install -q --no-index --find-links "$DIST" "$DIST"/rongxin-*.whl
cd "$T"   # not the source tree: the installed package is imported
"${clean_env[@]}" "$T/venv/bin/python" - <<'PY'
from api.sdk import LedgerClient
from ledger.crypto import SM2PrivateKey
c = LedgerClient("http://127.0.0.1:1", SM2PrivateKey.generate())
import api
print("offline install ok:", LedgerClient.__module__, "from", api.__file__)
PY
"${clean_env[@]}" "$T/venv/bin/rongxin" --version
echo "network during install: ${offline[*]:-allowed (unshare -n not permitted here)}"
