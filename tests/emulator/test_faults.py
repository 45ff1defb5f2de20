"""Fault injection: every failure users report can be reproduced on demand (peers.md §3)."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from sentinel_fetch.emulator import (
    DEMO_PASSWORD,
    BodyFault,
    ChunkedFault,
    CorruptFault,
    CutFault,
    DropHandshakeFault,
    Emulator,
    EndSessionsFault,
    EntityFault,
    ExpireTokenFault,
    FaultPlan,
    GzipFault,
    HoldFault,
    IgnoreRangeFault,
    RedirectFault,
    RewriteFault,
    SlowHeadFault,
    StallFault,
    StatusFault,
    TrickleFault,
    fault_from_dict,
)
from sentinel_fetch.emulator.faults import FaultTarget

from .test_server_support import (
    S1,
    S2,
    address,
    bearer,
    client,
    fetch,
    login,
    product_url,
    running,
    token,
)

# Above the floor of a complete L2A SAFE tree (~64 kB), so every archive has exactly this size.
SIZE = 100_000


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running(tmp_path_factory.mktemp("faults"), product_size_bytes=SIZE) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean_plan(emulator: Emulator) -> Iterator[None]:
    emulator.faults.clear()
    emulator.config.expire_midstream = False
    yield
    emulator.faults.clear()


@pytest.fixture
def access(emulator: Emulator) -> str:
    return token(emulator)


@pytest.fixture(scope="module")
def good(emulator: Emulator) -> bytes:
    response = client(emulator).get(product_url(emulator, S2), headers=bearer(token(emulator)))
    return response.content


def get(emulator: Emulator, access: str, record: object = S2, **headers: str) -> requests.Response:
    return client(emulator).get(
        product_url(emulator, record),  # type: ignore[arg-type]
        headers={**bearer(access), **headers},
    )


def test_status_burst_then_recovery(emulator: Emulator, access: str) -> None:
    emulator.faults.add(StatusFault(status=503, times=2))

    statuses = [get(emulator, access).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert len(emulator.faults.fired) == 2


def test_status_bodies_look_like_the_real_ones(emulator: Emulator, access: str) -> None:
    emulator.faults.extend(
        [
            StatusFault(status=502),
            StatusFault(status=500, code="DAT-ZIP-500", message="Internal error"),
            StatusFault(status=429),
            StatusFault(status=429, retry_after_s=2.5),
            StatusFault(status=429, host="catalogue"),
        ]
    )

    gateway = get(emulator, access)
    internal = get(emulator, access)
    throttled = get(emulator, access)
    throttled_retry = get(emulator, access)
    waf = client(emulator).get(f"{emulator.catalogue_url}/Products")

    assert gateway.headers["Content-Type"] == "text/html"
    assert "502 Bad Gateway" in gateway.text
    assert internal.json()["code"] == "DAT-ZIP-500"
    assert throttled.json()["code"] == "DAT-ZIP-100"
    assert "Retry-After" not in throttled.headers
    assert throttled_retry.headers["Retry-After"] == "3"
    assert waf.json() == {"error": "WAF", "message": "Rate limit exceeded", "status": 429}


def test_identity_host_faults(emulator: Emulator) -> None:
    emulator.faults.add(StatusFault(host="identity", status=503))

    assert login(emulator).status_code == 503
    assert login(emulator).status_code == 200


def test_status_faults_can_echo_a_secret_of_the_request(emulator: Emulator, access: str) -> None:
    """Careless servers quote the request; the client must mask what they quote."""
    emulator.faults.extend(
        [
            StatusFault(host="identity", status=400, code="invalid_request", echo="password"),
            StatusFault(status=403, code="DAT-ZIP-608", echo="authorization"),
        ]
    )

    identity = login(emulator)
    download = get(emulator, access)

    assert identity.status_code == 400
    assert identity.json()["code"] == "invalid_request"
    assert f"password={DEMO_PASSWORD}" in identity.json()["message"]
    assert download.status_code == 403
    assert f"Authorization: Bearer {access}" in download.json()["message"]


def test_rewrite_changes_what_the_catalogue_says(emulator: Emulator) -> None:
    url = f"{emulator.catalogue_url}/Products?$filter=Name eq '{S2.name}'"
    emulator.faults.add(RewriteFault(find=S2.name, replace="=HYPERLINK(1)", times=1))

    rewritten = client(emulator).get(url).json()["value"]
    again = client(emulator).get(url).json()["value"]

    assert [entry["Name"] for entry in rewritten] == ["=HYPERLINK(1)"]
    assert [entry["Name"] for entry in again] == [S2.name]


def test_cut_closes_the_connection_after_n_bytes(emulator: Emulator, access: str) -> None:
    emulator.faults.add(CutFault(after_bytes=1000, times=2))
    url = product_url(emulator, S2)

    status, headers, body = fetch(emulator, url, bearer(access))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(emulator, access)

    assert status == 200
    assert int(headers["Content-Length"]) == SIZE
    assert len(body) == 1000
    assert len(get(emulator, access).content) == SIZE


def test_cut_applies_to_catalogue_pages_too(emulator: Emulator) -> None:
    emulator.faults.add(CutFault(host="catalogue", after_bytes=5))

    status, _, body = fetch(emulator, f"{emulator.catalogue_url}/Products")

    assert status == 200
    assert body == b'{"val'


def test_body_fault_sends_a_hostile_answer_with_status_200(emulator: Emulator) -> None:
    deep = [['{"value":', 1], ["[", 100_000], ["]", 100_000], ["}", 1]]
    emulator.faults.add(fault_from_dict({"kind": "body", "host": "catalogue", "parts": deep}))

    status, headers, body = fetch(emulator, f"{emulator.catalogue_url}/Products")

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body == b'{"value":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert int(headers["Content-Length"]) == len(body)
    assert fetch(emulator, f"{emulator.catalogue_url}/Products")[2].startswith(b'{"value":[{')


def test_body_fault_may_lie_about_or_omit_its_length(emulator: Emulator) -> None:
    emulator.faults.add(
        BodyFault(host="identity", parts=(("x", 10),), content_length=1_000_000_000)
    )
    emulator.faults.add(BodyFault(host="identity", parts=(("y", 70_000),), close_delimited=True))

    _, lying, short = fetch(emulator, emulator.token_url, method="POST")
    _, unannounced, whole = fetch(emulator, emulator.token_url, method="POST")

    assert lying["Content-Length"] == "1000000000" and short == b"x" * 10
    assert "Content-Length" not in unannounced and whole == b"y" * 70_000


def test_entity_fault_alters_one_product_in_every_answer(emulator: Emulator) -> None:
    altered = {"ContentLength": "lots", "Extra": None}
    emulator.faults.add(EntityFault(product=S2.name, replace=altered, drop=("Name",), times=-1))
    emulator.faults.add(EntityFault(product=S1.id, replace={"Name": "never shown"}))
    fired_before = len(emulator.faults.fired)

    first = client(emulator).get(f"{emulator.catalogue_url}/Products").json()
    second = client(emulator).get(f"{emulator.catalogue_url}/Products").json()

    assert first == second == {"value": [{"Id": S2.id, "ContentLength": "lots", "Extra": None}]}
    # The S1 rule matched no entity: still armed, never fired.
    assert [f.fault.kind for f in emulator.faults.fired[fired_before:]] == ["entity", "entity"]
    assert [f.kind for f, _ in emulator.faults.pending()] == ["entity", "entity"]


def test_corrupt_flips_bytes_at_the_archive_offset_only(
    emulator: Emulator, access: str, good: bytes
) -> None:
    emulator.faults.add(CorruptFault(offset=123, length=2, times=3))

    whole = get(emulator, access).content
    tail = get(emulator, access, Range="bytes=100-").content
    beyond = get(emulator, access, Range="bytes=1000-").content

    differs = [i for i, (a, b) in enumerate(zip(whole, good, strict=True)) if a != b]
    assert differs == [123, 124]
    assert whole[123] == good[123] ^ 0xFF
    assert tail[23:25] != good[123:125]
    assert tail[:23] + tail[25:] == good[100:123] + good[125:]
    assert beyond == good[1000:]


def test_stall_before_headers_and_mid_body(emulator: Emulator, access: str, good: bytes) -> None:
    emulator.faults.add(StallFault(stall_s=0.3))
    began = time.monotonic()
    get(emulator, access)
    before_headers = time.monotonic() - began

    emulator.faults.add(StallFault(stall_s=0.3, after_bytes=5000))
    began = time.monotonic()
    body = get(emulator, access).content
    mid_body = time.monotonic() - began

    assert before_headers >= 0.3
    assert mid_body >= 0.3
    assert body == good


def test_hold_pauses_a_body_until_released(emulator: Emulator, access: str, good: bytes) -> None:
    emulator.faults.add(HoldFault(after_bytes=5000, product=S2.id))
    emulator.stats.reset()
    bodies: list[bytes] = []
    reader = threading.Thread(target=lambda: bodies.append(get(emulator, access).content))
    reader.start()
    assert emulator.stats.wait_for(lambda s: s.bytes_served(S2.id) == 5000)
    assert emulator.stats.current_streams() == 1
    assert not bodies, "the body went on while held"

    emulator.faults.release_holds()
    reader.join()

    assert bodies == [good]
    assert emulator.stats.bytes_served(S2.id) == len(good)


def test_clearing_the_plan_releases_held_streams(emulator: Emulator, access: str) -> None:
    emulator.faults.add(HoldFault(after_bytes=100, product=S2.id))
    bodies: list[bytes] = []
    reader = threading.Thread(target=lambda: bodies.append(get(emulator, access).content))
    reader.start()
    assert emulator.stats.wait_for(lambda s: s.current_streams() == 1)

    emulator.faults.clear()
    reader.join()

    assert len(bodies) == 1 and len(bodies[0]) == SIZE


def test_expire_token_before_dispatch(emulator: Emulator, access: str) -> None:
    emulator.faults.add(ExpireTokenFault())

    response = get(emulator, access)

    assert response.status_code == 401
    assert response.json()["code"] == "DAT-ZIP-109"


def test_expire_token_mid_stream_cuts_with_expire_midstream(
    emulator: Emulator, access: str
) -> None:
    emulator.config.expire_midstream = True
    emulator.faults.add(ExpireTokenFault(after_bytes=7000))

    status, _, body = fetch(emulator, product_url(emulator, S2), bearer(access))
    later = get(emulator, access)

    assert status == 200
    assert len(body) == 7000
    assert later.json()["code"] == "DAT-ZIP-109"


def test_expire_token_mid_stream_without_expire_midstream(emulator: Emulator, access: str) -> None:
    emulator.faults.add(ExpireTokenFault(after_bytes=7000))

    complete = get(emulator, access)
    later = get(emulator, access)

    assert len(complete.content) == SIZE
    assert later.status_code == 401


def test_ignore_range_is_a_one_off(emulator: Emulator, access: str, good: bytes) -> None:
    emulator.faults.add(IgnoreRangeFault())

    ignored = get(emulator, access, Range="bytes=10-")
    honoured = get(emulator, access, Range="bytes=10-")

    assert ignored.status_code == 200
    assert ignored.content == good
    assert honoured.status_code == 206


def test_end_sessions_forces_a_new_login(emulator: Emulator) -> None:
    grant = login(emulator).json()
    emulator.faults.add(EndSessionsFault())
    get(emulator, grant["access_token"])

    refreshed = client(emulator).post(
        emulator.token_url,
        data={
            "client_id": "cdse-public",
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
        },
    )

    assert refreshed.status_code == 400
    assert refreshed.json()["error_description"] == "Token is not active"
    assert login(emulator).status_code == 200


def test_end_sessions_on_the_refresh_request_itself(emulator: Emulator) -> None:
    grant = login(emulator).json()
    emulator.faults.add(EndSessionsFault(host="identity", path_contains="/token"))

    refreshed = client(emulator).post(
        emulator.token_url,
        data={
            "client_id": "cdse-public",
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
        },
    )

    assert refreshed.status_code == 400


def test_redirect_shows_whether_the_token_follows(emulator: Emulator, access: str) -> None:
    foreign = emulator.identity_url.replace("127.0.0.1", "localhost").split("/auth")[0]
    emulator.faults.add(RedirectFault(location=foreign + "/elsewhere{path}", times=2))

    not_followed = get_no_redirect(emulator, access)
    followed = get(emulator, access)

    assert not_followed.status_code == 302
    path = urlsplit(product_url(emulator, S2)).path
    assert not_followed.headers["Location"] == f"{foreign}/elsewhere{path}"
    assert followed.status_code == 404
    landed = emulator.stats.events(host="identity")[-1]
    assert landed.path.startswith("/elsewhere/odata/v1/Products(")
    assert landed.authorization is False


def get_no_redirect(emulator: Emulator, access: str) -> requests.Response:
    return client(emulator).get(
        product_url(emulator, S2), headers=bearer(access), allow_redirects=False
    )


def test_filters_select_product_path_and_method(emulator: Emulator, access: str) -> None:
    emulator.faults.extend(
        [
            StatusFault(status=500, product=S1.name, times=-1),
            CutFault(after_bytes=10, method="GET"),
        ]
    )

    head = client(emulator).head(product_url(emulator, S2), headers=bearer(access))
    cut = fetch(emulator, product_url(emulator, S2), bearer(access))[2]
    s1 = [get(emulator, access, S1).status_code for _ in range(3)]

    assert head.status_code == 200
    assert len(cut) == 10
    assert s1 == [500, 500, 500]
    assert [remaining for _, remaining in emulator.faults.pending()] == [-1]


def test_path_contains_filter(emulator: Emulator, access: str) -> None:
    emulator.faults.add(StatusFault(status=503, path_contains="/Nodes"))

    listing = client(emulator).get(f"{emulator.download_url}/Products({S2.id})/Nodes")
    product = get(emulator, access)

    assert listing.status_code == 503
    assert product.status_code == 200


def test_randomize_draws_faults_for_product_gets(emulator: Emulator, access: str) -> None:
    emulator.faults.randomize(rate=1.0, kinds=["cut"], seed=3)

    lengths = [len(fetch(emulator, product_url(emulator, S2), bearer(access))[2]) for _ in range(5)]

    assert all(length < SIZE for length in lengths)
    assert len(set(lengths)) > 1
    assert all(f.randomized and f.fault.kind == "cut" for f in emulator.faults.fired[-5:])


def test_random_faults_replay_with_the_same_seed() -> None:
    target = FaultTarget("download", "GET", "/odata/v1/Products(x)/$value", "x")

    def draws(seed: int) -> list[object]:
        plan = FaultPlan()
        plan.randomize(rate=0.5, seed=seed)
        return [plan.draw_random(target, 1_000_000) for _ in range(40)]

    first = draws(11)
    assert first == draws(11)
    assert first != draws(12)
    assert 5 < sum(f is not None for f in first) < 35


def test_rules_round_trip_through_json() -> None:
    rules = [
        StatusFault(status=429, retry_after_s=5, host="catalogue", times=-1),
        CutFault(after_bytes=10, product="abc"),
        RedirectFault(location="http://elsewhere.test{path}"),
        StallFault(stall_s=0.5, after_bytes=3),
        DropHandshakeFault(host="catalogue", reset=True, times=2),
        TrickleFault(after_bytes=7, bytes_per_write=3, interval_s=0.5),
        SlowHeadFault(host="identity", bytes_per_write=2, interval_s=0.25, times=-1),
        ChunkedFault(extra_bytes=-1, product="abc"),
        GzipFault(ignore_accept_encoding=True, chunked=False),
        StatusFault(status=401, host="identity", echo="password"),
        RewriteFault(find="S2A", replace="S2Z"),
        BodyFault(host="identity", parts=(("[", 3), ("]", 3)), content_length=9),
        BodyFault(headers=(("Content-Length", "10"), ("Content-Length", "20"))),
        EntityFault(product="abc", replace={"Footprint": None}, drop=("GeoFootprint",)),
    ]

    assert [fault_from_dict(json.loads(json.dumps(rule.to_dict()))) for rule in rules] == rules


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "explode"},
        {"kind": "cut", "after": 3},
        {"kind": "cut", "after_bytes": -1},
        {"kind": "status", "status": 200},
        {"kind": "status", "host": "elsewhere"},
        {"kind": "cut", "times": 0},
        {"kind": "redirect"},
        {"kind": "drop_handshake", "product": "abc"},
        {"kind": "trickle", "bytes_per_write": 0},
        {"kind": "chunked", "extra_bytes": -2},
        {"kind": "status", "echo": "cookie"},
        {"kind": "status", "echo": "password", "body": {}},
        {"kind": "rewrite", "find": "", "replace": "x"},
        {"kind": "rewrite", "host": "download", "find": "a", "replace": "b"},
        {"kind": "body", "status": 100},
        {"kind": "body", "parts": [["x"]]},
        {"kind": "body", "parts": [["x", -1]]},
        {"kind": "body", "parts": [["x", 2**31]]},
        {"kind": "entity", "host": "download"},
        {"kind": "entity", "replace": ["Name"]},
    ],
)
def test_invalid_rules_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        fault_from_dict(data)


def test_randomize_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        FaultPlan().randomize(rate=1.5)
    with pytest.raises(ValueError):
        FaultPlan().randomize(rate=0.5, kinds=["redirect"])


def test_faults_work_over_plain_http(tmp_path: Path) -> None:
    with running(tmp_path, tls=False, product_size_bytes=10 * 1024 * 1024) as emulator:
        access = token(emulator)
        emulator.faults.add(CutFault(after_bytes=3_000_000))
        cut = fetch(emulator, product_url(emulator, S2), bearer(access))[2]
        emulator.faults.add(CorruptFault(offset=9_000_000))
        corrupt = fetch(emulator, product_url(emulator, S2), bearer(access))[2]
        clean = fetch(emulator, product_url(emulator, S2), bearer(access))[2]
        emulator.faults.add(ChunkedFault(extra_bytes=3))
        chunked = fetch(emulator, product_url(emulator, S2), bearer(access))
        emulator.faults.add(DropHandshakeFault(host="download"))
        fetch(emulator, product_url(emulator, S2), bearer(access))

        assert len(cut) == 3_000_000
        differs = np.flatnonzero(np.frombuffer(clean, np.uint8) != np.frombuffer(corrupt, np.uint8))
        assert differs.tolist() == [9_000_000]
        assert chunked[1]["Transfer-Encoding"] == "chunked"
        assert chunked[2] == clean + bytes(3)
        assert emulator.faults.pending(), "no TLS, no handshake to drop"


def _tls_handshake(emulator: Emulator, url: str) -> None:
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    with (
        socket.create_connection(address(url), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass


def test_drop_handshake_hangs_up_before_any_answer(emulator: Emulator, access: str) -> None:
    before = len(emulator.faults.fired)
    emulator.faults.add(DropHandshakeFault())
    emulator.faults.add(DropHandshakeFault(reset=True))
    url = product_url(emulator, S2)

    with pytest.raises(ssl.SSLEOFError):
        _tls_handshake(emulator, url)
    with pytest.raises(ConnectionResetError):
        _tls_handshake(emulator, url)
    _tls_handshake(emulator, url)

    assert [f.fault.kind for f in emulator.faults.fired[before:]] == ["drop_handshake"] * 2
    assert not emulator.faults.pending()
    assert get(emulator, access).status_code == 200


def test_drop_handshake_is_per_host(emulator: Emulator) -> None:
    emulator.faults.add(DropHandshakeFault(host="identity"))

    _tls_handshake(emulator, product_url(emulator, S2))

    assert emulator.faults.pending(), "a download-host connection must not use it up"
    with pytest.raises(requests.exceptions.SSLError):
        login(emulator)
    assert login(emulator).status_code == 200
    assert not emulator.faults.pending()


def _body_reads(emulator: Emulator, url: str, headers: dict[str, str]) -> list[bytes]:
    """The response to a GET as the pieces each TLS read returned (one TLS record each)."""
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    split = urlsplit(url)
    lines = [f"GET {split.path} HTTP/1.1", f"Host: {split.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with (
        socket.create_connection(address(url), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        pieces = []
        while piece := tls.recv(1 << 20):
            pieces.append(piece)
    return pieces


def test_trickle_sends_the_rest_of_the_body_a_few_bytes_at_a_time(
    emulator: Emulator, access: str, good: bytes
) -> None:
    emulator.faults.add(TrickleFault(after_bytes=SIZE - 10, bytes_per_write=2, interval_s=0.01))

    pieces = _body_reads(emulator, product_url(emulator, S2), bearer(access))

    response = b"".join(pieces)
    assert response.endswith(good)
    assert [len(piece) for piece in pieces[-5:]] == [2] * 5
    assert get(emulator, access).content == good


def test_chunked_body_without_length_and_with_extra_bytes(
    emulator: Emulator, access: str, good: bytes
) -> None:
    emulator.faults.add(ChunkedFault())
    plain = get(emulator, access)
    emulator.faults.add(ChunkedFault(extra_bytes=5000))
    longer = get(emulator, access)

    assert plain.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in plain.headers
    assert plain.content == good
    assert longer.content == good + bytes(5000)


def test_endless_chunked_body_goes_on_until_the_client_leaves(
    emulator: Emulator, access: str, good: bytes
) -> None:
    emulator.faults.add(ChunkedFault(extra_bytes=-1, product=S2.id))
    emulator.stats.reset()

    received = 0
    with client(emulator).get(
        product_url(emulator, S2), headers=bearer(access), stream=True, timeout=10
    ) as response:
        for piece in response.iter_content(1 << 16):
            received += len(piece)
            if received > 20 * len(good):
                break

    assert received > 20 * len(good)
    assert emulator.stats.bytes_served(S2.id) >= received
    assert emulator.stats.wait_for(lambda stats: stats.current_streams() == 0)


def test_gzip_only_for_clients_that_accept_it_like_nginx(
    emulator: Emulator, access: str, good: bytes
) -> None:
    emulator.faults.add(GzipFault(times=2))
    url = product_url(emulator, S2)

    identity = get(emulator, access, **{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in identity.headers
    assert identity.content == good
    assert emulator.faults.pending()[0][1] == 2, "a request refusing gzip uses up no rule"

    status, headers, body = fetch(emulator, url, {**bearer(access), "Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Transfer-Encoding"] == "chunked"
    assert gzip.decompress(body) == good
    assert "Content-Length" not in headers
    ranged = get(emulator, access, Range="bytes=100-", **{"Accept-Encoding": "gzip"})
    assert ranged.status_code == 200, "a compressed answer is always the whole resource"
    assert ranged.content == good  # requests decodes it
    assert not emulator.faults.pending()


def test_gzip_despite_identity_with_a_length(emulator: Emulator, access: str, good: bytes) -> None:
    emulator.faults.add(GzipFault(ignore_accept_encoding=True, chunked=False))

    status, headers, body = fetch(
        emulator,
        product_url(emulator, S2),
        {**bearer(access), "Accept-Encoding": "identity", "Range": "bytes=10-"},
    )

    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert int(headers["Content-Length"]) == len(body) != len(good)
    assert "Content-Range" not in headers
    assert gzip.decompress(body) == good


def test_gzip_applies_to_catalogue_pages_too(emulator: Emulator) -> None:
    emulator.faults.add(GzipFault(host="catalogue"))

    page = client(emulator).get(f"{emulator.catalogue_url}/Products")

    assert page.headers["Content-Encoding"] == "gzip"
    assert page.json()["value"][0]["Id"] == S2.id
