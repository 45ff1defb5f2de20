"""Which files of a product to fetch: band names, file patterns and presets (pure).

A selection is judged against the list of paths inside a product's SAFE folder (from
STAC or the Nodes listing), so it works the same whatever listed the files.

* ``--bands B04,B08,SCL``: a band name takes the finest resolution the product has
  (``B04`` is ``R10m/..._B04_10m.jp2`` in L2A, ``..._B04.jp2`` in L1C; ``SCL`` is 20 m);
  ``B04_20m`` picks that resolution. Sentinel-1 polarisations (``VV``, ``VH``, ``HH``,
  ``HV``) select the measurement rasters. Names are case-insensitive.
* ``--files GLOB``: shell patterns on paths inside the SAFE (``*`` also crosses ``/``),
  e.g. ``'GRANULE/*/IMG_DATA/R20m/*_B1?_20m.jp2'`` or ``manifest.safe``.
* ``--preset NAME``: a named set, see :data:`PRESETS`.

All three may be combined: the files chosen are the union.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sentinel_fetch.errors import SelectionError

__all__ = ["BAND_NAMES", "PRESETS", "Preset", "Selection", "band_of"]

#: Sentinel-2 image names (spectral bands and the L2A products of the same folders).
_S2_SPECTRAL = (*(f"B{n:02d}" for n in range(1, 13)), "B8A")
_S2_BANDS = (*_S2_SPECTRAL, "AOT", "WVP", "SCL", "TCI")
#: Sentinel-1 polarisations.
_S1_BANDS = ("VV", "VH", "HH", "HV")
BAND_NAMES = frozenset(_S2_BANDS + _S1_BANDS)
#: The resolution a Sentinel-2 band is measured at (L1C files carry no resolution).
_NATIVE_M = {
    **dict.fromkeys(("B02", "B03", "B04", "B08", "TCI"), 10),
    **dict.fromkeys(("B05", "B06", "B07", "B8A", "B11", "B12", "SCL", "AOT", "WVP"), 20),
    **dict.fromkeys(("B01", "B09", "B10"), 60),
}
_S2_IMAGE = re.compile(
    r"(?:^|/)IMG_DATA/(?:R(?P<folder>\d+)m/)?[^/]*_(?P<band>B\d[\dA]|AOT|WVP|SCL|TCI)"
    r"(?:_(?P<res>\d+)m)?\.jp2$",
    re.IGNORECASE,
)
_S1_RASTER = re.compile(
    r"(?:^|/)measurement/[^/]*-(?P<pol>vv|vh|hh|hv)-[^/]*\.tiff?$", re.IGNORECASE
)
_BAND_TOKEN = re.compile(r"(?P<band>[A-Za-z0-9]+?)(?:_(?P<res>\d+)m)?", re.IGNORECASE)


@dataclass(frozen=True)
class Preset:
    """A named selection.

    Attributes:
        bands: band names (see the module docstring).
        files: path patterns.
        help: one line for ``--help``.
    """

    bands: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    help: str = ""


_METADATA_FILES = (
    "manifest.safe",
    "MTD_MSIL*.xml",
    "INSPIRE.xml",
    "GRANULE/*/MTD_TL.xml",
    "DATASTRIP/*/MTD_DS.xml",
    "annotation/s1*.xml",
)

#: The presets ``--preset`` offers.
PRESETS: Mapping[str, Preset] = {
    "rgbnir": Preset(
        bands=("B02", "B03", "B04", "B08"),
        help="Sentinel-2 blue, green, red and near infrared at 10 m (B02 B03 B04 B08)",
    ),
    "vegetation": Preset(
        bands=("B04", "B08", "SCL"),
        help="Sentinel-2 red, near infrared and the scene classification (B04 B08 SCL)",
    ),
    "metadata": Preset(
        files=_METADATA_FILES,
        help="metadata only: manifest.safe, product, tile and datastrip XML "
        "(Sentinel-1: the annotation XML)",
    ),
    "vv": Preset(bands=("VV",), help="Sentinel-1 GRD/SLC: the VV polarisation only"),
    "vh": Preset(bands=("VH",), help="Sentinel-1 GRD/SLC: the VH polarisation only"),
}


def band_of(path: str) -> tuple[str, int | None] | None:
    """The band a file holds and its resolution in metres (``None``: not a band file).

    Example:
        >>> band_of("GRANULE/L2A_T32UNE/IMG_DATA/R20m/T32UNE_20240612T103629_SCL_20m.jp2")
        ('SCL', 20)
        >>> band_of("GRANULE/L1C_T32UNE/IMG_DATA/T32UNE_20240612T103629_B8A.jp2")
        ('B8A', 20)
        >>> band_of("measurement/s1a-iw-grd-vh-20240612t053012-x-001.tiff")
        ('VH', None)
    """
    match = _S2_IMAGE.search(path)
    if match is not None:
        band = match["band"].upper()
        resolution = match["res"] or match["folder"]
        return band, int(resolution) if resolution else _NATIVE_M.get(band)
    match = _S1_RASTER.search(path)
    if match is not None:
        return match["pol"].upper(), None
    return None


def _split(values: str | Iterable[str] | None, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else list(values)
    result: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise SelectionError(f"{what} must be text, got {type(item).__name__}")
        parts = item.split(",") if what == "bands" else [item]
        for part in parts:
            part = part.strip()
            if not part:
                raise SelectionError(f"{what}: an empty item in {item!r}")
            result.append(part)
    return tuple(result)


def _band_token(token: str) -> tuple[str, int | None]:
    match = _BAND_TOKEN.fullmatch(token)
    band = match["band"].upper() if match else ""
    if match is None or band not in BAND_NAMES:
        known = " ".join(sorted(BAND_NAMES))
        raise SelectionError(f"unknown band {token!r}: use one of {known}, e.g. B04 or B04_20m")
    resolution = int(match["res"]) if match["res"] else None
    if resolution is not None and (band in _S1_BANDS or resolution not in (10, 20, 60)):
        raise SelectionError(f"band {token!r}: resolutions are 10m, 20m and 60m (Sentinel-2)")
    return band, resolution


@dataclass(frozen=True)
class Selection:
    """Bands, path patterns and a preset, validated; :meth:`choose` applies them.

    Attributes:
        bands: ``(band, resolution or None)`` pairs.
        files: path patterns.
        preset: the preset's name, if one was given (already folded into the others).
    """

    bands: tuple[tuple[str, int | None], ...] = ()
    files: tuple[str, ...] = ()
    preset: str | None = None

    @classmethod
    def build(
        cls,
        bands: str | Iterable[str] | None = None,
        files: str | Iterable[str] | None = None,
        preset: str | None = None,
    ) -> Selection | None:
        """A selection from user input; ``None`` when nothing was asked (whole products).

        Raises:
            SelectionError: an unknown band, preset, or an empty value.

        Example:
            >>> Selection.build(bands="B04,b08_20m").bands
            (('B04', None), ('B08', 20))
            >>> Selection.build() is None
            True
        """
        band_tokens = _split(bands, "bands")
        patterns = list(_split(files, "files"))
        chosen = list(dict.fromkeys(_band_token(token) for token in band_tokens))
        if preset is not None:
            key = preset.strip().lower() if isinstance(preset, str) else ""
            if key not in PRESETS:
                raise SelectionError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
            definition = PRESETS[key]
            for token in definition.bands:
                pair = _band_token(token)
                if pair not in chosen:
                    chosen.append(pair)
            patterns += [p for p in definition.files if p not in patterns]
            preset = key
        if not chosen and not patterns:
            return None
        for pattern in patterns:
            if pattern.startswith("/") or ".." in pattern.split("/"):
                raise SelectionError(f"file pattern {pattern!r}: give a path inside the SAFE")
        return cls(tuple(chosen), tuple(patterns), preset)

    def choose(self, paths: Iterable[str]) -> list[str]:
        """The paths selected, in the order given.

        A band without a resolution takes the finest the product has.

        Example:
            >>> paths = ["IMG_DATA/R10m/T_B04_10m.jp2", "IMG_DATA/R20m/T_B04_20m.jp2",
            ...          "IMG_DATA/R20m/T_SCL_20m.jp2", "IMG_DATA/R60m/T_SCL_60m.jp2", "MTD_TL.xml"]
            >>> Selection.build(bands="B04,SCL", files="MTD_*").choose(paths)
            ['IMG_DATA/R10m/T_B04_10m.jp2', 'IMG_DATA/R20m/T_SCL_20m.jp2', 'MTD_TL.xml']
        """
        listed = list(dict.fromkeys(paths))
        bands = {path: band_of(path) for path in listed}
        finest: dict[str, int] = {}
        for found in bands.values():
            if found is not None and found[1] is not None:
                finest[found[0]] = min(found[1], finest.get(found[0], found[1]))
        wanted: set[str] = set()
        for path, found in bands.items():
            if found is None:
                continue
            name, resolution = found
            for band, asked in self.bands:
                if band != name:
                    continue
                best = resolution is None or resolution == finest.get(name)
                if (asked is None and best) or (asked is not None and resolution == asked):
                    wanted.add(path)
        for pattern in self.files:
            wanted.update(p for p in listed if fnmatch.fnmatchcase(p, pattern))
        return [path for path in listed if path in wanted]

    def describe(self) -> str:
        """A short text for logs and reports: ``B04, B08_20m, files MTD_*``."""
        parts = [band if res is None else f"{band}_{res}m" for band, res in self.bands]
        parts += [f"files {pattern}" for pattern in self.files]
        return ", ".join(parts)
