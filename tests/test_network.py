"""The network road: proxies (HTTP, SOCKS5, environment), redirects, TLS, no token leaks.

Proxies are real pproxy servers started on loopback; the client reaches the emulator's
HTTPS hosts through CONNECT/SOCKS tunnels, as users behind a proxy do. Each test checks
the proxy's own log to prove the traffic really went through it.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sentinel_fetch.api import search
from sentinel_fetch.auth import Credentials, TokenManager
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.cli import main
from sentinel_fetch.downloads.engine import DownloadEngine
from sentinel_fetch.emulator import DEMO_PASSWORD, DropHandshakeFault, Emulator, RedirectFault
from sentinel_fetch.errors import ConfigError, ProxyError, ServiceError
from sentinel_fetch.http import Transport, proxy_for_display, redirect_target
from sentinel_fetch.settings import Endpoints, Settings
from tests.conftest import with_limits
from tests.emulator.test_server_support import running

PROXY_PASSWORD = "proxy-pass-7890"
WRONG_PASSWORD = "not-the-proxy-pass"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ProxyServer:
    url: str
    log: Path

    def tunnels(self) -> list[str]:
        """Destinations the proxy connected to (``host:port``), from its verbose log."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line.rsplit(" -> ", 1)[1].strip() for line in lines if " -> " in line]

    def refusals(self) -> int:
        """Clients the proxy turned away for their credentials, from its verbose log."""
        lines = self.log.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if line.startswith("Unauthorized"))

    def wait_for_refusals(self, count: int) -> int:
        """The number of refusals once at least ``count`` are logged (the log may lag a
        refusal the client has already seen by a moment); a safety net bounds the wait."""
        deadline = time.monotonic() + 15
        while self.refusals() < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.refusals()


def _start_proxy(scheme: str, tmp_path: Path, *, auth: bool = False) -> Iterator[ProxyServer]:
    port = _free_port()
    listen = f"{scheme}://127.0.0.1:{port}" + (f"#alice:{PROXY_PASSWORD}" if auth else "")
    log = tmp_path / f"pproxy-{scheme}.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "pproxy", "-l", listen, "-v"], stdout=handle, stderr=handle
        )
    try:
        deadline = time.monotonic() + 15
        while "Serving on" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.05)
        credentials = f"alice:{PROXY_PASSWORD}@" if auth else ""
        yield ProxyServer(f"{scheme}://{credentials}127.0.0.1:{port}", log)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def http_proxy(tmp_path: Path) -> Iterator[ProxyServer]:
    yield from _start_proxy("http", tmp_path, auth=True)


@pytest.fixture
def socks_proxy(tmp_path: Path) -> Iterator[ProxyServer]:
    yield from _start_proxy("socks5", tmp_path)


@pytest.fixture
def socks_proxy_with_login(tmp_path: Path) -> Iterator[ProxyServer]:
    yield from _start_proxy("socks5", tmp_path, auth=True)


def _wrong_password(proxy: ProxyServer) -> str:
    return proxy.url.replace(PROXY_PASSWORD, WRONG_PASSWORD)


def _without_login(proxy: ProxyServer) -> str:
    return proxy.url.replace(f"alice:{PROXY_PASSWORD}@", "")


@pytest.fixture
def cli(
    cdse: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[..., tuple[int, str]]]:
    """Runs ``sentinel-fetch ARGS`` in-process against the emulator: (exit status, stderr).

    Retries are quick here (a config file in the working folder), so a client that
    retries what it should not still finishes, and fails the test.
    """
    for name, value in cdse.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SENTINEL_FETCH_CONFIG", str(tmp_path / "no-user-config.toml"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    (work / "sentinel-fetch.toml").write_text(
        "[limits]\nbackoff_base_s = 0.05\nbackoff_max_s = 0.2\n"
    )
    monkeypatch.chdir(work)

    def run(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        code = exited.value.code
        return (code if isinstance(code, int) else 1), capsys.readouterr().err

    yield run
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_sentinel_fetch", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)


FEW = ("-c", "S2", "--tile", "32TPS", "--start", "2023-07-01", "--end", "2023-07-03")


def _ports(cdse: Emulator) -> dict[str, str]:
    return {
        name: f"127.0.0.1:{urlsplit(url).port}"
        for name, url in (
            ("identity", cdse.identity_url),
            ("catalogue", cdse.catalogue_url),
            ("download", cdse.download_url),
        )
    }


def _two_products(settings: Settings, transport: Transport) -> list[Product]:
    query = build_query(collections="S2", tiles="32TPS", start="2023-07-01", end="2023-07-31")
    found = [p for p in search(query, settings=settings, transport=transport) if p.checksums]
    return found[:2]


def _run_batch(settings: Settings, credentials: Credentials, transport: Transport) -> list[str]:
    products = _two_products(settings, transport)
    tokens = TokenManager(transport, settings.endpoints, credentials)
    report = DownloadEngine(settings, tokens, transport=transport).run(products)
    assert [r.status for r in report.results] == ["downloaded", "downloaded"]
    return [r.verified_by or "" for r in report.results]


@pytest.mark.parametrize("kind", ["http", "socks5", "socks5h"])
def test_the_whole_job_goes_through_the_proxy(
    kind: str,
    cdse: Emulator,
    settings: Settings,
    credentials: Credentials,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    proxies = _start_proxy("http" if kind == "http" else "socks5", tmp_path, auth=kind == "http")
    proxy = next(proxies)
    try:
        url = proxy.url if kind != "socks5h" else proxy.url.replace("socks5://", "socks5h://")
        settings = settings.with_changes(proxy=url)
        assert _run_batch(settings, credentials, Transport(settings)) == ["BLAKE3", "BLAKE3"]
        tunnels = proxy.tunnels()
    finally:
        proxies.close()
    for host, address in _ports(cdse).items():
        assert address in tunnels, f"{host} was reached without the proxy"
    assert PROXY_PASSWORD not in caplog.text


def test_environment_proxy_and_no_proxy(
    cdse: Emulator,
    settings: Settings,
    credentials: Credentials,
    http_proxy: ProxyServer,
) -> None:
    environ = {"HTTPS_PROXY": http_proxy.url}
    _run_batch(settings, credentials, Transport(settings, environ=environ))
    assert _ports(cdse)["download"] in http_proxy.tunnels()
    before = len(http_proxy.tunnels())
    bypass = {"HTTPS_PROXY": http_proxy.url, "NO_PROXY": "127.0.0.1"}
    settings = settings.with_changes(save_path=settings.save_path.parent / "second")
    _run_batch(settings, credentials, Transport(settings, environ=bypass))
    assert len(http_proxy.tunnels()) == before, "NO_PROXY hosts must not use the proxy"


def test_a_dead_proxy_is_one_clear_error_without_its_password(settings: Settings) -> None:
    dead = f"http://alice:{PROXY_PASSWORD}@127.0.0.1:{_free_port()}"
    transport = Transport(settings.with_changes(proxy=dead))
    with pytest.raises(ProxyError) as info:
        transport.request("GET", settings.endpoints.catalogue + "/Products?$top=0")
    message = str(info.value)
    assert "proxy" in message and "\n" not in message
    assert PROXY_PASSWORD not in message
    assert "alice:***@" in message


@pytest.mark.parametrize(
    "bad", ["ftp://127.0.0.1:21", "127.0.0.1:7890", "http://:8080", "http://h:99999"]
)
def test_malformed_proxy_settings(settings: Settings, bad: str) -> None:
    with pytest.raises(ConfigError, match="proxy"):
        Transport(settings.with_changes(proxy=bad))


def test_redirect_to_another_host_never_carries_the_token(
    cdse: Emulator,
    settings: Settings,
    credentials: Credentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = Transport(settings)
    products = _two_products(settings, transport)
    port = urlsplit(cdse.download_url).port
    # "localhost" is another origin than the configured 127.0.0.1: to the client it is a
    # foreign host, and the emulator's log shows what that host received.
    cdse.faults.add(
        RedirectFault(product=products[0].id, location=f"https://localhost:{port}{{path}}")
    )
    tokens = TokenManager(transport, settings.endpoints, credentials)
    report = DownloadEngine(settings, tokens, transport=transport).run(products)
    statuses = {r.product.id: r for r in report.results}
    assert statuses[products[0].id].status == "failed"
    assert "only sent to the configured CDSE hosts" in (statuses[products[0].id].error or "")
    assert statuses[products[1].id].status == "downloaded"
    redirected = cdse.stats.events(
        "download", lambda e: e.product_id == products[0].id and e.status == 401
    )
    assert redirected and not any(e.authorization for e in redirected)
    token = tokens.access_token()
    assert token not in caplog.text
    assert DEMO_PASSWORD not in caplog.text
    for path in settings.save_path.rglob("*"):
        if path.is_file() and path.stat().st_size < 10_000_000:
            data = path.read_bytes()
            assert token.encode() not in data and DEMO_PASSWORD.encode() not in data, path


def test_catalogue_redirect_to_the_download_host_keeps_the_token(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """The catalogue's $value answers 301 to the download host (spec §5.2): both are CDSE."""
    transport = Transport(settings)
    (product, _) = _two_products(settings, transport)
    tokens = TokenManager(transport, settings.endpoints, credentials)
    response = transport.request(
        "GET",
        f"{settings.endpoints.catalogue}/Products({product.id})/$value",
        bearer=tokens.access_token,
    )
    assert response.status_code == 200
    assert len(response.content) == product.size
    (catalogue_hop,) = cdse.stats.events("catalogue", lambda e: e.path.endswith("$value"))
    (download_hop,) = cdse.stats.events("download", lambda e: e.product_id == product.id)
    assert catalogue_hop.status == 301
    assert download_hop.status == 200 and download_hop.authorization


def test_https_to_http_redirect_is_refused(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    transport = Transport(settings)
    (product, _) = _two_products(settings, transport)
    port = urlsplit(cdse.download_url).port
    cdse.faults.add(RedirectFault(product=product.id, location=f"http://127.0.0.1:{port}{{path}}"))
    tokens = TokenManager(transport, settings.endpoints, credentials)
    report = DownloadEngine(settings, tokens, transport=transport).run([product])
    assert report.results[0].status == "failed"
    assert "refusing a redirect from HTTPS" in (report.results[0].error or "")


def test_certificates_are_verified(cdse: Emulator, settings: Settings) -> None:
    """The emulator's certificate is untrusted without its CA: a real verification failure."""
    without_ca = Transport(settings.with_changes(ca_bundle=None), environ={})
    with pytest.raises(ServiceError, match="certificate verification failed") as info:
        without_ca.request("GET", settings.endpoints.catalogue + "/Products?$top=0")
    assert not info.value.transient
    assert "certificate verify failed" in str(info.value) and "--ca-bundle" in str(info.value)


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_dropped_tls_handshake_is_retried_not_called_a_certificate_error(
    cdse: Emulator, settings: Settings, credentials: Credentials, reset: bool
) -> None:
    cdse.faults.add(DropHandshakeFault(host="catalogue", reset=reset))
    with pytest.raises(ServiceError) as info:
        Transport(settings).request("GET", settings.endpoints.catalogue + "/Products?$top=0")
    assert info.value.transient
    assert "certificate" not in str(info.value) and "--ca-bundle" not in str(info.value)
    for host, times in (("identity", 1), ("catalogue", 2), ("download", 2)):
        cdse.faults.add(DropHandshakeFault(host=host, reset=reset, times=times))
    assert _run_batch(settings, credentials, Transport(settings)) == ["BLAKE3", "BLAKE3"]
    assert not cdse.faults.pending(), "every host dropped handshakes, and each was retried"


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "http"])
def test_a_proxy_that_is_not_running_stops_at_once_with_exit_2(
    settings: Settings, cli: Callable[..., tuple[int, str]], scheme: str
) -> None:
    dead = f"{scheme}://alice:{PROXY_PASSWORD}@127.0.0.1:{_free_port()}"
    with pytest.raises(ProxyError) as info:
        Transport(settings.with_changes(proxy=dead)).request(
            "GET", settings.endpoints.catalogue + "/Products?$top=0"
        )
    assert "is it running?" in str(info.value)
    status, stderr = cli("search", *FEW, "--count", "--proxy", dead)
    assert status == 2
    (line,) = stderr.strip().splitlines()
    assert f"cannot use the proxy {scheme}://alice:***@127.0.0.1:" in line
    assert "is it running?" in line and PROXY_PASSWORD not in line


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_a_wrong_proxy_password_stops_at_once_with_exit_2(
    cdse: Emulator,
    settings: Settings,
    credentials: Credentials,
    tmp_path: Path,
    cli: Callable[..., tuple[int, str]],
    kind: str,
) -> None:
    proxies = _start_proxy(kind, tmp_path, auth=True)
    proxy = next(proxies)
    try:
        wrong = _wrong_password(proxy)
        status, stderr = cli("search", *FEW, "--count", "--proxy", wrong)
        assert status == 2
        (line,) = stderr.strip().splitlines()
        assert f"{kind}://alice:***@127.0.0.1:" in line and "refused" in line
        assert WRONG_PASSWORD not in line and PROXY_PASSWORD not in line
        assert proxy.wait_for_refusals(1) == 1, "a refused password is never tried again"
        # A batch: the first request (the login) meets the proxy; nothing else is tried.
        products = _two_products(settings, Transport(settings))
        bad = with_limits(settings.with_changes(proxy=wrong), workers=1)
        transport = Transport(bad)
        tokens = TokenManager(transport, bad.endpoints, credentials)
        with pytest.raises(ProxyError):
            DownloadEngine(bad, tokens, transport=transport).run(products)
        assert proxy.wait_for_refusals(2) == 2
        assert cdse.stats.requests("identity") == 0 and cdse.stats.requests("download") == 0
        missing = _without_login(proxy)
        with pytest.raises(ProxyError, match="user name and password") as info:
            Transport(settings.with_changes(proxy=missing)).request(
                "GET", settings.endpoints.catalogue + "/Products?$top=0"
            )
        assert proxy_for_display(missing) in str(info.value)
    finally:
        proxies.close()


def test_a_wrong_proxy_password_on_a_plain_http_request(
    http_proxy: ProxyServer, tmp_path: Path
) -> None:
    """Through an HTTP proxy, plain-HTTP requests get the proxy's 407 as their answer."""
    with running(tmp_path / "plain", tls=False) as plain:
        endpoints = Endpoints(plain.identity_url, plain.catalogue_url, plain.download_url)
        settings = Settings(endpoints=endpoints, proxy=_wrong_password(http_proxy))
        with pytest.raises(ProxyError) as info:
            Transport(settings).request("GET", plain.catalogue_url + "/Products")
        message = str(info.value)
        assert "407" in message and "alice:***@127.0.0.1:" in message
        assert WRONG_PASSWORD not in message
        assert http_proxy.wait_for_refusals(1) == 1
        assert plain.stats.requests() == 0


# Locations that one URL parser reads as the configured download host (127.0.0.1) and
# another as a foreign one ("localhost"), or that carry user info: "{port}" is the
# download host's port, "{path}" the request's path.
_AMBIGUOUS_LOCATIONS = {
    "backslash": "https://localhost:{port}\\@127.0.0.1:{port}{path}",
    "user info": "https://127.0.0.1:{port}@localhost:{port}{path}",
    "tab in the host": "https://127.0.0.1:{port}\t@localhost:{port}{path}",
    "tab in the name": "https://local\thost:{port}{path}",
    "percent-encoded host": "https://%31%32%37.0.0.1:{port}{path}",
    "password": "https://user:secret-pass-1@127.0.0.1:{port}{path}",
}


@pytest.mark.parametrize("location", _AMBIGUOUS_LOCATIONS.values(), ids=_AMBIGUOUS_LOCATIONS)
def test_an_ambiguous_redirect_is_refused_and_the_token_stays_home(
    location: str, cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    transport = Transport(settings)
    (product, _) = _two_products(settings, transport)
    port = str(urlsplit(cdse.download_url).port)
    cdse.faults.add(RedirectFault(product=product.id, location=location.replace("{port}", port)))
    tokens = TokenManager(transport, settings.endpoints, credentials)
    with pytest.raises(ServiceError) as info:
        transport.request(
            "GET", settings.endpoints.product_url(product.id), bearer=tokens.access_token
        )
    message = str(info.value)
    assert message.startswith("refusing a redirect to ") and "\n" not in message
    assert "secret-pass-1" not in message
    assert not info.value.transient
    # One request reached the emulator's download port: the one that was redirected.
    (only,) = cdse.stats.events("download", lambda e: e.product_id == product.id)
    assert only.status == 302


@pytest.mark.parametrize(
    "location", ["//127.0.0.1:{port}{path}", "HTTPS://127.0.0.1:0{port}{path}", " {path} "]
)
def test_spellings_every_parser_reads_alike_keep_the_token(
    location: str, cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """Scheme-relative, upper-case, a leading zero in the port, a relative path."""
    transport = Transport(settings)
    (product, _) = _two_products(settings, transport)
    port = str(urlsplit(cdse.download_url).port)
    cdse.faults.add(RedirectFault(product=product.id, location=location.replace("{port}", port)))
    tokens = TokenManager(transport, settings.endpoints, credentials)
    response = transport.request(
        "GET", settings.endpoints.product_url(product.id), bearer=tokens.access_token
    )
    assert response.status_code == 200
    hops = cdse.stats.events("download", lambda e: e.product_id == product.id)
    assert [(e.status, e.authorization) for e in hops] == [(302, True), (200, True)]


_BAD_ENVIRONMENT_PROXIES = ["http://[::1", "socks9://x", ":::", "http://h:99999", "http://:8080"]


@pytest.mark.parametrize("bad", _BAD_ENVIRONMENT_PROXIES)
def test_a_malformed_proxy_variable_is_one_proxy_error(settings: Settings, bad: str) -> None:
    transport = Transport(settings, environ={"HTTPS_PROXY": bad})
    with pytest.raises(ProxyError, match="proxy environment variable") as raised:
        transport.request("GET", settings.endpoints.catalogue + "/Products?$top=0")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("bad", _BAD_ENVIRONMENT_PROXIES)
def test_a_malformed_proxy_variable_is_exit_2_in_the_cli(
    cli: Callable[..., tuple[int, str]], monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"{bad}")
    code, err = cli("search", *FEW, "--count")
    assert code == 2, err
    (line,) = err.strip().splitlines()
    assert line.startswith("sentinel-fetch: error:") and "HTTPS_PROXY" in line


def test_a_proxy_variable_without_a_scheme_is_still_an_http_proxy(
    settings: Settings, http_proxy: ProxyServer
) -> None:
    address = http_proxy.url.split("://", 1)[1]
    transport = Transport(settings, environ={"HTTPS_PROXY": address})
    assert transport.proxies_for(settings.endpoints.catalogue) == {"https": address}


_HOP = "https://127.0.0.1:5000/odata/v1/Products(x)/$value"


@pytest.mark.parametrize(
    "location",
    [
        "https://\uff4cocalhost:5000/p",  # a full-width letter that IDNA maps to "l"
        "https://b\u00fccher.example/p",  # IDNA turns it into xn--bcher-kva.example
        "https://127.0.0.1:5000/p\x00",
        "https://127.0.0.1:5000/a b",
        "https://user@127.0.0.1:5000/p",
    ],
)
def test_redirect_targets_read_differently_or_with_user_info_are_refused(location: str) -> None:
    with pytest.raises(ServiceError, match="refusing a redirect to") as raised:
        redirect_target(_HOP, location)
    assert not raised.value.transient and "\x00" not in str(raised.value)


@pytest.mark.parametrize(
    ("location", "requested"),
    [
        ("HTTPS://127.0.0.1:5000/p", "https://127.0.0.1:5000/p"),
        ("/odata/v1/Products(y)/$value", "https://127.0.0.1:5000/odata/v1/Products(y)/$value"),
        ("https://127.0.0.1:5000/\u00fc", "https://127.0.0.1:5000/%C3%BC"),
    ],
)
def test_a_redirect_is_followed_to_the_url_as_it_is_requested(
    location: str, requested: str
) -> None:
    assert redirect_target(_HOP, location) == requested
