"""The catalogue database: built once per (generator version, seed), then read-only.

:class:`CatalogueStore` is the :class:`~sentinel_fetch.emulator.model.ProductStore` of the
emulator. Many server threads read it at once: each call borrows a read-only SQLite
connection from a small pool (an immutable database needs no locks; the server's one
thread per HTTP connection rules out thread-local connections, which would pile up), and
the shared in-memory caches (footprint geometries, rendered footprint text, exact
intersection answers) are filled idempotently or under a lock.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from sentinel_fetch.emulator.model import ProductRecord

from .attributes import derived_value
from .filter import parse_filter
from .footprints import footprint_geojson, footprint_wkt
from .generator import GENERATOR_VERSION, BuildReport, build_catalogue
from .schema import PRODUCT_COLUMNS, ProductRow, format_uuid, to_datetime
from .sql import (
    ATTRIBUTE_FUNCTION,
    INTERSECTS_FUNCTION,
    SqlFilter,
    compile_filter,
    compile_orderby,
    served,
)

__all__ = ["CatalogueStore", "catalogue_file_name"]

# SQL here is assembled from fixed column names and compiled filters whose values are
# always bound parameters, never interpolated text.
_SELECT = "SELECT " + ", ".join(f"p.{c}" for c in PRODUCT_COLUMNS) + " FROM products p"  # noqa: S608
_QUERY_GEOMETRY_CACHE = 64
_FOOTPRINT_TEXT_CACHE = 50_000
_AREA_RESULT_CACHE = 32
_IDLE_CONNECTIONS = 8


def catalogue_file_name(seed: int) -> str:
    """Cache file name of the catalogue for a seed (changes with the generator version).

    >>> catalogue_file_name(7)  # doctest: +ELLIPSIS
    'catalogue-v...-seed7.sqlite'
    """
    return f"catalogue-v{GENERATOR_VERSION}-seed{seed}.sqlite"


class CatalogueStore:
    """Read access to a built catalogue database.

    Create it with :meth:`open`, which builds the database on first use. The constructor
    itself does no I/O.

    Attributes:
        path: the SQLite file.
        build_report: totals of the build, when this call built the file (else ``None``).
    """

    def __init__(self, path: Path, build_report: BuildReport | None = None) -> None:
        self.path = path
        self.build_report = build_report
        self._pool_lock = threading.Lock()
        self._idle: list[_Reader] = []
        self._closed = False
        self._load_lock = threading.Lock()
        self._geometries: npt.NDArray[np.object_] | None = None
        self._footprint_text: dict[int, tuple[str, dict[str, object]]] = {}
        self._area_results: dict[bytes, dict[int, int]] = {}

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, data_dir: Path, seed: int) -> CatalogueStore:
        """The catalogue for ``seed`` under ``data_dir``, building it if missing.

        The build writes a temporary file and renames it into place, so concurrent
        processes never read a half-written database (at worst both build, and the last
        rename wins with identical content).
        """
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / catalogue_file_name(seed)
        if path.exists() and _is_complete(path, seed):
            return cls(path)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            report = build_catalogue(temporary, seed)
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        _remove_older_versions(data_dir, seed)
        return cls(path, report)

    def close(self) -> None:
        """Close the pooled connections; connections in use close when released."""
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for reader in idle:
            reader.connection.close()

    @contextlib.contextmanager
    def _reader(self) -> Iterator[_Reader]:
        """A connection for the calling thread, taken from the pool and given back.

        The server runs one thread per HTTP connection, so connections are pooled, not
        tied to threads: a thread-local connection would outlive nothing but leak.
        """
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("the catalogue store is closed")
            reader = self._idle.pop() if self._idle else None
        if reader is None:
            reader = _Reader(self.path, self._intersects)
        try:
            yield reader
        finally:
            with self._pool_lock:
                keep = not self._closed and len(self._idle) < _IDLE_CONNECTIONS
                if keep:
                    self._idle.append(reader)
            if not keep:
                reader.connection.close()

    # ------------------------------------------------------------------ geometry

    def _footprints(self) -> npt.NDArray[np.object_]:
        geometries = self._geometries
        if geometries is None:
            with self._load_lock:
                if self._geometries is None:
                    with self._reader() as reader:
                        rows = reader.connection.execute(
                            "SELECT fid, wkb FROM footprints ORDER BY fid"
                        ).fetchall()
                    loaded = np.empty(len(rows) + 1, dtype=object)
                    loaded[1:] = shapely.from_wkb([wkb for _, wkb in rows])
                    self._geometries = loaded
                geometries = self._geometries
        return geometries

    def _intersects(self, reader: _Reader, wkb: bytes, fid: int) -> int:
        # Paging repeats the same area for every page and for $count: remember answers.
        known = self._area_results.get(wkb)
        if known is None:
            if len(self._area_results) >= _AREA_RESULT_CACHE:
                self._area_results.clear()
            known = self._area_results.setdefault(wkb, {})
        answer = known.get(fid)
        if answer is None:
            answer = int(reader.area(wkb).intersects(self._footprints()[fid]))
            known[fid] = answer
        return answer

    def footprint(self, fid: int) -> tuple[str, dict[str, object]]:
        """``Footprint`` text and ``GeoFootprint`` object of a footprint id."""
        found = self._footprint_text.get(fid)
        if found is None:
            geometry = self._footprints()[fid]
            found = (footprint_wkt(geometry), footprint_geojson(geometry))
            if len(self._footprint_text) >= _FOOTPRINT_TEXT_CACHE:
                self._footprint_text.clear()
            self._footprint_text[fid] = found
        return found

    def footprint_geometry(self, fid: int) -> BaseGeometry:
        """The shapely geometry of a footprint id (what ``Intersects`` tests)."""
        return cast(BaseGeometry, self._footprints()[fid])

    # ------------------------------------------------------------------ queries

    def search(self, where: SqlFilter, order: str, limit: int, offset: int) -> list[ProductRow]:
        """One page of products matching a compiled filter."""
        # Sort narrow rows, then fetch the page: sorting 30,000 full rows to keep 1000
        # costs twice as much.
        sql = f"SELECT p.pk FROM products p WHERE {where.where} ORDER BY {order} LIMIT ? OFFSET ?"  # noqa: S608
        rows: dict[int, ProductRow] = {}
        with self._reader() as reader:
            connection = reader.connection
            keys = [pk for (pk,) in connection.execute(sql, (*where.params, limit, offset))]
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                for raw in connection.execute(f"{_SELECT} WHERE p.pk IN ({marks})", chunk):
                    row = ProductRow._make(raw)
                    rows[row.pk] = row
        return [rows[pk] for pk in keys]

    def count(self, where: SqlFilter) -> int:
        """Number of products matching a compiled filter."""
        sql = f"SELECT count(*) FROM products p WHERE {where.where}"  # noqa: S608
        with self._reader() as reader:
            return int(reader.connection.execute(sql, where.params).fetchone()[0])

    def rows_by_ids(self, product_ids: Iterable[str]) -> list[ProductRow]:
        """Products with these Ids, in the given order (unknown or malformed Ids skipped)."""
        uids = []
        for product_id in product_ids:
            try:
                uids.append(uuid.UUID(product_id).bytes)
            except ValueError:
                continue
        return self._rows_by("uid", uids)

    def rows_by_names(self, names: Sequence[str]) -> list[ProductRow]:
        """Products with these names, in the given order (unknown names skipped)."""
        return self._rows_by("name", list(names))

    def _rows_by(self, column: str, values: Sequence[object]) -> list[ProductRow]:
        found: dict[object, ProductRow] = {}
        with self._reader() as reader:
            for start in range(0, len(values), 500):
                chunk = values[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                sql = f"{_SELECT} WHERE p.{column} IN ({marks})"
                for raw in reader.connection.execute(sql, tuple(chunk)).fetchall():
                    row = ProductRow._make(raw)
                    found[getattr(row, column)] = row
        ordered: list[ProductRow] = []
        seen: set[object] = set()
        for value in values:
            if value in found and value not in seen:
                seen.add(value)
                ordered.append(found[value])
        return ordered

    def row(self, product_id: str) -> ProductRow | None:
        """The stored row of a product, or ``None``."""
        rows = self.rows_by_ids([product_id])
        return rows[0] if rows else None

    def get(self, product_id: str) -> ProductRecord | None:
        """The product with this Id (what the download host needs), or ``None``."""
        found = self.row(product_id)
        return None if found is None else found.record()

    def match_ids(
        self, filter_text: str | None, orderby: str | None = None, *, twins: bool = True
    ) -> list[str]:
        """Ids of every product matching a ``$filter`` (no paging limits), as served with
        the ``reprocessed_twins`` switch set to ``twins``.

        Raises:
            FilterError: malformed filter (a ``ValueError``).
            OrderByError: malformed ``$orderby`` (a ``ValueError``).
        """
        node = parse_filter(filter_text) if filter_text and filter_text.strip() else None
        where = served(compile_filter(node), twins)
        order = compile_orderby(orderby)
        sql = f"SELECT p.uid FROM products p WHERE {where.where} ORDER BY {order}"  # noqa: S608
        with self._reader() as reader:
            uids = reader.connection.execute(sql, where.params).fetchall()
        return [format_uuid(uid) for (uid,) in uids]

    def counts_by_collection(self, *, twins: bool = True) -> dict[str, int]:
        """Number of products per collection, as served with ``reprocessed_twins=twins``."""
        where = served(SqlFilter("1", ()), twins)
        sql = (
            f"SELECT collection, count(*) FROM products p WHERE {where.where}"  # noqa: S608
            " GROUP BY collection ORDER BY collection"
        )
        with self._reader() as reader:
            rows = reader.connection.execute(sql, where.params).fetchall()
        return {str(c): int(n) for c, n in rows}

    def sensing_dates(
        self,
        collection: str,
        lon: float,
        lat: float,
        *,
        product_type: str | None = None,
        platform: str | None = None,
        online: bool | None = True,
    ) -> list[date]:
        """UTC days with at least one matching product whose footprint covers a point.

        Finds dates that make example searches meaningful, e.g. the Sentinel-1 browser URL
        of cdse-api.md §4 (IW GRD of platform A over a small polygon in Thailand)::

            store.sensing_dates("SENTINEL-1", 102.115, 16.48, product_type="GRD",
                                platform="A")

        ``product_type`` may be a Sentinel-1 alias (``GRD``) or an exact type.
        """
        terms = [
            f"Collection/Name eq '{collection}'",
            f"OData.CSC.Intersects(area=geography'SRID=4326;POINT({lon!r} {lat!r})')",
        ]
        if product_type is not None:
            terms.append(_string_attribute("productType", product_type))
        if platform is not None:
            terms.append(_string_attribute("platformSerialIdentifier", platform))
        if online is not None:
            terms.append(f"Online eq {str(online).lower()}")
        where = compile_filter(parse_filter(" and ".join(terms)))
        sql = f"SELECT DISTINCT p.start_us / 86400000000 FROM products p WHERE {where.where}"  # noqa: S608
        with self._reader() as reader:
            days = sorted(int(d) for (d,) in reader.connection.execute(sql, where.params))
        return [to_datetime(d * 86_400_000_000).date() for d in days]


class _Reader:
    """One read-only connection with the SQL functions and the per-connection cache of
    prepared query areas (prepared geometries must not be shared between threads, and a
    pooled connection serves one thread at a time)."""

    def __init__(self, path: Path, intersects: Callable[[_Reader, bytes, int], int]) -> None:
        # immutable=1: the file never changes once built, so SQLite skips locking.
        self.connection = sqlite3.connect(
            path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        self.connection.execute("PRAGMA mmap_size=536870912")
        self.connection.execute("PRAGMA cache_size=-16384")
        self.connection.create_function(
            INTERSECTS_FUNCTION, 2, lambda wkb, fid: intersects(self, wkb, fid), deterministic=True
        )
        self.connection.create_function(ATTRIBUTE_FUNCTION, -1, _attribute, deterministic=True)
        self._areas: dict[bytes, BaseGeometry] = {}

    def area(self, wkb: bytes) -> BaseGeometry:
        """The prepared query geometry of a WKB parameter."""
        found = self._areas.get(wkb)
        if found is None:
            if len(self._areas) >= _QUERY_GEOMETRY_CACHE:
                self._areas.clear()
            found = shapely.from_wkb(wkb)
            shapely.prepare(found)
            self._areas[wkb] = found
        return found


def _string_attribute(name: str, value: str) -> str:
    escaped = value.replace("'", "''")
    return (
        f"Attributes/OData.CSC.StringAttribute/any(att:att/Name eq '{name}' and "
        f"att/OData.CSC.StringAttribute/Value eq '{escaped}')"
    )


def _attribute(collection: str, name: str, *columns: object) -> str | int | float | None:
    return derived_value(collection, name, ProductRow._make(columns))


def _remove_older_versions(data_dir: Path, seed: int) -> None:
    """Delete caches of this seed made by older generators (130 MB each); processes still
    reading one keep their open file."""
    for version in range(1, GENERATOR_VERSION):
        with contextlib.suppress(OSError):
            (data_dir / f"catalogue-v{version}-seed{seed}.sqlite").unlink()


def _is_complete(path: Path, seed: int) -> bool:
    """Whether a cached file is a finished build of this generator version and seed."""
    try:
        connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        finally:
            connection.close()
    except sqlite3.DatabaseError:
        return False
    return meta.get("generator_version") == str(GENERATOR_VERSION) and meta.get("seed") == str(seed)
