"""Single files of products: the file plan, and each file's own verified transfer.

**The plan** (:func:`plan_files`): for each product, the files a
:class:`~sentinel_fetch.downloads.selection.Selection` picks, each with its path inside
the SAFE, size, checksum and where those came from:

1. STAC items, looked up in batches (:class:`~sentinel_fetch.catalogue.stac.StacLookup`):
   paths, sizes and multihash checksums;
2. when STAC lacks the item (or cannot be reached), the OData Nodes listing on the
   download host: paths and sizes, one request per folder, bounded;
3. when a chosen file has no usable checksum (none, or the malformed MD5-coded value),
   the product's ``manifest.safe`` (fetched through Nodes) supplies it.

A file with no checksum anywhere is still fetched and its size checked, and the product's
result lists it as unverified: it is never silently accepted.

**The transfer** (:func:`download_files`): each file is its own
:func:`~sentinel_fetch.downloads.transfer.download_product` call (the same connection
governor, Range resume, retry and byte budgets, Temp then an atomic move), from its Nodes
URL on the download host, to ``<finish>/<product name>.SAFE/<path inside the SAFE>``.
A file already there with its size is skipped without a request, so asking for more
bands later fetches only the new ones. A product is done when every chosen file is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sentinel_fetch.auth import TokenManager
from sentinel_fetch.catalogue.stac import StacLookup, files_of_item, item_id, request_with_retries
from sentinel_fetch.downloads.checksum import SIZE_ONLY, Expected
from sentinel_fetch.downloads.governor import StoppedError
from sentinel_fetch.downloads.manifest import (
    MAX_MANIFEST_BYTES,
    ManifestEntry,
    parse_manifest,
    safe_relative_path,
)
from sentinel_fetch.downloads.multihash import Checksum
from sentinel_fetch.downloads.paths import Layout, make_folder, safe_file_name
from sentinel_fetch.downloads.selection import Selection
from sentinel_fetch.downloads.transfer import (
    Downloadable,
    TransferContext,
    TransferOutcome,
    download_product,
)
from sentinel_fetch.errors import (
    AuthError,
    IntegrityError,
    ProxyError,
    SentinelFetchError,
    StacError,
    StorageError,
    TransferError,
)
from sentinel_fetch.http import Transport
from sentinel_fetch.retry import RetryPolicy
from sentinel_fetch.settings import Settings

__all__ = [
    "FilesOutcome",
    "PlannedFile",
    "ProductPlan",
    "download_files",
    "list_nodes",
    "node_url",
    "plan_files",
    "safe_folder",
]

log = logging.getLogger("sentinel_fetch.download")

#: Bounds of a Nodes walk: an S2 L2A SAFE has about 15 folders and 150 files.
MAX_NODE_FOLDERS = 200
MAX_NODE_FILES = 20_000
MAX_NODE_DEPTH = 12
#: Files of one product in flight at once: one streams while the last one is fsynced.
FILES_AT_ONCE = 2
#: Attempts at a STAC look-up before the Nodes listing is used instead.
_STAC_ATTEMPTS = 4


@dataclass(frozen=True)
class PlannedFile:
    """One file to fetch.

    Attributes:
        path: path inside the SAFE.
        size: bytes, or ``None`` when no listing said.
        checksum: what its bytes must hash to, or ``None`` if nothing says.
        source: ``stac`` or ``nodes``: what listed it.
    """

    path: str
    size: int | None
    checksum: Checksum | None
    source: str


@dataclass(frozen=True)
class ProductPlan:
    """The files of one product to fetch, or why there are none.

    Attributes:
        product: the product.
        files: the chosen files.
        source: ``stac`` or ``nodes``.
        error: why the product cannot be fetched file by file (it then fails).
    """

    product: Downloadable
    files: tuple[PlannedFile, ...] = ()
    source: str = "stac"
    error: str | None = None

    @property
    def size(self) -> int:
        """Bytes of the chosen files that have a known size."""
        return sum(f.size or 0 for f in self.files)


@dataclass(frozen=True)
class FilesOutcome:
    """Every chosen file of a product, verified in the finish folder.

    Attributes:
        path: the product's folder (``<finish>/<name>.SAFE``).
        bytes_received: fetched in this run.
        attempts: transfer attempts, all files together.
        verified_by: the algorithms used (``SHA3-256``, ``SHA3-256+MD5``...).
        unverified: files checked by size only (no usable checksum anywhere).
        fetched: files fetched in this run (the others were already there).
    """

    path: Path
    bytes_received: int
    attempts: int
    verified_by: str
    unverified: tuple[str, ...] = ()
    fetched: int = 0


@dataclass(frozen=True)
class _FileTarget:
    """A file as the transfer sees it."""

    id: str
    name: str
    size: int
    file_name: str
    checksums: Mapping[str, str] = field(default_factory=dict)


def safe_folder(file_name: str) -> str:
    """The product's folder in Temp and Finish from its archive's file name.

    Example:
        >>> safe_folder("S2B_MSIL2A_20240612T103629_N0510_R008_T32UNE_20240612T134455.SAFE.zip")
        'S2B_MSIL2A_20240612T103629_N0510_R008_T32UNE_20240612T134455.SAFE'
    """
    return safe_file_name(
        file_name.removesuffix(".zip") if file_name.endswith(".zip") else file_name + ".files"
    )


def node_url(settings: Settings, product: Downloadable, path: str, *, value: bool) -> str:
    """The Nodes URL of a path inside a product's SAFE on the download host (§5.7).

    Built from the product's UUID (checked) and its name, never taken from a server, so
    the token goes nowhere but the configured download host.
    """
    base = settings.endpoints.product_url(product.id).removesuffix("/$value")
    segments = [product.name, *path.split("/")] if path else [product.name]
    nodes = "".join(f"/Nodes({quote(segment, safe='')})" for segment in segments)
    return base + nodes + ("/$value" if value else "/Nodes")


class _Planner:
    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        tokens: TokenManager,
        stop: threading.Event | None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.tokens = tokens
        self.stop = stop
        self.policy = RetryPolicy.from_limits(settings.limits)

    def get(self, url: str, what: str, *, raw: bool = False, max_bytes: int = 8 << 20) -> Any:
        return request_with_retries(
            self.transport,
            "GET",
            url,
            what=what,
            policy=self.policy,
            stop=self.stop,
            bearer=self.tokens.access_token,
            raw=raw,
            max_bytes=max_bytes,
        )

    def nodes(self, product: Downloadable) -> list[tuple[str, int | None]]:
        """Every file of the SAFE with its size, walking the Nodes listing (bounded)."""
        found: list[tuple[str, int | None]] = []
        pending: list[tuple[str, int]] = [("", 0)]
        folders = 0
        while pending:
            folder, depth = pending.pop()
            folders += 1
            if folders > MAX_NODE_FOLDERS or depth > MAX_NODE_DEPTH:
                raise StacError(f"{product.name}: the Nodes listing is too large to walk")
            body = self.get(
                node_url(self.settings, product, folder, value=False), f"{product.name}: Nodes"
            )
            entries = body.get("result") if isinstance(body, Mapping) else None
            if not isinstance(entries, list):
                raise StacError(f"{product.name}: the Nodes listing has no result list")
            for entry in entries:
                if not isinstance(entry, Mapping):
                    continue
                name = entry.get("Name")
                path = safe_relative_path(f"{folder}/{name}" if folder else name)
                if path is None or not isinstance(name, str) or "/" in name:
                    continue
                children = entry.get("ChildrenNumber")
                size = entry.get("ContentLength")
                if isinstance(children, int) and children > 0:
                    pending.append((path, depth + 1))
                else:
                    known = size if isinstance(size, int) and size > 0 else None
                    found.append((path, known))
                if len(found) > MAX_NODE_FILES:
                    raise StacError(f"{product.name}: the Nodes listing is too large to walk")
        return found

    def manifest(self, product: Downloadable) -> dict[str, ManifestEntry]:
        data = self.get(
            node_url(self.settings, product, "manifest.safe", value=True),
            f"{product.name}: manifest.safe",
            raw=True,
            max_bytes=MAX_MANIFEST_BYTES,
        )
        return parse_manifest(data)


def list_nodes(
    product: Downloadable,
    settings: Settings,
    transport: Transport,
    tokens: TokenManager,
    stop: threading.Event | None = None,
) -> list[tuple[str, int | None]]:
    """Paths inside the SAFE and sizes of every file of ``product``, from the Nodes listing.

    Raises:
        StacError: the listing cannot be read (after retries), or is too large.
    """
    return _Planner(settings, transport, tokens, stop).nodes(product)


def plan_files(
    products: Sequence[Downloadable],
    selection: Selection,
    *,
    settings: Settings,
    transport: Transport,
    tokens: TokenManager,
    stop: threading.Event | None = None,
    stac: StacLookup | None = None,
) -> dict[str, ProductPlan]:
    """``product id -> plan`` for every product (see the module docstring).

    A product that cannot be planned gets a plan with an ``error``; only a stopping run,
    a disk, an account or a proxy problem raises.
    """
    planner = _Planner(settings, transport, tokens, stop)
    lookup = stac or StacLookup(
        transport,
        settings.endpoints.stac,
        # The Nodes listing can stand in: a catalogue that keeps failing is not waited for
        # as long as a download would be.
        policy=RetryPolicy(
            min(settings.limits.max_attempts, _STAC_ATTEMPTS), planner.policy.backoff
        ),
        stop=stop,
    )
    try:
        items = lookup.items(p.name for p in products)
    except StacError as exc:
        log.warning("STAC cannot list files (%s); using the Nodes listing instead", exc)
        items = {}
    plans: dict[str, ProductPlan] = {}
    for product in products:
        try:
            plans[product.id] = _plan_one(
                planner, product, selection, items.get(item_id(product.name))
            )
        except (AuthError, ProxyError, StorageError, StoppedError):
            raise
        except SentinelFetchError as exc:
            plans[product.id] = ProductPlan(
                product, error=str(exc).removeprefix(f"{product.name}: ")
            )
    return plans


def _plan_one(
    planner: _Planner,
    product: Downloadable,
    selection: Selection,
    item: Mapping[str, Any] | None,
) -> ProductPlan:
    if item is not None:
        source = "stac"
        listed = {f.path: f for f in files_of_item(item, product.name)}
        sizes = {path: f.size for path, f in listed.items()}
        checksums = {path: f.checksum for path, f in listed.items()}
    else:
        source = "nodes"
        log.info("%s: not in STAC; listing its files through Nodes", product.name)
        sizes = dict(planner.nodes(product))
        checksums = dict.fromkeys(sizes)
    chosen = selection.choose(sizes)
    if not chosen:
        return ProductPlan(product, source=source, error=f"no file matches {selection.describe()}")
    lacking = [p for p in chosen if checksums[p] is None or checksums[p].tentative]  # type: ignore[union-attr]
    if lacking:
        try:
            manifest = planner.manifest(product)
        except (AuthError, ProxyError, StorageError, StoppedError):
            raise
        except SentinelFetchError as exc:
            log.info("%s: no manifest.safe checksums (%s)", product.name, exc)
            manifest = {}
        for path in lacking:
            entry = manifest.get(path)
            if entry is not None and entry.checksum is not None:
                checksums[path] = entry.checksum
            if entry is not None and sizes.get(path) is None:
                sizes[path] = entry.size
    files = tuple(PlannedFile(p, sizes[p], checksums[p], source) for p in chosen)
    whole = product.size
    oversized = [f for f in files if whole and f.size is not None and f.size > whole]
    if oversized:
        # A store-only zip holds every file whole: no file is bigger than the product.
        first = oversized[0]
        return ProductPlan(
            product,
            source=source,
            error=f"the {source} listing says {first.path} is {first.size} bytes, more than "
            f"the whole product ({whole}): refusing to trust it",
        )
    return ProductPlan(product, files, source)


def _file_layout(layout: Layout, folder: str, path: str) -> tuple[Layout, str]:
    """The temp/finish folders of one file, and its file name; every part made safe."""
    parts = [safe_file_name(part) for part in path.split("/")]
    relative = [safe_file_name(folder), *parts[:-1]]
    temp = layout.temp_dir.joinpath(*relative)
    finish = layout.finish_dir.joinpath(*relative)
    for where in (temp, finish):
        if not where.resolve().is_relative_to(
            (layout.temp_dir if where is temp else layout.finish_dir).resolve()
        ):
            raise TransferError(f"refusing to write outside the save folder: {path[:80]!r}")
    return Layout(temp, finish), parts[-1]


def _expected(planned: PlannedFile) -> Expected:
    checksum = planned.checksum
    return Expected(
        size=planned.size or 0,
        algorithm=checksum.algorithm if checksum else None,
        digest=checksum.digest if checksum else None,
        tentative=checksum.tentative if checksum else False,
        zip_test=False,
    )


def finished_files(plan: ProductPlan, layout: Layout, folder: str) -> list[str]:
    """The chosen files already in the finish folder with their size (no network)."""
    done = []
    for planned in plan.files:
        try:
            file_layout, name = _file_layout(layout, folder, planned.path)
            size = file_layout.finished(name).stat().st_size
        except (OSError, TransferError):
            continue
        if planned.size is None or size == planned.size:
            done.append(planned.path)
    return done


def download_files(
    plan: ProductPlan,
    folder: str,
    context: TransferContext,
    *,
    record: Callable[[PlannedFile, str, dict[str, object]], None] | None = None,
) -> FilesOutcome:
    """Fetch every chosen file of a product not yet in the finish folder, verified.

    Up to :data:`FILES_AT_ONCE` files of the product are in flight at once (the
    connection governor still bounds every request of the batch): while one file is
    fsynced and moved, the next already uses the connection. Every file is tried even
    when one fails; then the first failure is raised with the count of files that failed.

    Raises:
        TransferError: a file failed for good (the others are kept).
        StorageError, AuthError, ProxyError, StoppedError: as
            :func:`~sentinel_fetch.downloads.transfer.download_product`.
    """
    settings = context.transport.settings
    product = plan.product
    already = set(finished_files(plan, context.layout, folder))
    received = attempts = fetched = 0
    algorithms: dict[str, str] = {}
    failures: list[tuple[PlannedFile, TransferError]] = []
    for planned in plan.files:
        if planned.path in already:
            algorithms[planned.path] = planned.checksum.algorithm if planned.checksum else SIZE_ONLY

    def fetch(planned: PlannedFile) -> TransferOutcome | TransferError:
        file_layout, name = _file_layout(context.layout, folder, planned.path)
        make_folder(file_layout.temp_dir)
        make_folder(file_layout.finish_dir)
        target = _FileTarget(product.id, f"{product.name}/{planned.path}", planned.size or 0, name)
        try:
            outcome = download_product(
                target,
                replace(context, layout=file_layout),
                url=node_url(settings, product, planned.path, value=True),
                expected=_expected(planned),
            )
        except TransferError as exc:
            if record is not None:
                record(planned, "failed", {"reason": str(exc), "attempts": exc.attempts})
            return exc
        if record is not None:
            details = {
                "verified_by": outcome.verified_by,
                "bytes_received": outcome.bytes_received,
                "attempts": outcome.attempts,
            }
            record(planned, "done", details)
        return outcome

    todo = [planned for planned in plan.files if planned.path not in already]
    fatal: BaseException | None = None
    stopped_bytes = 0
    with ThreadPoolExecutor(
        max_workers=max(1, min(FILES_AT_ONCE, len(todo))), thread_name_prefix="file"
    ) as pool:
        futures = [(planned, pool.submit(fetch, planned)) for planned in todo]
        for planned, future in futures:
            try:
                result = future.result()
            except StoppedError as exc:
                stopped_bytes += exc.bytes_received
                fatal = fatal or exc
                continue
            except (StorageError, AuthError, ProxyError) as exc:
                # A disk, an account or a proxy: every file would fail the same way.
                context.stop.set()
                fatal = fatal or exc
                continue
            except Exception as exc:  # a bug: this product fails, the engine says how
                fatal = fatal or exc
                continue
            if isinstance(result, TransferError):
                received += result.bytes_received
                attempts += result.attempts
                failures.append((planned, result))
                continue
            received += result.bytes_received
            attempts += result.attempts
            fetched += 1
            algorithms[planned.path] = result.verified_by
    if fatal is not None:
        if isinstance(fatal, StoppedError):
            fatal.bytes_received = stopped_bytes + received
        raise fatal
    if failures:
        first, error = failures[0]
        more = f" (and {len(failures) - 1} more files)" if len(failures) > 1 else ""
        reason = str(error).removeprefix(f"{product.name}/{first.path}: ")
        kind = IntegrityError if isinstance(error, IntegrityError) else TransferError
        failure = kind(f"{product.name}: {first.path}: {reason}{more}")
        failure.attempts = attempts
        failure.bytes_received = received
        raise failure
    ordered = [algorithms[planned.path] for planned in plan.files]
    unverified = [p.path for p in plan.files if algorithms[p.path] == SIZE_ONLY]
    used = "+".join(dict.fromkeys(a for a in ordered if a != SIZE_ONLY)) or SIZE_ONLY
    return FilesOutcome(
        context.layout.finish_dir / safe_file_name(folder),
        received,
        attempts,
        used,
        tuple(unverified),
        fetched,
    )


def plans_for(
    products: Iterable[Downloadable], plans: Mapping[str, ProductPlan] | None
) -> dict[str, ProductPlan]:
    """The plans that apply to ``products`` (none: whole products)."""
    if not plans:
        return {}
    return {p.id: plans[p.id] for p in products if p.id in plans}
