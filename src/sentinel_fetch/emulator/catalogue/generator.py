"""Builds the synthetic catalogue: realistic Sentinel products in an SQLite file.

Everything is deterministic from the seed (:mod:`.hashing`). Products follow the orbits of
:mod:`.missions`: footprints come from the swath of the relative orbit that saw them, names
follow the real patterns (cdse-api.md §8.3), dates follow the processing chain (sensing,
processing, origin, publication, modification), platforms are only used while they flew.

Collections and products:

* SENTINEL-1: IW GRDH (``IW_GRDH_1S``) slices of 25 s along datatakes over land, IW SLC for
  part of the datatakes, COG twins (``IW_GRDH_1S-COG``) of part of the GRD since
  October 2023, EW GRDM over the Arctic. Swath 250 km, right-looking.
* SENTINEL-2: L1C (``S2MSI1C``) and L2A (``S2MSI2A``) per MGRS tile and datatake, partial
  tiles at the swath edges (290 km swath, 10-day cycle per platform, 5 days with two).
* SENTINEL-3: OLCI ``OL_1_EFR___``/``OL_2_LFR___`` and SLSTR ``SL_1_RBT___``/``SL_2_LST___``
  frames of 3 minutes (``.SEN3``), 1270-1400 km swaths.
* SENTINEL-5P: daily-global L2 orbits (``L2__NO2___`` and six others, OFFL, and NO2 NRTI),
  2600 km swaths, names ending ``.nc``.

* Twins (cdse-api.md §11.3), for about 3.5 % of Sentinel-2 (datatake, tile) pairs: 1 % a
  replaced product (same baseline, processed again 2-30 h later), 1 % a second baseline
  (the 02.08/02.09/03.00 original of a Collection-1 05.00 product, or a 05.10
  reprocessing of a 05.09 one; other baselines get a replaced product instead), 0.5 % a
  CloudFerro L2A at baseline 99.99 (``origin`` CloudFerro), and 1 % of the tiles seen
  whole a datatake that left two complementary partial tiles (cut at the middle
  latitude, overlapping by 0.02°) instead of one whole tile. Twins are served only while
  the ``reprocessed_twins`` switch is on; the whole tile a split replaces only while it
  is off (``variant`` column, :mod:`.schema`).

Time span 2019-2025, densest in 2023 (:mod:`.missions` has the sampling rates). Totals for
the default seed 20231001, measured on a 2-core machine: 271,299 products without twins
(SENTINEL-1 104,111; SENTINEL-2 129,442; SENTINEL-3 10,086; SENTINEL-5P 27,660), 274,864
with them (SENTINEL-2 133,007: 4,173 twin rows, 337 of them CloudFerro, replace 608
whole tiles), sharing 85,900 footprints, a 133 MB file, built in 13-26 s.

Queries of realistic size: Sentinel-2 over Europe (lon -10..30, lat 35..70) in 2023
matches 35,416 products, the query documented to exceed 25,000::

    Collection/Name eq 'SENTINEL-2' and OData.CSC.Intersects(area=geography'SRID=4326;
    POLYGON((-10 35, 30 35, 30 70, -10 70, -10 35))') and ContentDate/Start ge
    2023-01-01T00:00:00.000Z and ContentDate/Start lt 2024-01-01T00:00:00.000Z

The same box and year hold 6,922 Sentinel-1, 1,945 Sentinel-3 and 3,913 Sentinel-5P
products; the Bavaria/Alps hotspot has every Sentinel-2 acquisition of 2023 (6,644).
"""

from __future__ import annotations

import bisect
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import shapely
from shapely import STRtree, affinity
from shapely.geometry import Polygon

from . import missions as m
from .footprints import FootprintRegistry, normalise_ring
from .hashing import fraction, key, key_array, mix, stable_hash, unit_array
from .mgrs import Tile, tiles_in_box
from .orbits import FloatArray, Platform, micros, swath_edges
from .schema import ALWAYS, DDL, INDEXES, PRODUCT_COLUMNS, SPLIT_ORIGINAL, TWIN

__all__ = ["GENERATOR_VERSION", "BuildReport", "build_catalogue"]

#: Bump whenever the generated content changes: it is part of the cache file name.
GENERATOR_VERSION = 3

_S1, _S2, _S3, _S5P = (stable_hash(n) for n in ("SENTINEL-1", "SENTINEL-2", "SENTINEL-3", "S5P"))
_START_US = micros(m.CATALOGUE_START)
_END_US = micros(m.CATALOGUE_END)
_MINUTE_US = 60_000_000
_HOUR_US = 60 * _MINUTE_US
_DAY_US = 24 * _HOUR_US
_EPOCH = datetime(1970, 1, 1)
_YEARS = list(range(2014, 2028))
_YEAR_STARTS = [micros(datetime(y, 1, 1, tzinfo=timezone.utc)) for y in _YEARS]
_LEGACY_BEFORE_US = micros(datetime(2021, 1, 1, tzinfo=timezone.utc))
# Ids published before CDSE opened (2023) look like the older v5-style UUIDs (§3.2).
_V4_IDS_FROM_US = micros(datetime(2023, 1, 1, tzinfo=timezone.utc))
# The 2023-2024 reprocessing (baseline 05.00) covered sensing up to early 2022.
_REPROCESSED_SPAN_US = (
    micros(datetime(2019, 1, 1, tzinfo=timezone.utc)),
    micros(datetime(2022, 1, 1, tzinfo=timezone.utc)),
)
_REPROCESSING_START_US = micros(datetime(2023, 3, 1, tzinfo=timezone.utc))
_OFFLINE_RATE = {2019: 0.075, 2020: 0.055, 2021: 0.035, 2022: 0.025}
_OFFLINE_RATE_RECENT = 0.015
_LEGACY_RATE = 0.077


def _year(us: int) -> int:
    return _YEARS[bisect.bisect_right(_YEAR_STARTS, us) - 1]


_DAY_TEXT: dict[int, str] = {}


def _stamp(us: int) -> str:
    """``YYYYMMDDTHHMMSS`` of epoch microseconds (the time format of product names)."""
    day, second = divmod(us // 1_000_000, 86400)
    date = _DAY_TEXT.get(day)
    if date is None:
        date = _DAY_TEXT[day] = (_EPOCH + timedelta(days=day)).strftime("%Y%m%d")
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{date}T{hour:02d}{minute:02d}{second:02d}"


def _to_datetime(us: int) -> datetime:
    return (_EPOCH + timedelta(microseconds=us)).replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class BuildReport:
    """What a build produced.

    Attributes:
        products_by_collection: product count per collection.
        footprints: distinct footprint outlines.
        seconds: wall-clock build time.
        size_bytes: size of the database file.
    """

    products_by_collection: dict[str, int]
    footprints: int
    seconds: float
    size_bytes: int


class _Rows:
    """Collects product rows and gives each its processing-chain dates, flags and Id."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rows: list[tuple[object, ...]] = []

    def add(
        self,
        *,
        name: str,
        collection: str,
        product_type: str,
        platform: str | None,
        start_us: int,
        end_us: int,
        processing_us: int,
        nominal_size: int,
        footprint_id: int,
        orbit: int | None = None,
        relative_orbit: int | None = None,
        orbit_direction: str | None = None,
        mode: str | None = None,
        polarisation: str | None = None,
        tile: str | None = None,
        cloud_cover: float | None = None,
        baseline: str | None = None,
        timeliness: str | None = None,
        datatake: int | None = None,
        slice_number: int | None = None,
        total_slices: int | None = None,
        segment_start_us: int | None = None,
        anx_ms: float | None = None,
        origin: str = "ESA",
        variant: int = ALWAYS,
    ) -> None:
        h = key(self.seed, stable_hash(name))
        # The archive copy appears minutes after processing, is published minutes later
        # and touched again (checksums, metadata) shortly after; a few get a late update.
        origin_us = processing_us + int((8 + 17 * fraction(h, 0)) * _MINUTE_US)
        publication_us = origin_us + int((3 + 12 * fraction(h, 1)) * _MINUTE_US)
        modification_us = publication_us + int((20 + 60 * fraction(h, 2)) * 1_000_000)
        if fraction(h, 3) < 0.04:
            modification_us += int((1 + 200 * fraction(h, 2)) * _DAY_US)
        h2 = mix(h)
        legacy = start_us < _LEGACY_BEFORE_US and fraction(h2, 0) < _LEGACY_RATE
        offline_rate = _OFFLINE_RATE.get(_year(start_us), _OFFLINE_RATE_RECENT)
        online = fraction(h2, 1) >= offline_rate
        self.rows.append(
            (
                _uuid(mix(h2), mix(mix(h2)), 5 if publication_us < _V4_IDS_FROM_US else 4),
                name,
                collection,
                product_type,
                platform,
                start_us,
                end_us,
                origin_us,
                publication_us,
                modification_us,
                processing_us,
                int(online),
                int(legacy),
                nominal_size,
                footprint_id,
                orbit,
                relative_orbit,
                orbit_direction,
                mode,
                polarisation,
                tile,
                cloud_cover,
                baseline,
                timeliness,
                datatake,
                slice_number,
                total_slices,
                segment_start_us,
                anx_ms,
                origin,
                variant,
            )
        )


def _uuid(high: int, low: int, version: int) -> bytes:
    # CDSE Ids look like UUIDs of version 4 (newer) or 5 (older holdings), RFC 4122 variant.
    high = (high & ~(0xF << 12)) | (version << 12)
    low = (low & ~(0x3 << 62)) | (0x2 << 62)
    return high.to_bytes(8, "big") + low.to_bytes(8, "big")


def _size(h: int, field: int, low_mb: float, high_mb: float, scale: float = 1.0) -> int:
    return int((low_mb + (high_mb - low_mb) * fraction(h, field)) * 1_000_000 * scale)


@dataclass(frozen=True)
class _Datatake:
    """A (platform, orbit, segment) that survived the density draw; ``h`` is a hash for
    further choices about it, independent of ``draw``."""

    orbit: int
    relative_orbit: int
    node_us: int
    index: int
    year: int
    h: int
    draw: float


def _datatakes(
    seed: int,
    mission: int,
    platform: Platform,
    zones_by_orbit: Mapping[int, Sequence[str]],
    density: m.MissionDensity,
) -> Iterator[_Datatake]:
    """Datatakes (one segment of one orbit over one zone) kept by the density draw.

    The draw is vectorised over every orbit and segment of the platform's service period;
    only the few kept ones reach Python loops.
    """
    orbits = platform.orbits_between(_START_US, _END_US)
    if not len(orbits):
        return
    rels = platform.relative_orbit(orbits)
    nodes = platform.node_time_us(orbits)
    size = platform.model.orbits_per_cycle + 1
    most = max((len(z) for z in zones_by_orbit.values()), default=0)
    if most == 0:
        return
    ceilings = np.zeros((size, most, len(_YEARS)))
    counts_by_rel = np.zeros(size, dtype=np.int64)
    for rel, zones in zones_by_orbit.items():
        counts_by_rel[rel] = len(zones)
        for index, zone in enumerate(zones):
            for y, year in enumerate(_YEARS):
                ceilings[rel, index, y] = density.ceiling(zone, year)
    counts = counts_by_rel[rels]
    orbit_rep = np.repeat(orbits, counts)
    rel_rep = np.repeat(rels, counts)
    node_rep = np.repeat(nodes, counts)
    firsts = np.repeat(np.cumsum(counts) - counts, counts)
    index_rep = np.arange(len(orbit_rep)) - firsts
    year_rep = np.searchsorted(np.array(_YEAR_STARTS), node_rep, side="right") - 1
    hashes = key_array(
        seed,
        mission,
        ord(platform.serial or "P"),
        orbit_rep.astype(np.uint64),
        index_rep.astype(np.uint64),
    )
    draws = unit_array(hashes)
    for i in np.flatnonzero(draws < ceilings[rel_rep, index_rep, year_rep]).tolist():
        yield _Datatake(
            int(orbit_rep[i]),
            int(rel_rep[i]),
            int(node_rep[i]),
            int(index_rep[i]),
            _YEARS[int(year_rep[i])],
            # Re-mixed: the raw hash's top bits are small by selection (draw < density).
            mix(int(hashes[i])),
            float(draws[i]),
        )


# --------------------------------------------------------------------------- Sentinel-2


@dataclass(frozen=True)
class _TileSeen:
    tile: str
    fid: int
    coverage: float
    lon: float
    lat: float
    outline: Polygon


@dataclass(frozen=True)
class _S2Pass:
    zone: str
    offset_s: float
    tiles: tuple[_TileSeen, ...]


def _s2_passes(registry: FootprintRegistry) -> dict[int, list[_S2Pass]]:
    """Tiles seen by each relative orbit's descending pass, grouped by zone (static: the
    same relative orbit always sees the same tiles with the same outline)."""
    model = m.S2_MODEL
    period = model.period_s
    tiles: list[Tile] = []
    zone_of: list[str] = []
    for zone in m.ZONES:
        for tile in tiles_in_box(zone.lon_min, zone.lat_min, zone.lon_max, zone.lat_max):
            tiles.append(tile)
            zone_of.append(zone.name)
    tile_polygons = shapely.polygons([list(t.ring) for t in tiles])
    tree = STRtree(tile_polygons)
    seconds = np.linspace(period / 4, 3 * period / 4, 601)
    result: dict[int, list[_S2Pass]] = {}
    for rel in range(1, model.orbits_per_cycle + 1):
        near_lon, near_lat, far_lon, far_lat = swath_edges(model, rel, seconds, -145.0, 145.0)
        track_lat = (near_lat + far_lat) / 2
        pieces: dict[int, list[Polygon]] = {}
        for i in range(0, len(seconds) - 1, 12):
            j = min(i + 12, len(seconds) - 1)
            ring = list(zip(near_lon[i : j + 1], near_lat[i : j + 1], strict=True))
            ring += list(zip(far_lon[i : j + 1][::-1], far_lat[i : j + 1][::-1], strict=True))
            chunk = Polygon(ring)
            if not chunk.is_valid:
                continue
            shift = -360.0 * math.floor(chunk.centroid.x / 360.0 + 0.5)
            if shift:
                chunk = affinity.translate(chunk, xoff=shift)
            for index in tree.query(chunk, predicate="intersects").tolist():
                pieces.setdefault(index, []).append(chunk)
        by_zone: dict[str, list[tuple[float, _TileSeen]]] = {}
        for index, chunks in pieces.items():
            tile_polygon = tile_polygons[index]
            swath = chunks[0] if len(chunks) == 1 else shapely.union_all(chunks)
            seen = tile_polygon.intersection(swath)
            coverage = seen.area / tile_polygon.area
            if coverage < 0.01:
                continue
            fid = registry.add(seen, "SENTINEL-2")
            if fid is None:
                continue
            tile = tiles[index]
            at_s = float(np.interp(tile.center_lat, track_lat[::-1], seconds[::-1]))
            seen_tile = _TileSeen(tile.id, fid, coverage, tile.center_lon, tile.center_lat, seen)
            by_zone.setdefault(zone_of[index], []).append((at_s, seen_tile))
        result[rel] = [
            _S2Pass(
                zone,
                min(t for t, _ in found) - 1.5,
                tuple(s for _, s in sorted(found, key=lambda f: (f[0], f[1].tile))),
            )
            for zone, found in sorted(by_zone.items())
        ]
    return result


def _emit_s2(rows: _Rows, registry: FootprintRegistry) -> None:
    passes = _s2_passes(registry)
    density = m.S2_DENSITY
    zones = {rel: [p.zone for p in found] for rel, found in passes.items()}
    # Per (relative orbit, pass, year): tiles by decreasing density, and minus densities
    # ascending, so the tiles a draw keeps are a prefix found by bisection.
    ranked: dict[tuple[int, int, int], tuple[list[_TileSeen], list[float]]] = {}
    splits: dict[tuple[int, str], tuple[tuple[int, float], tuple[int, float]] | None] = {}
    for platform in m.S2_PLATFORMS:
        for take in _datatakes(rows.seed, _S2, platform, zones, density):
            seen = passes[take.relative_orbit][take.index]
            # S2 datatake times are given to the millisecond (cdse-api.md §9.2).
            start_us = (take.node_us + int(seen.offset_s * 1e6)) // 1000 * 1000
            if not platform.first_us <= start_us < platform.last_us:
                continue
            slot = (take.relative_orbit, take.index, take.year)
            order = ranked.get(slot)
            if order is None:
                weighted = sorted(
                    ((-density.at(seen.zone, take.year, t.lon, t.lat), t) for t in seen.tiles),
                    key=lambda pair: pair[0],
                )
                order = ranked[slot] = ([t for _, t in weighted], [w for w, _ in weighted])
            kept = order[0][: bisect.bisect_left(order[1], -take.draw)]
            _emit_s2_datatake(
                rows,
                registry,
                splits,
                platform,
                take.orbit,
                take.relative_orbit,
                start_us,
                kept,
                take.h,
            )


#: Shares of Sentinel-2 (datatake, tile) pairs that get a twin (cdse-api.md §11.3), by
#: cumulative draw: a replaced product (same baseline, processed again hours later), a
#: second baseline (the pre-Collection-1 original of a 05.00 product, a 05.10
#: reprocessing of a 05.09 one), a CloudFerro L2A at baseline 99.99, and a datatake that
#: left the tile in two partial tiles (two datastrips) instead of one whole tile.
_TWIN_REPLACED, _TWIN_BASELINE, _TWIN_CLOUDFERRO, _TWIN_SPLIT = 0.010, 0.020, 0.025, 0.035
#: Only tiles the pass saw (nearly) whole are split; the pieces overlap by this much
#: latitude, as neighbouring datastrips do.
_SPLIT_MIN_COVERAGE = 0.95
_SPLIT_OVERLAP_DEG = 0.02


@dataclass(frozen=True)
class _S2Copy:
    """One product of a (datatake, tile, level): the stored one or one of its twins."""

    baseline: str
    processing_us: int
    fid: int
    coverage: float
    origin: str = "ESA"
    variant: int = ALWAYS


def _pre_collection_1_baseline(start_us: int) -> str:
    """The baseline a 2019-2021 product had before the Collection-1 reprocessing."""
    year = _year(start_us)
    if year < 2020:
        return "02.08"
    if year < 2021:
        return "02.09"
    return "03.00"


def _split_tile(
    registry: FootprintRegistry,
    splits: dict[tuple[int, str], tuple[tuple[int, float], tuple[int, float]] | None],
    rel: int,
    tile: _TileSeen,
) -> tuple[tuple[int, float], tuple[int, float]] | None:
    """Footprint ids and coverages of the two partial tiles a split datatake leaves (cut at
    the tile's middle latitude, overlapping slightly), shared by every split of that tile
    seen from that relative orbit."""
    slot = (rel, tile.tile)
    if slot in splits:
        return splits[slot]
    outline = tile.outline
    west, south, east, north = outline.bounds
    middle = (south + north) / 2
    pieces = []
    for low, high in (
        (south - 1, middle + _SPLIT_OVERLAP_DEG),
        (middle - _SPLIT_OVERLAP_DEG, north + 1),
    ):
        piece = outline.intersection(shapely.box(west - 1, low, east + 1, high))
        fid = registry.add(piece if isinstance(piece, Polygon) else None, "SENTINEL-2")
        if fid is None:
            splits[slot] = None
            return None
        pieces.append((fid, tile.coverage * piece.area / outline.area))
    found = (pieces[0], pieces[1])
    splits[slot] = found
    return found


def _s2_copies(
    registry: FootprintRegistry,
    splits: dict[tuple[int, str], tuple[tuple[int, float], tuple[int, float]] | None],
    rel: int,
    tile: _TileSeen,
    th: int,
    level: str,
    baseline: str,
    reprocessed: bool,
    start_us: int,
    processing_us: int,
) -> list[_S2Copy]:
    """The stored product of one tile and level, and its twins (none for most)."""
    stored = _S2Copy(baseline, processing_us, tile.fid, tile.coverage)
    h = mix(th ^ 0x7717)
    draw, later = fraction(h, 0), fraction(h, 1)
    if draw < _TWIN_REPLACED or (
        _TWIN_REPLACED <= draw < _TWIN_BASELINE and not reprocessed and baseline != "05.09"
    ):
        again = processing_us + int((2 + 28 * later) * _HOUR_US)
        return [stored, _S2Copy(baseline, again, tile.fid, tile.coverage, variant=TWIN)]
    if draw < _TWIN_BASELINE:
        if reprocessed:
            original_us = (
                start_us
                + int((50 + 100 * later) * _MINUTE_US)
                + (level == "2A") * (30 * _MINUTE_US)
            )
            old = _pre_collection_1_baseline(start_us)
            return [stored, _S2Copy(old, original_us, tile.fid, tile.coverage, variant=TWIN)]
        newer_us = processing_us + int((300 + 100 * later) * _DAY_US)
        return [stored, _S2Copy("05.10", newer_us, tile.fid, tile.coverage, variant=TWIN)]
    if draw < _TWIN_CLOUDFERRO:
        if level != "2A":
            return [stored]
        cloudferro_us = processing_us + int((3 + 20 * later) * _DAY_US)
        twin = _S2Copy("99.99", cloudferro_us, tile.fid, tile.coverage, "CloudFerro", TWIN)
        return [stored, twin]
    if draw < _TWIN_SPLIT and tile.coverage >= _SPLIT_MIN_COVERAGE:
        halves = _split_tile(registry, splits, rel, tile)
        if halves is None:
            return [stored]
        (fid_a, coverage_a), (fid_b, coverage_b) = halves
        whole = _S2Copy(baseline, processing_us, tile.fid, tile.coverage, variant=SPLIT_ORIGINAL)
        return [
            whole,
            _S2Copy(baseline, processing_us + 60_000_000, fid_a, coverage_a, variant=TWIN),
            _S2Copy(baseline, processing_us + 170_000_000, fid_b, coverage_b, variant=TWIN),
        ]
    return [stored]


def _emit_s2_datatake(
    rows: _Rows,
    registry: FootprintRegistry,
    splits: dict[tuple[int, str], tuple[tuple[int, float], tuple[int, float]] | None],
    platform: Platform,
    orbit: int,
    rel: int,
    start_us: int,
    tiles: list[_TileSeen],
    h: int,
) -> None:
    sensing = _to_datetime(start_us)
    baseline, reprocessed = m.s2_baseline(sensing)
    if reprocessed:
        # The reprocessing campaign (collection 1) ran roughly chronologically.
        first, last = _REPROCESSED_SPAN_US
        progress = (start_us - first) / (last - first)
        l1c_us = _REPROCESSING_START_US + int((progress * 420 + 20 * fraction(h, 1)) * _DAY_US)
    else:
        l1c_us = start_us + int((45 + 100 * fraction(h, 1)) * _MINUTE_US)
    l2a_us = l1c_us + int((15 + 45 * fraction(h, 2)) * _MINUTE_US)
    weather = fraction(h, 3)
    for tile in tiles:
        th = key(rows.seed, _S2, ord(platform.serial), orbit, stable_hash(tile.tile))
        cloud = min(100.0, max(0.0, 100.0 * (0.75 * weather + 0.35 * fraction(th, 0)) - 10.0))
        for level, product_type, processing_us, low, high in (
            ("1C", "S2MSI1C", l1c_us, 550.0, 800.0),
            ("2A", "S2MSI2A", l2a_us, 800.0, 1200.0),
        ):
            if level == "2A":
                cloud = min(100.0, max(0.0, cloud + 4.0 * (fraction(th, 1) - 0.5)))
            copies = _s2_copies(
                registry,
                splits,
                rel,
                tile,
                th,
                level,
                baseline,
                reprocessed,
                start_us,
                processing_us,
            )
            for number, copy in enumerate(copies):
                # A twin's cloud mask differs a little (another processor, another strip).
                twin_cloud = (
                    cloud if number == 0 else cloud + 2.0 * (fraction(mix(th + number), 0) - 0.5)
                )
                name = (
                    f"S2{platform.serial}_MSIL{level}_{_stamp(start_us)}"
                    f"_N{copy.baseline.replace('.', '')}_R{rel:03d}"
                    f"_T{tile.tile}_{_stamp(copy.processing_us)}.SAFE"
                )
                rows.add(
                    name=name,
                    collection="SENTINEL-2",
                    product_type=product_type,
                    platform=platform.serial,
                    start_us=start_us,
                    end_us=start_us,
                    processing_us=copy.processing_us,
                    nominal_size=_size(th, 2, low, high, max(copy.coverage, 0.04)),
                    footprint_id=copy.fid,
                    orbit=orbit,
                    relative_orbit=rel,
                    orbit_direction="DESCENDING",
                    mode="INS-NOBS",
                    tile=tile.tile,
                    cloud_cover=round(min(100.0, max(0.0, twin_cloud)), 9),
                    baseline=copy.baseline,
                    origin=copy.origin,
                    variant=copy.variant,
                )


# --------------------------------------------------------------------------- Sentinel-1

#: Signed ground range (km) of the swath, right of the track: IW 29-46°, EW 19-47°
#: incidence from 693 km.
_S1_SWATH = {"IW": (345.0, 617.0), "EW": (211.0, 636.0)}
_S1_SLICE_S = {"IW": 25.0, "EW": 60.0}


@dataclass(frozen=True)
class _S1Slice:
    start_s: float
    fid_grd: int
    fid_slc: int | None
    lon: float
    lat: float


@dataclass(frozen=True)
class _S1Segment:
    zone: str
    direction: str
    mode: str
    start_s: float
    slices: tuple[_S1Slice, ...]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges ``[a, b]`` of consecutive ``True`` values."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _zone_runs(
    lon: np.ndarray, lat: np.ndarray, zones: Iterable[m.Zone]
) -> list[tuple[m.Zone, int, int]]:
    wrapped = (lon + 180.0) % 360.0 - 180.0
    found: list[tuple[m.Zone, int, int]] = []
    for zone in zones:
        inside = (
            (wrapped >= zone.lon_min)
            & (wrapped < zone.lon_max)
            & (lat >= zone.lat_min)
            & (lat < zone.lat_max)
        )
        found.extend((zone, a, b) for a, b in _runs(inside))
    return found


def _quad(
    edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], i: int, j: int
) -> list[tuple[float, float]]:
    near_lon, near_lat, far_lon, far_lat = edges
    return [
        (float(near_lon[i]), float(near_lat[i])),
        (float(near_lon[j]), float(near_lat[j])),
        (float(far_lon[j]), float(far_lat[j])),
        (float(far_lon[i]), float(far_lat[i])),
        (float(near_lon[i]), float(near_lat[i])),
    ]


def _s1_segments(registry: FootprintRegistry) -> dict[int, list[_S1Segment]]:
    """Datatake segments of each relative orbit: passes over acquisition zones cut into
    slices (static per relative orbit, like the real frame grid)."""
    model = m.S1_MODEL
    period = model.period_s
    result: dict[int, list[_S1Segment]] = {}
    for rel in range(1, model.orbits_per_cycle + 1):
        segments: list[_S1Segment] = []
        for direction, low, high in (
            ("ASCENDING", -period / 4, period / 4),
            ("DESCENDING", period / 4, 3 * period / 4),
        ):
            seconds = np.arange(low, high, 5.0)
            for mode in ("IW", "EW"):
                near, far = _S1_SWATH[mode]
                zones = [z for z in m.ZONES if (z.name == "arctic") == (mode == "EW")]
                lon, lat, _, _ = swath_edges(model, rel, seconds, (near + far) / 2, far)
                for zone, a, b in _zone_runs(lon, lat, zones):
                    duration = float(seconds[b] - seconds[a])
                    if duration < 10.0:
                        continue
                    segment = _s1_slices(registry, rel, mode, float(seconds[a]), duration)
                    if segment:
                        segments.append(
                            _S1Segment(zone.name, direction, mode, float(seconds[a]), segment)
                        )
        result[rel] = sorted(segments, key=lambda s: s.start_s)
    return result


def _s1_slices(
    registry: FootprintRegistry, rel: int, mode: str, start_s: float, duration: float
) -> tuple[_S1Slice, ...]:
    model = m.S1_MODEL
    near, far = _S1_SWATH[mode]
    length = _S1_SLICE_S[mode]
    count = max(1, round(duration / length))
    times: FloatArray = start_s + length * np.arange(count + 1, dtype=np.float64)
    grd = swath_edges(model, rel, times, near, far)
    # SLC slices overlap their neighbours by about a second on each side.
    slc_start = swath_edges(model, rel, times - 1.0, near, far) if mode == "IW" else None
    slc_end = swath_edges(model, rel, times + 1.0, near, far) if mode == "IW" else None
    slices = []
    for j in range(count):
        quad = _quad(grd, j, j + 1)
        footprint = normalise_ring(quad)
        fid = registry.add(footprint, "SENTINEL-1")
        if fid is None or footprint is None:
            continue
        fid_slc = None
        if slc_start is not None and slc_end is not None:
            near_start = (float(slc_start[0][j]), float(slc_start[1][j]))
            ring = [
                near_start,
                (float(slc_end[0][j + 1]), float(slc_end[1][j + 1])),
                (float(slc_end[2][j + 1]), float(slc_end[3][j + 1])),
                (float(slc_start[2][j]), float(slc_start[3][j])),
                near_start,
            ]
            fid_slc = registry.add(normalise_ring(ring), "SENTINEL-1")
        centre = footprint.centroid
        slices.append(_S1Slice(float(times[j]), fid, fid_slc, centre.x, centre.y))
    return tuple(slices)


def _emit_s1(rows: _Rows, registry: FootprintRegistry) -> None:
    segments = _s1_segments(registry)
    density = m.S1_DENSITY
    cog_from = micros(m.S1_COG_FROM)
    zones = {rel: [s.zone for s in found] for rel, found in segments.items()}
    slice_density: dict[tuple[int, int, int], list[float]] = {}
    for platform in m.S1_PLATFORMS:
        for take in _datatakes(rows.seed, _S1, platform, zones, density):
            segment = segments[take.relative_orbit][take.index]
            segment_us = take.node_us + int(segment.start_s * 1e6)
            if not platform.first_us <= segment_us < platform.last_us:
                continue
            h = take.h
            datatake = (take.orbit * 8 + take.index) & 0xFFFFFF
            nrt = fraction(h, 3) < 0.2
            slc = segment.mode == "IW" and fraction(h, 1) < m.S1_SLC_FRACTION
            cog = (
                segment.mode == "IW"
                and segment_us >= cog_from
                and fraction(h, 2) < m.S1_COG_FRACTION
            )
            slot = (take.relative_orbit, take.index, take.year)
            fractions = slice_density.get(slot)
            if fractions is None:
                fractions = [
                    density.at(segment.zone, take.year, p.lon, p.lat) for p in segment.slices
                ]
                slice_density[slot] = fractions
            for number, (piece, kept) in enumerate(
                zip(segment.slices, fractions, strict=True), start=1
            ):
                if take.draw >= kept:
                    continue
                _emit_s1_slice(
                    rows,
                    platform,
                    take.orbit,
                    take.relative_orbit,
                    take.node_us,
                    segment,
                    piece,
                    number,
                    datatake,
                    segment_us,
                    nrt,
                    slc,
                    cog,
                )


def _emit_s1_slice(
    rows: _Rows,
    platform: Platform,
    orbit: int,
    rel: int,
    node_us: int,
    segment: _S1Segment,
    piece: _S1Slice,
    number: int,
    datatake: int,
    segment_us: int,
    nrt: bool,
    slc: bool,
    cog: bool,
) -> None:
    mode = segment.mode
    polarisation, pol_code = ("HH&HV", "DH") if mode == "EW" else ("VV&VH", "DV")
    length_us = int(_S1_SLICE_S[mode] * 1e6)
    grd_start = node_us + int(piece.start_s * 1e6)
    variants: list[tuple[str, str, int, int, int | None, float, float]] = []
    resolution = "M" if mode == "EW" else "H"
    low, high = (200.0, 350.0) if mode == "EW" else (1550.0, 2100.0)
    variants.append(
        (
            f"{mode}_GRD{resolution}_1S",
            "GRD" + resolution,
            grd_start,
            grd_start + length_us,
            piece.fid_grd,
            low,
            high,
        )
    )
    if slc and piece.fid_slc is not None:
        variants.append(
            (
                "IW_SLC__1S",
                "SLC_",
                grd_start - 1_000_000,
                grd_start + length_us + 1_000_000,
                piece.fid_slc,
                4000.0,
                8200.0,
            )
        )
    total = len(segment.slices)
    ipf = m.s1_ipf_version(_to_datetime(grd_start))
    for product_type, type_code, start_us, end_us, fid, low_mb, high_mb in variants:
        if fid is None:
            continue
        stem = (
            f"S1{platform.serial}_{mode}_{type_code}_1S{pol_code}_{_stamp(start_us)}"
            f"_{_stamp(end_us)}_{orbit:06d}_{datatake:06X}"
        )
        h = key(rows.seed, _S1, stable_hash(stem))
        crc = f"{h & 0xFFFF:04X}"
        delay_min = (40 + 130 * fraction(h, 1)) if nrt else (240 + 1000 * fraction(h, 1))
        processing_us = end_us + int(delay_min * _MINUTE_US)
        size = _size(h, 2, low_mb, high_mb)
        cog_us = processing_us + int((20 + 40 * fraction(h, 3)) * _MINUTE_US)
        twins = [(f"{stem}_{crc}.SAFE", product_type, processing_us, size)]
        if cog and type_code.startswith("GRD"):
            cog_size = int(size * (0.85 + 0.3 * fraction(h, 0)))
            twins.append((f"{stem}_{crc}_COG.SAFE", product_type + "-COG", cog_us, cog_size))
        for name, twin_type, twin_processing_us, twin_size in twins:
            rows.add(
                name=name,
                collection="SENTINEL-1",
                product_type=twin_type,
                platform=platform.serial,
                start_us=start_us,
                end_us=end_us,
                processing_us=twin_processing_us,
                nominal_size=twin_size,
                footprint_id=fid,
                orbit=orbit,
                relative_orbit=rel,
                orbit_direction=segment.direction,
                mode=mode,
                polarisation=polarisation,
                baseline=ipf,
                timeliness="NRT-3h" if nrt else "Fast-24h",
                datatake=datatake,
                slice_number=number,
                total_slices=total,
                segment_start_us=segment_us,
                anx_ms=round((start_us - node_us) / 1000.0, 3),
            )


# --------------------------------------------------------------------------- Sentinel-3

_S3_FRAME_S = 180.0
#: (product type, instrument, day pass, night pass, kept fraction, size range MB).
_S3_TYPES = (
    ("OL_1_EFR___", "OLCI", True, False, 1.0, (600.0, 800.0)),
    ("OL_2_LFR___", "OLCI", True, False, 0.6, (150.0, 250.0)),
    ("SL_1_RBT___", "SLSTR", True, True, 0.5, (350.0, 450.0)),
    ("SL_2_LST___", "SLSTR", True, True, 0.8, (55.0, 70.0)),
)
#: OLCI looks away from the sun (west, the right of a descending pass); SLSTR nadir view.
_S3_SWATH = {"OLCI": (-370.0, 900.0), "SLSTR": (-550.0, 850.0)}


@dataclass(frozen=True)
class _S3Frame:
    start_s: float
    fids: dict[str, int]
    lon: float
    lat: float


@dataclass(frozen=True)
class _S3Segment:
    zone: str
    direction: str
    day: bool
    frames: tuple[_S3Frame, ...]


def _s3_segments(registry: FootprintRegistry) -> dict[int, list[_S3Segment]]:
    model = m.S3_MODEL
    period = model.period_s
    starts = np.arange(0.0, period - _S3_FRAME_S / 2, _S3_FRAME_S)
    result: dict[int, list[_S3Segment]] = {}
    for rel in range(1, model.orbits_per_cycle + 1):
        lon, lat, _, _ = swath_edges(model, rel, starts + _S3_FRAME_S / 2, 0.0, 0.0)
        segments = []
        for zone, a, b in _zone_runs(lon, lat, m.ZONES):
            for day in (True, False):
                picked = [
                    i for i in range(a, b + 1) if (period / 4 <= starts[i] < 3 * period / 4) == day
                ]
                frames = []
                for i in picked:
                    fids = {}
                    for instrument, (near, far) in _S3_SWATH.items():
                        times = starts[i] + np.linspace(0.0, _S3_FRAME_S, 4)
                        near_lon, near_lat, far_lon, far_lat = swath_edges(
                            model, rel, times, near, far
                        )
                        ring = list(zip(near_lon.tolist(), near_lat.tolist(), strict=True))
                        ring += list(
                            zip(far_lon[::-1].tolist(), far_lat[::-1].tolist(), strict=True)
                        )
                        fid = registry.add(normalise_ring([*ring, ring[0]]), "SENTINEL-3")
                        if fid is not None:
                            fids[instrument] = fid
                    wrapped = (float(lon[i]) + 180.0) % 360.0 - 180.0
                    frames.append(_S3Frame(float(starts[i]), fids, wrapped, float(lat[i])))
                if frames:
                    direction = "DESCENDING" if day else "ASCENDING"
                    segments.append(_S3Segment(zone.name, direction, day, tuple(frames)))
        result[rel] = segments
    return result


def _emit_s3(rows: _Rows, registry: FootprintRegistry) -> None:
    segments = _s3_segments(registry)
    density = m.S3_DENSITY
    zones = {rel: [s.zone for s in found] for rel, found in segments.items()}
    for platform in m.S3_PLATFORMS:
        for take in _datatakes(rows.seed, _S3, platform, zones, density):
            segment = segments[take.relative_orbit][take.index]
            for frame in segment.frames:
                if take.draw < density.at(segment.zone, take.year, frame.lon, frame.lat):
                    _emit_s3_frame(rows, platform, take, segment, frame)


def _emit_s3_frame(
    rows: _Rows, platform: Platform, take: _Datatake, segment: _S3Segment, frame: _S3Frame
) -> None:
    period = m.S3_MODEL.period_s
    centre = "PS1" if platform.serial == "A" else "PS2"
    cycle = (take.orbit - 1) // m.S3_MODEL.orbits_per_cycle + 1
    start_us = take.node_us + int(frame.start_s * 1e6)
    end_us = start_us + 179_000_000 + int(fraction(take.h, 1) * 1e6)
    for t, (ptype, instrument, on_day, on_night, kept, sizes) in enumerate(_S3_TYPES):
        if not (on_day if segment.day else on_night) or instrument not in frame.fids:
            continue
        if fraction(key(take.h, t), 0) >= kept:
            continue
        th = key(rows.seed, _S3, ord(platform.serial), take.orbit, t, int(frame.start_s))
        processing_us = end_us + int((26 + 20 * fraction(th, 0)) * _HOUR_US)
        baseline = "003" if instrument == "OLCI" else "004"
        name = (
            f"S3{platform.serial}_{ptype}_{_stamp(start_us)}_{_stamp(end_us)}"
            f"_{_stamp(processing_us)}_0179_{cycle:03d}_{take.relative_orbit:03d}"
            f"_{int(frame.start_s % period):04d}_{centre}_O_NT_{baseline}.SEN3"
        )
        rows.add(
            name=name,
            collection="SENTINEL-3",
            product_type=ptype,
            platform=platform.serial,
            start_us=start_us,
            end_us=end_us,
            processing_us=processing_us,
            nominal_size=_size(th, 1, *sizes),
            footprint_id=frame.fids[instrument],
            orbit=take.orbit,
            relative_orbit=take.relative_orbit,
            orbit_direction=segment.direction,
            mode="EO",
            baseline=baseline,
            timeliness="NT",
            datatake=cycle,
        )


# -------------------------------------------------------------------------- Sentinel-5P

#: (product type, stream, density by year, size range MB).
_S5P_TYPES: tuple[tuple[str, str, m.Density, tuple[float, float]], ...] = (
    ("L2__NO2___", "OFFL", m.Density(0.25, {2023: 1.0}), (420.0, 560.0)),
    ("L2__NO2___", "NRTI", m.Density(0.04, {2023: 0.3}), (380.0, 520.0)),
    ("L2__O3____", "OFFL", m.Density(0.03, {2023: 0.15}), (280.0, 380.0)),
    ("L2__CO____", "OFFL", m.Density(0.03, {2023: 0.15}), (80.0, 120.0)),
    ("L2__CH4___", "OFFL", m.Density(0.03, {2023: 0.15}), (60.0, 95.0)),
    ("L2__SO2___", "OFFL", m.Density(0.03, {2023: 0.15}), (550.0, 700.0)),
    ("L2__HCHO__", "OFFL", m.Density(0.03, {2023: 0.15}), (450.0, 560.0)),
    ("L2__CLOUD_", "OFFL", m.Density(0.03, {2023: 0.15}), (200.0, 300.0)),
    ("L2__AER_AI", "OFFL", m.Density(0.03, {2023: 0.15}), (40.0, 60.0)),
)


def _emit_s5p(rows: _Rows, registry: FootprintRegistry) -> None:
    model = m.S5P_MODEL
    period = model.period_s
    # The sunlit half of the ascending pass, up to about 77° of latitude.
    sunlit = np.radians([-80.0, 80.0]) / (2 * math.pi) * period
    fids: dict[int, int | None] = {}
    for rel in range(1, model.orbits_per_cycle + 1):
        seconds = np.linspace(float(sunlit[0]), float(sunlit[1]), 33)
        near_lon, near_lat, far_lon, far_lat = swath_edges(model, rel, seconds, -1300.0, 1300.0)
        ring = list(zip(near_lon.tolist(), near_lat.tolist(), strict=True))
        ring += list(zip(far_lon[::-1].tolist(), far_lat[::-1].tolist(), strict=True))
        fids[rel] = registry.add(normalise_ring([*ring, ring[0]]), "SENTINEL-5P")
    platform = m.S5P_PLATFORM
    orbits = platform.orbits_between(_START_US, _END_US)
    rels = platform.relative_orbit(orbits)
    nodes = platform.node_time_us(orbits)
    years = np.searchsorted(np.array(_YEAR_STARTS), nodes, side="right") - 1
    for index, (ptype, stream, density, sizes) in enumerate(_S5P_TYPES):
        hashes = key_array(rows.seed, _S5P, orbits.astype(np.uint64), index)
        wanted = np.array([density.at(_YEARS[y]) for y in years.tolist()])
        for i in np.flatnonzero(unit_array(hashes) < wanted).tolist():
            fid = fids.get(int(rels[i]))
            if fid is None:
                continue
            _emit_s5p_orbit(
                rows,
                int(orbits[i]),
                int(rels[i]),
                int(nodes[i]),
                fid,
                ptype,
                stream,
                sizes,
                mix(int(hashes[i])),
            )


def _emit_s5p_orbit(
    rows: _Rows,
    orbit: int,
    rel: int,
    node_us: int,
    fid: int,
    ptype: str,
    stream: str,
    sizes: tuple[float, float],
    h: int,
) -> None:
    period = m.S5P_MODEL.period_s
    # Orbit files run from the southernmost point to the next one (a full orbit).
    start_us = node_us - int(period / 4 * 1e6)
    end_us = start_us + int(period * 1e6)
    collection_number, processor = m.s5p_processor(_to_datetime(start_us))
    delay_h = (1 + 2 * fraction(h, 0)) if stream == "NRTI" else (30 + 30 * fraction(h, 0))
    processing_us = end_us + int(delay_h * _HOUR_US)
    name = (
        f"S5P_{stream}_{ptype}_{_stamp(start_us)}_{_stamp(end_us)}_{orbit:05d}"
        f"_{collection_number}_{processor}_{_stamp(processing_us)}.nc"
    )
    rows.add(
        name=name,
        collection="SENTINEL-5P",
        product_type=ptype,
        platform=None,
        start_us=start_us,
        end_us=end_us,
        processing_us=processing_us,
        nominal_size=_size(h, 1, *sizes),
        footprint_id=fid,
        orbit=orbit,
        relative_orbit=rel,
        orbit_direction="ASCENDING",
        baseline=processor,
        timeliness=stream,
        datatake=int(collection_number),
    )


# ------------------------------------------------------------------------------ build


def build_catalogue(path: Path, seed: int) -> BuildReport:
    """Generate the catalogue for ``seed`` into a new SQLite file at ``path``.

    The caller writes to a temporary name and renames it into place (readers never see a
    half-built file).
    """
    began = time.perf_counter()
    registry = FootprintRegistry.empty()
    rows = _Rows(seed)
    _emit_s2(rows, registry)
    _emit_s1(rows, registry)
    _emit_s3(rows, registry)
    _emit_s5p(rows, registry)
    # Chronological storage keeps time-range scans on neighbouring pages.
    rows.rows.sort(key=lambda r: (r[5], r[1]))
    counts = Counter(str(r[2]) for r in rows.rows)
    wkb, bounds = registry.finish()

    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")
        for statement in DDL:
            con.execute(statement)
        con.executemany(
            "INSERT INTO footprints (fid, wkb) VALUES (?, ?)",
            ((i + 1, blob) for i, blob in enumerate(wkb)),
        )
        con.executemany(
            "INSERT INTO footprint_index VALUES (?, ?, ?, ?, ?, ?)",
            (
                (i + 1, b[0], b[2], b[1], b[3], c)
                for i, (b, c) in enumerate(zip(bounds, registry.collections, strict=True))
            ),
        )
        placeholders = ", ".join("?" for _ in PRODUCT_COLUMNS)
        con.executemany(
            f"INSERT INTO products VALUES ({placeholders})",  # noqa: S608 (fixed column list)
            ((pk, *row) for pk, row in enumerate(rows.rows, start=1)),
        )
        for statement in INDEXES:
            con.execute(statement)
        con.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("generator_version", str(GENERATOR_VERSION)), ("seed", str(seed))],
        )
        con.execute("ANALYZE")
        con.commit()
    finally:
        con.close()
    return BuildReport(
        products_by_collection=dict(sorted(counts.items())),
        footprints=len(wkb),
        seconds=time.perf_counter() - began,
        size_bytes=path.stat().st_size,
    )
