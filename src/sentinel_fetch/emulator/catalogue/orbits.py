"""Sun-synchronous repeat orbits on a spherical Earth: ground tracks, swaths, orbit numbers.

The synthetic catalogue places every product where a real satellite would have seen it,
so footprints line up along tracks, relative orbit numbers repeat with the mission's cycle
and a point is revisited on the mission's real rhythm (Sentinel-1: 12 days per platform,
Sentinel-2: 10 days per platform, 5 days with two). A sphere is precise enough for
footprints rounded to 1e-4 degrees that nobody compares with real ones.

The model of one mission: ``orbits_per_cycle`` orbits in ``days_per_cycle`` days, circular,
sun-synchronous with the ascending node at ``ltan_hours`` local solar time. Because the
node keeps its local time, the node longitude of an orbit follows from its UTC time alone,
and the 1..N relative orbits form a fixed grid of node longitudes shared by every platform
of the mission.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import numpy.typing as npt

__all__ = [
    "EARTH_RADIUS_KM",
    "FloatArray",
    "OrbitModel",
    "Platform",
    "destination",
    "micros",
    "model_for",
    "swath_edges",
    "swath_ring",
]

FloatArray = npt.NDArray[np.float64]

#: Mean Earth radius (IUGG), km.
EARTH_RADIUS_KM = 6371.0088
_SOLAR_DAY_S = 86400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, no float rounding).

    >>> micros(datetime(1970, 1, 2, tzinfo=timezone.utc))
    86400000000
    """
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class OrbitModel:
    """A repeat-cycle sun-synchronous orbit shared by the platforms of one mission.

    Attributes:
        inclination_deg: orbit inclination (retrograde, ~98°).
        orbits_per_cycle: relative orbits in one repeat cycle (S1 175, S2 143, S3 385, S5P 227).
        days_per_cycle: length of the repeat cycle in days.
        ltan_hours: local solar time of the ascending node.
        node_longitude_1: longitude of the ascending node of relative orbit 1, degrees.
    """

    inclination_deg: float
    orbits_per_cycle: int
    days_per_cycle: int
    ltan_hours: float
    node_longitude_1: float

    @property
    def period_s(self) -> float:
        """Nodal period in seconds."""
        return self.days_per_cycle * _SOLAR_DAY_S / self.orbits_per_cycle

    @property
    def node_step_deg(self) -> float:
        """Westward shift of the node from one orbit to the next, degrees."""
        return 360.0 * self.days_per_cycle / self.orbits_per_cycle

    def node_longitude(self, relative_orbit: int) -> float:
        """Ascending-node longitude of a relative orbit, in [-180, 180)."""
        lon = self.node_longitude_1 - (relative_orbit - 1) * self.node_step_deg
        return (lon + 180.0) % 360.0 - 180.0

    def track(self, relative_orbit: int, seconds: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Sub-satellite points ``seconds`` after the ascending node of a relative orbit.

        Returns ``(lat, lon)`` in degrees; longitudes are continuous along the track (not
        wrapped into [-180, 180)) so that swaths built from them never jump at the
        antimeridian.
        """
        inc = math.radians(self.inclination_deg)
        u = 2.0 * math.pi * seconds / self.period_s
        lat = np.degrees(np.arcsin(math.sin(inc) * np.sin(u)))
        # In-plane longitude from the node, made continuous: it follows +u on prograde
        # orbits and -u on retrograde ones (all Sentinels), within less than half a turn.
        in_plane = np.arctan2(math.cos(inc) * np.sin(u), np.cos(u))
        follow = u if math.cos(inc) >= 0.0 else -u
        turns = np.round((follow - in_plane) / (2.0 * math.pi)) * 2.0 * math.pi
        # The node keeps its local solar time, so the ground turns 360° per solar day under it.
        lon = (
            self.node_longitude(relative_orbit)
            + np.degrees(in_plane + turns)
            - 360.0 * seconds / _SOLAR_DAY_S
        )
        return lat, lon


def model_for(
    inclination_deg: float,
    orbits_per_cycle: int,
    days_per_cycle: int,
    ltan_hours: float,
    reference_node: datetime,
    reference_relative_orbit: int,
) -> OrbitModel:
    """The orbit model whose relative orbit ``reference_relative_orbit`` crosses the
    ascending node at ``reference_node`` (UTC).

    The node longitude follows from the local solar time of the node: 15° per hour between
    the node's local time and UTC.
    """
    utc_hours = reference_node.hour + reference_node.minute / 60.0 + reference_node.second / 3600.0
    node_lon = 15.0 * (ltan_hours - utc_hours)
    step = 360.0 * days_per_cycle / orbits_per_cycle
    lon_1 = node_lon + (reference_relative_orbit - 1) * step
    return OrbitModel(
        inclination_deg=inclination_deg,
        orbits_per_cycle=orbits_per_cycle,
        days_per_cycle=days_per_cycle,
        ltan_hours=ltan_hours,
        node_longitude_1=(lon_1 + 180.0) % 360.0 - 180.0,
    )


@dataclass(frozen=True)
class Platform:
    """One satellite of a mission, with its absolute orbit counter and service period.

    Attributes:
        serial: platform serial identifier (``A``, ``B``, ``C``; empty for Sentinel-5P).
        model: the mission's orbit model.
        reference_node_us: time (µs since epoch) of one ascending-node crossing.
        reference_orbit: absolute orbit number of that crossing.
        reference_relative_orbit: relative orbit of that crossing.
        first_us / last_us: period in which the platform delivered products.
    """

    serial: str
    model: OrbitModel
    reference_node_us: int
    reference_orbit: int
    reference_relative_orbit: int
    first_us: int
    last_us: int

    def orbits_between(self, start_us: int, end_us: int) -> npt.NDArray[np.int64]:
        """Absolute numbers of the orbits whose ascending node falls in ``[start, end)``,
        clipped to the platform's service period."""
        lo = max(start_us, self.first_us)
        hi = min(end_us, self.last_us)
        if hi <= lo:
            return np.zeros(0, dtype=np.int64)
        period_us = self.model.period_s * 1e6
        first = self.reference_orbit + math.ceil((lo - self.reference_node_us) / period_us)
        last = self.reference_orbit + math.ceil((hi - self.reference_node_us) / period_us)
        return np.arange(first, last, dtype=np.int64)

    def node_time_us(self, orbit: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Ascending-node crossing times (µs) of absolute orbits."""
        period_us = self.model.period_s * 1e6
        offset = (orbit - self.reference_orbit).astype(np.float64) * period_us
        return self.reference_node_us + np.round(offset).astype(np.int64)

    def relative_orbit(self, orbit: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Relative orbit numbers (1..N) of absolute orbits."""
        n = self.model.orbits_per_cycle
        return (self.reference_relative_orbit - 1 + (orbit - self.reference_orbit)) % n + 1


def destination(
    lat: FloatArray, lon: FloatArray, bearing_deg: FloatArray, distance_km: float | FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Points ``distance_km`` away along great circles with the given initial bearings.

    Longitudes stay continuous with the input (no wrapping), which keeps swath edges next to
    their track.

    >>> lat, lon = destination(np.array([0.0]), np.array([179.9]), np.array([90.0]), 111.2)
    >>> round(float(lat[0]), 3), round(float(lon[0]), 2)
    (0.0, 180.9)
    """
    phi = np.radians(lat)
    theta = np.radians(bearing_deg)
    delta = np.asarray(distance_km, dtype=np.float64) / EARTH_RADIUS_KM
    sin_lat2 = np.sin(phi) * np.cos(delta) + np.cos(phi) * np.sin(delta) * np.cos(theta)
    lat2 = np.arcsin(np.clip(sin_lat2, -1.0, 1.0))
    dlon = np.arctan2(
        np.sin(theta) * np.sin(delta) * np.cos(phi), np.cos(delta) - np.sin(phi) * sin_lat2
    )
    return np.degrees(lat2), lon + np.degrees(dlon)


def _bearing(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dlon = np.radians(lon2 - lon1)
    y = np.sin(dlon) * np.cos(phi2)
    x = np.cos(phi1) * np.sin(phi2) - np.sin(phi1) * np.cos(phi2) * np.cos(dlon)
    bearing: FloatArray = np.degrees(np.arctan2(y, x))
    return bearing


def swath_edges(
    model: OrbitModel,
    relative_orbit: int,
    seconds: FloatArray,
    near_km: float,
    far_km: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Near and far swath edge points ``(near_lon, near_lat, far_lon, far_lat)`` at times
    after the ascending node.

    Cross-track distances are signed, positive to the right of the flight direction: a
    nadir imager spans ``(-w/2, +w/2)``, Sentinel-1's right-looking SAR ``(+345, +617)`` km
    in IW mode. Longitudes are continuous (unwrapped).
    """
    lat, lon = model.track(relative_orbit, seconds)
    lat_ahead, lon_ahead = model.track(relative_orbit, seconds + 1.0)
    right = _bearing(lat, lon, lat_ahead, lon_ahead) + 90.0
    near_lat, near_lon = destination(lat, lon, right, near_km)
    far_lat, far_lon = destination(lat, lon, right, far_km)
    return near_lon, near_lat, far_lon, far_lat


def swath_ring(
    model: OrbitModel,
    relative_orbit: int,
    start_s: float,
    end_s: float,
    near_km: float,
    far_km: float,
    samples: int,
) -> list[tuple[float, float]]:
    """Closed ``(lon, lat)`` ring of the ground strip seen between two times after the node
    (see :func:`swath_edges` for the cross-track convention)."""
    seconds = np.linspace(start_s, end_s, samples)
    near_lon, near_lat, far_lon, far_lat = swath_edges(
        model, relative_orbit, seconds, near_km, far_km
    )
    ring = list(zip(near_lon.tolist(), near_lat.tolist(), strict=True))
    ring += list(zip(far_lon[::-1].tolist(), far_lat[::-1].tolist(), strict=True))
    ring.append(ring[0])
    return ring
