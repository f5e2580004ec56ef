"""The clean-environment check and the refusals that come before any browser starts: proxy
variables in any letter case, an edited hosts file, a changed resolver configuration, a clock
off the chain's time, an unpinned browser build, extensions, non-http(s) URLs and the node's
own API under every loopback alias. File paths are injected (the real /etc is never edited)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from forensics.capture import CaptureRefused, CaptureSettings, capture, check_environment

STANDARD_HOSTS = """127.0.0.1\tlocalhost
127.0.1.1\tstation
# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
"""


@pytest.fixture
def clean(tmp_path: Path) -> CaptureSettings:
    (tmp_path / "hosts").write_text(STANDARD_HOSTS)
    (tmp_path / "resolv.conf").write_text("nameserver 192.0.2.53\noptions edns0\n")
    (tmp_path / "nsswitch.conf").write_text("hosts: files dns\n")
    return CaptureSettings(chain_time_s=time.time() - 20, environ={"PATH": "/usr/bin", "HOME": "/root"},
                           hosts_path=tmp_path / "hosts", resolv_path=tmp_path / "resolv.conf",
                           nsswitch_path=tmp_path / "nsswitch.conf", baseline_path=tmp_path / "baseline.json",
                           chromium_extensions_dir=tmp_path / "no-extensions",
                           chromium_policy_dir=tmp_path / "no-policies")


def test_a_clean_environment_passes_and_records_what_it_checked(clean: CaptureSettings) -> None:
    report = check_environment(clean)
    assert report["clean"], report["failures"]
    checks = report["checks"]
    assert checks["baseline"]["state"] == "established" and clean.baseline_path and clean.baseline_path.is_file()
    assert len(checks["browser"]["sm3"]) == 64 and checks["browser"]["binary"].endswith("chromium")
    assert checks["clock"]["state"] == "checked" and 15_000 <= checks["clock"]["clock_ahead_of_chain_ms"] < 60_000
    assert check_environment(clean)["checks"]["baseline"]["state"] == "matched"


@pytest.mark.parametrize("name", ["http_proxy", "HTTPS_PROXY", "All_Proxy", "NO_PROXY"])
def test_a_proxy_variable_in_any_case_refuses(clean: CaptureSettings, name: str, tmp_path: Path) -> None:
    settings = replace(clean, environ={"PATH": "/usr/bin", name: "http://127.0.0.1:9"})
    report = check_environment(settings)
    assert report["failures"] == ["proxy"] and report["checks"]["proxy"]["variables_set"] == [name]
    assert "127.0.0.1:9" not in str(report)  # values can hold credentials: names only
    with pytest.raises(CaptureRefused) as err:
        capture("http://192.0.2.1/", tmp_path / "out", settings)
    assert err.value.reason == "dirty_environment" and name in str(err.value)
    assert not (tmp_path / "out").exists()


def test_an_edited_hosts_file_refuses(clean: CaptureSettings) -> None:
    clean.hosts_path.write_text(STANDARD_HOSTS + "203.0.113.9 www.example.com\n")
    report = check_environment(clean)
    assert "hosts" in report["failures"]
    assert report["checks"]["hosts"]["offending"] == ["203.0.113.9 www.example.com"]
    clean.hosts_path.write_text(STANDARD_HOSTS + "127.0.0.1 shop.example.com\n")  # a site on loopback
    assert "hosts" in check_environment(clean)["failures"]


def test_a_changed_resolver_configuration_refuses(clean: CaptureSettings) -> None:
    assert check_environment(clean)["clean"]  # establishes the baseline
    clean.resolv_path.write_text("nameserver 203.0.113.53\n")
    report = check_environment(clean)
    assert report["failures"] == ["baseline"] and report["checks"]["baseline"]["changed"] == ["resolv.conf"]
    clean.resolv_path.write_text("nameserver 192.0.2.53\nhijack 1\n")
    assert "resolver" in check_environment(clean)["failures"]


@pytest.mark.parametrize("offset_s", [-3600, -75, 3600])
def test_a_clock_off_the_chain_refuses(clean: CaptureSettings, offset_s: int) -> None:
    report = check_environment(replace(clean, chain_time_s=time.time() - offset_s))
    assert report["failures"] == ["clock"]


def test_a_wrong_browser_build_or_an_extension_refuses(clean: CaptureSettings, tmp_path: Path) -> None:
    assert check_environment(replace(clean, expected_browser_sm3="00" * 32))["failures"] == ["browser"]
    good = check_environment(clean)["checks"]["browser"]["sm3"]
    assert check_environment(replace(clean, expected_browser_sm3=good))["clean"]
    ext = tmp_path / "no-extensions" / "adblock"
    ext.mkdir(parents=True)
    (ext / "manifest.json").write_text("{}")
    assert check_environment(clean)["failures"] == ["extensions"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "chrome://settings", "javascript:alert(1)",
                                 "data:text/html,hi", "ftp://example.com/", "about:blank", "http://",
                                 "http://user:pw@example.com/", "http://exa mple.com/"])
def test_urls_that_are_not_web_pages_are_refused(clean: CaptureSettings, url: str, tmp_path: Path) -> None:
    with pytest.raises(CaptureRefused) as err:
        capture(url, tmp_path / "out", clean)
    assert err.value.reason == "bad_url"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.3.4.5", "[::1]", "0.0.0.0", "LOCALHOST."])
def test_the_nodes_own_api_is_refused_under_every_loopback_alias(clean: CaptureSettings, host: str,
                                                                  tmp_path: Path) -> None:
    settings = replace(clean, forbidden=(("127.0.0.1", 26601),))
    with pytest.raises(CaptureRefused) as err:
        capture(f"http://{host}:26601/v1/status", tmp_path / "out", settings)
    assert err.value.reason == "forbidden_target"
    assert not (tmp_path / "out").exists()


def test_launch_verification_finds_a_foreign_executable_a_proxy_switch_and_an_extension(tmp_path: Path) -> None:
    import subprocess
    import sys

    from forensics.capture.browser import kill_browser, process_facts

    profile = tmp_path / "profile"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"--user-data-dir={profile}",
                             "--proxy-server=http://203.0.113.1:3128"], env={"PATH": "/usr/bin", "HTTPS_PROXY": "x"})
    try:
        for _ in range(50):
            facts = process_facts(profile, Path("/usr/lib/chromium/chromium"),
                                  [{"type": "background_page", "url": "chrome-extension://abc/bg.html"}])
            if facts["pid"] == proc.pid:
                break
            time.sleep(0.1)
        assert facts["pid"] == proc.pid and not facts["ok"]
        text = " | ".join(facts["problems"])
        assert "not /usr/lib/chromium/chromium" in text and "--proxy-server=http://203.0.113.1:3128" in text
        assert "HTTPS_PROXY" in text and "chrome-extension://abc" in text
        assert kill_browser(profile) == [proc.pid]
        assert proc.wait(timeout=10) != 0
    finally:
        proc.kill()


def test_a_response_from_the_nodes_own_address_is_discarded(tmp_path: Path) -> None:
    from forensics.capture.custody import Artefacts, CustodyLog
    from forensics.capture.network import Exchange, Recorder
    from forensics.capture.run import _drop_forbidden
    from forensics.capture.session import State
    from forensics.capture.target import Guard

    body = tmp_path / "body"
    body.write_bytes(b"secret node data")
    state = State(Recorder(tmp_path, 1 << 20, 1 << 20))
    rebound = Exchange("1", 0, "http://rebind.example/x", "GET", "Image", time.time(), [], status=200,
                       remote_ip="127.0.0.1", remote_port=26601, body_path=body, body_size=16)
    other = Exchange("2", 0, "http://127.0.0.1:8080/y", "GET", "Image", time.time(), [], status=200,
                     remote_ip="127.0.0.1", remote_port=8080, body_path=body, body_size=16)
    state.recorder.exchanges += [rebound, other]
    (tmp_path / "out").mkdir()
    log = CustodyLog(Artefacts(tmp_path / "out"))
    _drop_forbidden(state, Guard([("localhost", 26601)]), log)
    assert rebound.body_path is None and rebound.truncated == "unspecified" and "node's own API" in str(rebound.failure)
    assert other.body_path == body and other.failure is None
    assert [e["step"] for e in log.entries] == ["response discarded"]
