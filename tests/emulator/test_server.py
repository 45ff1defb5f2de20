"""The server: hosts, TLS, keep-alive, latency, robustness, clean start/stop, standalone run."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped]
import pytest
import requests

from sentinel_fetch.emulator import Emulator, EmulatorConfig

from .test_server_support import (
    S2,
    MemoryStore,
    address,
    bearer,
    client,
    product_url,
    running,
    simple_catalogue,
    token,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="module")
def emulator(data_dir: Path) -> Iterator[Emulator]:
    with running(data_dir, product_size_bytes=200_000) as emulator:
        yield emulator


def emulator_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("emulator-")}


def listening_ports() -> set[int]:
    return {
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    }


def test_three_hosts_are_three_https_origins(emulator: Emulator) -> None:
    origins = {
        urlsplit(url).netloc
        for url in (emulator.identity_url, emulator.catalogue_url, emulator.download_url)
    }

    assert len(origins) == 3
    assert emulator.identity_url.endswith("/auth/realms/CDSE")
    assert emulator.catalogue_url.startswith("https://127.0.0.1:")
    assert emulator.download_url.endswith("/odata/v1")
    assert emulator.ca_bundle is not None and emulator.ca_bundle.is_file()


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_certificate_is_valid_for_loopback_names(emulator: Emulator, name: str) -> None:
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))

    with (
        socket.create_connection(address(emulator.catalogue_url)) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.selected_alpn_protocol() in (None, "http/1.1")


def test_untrusted_clients_are_refused_and_the_server_carries_on(emulator: Emulator) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(emulator.catalogue_url + "/Products", timeout=5)

    assert client(emulator).get(emulator.catalogue_url + "/Products").status_code == 200


def test_ca_is_kept_in_the_data_dir(data_dir: Path, emulator: Emulator) -> None:
    with running(data_dir) as second:
        assert second.ca_bundle == emulator.ca_bundle
        assert client(second).get(second.catalogue_url + "/Products").status_code == 200


def test_keep_alive_serves_many_requests_on_one_connection(emulator: Emulator) -> None:
    access = token(emulator)
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    connection = http.client.HTTPSConnection(*address(emulator.download_url), context=context)
    path = urlsplit(product_url(emulator, S2)).path
    try:
        sockets = set()
        for _ in range(3):
            connection.request("GET", path, headers=bearer(access))
            response = connection.getresponse()
            assert len(response.read()) == 200_000
            sockets.add(id(connection.sock))
        assert len(sockets) == 1
        assert response.getheader("Connection") is None
    finally:
        connection.close()


def test_plain_http_when_tls_is_off(tmp_path: Path) -> None:
    with running(tmp_path, tls=False) as emulator:
        assert emulator.ca_bundle is None
        assert emulator.download_url.startswith("http://")
        assert "SENTINEL_FETCH_CA_BUNDLE" not in emulator.env()
        access = token(emulator)
        response = requests.get(product_url(emulator, S2), headers=bearer(access), timeout=10)
        assert response.status_code == 200


def test_env_points_a_client_at_the_emulator(emulator: Emulator) -> None:
    env = emulator.env()

    assert env["SENTINEL_FETCH_IDENTITY_URL"] == emulator.identity_url
    assert env["SENTINEL_FETCH_CATALOGUE_URL"] == emulator.catalogue_url
    assert env["SENTINEL_FETCH_DOWNLOAD_URL"] == emulator.download_url
    assert env["SENTINEL_FETCH_CA_BUNDLE"] == str(emulator.ca_bundle)
    assert env["CDSE_USERNAME"] == "demo@sentinel-fetch.test"
    assert env["CDSE_PASSWORD"] == "demo-password"


def test_latency_delays_every_response(emulator: Emulator) -> None:
    session = client(emulator)
    session.get(emulator.catalogue_url + "/Products")
    emulator.config.latency_s = 0.2
    try:
        began = time.monotonic()
        session.get(emulator.catalogue_url + "/Products")
        elapsed = time.monotonic() - began
    finally:
        emulator.config.latency_s = 0.0

    assert elapsed >= 0.2


def test_malformed_requests_get_400(emulator: Emulator) -> None:
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    with (
        socket.create_connection(address(emulator.catalogue_url)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"NONSENSE\r\n\r\n")
        reply = tls.recv(1024)

    assert reply.startswith(b"HTTP/1.1 400 ")


def test_clients_vanishing_mid_stream_leave_no_trace(
    emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    access = token(emulator)
    path = urlsplit(product_url(emulator, S2)).path
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    emulator.config.bandwidth_bytes_per_s = 400_000
    try:
        for _ in range(3):
            with (
                socket.create_connection(address(emulator.download_url)) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode())
                tls.sendall(f"Authorization: Bearer {access}\r\n\r\n".encode())
                tls.recv(1000)
        assert emulator.stats.wait_for(lambda s: s.current_streams() == 0)
    finally:
        emulator.config.bandwidth_bytes_per_s = None

    assert client(emulator).get(product_url(emulator, S2), headers=bearer(access)).ok
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""
    events = emulator.stats.events(host="download")[-4:-1]
    assert all(0 < e.bytes_sent < 200_000 for e in events)


def test_start_and_stop_leave_no_threads_or_sockets(tmp_path: Path) -> None:
    threads_before = emulator_threads()
    ports_before = listening_ports()

    emulator = Emulator(
        EmulatorConfig(
            data_dir=tmp_path, bandwidth_bytes_per_s=100_000, product_size_bytes=500_000
        ),
        store=MemoryStore(),
        catalogue=simple_catalogue,
    )
    assert not emulator.running
    emulator.start()
    access = token(emulator)

    def stream() -> None:
        with contextlib.suppress(requests.RequestException):
            client(emulator).get(product_url(emulator, S2), headers=bearer(access))

    streaming = threading.Thread(target=stream)
    streaming.start()
    idle = socket.create_connection(address(emulator.catalogue_url))
    assert emulator.stats.wait_for(lambda s: s.current_streams() == 1)
    assert len(listening_ports() - ports_before) == 7

    began = time.monotonic()
    emulator.stop()
    stopped_in = time.monotonic() - began
    streaming.join(5)
    idle.close()

    assert stopped_in < 2.0
    assert not emulator.running
    assert not streaming.is_alive()
    assert emulator_threads() <= threads_before
    assert listening_ports() <= ports_before


def test_stop_is_idempotent_and_start_returns_self(tmp_path: Path) -> None:
    with running(tmp_path) as emulator:
        assert emulator.start() is emulator
    emulator.stop()
    with pytest.raises(RuntimeError):
        emulator.env()


def test_match_ids_delegates_to_the_store(emulator: Emulator) -> None:
    assert emulator.match_ids("MSIL2A") == [S2.id]


@pytest.mark.slow
def test_standalone_entry_point_announces_and_stops_on_sigterm(tmp_path: Path) -> None:
    """End to end with the real catalogue, which is built on first use (~15 s)."""
    catalogue = pytest.importorskip("sentinel_fetch.emulator.catalogue")
    if not hasattr(catalogue, "CatalogueStore"):
        pytest.skip("the catalogue does not export CatalogueStore yet")
    process = subprocess.Popen(
        [sys.executable, "-m", "sentinel_fetch.emulator", "--no-tls", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines: list[str] = []
        assert process.stdout is not None
        while not lines or not lines[-1].startswith("Press Ctrl+C"):
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            lines.append(line.strip())
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        token_url = exports["SENTINEL_FETCH_IDENTITY_URL"] + "/protocol/openid-connect/token"
        grant = requests.post(
            token_url,
            data={
                "client_id": "cdse-public",
                "grant_type": "password",
                "username": exports["CDSE_USERNAME"],
                "password": exports["CDSE_PASSWORD"],
            },
            timeout=30,
        )
        assert grant.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
    assert code == 0


def test_a_paced_body_notices_at_once_that_the_client_closed() -> None:
    """Between paced writes the server watches the socket: a client that hangs up stops
    counting as a stream then, not at a later write (an event-driven server's view)."""
    from types import SimpleNamespace

    from sentinel_fetch.emulator.server import Exchange, _ClientGone

    ours, theirs = socket.socketpair()
    with ours:
        exchange = SimpleNamespace(connection=SimpleNamespace(sock=ours))
        stopping = threading.Event()
        assert not Exchange._paced_wait(exchange, 0.01, stopping)  # type: ignore[arg-type]
        theirs.close()
        with pytest.raises(_ClientGone):
            # Without the watch this would sleep the whole minute and return.
            Exchange._paced_wait(exchange, 60.0, stopping)  # type: ignore[arg-type]
        stopping.set()
        assert Exchange._paced_wait(exchange, 60.0, stopping)  # type: ignore[arg-type]
