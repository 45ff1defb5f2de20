"""Reading a response body into the writer's buffers, on both of its paths."""

from __future__ import annotations

import gzip
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from sentinel_fetch.downloads.transfer import _body_reader

BODY = random.Random(3).randbytes(300_001)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        payload = gzip.compress(BODY) if self.path == "/gzip" else BODY
        self.send_response(200)
        if self.path == "/gzip":
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _read_all(url: str, view_size: int) -> tuple[bytes, list[int]]:
    with requests.get(url, stream=True, timeout=10) as response:
        read = _body_reader(response, 4096)
        buffer = memoryview(bytearray(view_size))
        received, counts = bytearray(), []
        while count := read(buffer):
            assert count <= view_size
            received += buffer[:count]
            counts.append(count)
    return bytes(received), counts


@pytest.mark.parametrize("view_size", [1000, 4096, 65536])
def test_a_plain_body_is_read_straight_into_the_buffer(server: str, view_size: int) -> None:
    received, counts = _read_all(f"{server}/plain", view_size)
    assert received == BODY
    assert all(count == view_size for count in counts[:-1])  # full buffers but the last


@pytest.mark.parametrize("view_size", [1000, 4096, 65536])
def test_an_encoded_body_is_decoded_and_copied(server: str, view_size: int) -> None:
    received, _ = _read_all(f"{server}/gzip", view_size)
    assert received == BODY
