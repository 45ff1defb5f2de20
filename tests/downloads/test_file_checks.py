"""The pure parts of band downloads: multihash values, manifests, selections."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_fetch.downloads.manifest import parse_manifest, safe_relative_path
from sentinel_fetch.downloads.multihash import parse_multihash
from sentinel_fetch.downloads.selection import Selection, band_of
from sentinel_fetch.errors import IntegrityError, SelectionError

SHA3 = hashlib.sha3_256(b"band").hexdigest()
MD5 = hashlib.md5(b"band", usedforsecurity=False).hexdigest()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1620" + SHA3, ("SHA3-256", SHA3, False)),
        ("d50110" + MD5, ("MD5", MD5, False)),
        # CDSE's metadata assets: the MD5 code with a 32-byte digest, tried as SHA3-256.
        ("d50120" + SHA3, ("SHA3-256", SHA3, True)),
        ("1220" + SHA3, ("SHA256", SHA3, False)),
        ("1e20" + SHA3, ("BLAKE3", SHA3, False)),
        ("1620" + SHA3.upper(), ("SHA3-256", SHA3, False)),
    ],
)
def test_multihash_values_are_read_with_their_algorithm(
    text: str, expected: tuple[str, str, bool]
) -> None:
    checksum = parse_multihash(text)
    assert checksum is not None
    assert (checksum.algorithm, checksum.digest, checksum.tentative) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        42,
        "",
        "16",
        "1620" + SHA3[:-2],  # shorter than its length byte
        "1620" + SHA3 + "00",  # longer
        "16200" + SHA3,  # odd length
        "zz20" + SHA3,  # not hex
        "d50108" + MD5[:16],  # an 8-byte digest: no algorithm has that size
        "ff" * 80,  # a varint that never ends
        "1620" + "ab" * 500,  # far too long
    ],
)
def test_unusable_multihash_values_give_none_never_an_error(text: object) -> None:
    assert parse_multihash(text) is None


@given(st.text(max_size=200))
def test_any_text_is_a_checksum_or_none(text: str) -> None:
    result = parse_multihash(text)
    assert result is None or len(result.digest) in (32, 64)


def _manifest(*objects: str) -> bytes:
    body = "".join(objects)
    return (
        '<?xml version="1.0"?><xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1">'
        f"<dataObjectSection>{body}</dataObjectSection></xfdu:XFDU>"
    ).encode()


def _object(href: str, size: str = "4", name: str = "SHA3-256", value: str = SHA3) -> str:
    return (
        f'<dataObject ID="x"><byteStream mimeType="a" size="{size}">'
        f'<fileLocation locatorType="URL" href="{href}"/>'
        f'<checksum checksumName="{name}">{value}</checksum></byteStream></dataObject>'
    )


def test_a_manifest_gives_sizes_and_checksums_of_paths_inside_the_safe() -> None:
    entries = parse_manifest(
        _manifest(
            _object("./GRANULE/g/IMG_DATA/R10m/T_B04_10m.jp2", value=SHA3.upper()),
            _object("./MTD_MSIL2A.xml", name="MD5", value=MD5),
            _object("../../etc/passwd"),
            _object("/etc/passwd"),
            _object("./a/../../b"),
            _object("./bad.xml", value="nothex" * 9),
            _object("./big.xml", size="lots"),
        )
    )
    assert set(entries) == {
        "GRANULE/g/IMG_DATA/R10m/T_B04_10m.jp2",
        "MTD_MSIL2A.xml",
        "bad.xml",
        "big.xml",
    }
    band = entries["GRANULE/g/IMG_DATA/R10m/T_B04_10m.jp2"]
    assert band.size == 4 and band.checksum is not None
    assert (band.checksum.algorithm, band.checksum.digest) == ("SHA3-256", SHA3)
    assert entries["MTD_MSIL2A.xml"].checksum is not None
    assert entries["bad.xml"].checksum is None
    assert entries["big.xml"].size is None


@pytest.mark.parametrize(
    "data",
    [
        b"<not xml",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
        b"<x>" + b" " * (17 << 20) + b"</x>",
    ],
)
def test_what_is_not_a_manifest_is_refused(data: bytes) -> None:
    with pytest.raises(IntegrityError):
        parse_manifest(data)


@pytest.mark.parametrize("path", ["a/./b", "a//b", "a\\b", "a/\x00", "", ".", ".."])
def test_paths_that_could_leave_the_safe_are_refused(path: str) -> None:
    assert safe_relative_path(path) is None


L2A = [
    "GRANULE/g/IMG_DATA/R10m/T_20230101T000000_B04_10m.jp2",
    "GRANULE/g/IMG_DATA/R20m/T_20230101T000000_B04_20m.jp2",
    "GRANULE/g/IMG_DATA/R60m/T_20230101T000000_B04_60m.jp2",
    "GRANULE/g/IMG_DATA/R20m/T_20230101T000000_SCL_20m.jp2",
    "GRANULE/g/IMG_DATA/R60m/T_20230101T000000_SCL_60m.jp2",
    "GRANULE/g/IMG_DATA/R20m/T_20230101T000000_B8A_20m.jp2",
    "GRANULE/g/MTD_TL.xml",
    "manifest.safe",
]


def test_a_band_takes_its_finest_resolution_and_a_suffix_picks_one() -> None:
    def chosen(**kwargs: object) -> list[str]:
        selection = Selection.build(**kwargs)  # type: ignore[arg-type]
        assert selection is not None
        return [p.rsplit("/", 1)[-1] for p in selection.choose(L2A)]

    assert chosen(bands="B04,SCL") == [
        "T_20230101T000000_B04_10m.jp2",
        "T_20230101T000000_SCL_20m.jp2",
    ]
    assert chosen(bands=["b04_60m", "B8A"]) == [
        "T_20230101T000000_B04_60m.jp2",
        "T_20230101T000000_B8A_20m.jp2",
    ]
    assert chosen(files="GRANULE/*.xml") == ["MTD_TL.xml"]
    assert chosen(preset="metadata") == ["MTD_TL.xml", "manifest.safe"]
    assert chosen(bands="B02") == []


def test_band_names_of_each_mission() -> None:
    assert band_of("GRANULE/g/IMG_DATA/T32TPS_20230101T000000_B10.jp2") == ("B10", 60)
    assert band_of("measurement/s1a-iw1-slc-vv-20230101t000000-x-004.tiff") == ("VV", None)
    assert band_of("GRANULE/g/QI_DATA/MSK_CLDPRB_20m.jp2") is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bands": "B13"},
        {"bands": "B04_30m"},
        {"bands": "VV_10m"},
        {"bands": "B04,,B08"},
        {"bands": [4]},
        {"preset": "all"},
        {"files": "../outside"},
        {"files": "/etc/*"},
    ],
)
def test_selections_that_cannot_work_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(SelectionError):
        Selection.build(**kwargs)  # type: ignore[arg-type]
