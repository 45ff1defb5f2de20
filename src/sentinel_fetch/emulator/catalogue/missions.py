"""Facts about the Sentinel missions that shape the synthetic catalogue.

Orbits, platforms and their service periods, processing baselines by date, product sizes
(cdse-api.md §8.5) and where and how densely the catalogue is populated.

Density. A real archive holds millions of products; the emulator keeps a deterministic
sample that still behaves like the archive: products sit on the real orbit rhythm, and a
whole datatake (one pass over one acquisition zone) is either kept or dropped, so the
products of a pass stay together, like a real acquisition plan with gaps. The sampling
rate depends on the zone, the year and optional hotspots (small boxes sampled densely, for
demonstrations that want a full time series over one place). The numbers below are tuned
so that, for example, Sentinel-2 over Europe in 2023 holds more than 25,000 products while
the whole database stays near 130 MB (totals: :mod:`.generator`).

Revisit follows the real missions: each Sentinel-2 platform repeats its 143 tracks every
10 days, so two platforms give 5 days (more often where tracks overlap); Sentinel-1 repeats
every 12 days per platform. Hotspots where every acquisition is kept: Bavaria and the Alps
(Sentinel-2, 2023 in full, half of 2024) and mainland South-East Asia (Sentinel-1, half of
every year, for the Copernicus Browser example over Thailand).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .orbits import OrbitModel, Platform, micros, model_for

__all__ = [
    "CATALOGUE_END",
    "CATALOGUE_START",
    "S1_COG_FRACTION",
    "S1_COG_FROM",
    "S1_DENSITY",
    "S1_MODEL",
    "S1_PLATFORMS",
    "S1_SLC_FRACTION",
    "S2_DENSITY",
    "S2_MODEL",
    "S2_PLATFORMS",
    "S3_DENSITY",
    "S3_MODEL",
    "S3_PLATFORMS",
    "S5P_MODEL",
    "S5P_PLATFORM",
    "ZONES",
    "Density",
    "Hotspot",
    "MissionDensity",
    "Zone",
    "s1_ipf_version",
    "s2_baseline",
    "s5p_processor",
]


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


#: Sensing period of the synthetic catalogue.
CATALOGUE_START = _utc(2019, 1, 1)
CATALOGUE_END = _utc(2026, 1, 1)

_START_US = micros(CATALOGUE_START)
_END_US = micros(CATALOGUE_END)


# Sentinel-1: 175 orbits in 12 days, dawn-dusk (ascending node 18:00). Orbit numbers are
# anchored on a real product (cdse-api.md §8.3: S1A absolute orbit 54172 on 2024-06-04);
# relative orbit (abs - 73) mod 175 + 1 is the published S1A rule.
_S1A_NODE = _utc(2024, 6, 4, 10, 10, 0)
S1_MODEL: OrbitModel = model_for(98.18, 175, 12, 18.0, _S1A_NODE, 25)
S1_PLATFORMS: tuple[Platform, ...] = (
    Platform("A", S1_MODEL, micros(_S1A_NODE), 54172, 25, _START_US, _END_US),
    # S1B flew 180° behind S1A (6 days along the same tracks) until its failure on
    # 23 December 2021.
    Platform(
        "B",
        S1_MODEL,
        micros(_S1A_NODE - timedelta(days=12 * 122 - 6)),
        21926,
        25,
        _START_US,
        micros(_utc(2021, 12, 23)),
    ),
    # S1C (launched 5 December 2024) took S1B's slot; products from spring 2025.
    Platform(
        "C",
        S1_MODEL,
        micros(_S1A_NODE + timedelta(days=12 * 31 + 6)),
        2800,
        25,
        micros(_utc(2025, 5, 20)),
        _END_US,
    ),
)

# Sentinel-2: 143 orbits in 10 days, descending node 10:30 (ascending 22:30). Anchored on
# the real product S2A_MSIL1C_20200808T010311_N0500_R045 (orbit 26783, relative 45).
_S2A_NODE = _utc(2020, 8, 7, 23, 40, 0)
S2_MODEL: OrbitModel = model_for(98.62, 143, 10, 22.5, _S2A_NODE, 45)
S2_PLATFORMS: tuple[Platform, ...] = (
    # S2C replaced S2A in the operational constellation on 21 January 2025.
    Platform("A", S2_MODEL, micros(_S2A_NODE), 26783, 45, _START_US, micros(_utc(2025, 1, 21))),
    # S2B flies 180° apart from S2A: the same tracks five days later.
    Platform(
        "B", S2_MODEL, micros(_S2A_NODE + timedelta(days=1145)), 34220, 45, _START_US, _END_US
    ),
    Platform(
        "C",
        S2_MODEL,
        micros(_S2A_NODE + timedelta(days=1670)),
        2700,
        45,
        micros(_utc(2025, 1, 21)),
        _END_US,
    ),
)

# Sentinel-3: 385 orbits in 27 days, descending node 10:00 (ascending 22:00); S3B trails
# S3A along the same tracks.
_S3A_NODE = _utc(2023, 8, 24, 20, 30, 0)
S3_MODEL: OrbitModel = model_for(98.65, 385, 27, 22.0, _S3A_NODE, 1)
S3_PLATFORMS: tuple[Platform, ...] = (
    Platform("A", S3_MODEL, micros(_S3A_NODE), 38850, 1, _START_US, _END_US),
    Platform("B", S3_MODEL, micros(_S3A_NODE + timedelta(days=17)), 27460, 1, _START_US, _END_US),
)

# Sentinel-5P: 227 orbits in 16 days, ascending node 13:30; one platform, no serial letter.
_S5P_NODE = _utc(2023, 8, 1, 11, 10, 0)
S5P_MODEL: OrbitModel = model_for(98.74, 227, 16, 13.5, _S5P_NODE, 1)
S5P_PLATFORM = Platform("", S5P_MODEL, micros(_S5P_NODE), 30092, 1, _START_US, _END_US)


@dataclass(frozen=True)
class Zone:
    """An acquisition zone: a lon/lat box that bounds datatakes (zones do not overlap)."""

    name: str
    lon_min: float
    lat_min: float
    lon_max: float
    lat_max: float

    def contains(self, lon: float, lat: float) -> bool:
        """Whether a point (longitude already in [-180, 180)) lies in the zone."""
        return self.lon_min <= lon < self.lon_max and self.lat_min <= lat < self.lat_max


#: Land-centred boxes; together they cover most land masses, never the antimeridian.
ZONES: tuple[Zone, ...] = (
    Zone("europe", -10.0, 35.0, 30.0, 70.0),
    Zone("eastern-europe", 30.0, 35.0, 60.0, 70.0),
    Zone("arctic", -60.0, 70.0, 60.0, 84.0),
    Zone("north-africa-middle-east", -18.0, 10.0, 60.0, 35.0),
    Zone("southern-africa", -18.0, -35.0, 52.0, 10.0),
    Zone("asia", 60.0, 5.0, 146.0, 56.0),
    Zone("north-america", -130.0, 24.0, -60.0, 60.0),
    Zone("south-america", -82.0, -56.0, -34.0, 12.0),
    Zone("oceania", 112.0, -45.0, 155.0, -10.0),
)


@dataclass(frozen=True)
class Density:
    """Fraction of datatakes kept: a default and per-year overrides."""

    default: float
    by_year: Mapping[int, float] = field(default_factory=dict)

    def at(self, year: int) -> float:
        """The fraction for a sensing year."""
        return self.by_year.get(year, self.default)


@dataclass(frozen=True)
class Hotspot:
    """A small box sampled more densely than its zone (the larger fraction wins)."""

    name: str
    lon_min: float
    lat_min: float
    lon_max: float
    lat_max: float
    density: Density

    def contains(self, lon: float, lat: float) -> bool:
        """Whether a point lies in the hotspot."""
        return self.lon_min <= lon < self.lon_max and self.lat_min <= lat < self.lat_max


@dataclass(frozen=True)
class MissionDensity:
    """Sampling of one mission: per zone (missing zones are not acquired) and hotspots."""

    zones: Mapping[str, Density]
    hotspots: tuple[Hotspot, ...] = ()

    def ceiling(self, zone: str, year: int) -> float:
        """The largest fraction anything in the zone can have in a year (fast rejection)."""
        base = self.zones[zone].at(year) if zone in self.zones else 0.0
        return max([base, *(h.density.at(year) for h in self.hotspots)])

    def at(self, zone: str, year: int, lon: float, lat: float) -> float:
        """The fraction for a product centred at ``lon``/``lat``."""
        base = self.zones[zone].at(year) if zone in self.zones else 0.0
        for hotspot in self.hotspots:
            if hotspot.contains(lon, lat):
                base = max(base, hotspot.density.at(year))
        return base


_SPARSE = Density(0.001)

S2_DENSITY = MissionDensity(
    zones={
        "europe": Density(0.012, {2023: 0.06}),
        "eastern-europe": Density(0.002),
        "arctic": Density(0.002),
        "north-africa-middle-east": _SPARSE,
        "southern-africa": _SPARSE,
        "asia": Density(0.0015),
        "north-america": _SPARSE,
        "south-america": _SPARSE,
        "oceania": _SPARSE,
    },
    hotspots=(
        # Bavaria and the Alps: every acquisition of 2023, half of 2024 (demonstrations).
        Hotspot("alps", 9.0, 46.0, 14.0, 49.5, Density(0.05, {2023: 1.0, 2024: 0.5})),
    ),
)

S1_DENSITY = MissionDensity(
    zones={
        "europe": Density(0.05, {2023: 0.2}),
        "eastern-europe": Density(0.01),
        "arctic": Density(0.04),
        "north-africa-middle-east": Density(0.005),
        "southern-africa": Density(0.005),
        "asia": Density(0.03),
        "north-america": Density(0.005),
        "south-america": Density(0.005),
        "oceania": Density(0.005),
    },
    hotspots=(
        # Mainland South-East Asia, half of all datatakes: the Copernicus Browser example
        # over Thailand (cdse-api.md §4) finds products every few days.
        Hotspot("mekong", 98.0, 12.0, 108.0, 21.0, Density(0.5)),
    ),
)

S3_DENSITY = MissionDensity(
    zones={
        "europe": Density(0.02, {2023: 0.1}),
        "eastern-europe": Density(0.004),
        "north-africa-middle-east": Density(0.004),
        "southern-africa": Density(0.004),
        "asia": Density(0.004),
        "north-america": Density(0.004),
        "south-america": Density(0.004),
        "oceania": Density(0.004),
    }
)

#: Sentinel-1 IW datatakes that also have SLC products, and GRD that have COG twins.
S1_SLC_FRACTION = 0.3
S1_COG_FRACTION = 0.35
S1_COG_FROM = _utc(2023, 10, 1)


_S2_BASELINES = (
    (_utc(2022, 1, 25), "05.00"),
    (_utc(2022, 12, 6), "04.00"),
    (_utc(2023, 12, 13), "05.09"),
    (_utc(2024, 7, 23), "05.10"),
)
_S1_IPF_VERSIONS = (
    (_utc(2019, 6, 26), "002.91"),
    (_utc(2020, 4, 22), "003.10"),
    (_utc(2021, 2, 23), "003.31"),
    (_utc(2022, 3, 23), "003.40"),
    (_utc(2023, 3, 29), "003.52"),
    (_utc(2023, 12, 6), "003.61"),
    (_utc(2024, 11, 6), "003.71"),
    (_utc(2025, 6, 1), "003.80"),
)
_S5P_PROCESSORS = (
    (_utc(2021, 7, 1), ("01", "010400")),
    (_utc(2022, 7, 26), ("02", "020200")),
    (_utc(2023, 3, 12), ("03", "020400")),
    (_utc(2024, 6, 1), ("03", "020500")),
)


def s2_baseline(sensing: datetime) -> tuple[str, bool]:
    """Processing baseline (``05.09``) of a Sentinel-2 product, and whether it comes from
    the 2023 reprocessing campaign (collection 1, baseline 05.00, S3Path ``L1C_N0500``).

    >>> s2_baseline(_utc(2023, 10, 1))
    ('05.09', False)
    >>> s2_baseline(_utc(2020, 8, 8))
    ('05.00', True)
    """
    for until, baseline in _S2_BASELINES:
        if sensing < until:
            return baseline, baseline == "05.00"
    return "05.11", False


def s1_ipf_version(sensing: datetime) -> str:
    """Sentinel-1 IPF version that processed a product sensed at ``sensing``.

    >>> s1_ipf_version(_utc(2023, 10, 1))
    '003.61'
    """
    for until, version in _S1_IPF_VERSIONS:
        if sensing < until:
            return version
    return "003.90"


def s5p_processor(sensing: datetime) -> tuple[str, str]:
    """Sentinel-5P (collection, processor version) of an L2 product.

    >>> s5p_processor(_utc(2023, 8, 1))
    ('03', '020500')
    """
    for until, processor in _S5P_PROCESSORS:
        if sensing < until:
            return processor
    return "03", "020600"
