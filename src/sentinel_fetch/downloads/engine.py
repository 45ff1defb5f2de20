"""The batch: many products, a few at a time, every one accounted for.

* Products already verified in the finish folder are skipped without a network request;
  offline products (``Online: false``) are reported, never attempted; a file in the
  finish folder the job did not put there is never overwritten. What to do with each
  product is one pure decision (:mod:`~sentinel_fetch.downloads.plan`), the one the dry
  run shows.
* ``workers`` products transfer at once (default 4, a free account's limit), and one
  :class:`~sentinel_fetch.downloads.governor.Governor` bounds every request to the
  download host by the same number.
* A product that fails after retries is reported with its reason and the batch goes on;
  a full disk, a refused account or a proxy that cannot be used (not running, refusing
  our credentials) stops the batch: every product would fail the same way.
* Every product gets a file of its own (:func:`~sentinel_fetch.downloads.paths.assign_file_names`):
  the name the recorder remembers from earlier runs, else one no other product has, so
  two products never share a ``.part`` or a finished file, whatever their names.
* With file plans (:mod:`~sentinel_fetch.downloads.files`: bands or files picked from
  each product), a product's chosen files are fetched one by one, each its own transfer
  under the same governor, into ``<finish>/<name>.SAFE/``; files already there are
  skipped, and the product is done when all of them are verified.
* A stop request (Ctrl-C, or SIGTERM through the command line) lets each worker finish
  its current chunk, keeps the partial files for the next run, and reports what was
  left undone.

The caller holds the folder lock (:mod:`~sentinel_fetch.downloads.folderlock`) for the
whole run; :meth:`sentinel_fetch.client.Client.download` takes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sentinel_fetch.auth import TokenManager
from sentinel_fetch.downloads.files import (
    FilesOutcome,
    PlannedFile,
    ProductPlan,
    download_files,
    finished_files,
    plans_for,
    safe_folder,
)
from sentinel_fetch.downloads.governor import Governor, StoppedError
from sentinel_fetch.downloads.paths import Layout
from sentinel_fetch.downloads.pieces import MIN_PIECE_BYTES, Board, Shared
from sentinel_fetch.downloads.plan import Action, PlannedProduct, is_offline, plan
from sentinel_fetch.downloads.transfer import (
    Downloadable,
    TransferContext,
    TransferOutcome,
    download_product,
    help_product,
)
from sentinel_fetch.errors import (
    AuthError,
    ProxyError,
    SentinelFetchError,
    StorageError,
    TransferError,
)
from sentinel_fetch.http import Transport
from sentinel_fetch.progress import (
    BatchFinished,
    BatchStarted,
    BytesReceived,
    NullProgress,
    ProductFinished,
    ProductStarted,
    ProductState,
    ProductStatus,
    ProductWaiting,
    Progress,
    ProgressEvent,
)
from sentinel_fetch.redact import redact
from sentinel_fetch.settings import Settings

if TYPE_CHECKING:
    from sentinel_fetch.downloads.coordination import Team
    from sentinel_fetch.ledger.base import Claim

__all__ = ["BatchReport", "DownloadEngine", "JobRecorder", "ProductResult", "is_offline"]

log = logging.getLogger("sentinel_fetch.download")

OFFLINE_HINT = "offline (Deferred Available Data): order it in the CDSE Data Workspace, then rerun"


@dataclass(frozen=True)
class ProductResult:
    """What happened to one product in this run.

    Attributes:
        product: the product.
        status: ``downloaded``, ``skipped`` (already verified), ``offline``, ``failed``
            or ``stopped`` (the run ended before it finished; rerun to resume).
        path: the verified file (downloaded or skipped).
        bytes_received: bytes fetched over the network in this run.
        attempts: transfer attempts used.
        verified_by: ``BLAKE3``, ``MD5`` or ``zip-crc`` for downloads.
        error: why it failed, one line.
        unverified: files of a file plan checked by size only: no checksum existed for
            them anywhere (STAC, ``manifest.safe``); reports name them.
    """

    product: Downloadable
    status: ProductStatus
    path: Path | None = None
    bytes_received: int = 0
    attempts: int = 0
    verified_by: str | None = None
    error: str | None = None
    unverified: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchReport:
    """The outcome of a batch."""

    results: list[ProductResult]
    elapsed_s: float
    interrupted: bool = False
    logins: int = 0
    peak_connections: int = 0
    #: Why a cooperating run stopped taking products early (the quota stop), if it did.
    stopped_because: str | None = None

    def count(self, status: ProductStatus) -> int:
        """How many products ended with ``status``."""
        return sum(1 for result in self.results if result.status == status)

    @property
    def failed(self) -> list[ProductResult]:
        """Products that failed, with their reasons."""
        return [result for result in self.results if result.status == "failed"]

    @property
    def bytes_received(self) -> int:
        """Bytes fetched over the network in this run."""
        return sum(result.bytes_received for result in self.results)

    @property
    def ok(self) -> bool:
        """Every product is verified in the finish folder (offline ones excepted)."""
        return not self.interrupted and all(
            result.status in ("downloaded", "skipped", "offline") for result in self.results
        )


class JobRecorder(Protocol):
    """Receives every state change of every product (the job ledger implements it)."""

    def record(self, product: Downloadable, state: str, **details: object) -> None:
        """Remember that ``product`` entered ``state`` (``file_name`` among the details)."""
        ...

    def file_names(self) -> Mapping[str, str]:
        """``product id -> file name`` recorded by earlier runs of this job."""
        ...


@dataclass(frozen=True)
class _Target:
    """A product as the transfer sees it: with the file name this job gave it."""

    product: Downloadable
    file_name: str

    @property
    def id(self) -> str:
        return self.product.id

    @property
    def name(self) -> str:
        return self.product.name

    @property
    def size(self) -> int:
        return self.product.size

    @property
    def checksums(self) -> Mapping[str, str]:
        return self.product.checksums


@dataclass
class _Batch:
    results: dict[str, ProductResult] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    fatal: SentinelFetchError | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    file_names: dict[str, str] = field(default_factory=dict)
    plans: dict[str, ProductPlan] = field(default_factory=dict)
    #: Cooperating runs: the claim each product is being worked under.
    claims: dict[str, Claim] = field(default_factory=dict)
    #: Cooperating runs: products not to claim again before a monotonic time.
    deferred: dict[str, float] = field(default_factory=dict)


class _End:
    """The end of a product source (``None`` there means: nothing now, ask again)."""


_END = _End()


def _reason(product: Downloadable, error: Exception) -> str:
    """An error's message without the product name in front (reports show it already)."""
    return redact(str(error)).removeprefix(f"{product.name}: ")


class DownloadEngine:
    """Downloads batches of products.

    Args:
        settings: endpoints, limits (``workers``), proxy, folders.
        tokens: the run's token manager (one login for the whole batch).
        transport: the network road; one is built from ``settings`` if omitted.
        progress: receives progress events.
        recorder: receives every product state change (the job ledger).
        team: this run's part in a job shared with other runs
            (:mod:`~sentinel_fetch.downloads.coordination`): products are claimed
            through leases, requests take the account's slots too. Started and closed
            by the caller.
    """

    def __init__(
        self,
        settings: Settings,
        tokens: TokenManager,
        *,
        transport: Transport | None = None,
        progress: Progress | None = None,
        recorder: JobRecorder | None = None,
        team: Team | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.transport = transport or Transport(settings)
        self.progress: Progress = progress or NullProgress()
        self.recorder = recorder
        self.layout = Layout(settings.temp_path, settings.finish_path)
        self.team = team
        self.stop = team.stop if team is not None else threading.Event()
        if team is not None:
            from sentinel_fetch.downloads.coordination import metered

            if team.emit is None:
                team.emit = self.progress
            self.progress = metered(self.progress, team)
        #: The smallest range a free connection takes of a product in flight.
        self.min_piece_bytes = MIN_PIECE_BYTES
        self.governor = self._governor()

    def _governor(self) -> Governor:
        limits = self.settings.limits
        if self.team is None:
            return Governor(
                limits.workers,
                probe_after_s=limits.probe_after_s,
                probe_max_s=limits.throttle_cooldown_s,
                max_pause_s=limits.backoff_max_s,
            )
        from sentinel_fetch.downloads.coordination import TeamGovernor

        return TeamGovernor(
            self.team,
            limits.workers,
            probe_after_s=limits.probe_after_s,
            probe_max_s=limits.throttle_cooldown_s,
            max_pause_s=limits.backoff_max_s,
        )

    def _record(self, batch: _Batch, product: Downloadable, state: str, **details: object) -> None:
        if self.recorder is None:
            return
        claim = batch.claims.get(product.id)
        if claim is not None and self.team is not None and state != "done":
            from sentinel_fetch.downloads.coordination import lease_lost

            if lease_lost(self.team, claim):
                # Another worker has the product now: its state is that worker's to say
                # (a verified file of ours is still worth telling: "done" goes through).
                return
        if self.team is not None:
            # The ledger refuses a write over another worker's live lease or done row.
            details = {**details, "worker": self.team.worker}
        try:
            self.recorder.record(product, state, file_name=batch.file_names[product.id], **details)
        except StorageError as exc:
            # The ledger cannot be written (a full disk): nothing can be trusted to be
            # remembered, so the batch stops; the first such error is the one reported.
            self._fail_batch(batch, exc)

    def _fail_batch(self, batch: _Batch, error: SentinelFetchError) -> None:
        with batch.lock:
            if batch.fatal is None:
                batch.fatal = error
        self.stop.set()

    def plan(self, products: Iterable[Downloadable]) -> list[PlannedProduct]:
        """What this run does with each product (:func:`~sentinel_fetch.downloads.plan.plan`).

        File names recorded by earlier runs are kept; see
        :func:`~sentinel_fetch.downloads.paths.assign_file_names` for the rest.
        """
        recorded = self.recorder.file_names() if self.recorder is not None else {}
        return plan(products, self.layout, recorded)

    def run(
        self,
        products: Iterable[Downloadable],
        plans: Mapping[str, ProductPlan] | None = None,
    ) -> BatchReport:
        """Download every product; return one result per distinct product (by id).

        ``plans`` (``product id -> file plan``) turns a product into its chosen files.

        Interrupting (Ctrl-C in the calling thread) stops the batch cleanly and returns a
        report with ``interrupted=True``.
        """
        started = time.monotonic()
        self.layout.prepare()
        queue = self._dedupe(products)
        logins_before = self.tokens.logins
        planned = self.plan(queue)
        batch = _Batch(
            file_names={item.product.id: item.file_name for item in planned},
            plans=plans_for(queue, plans),
        )
        to_fetch: list[Downloadable] = []
        for item in planned:
            product = item.product
            batch.order.append(product.id)
            if item.action is Action.OFFLINE:
                self._finish(batch, ProductResult(product, "offline", error=OFFLINE_HINT))
            elif product.id in batch.plans:
                file_plan = batch.plans[product.id]
                if file_plan.error is not None:
                    self._finish(batch, ProductResult(product, "failed", error=file_plan.error))
                    continue
                path = self._plan_finished(file_plan, item.file_name)
                if path is not None:
                    self._finish(batch, ProductResult(product, "skipped", path=path))
                else:
                    to_fetch.append(product)
            elif item.action is Action.SKIP:
                self._finish(batch, ProductResult(product, "skipped", path=item.path))
            elif item.action is Action.CONFLICT:
                reason = (
                    f"the finish folder holds another file named {item.file_name} (not this "
                    "product's by its checksum, and not from this job): it is left as it "
                    "is; move it away and rerun"
                )
                self._finish(batch, ProductResult(product, "failed", error=reason))
            else:
                to_fetch.append(product)
        total_bytes = sum(
            batch.plans[p.id].size if p.id in batch.plans else max(p.size, 0) for p in to_fetch
        )
        self.progress(BatchStarted(len(queue), total_bytes, len(queue) - len(to_fetch)))
        try:
            if self.team is not None:
                # Never "queued" over another worker's "downloading" or "done".
                self.team.enqueue([_Target(p, batch.file_names[p.id]) for p in to_fetch])
            else:
                for product in to_fetch:
                    self._record(batch, product, "queued")
            interrupted = self._run_pool(to_fetch, batch)
        except KeyboardInterrupt:
            # Before the pool started, or again while it stopped: the same clean end, with
            # a report, and every product not finished still to do.
            interrupted = True
            self.stop.set()
        if self.team is not None:
            from sentinel_fetch.downloads.coordination import settle

            settle(self, batch, to_fetch)
        for product in to_fetch:
            if product.id not in batch.results:
                reason = str(batch.fatal) if batch.fatal else "the run stopped before it finished"
                self._finish(batch, ProductResult(product, "stopped", error=reason))
        results = [batch.results[product_id] for product_id in batch.order]
        report = BatchReport(
            results,
            time.monotonic() - started,
            interrupted=interrupted,
            # A Client's token manager outlives a run: count this run's logins only.
            logins=self.tokens.logins - logins_before,
            peak_connections=self.governor.peak,
            stopped_because=self.team.stopped_because if self.team is not None else None,
        )
        self.progress(
            BatchFinished(
                report.count("downloaded"),
                report.count("skipped"),
                report.count("failed"),
                report.count("offline"),
                report.count("stopped"),
                report.elapsed_s,
            )
        )
        if batch.fatal is not None:
            raise batch.fatal
        return report

    def _plan_finished(self, plan: ProductPlan, file_name: str) -> Path | None:
        """The product's folder if every chosen file is in it with its size (no network)."""
        folder = safe_folder(file_name)
        if len(finished_files(plan, self.layout, folder)) != len(plan.files):
            return None
        return self.layout.finish_dir / folder

    @staticmethod
    def _dedupe(products: Iterable[Downloadable]) -> list[Downloadable]:
        """One entry per product id; products alike in name are still two products."""
        seen: set[str] = set()
        unique: list[Downloadable] = []
        for product in products:
            if product.id not in seen:
                seen.add(product.id)
                unique.append(product)
        return unique

    def _finish(self, batch: _Batch, result: ProductResult) -> None:
        batch.results[result.product.id] = result
        details: dict[str, object] = {}
        if result.error:
            details["reason"] = result.error
        if result.path is not None:
            details["path"] = str(result.path)
        if result.verified_by:
            details["verified_by"] = result.verified_by
        if result.attempts:
            details["attempts"] = result.attempts
        state = ProductState(result.status).remembered_as
        self._record(
            batch, result.product, state.value, bytes_received=result.bytes_received, **details
        )
        self.progress(
            ProductFinished(
                result.product.name,
                result.status,
                result.error or "",
                product_id=result.product.id,
            )
        )

    def _context(self, board: Board | None = None) -> TransferContext:
        return TransferContext(
            transport=self.transport,
            tokens=self.tokens,
            governor=self.governor,
            layout=self.layout,
            limits=self.settings.limits,
            progress=self.progress,
            stop=self.stop,
            board=board,
        )

    def _help(self, context: TransferContext, board: Board) -> None:
        """A free connection: fetch ranges of products in flight until none is worth it."""
        while not self.stop.is_set():
            try:
                with self.governor.slot(self.stop, spare=True):
                    claim = board.split()
                    if claim is None:
                        return
                    shared, piece = claim
                    help_product(shared, piece, replace(context, progress=self._ids(shared)), board)
            except StoppedError:
                return

    def _ids(self, shared: Shared) -> Progress:
        """Progress of a helper, under the id of the product its owner reports."""
        product_id = shared.product_id

        def progress(event: ProgressEvent) -> None:
            if isinstance(event, BytesReceived):
                event = replace(event, product_id=product_id)
            self.progress(event)

        return progress

    def _work(self, product: Downloadable, context: TransferContext, batch: _Batch) -> None:
        if self.stop.is_set():
            return
        if self.team is not None:
            from sentinel_fetch.downloads.coordination import work_claimed

            work_claimed(self, product, context, batch)
            return
        self._work_one(product, context, batch)

    def _work_one(self, product: Downloadable, context: TransferContext, batch: _Batch) -> None:
        """One product, start to end, with its result recorded (never raises)."""

        def progress(event: ProgressEvent) -> None:
            # The transfer knows the product by name; bars are kept by id, as two
            # products may share a name.
            if isinstance(event, (ProductStarted, BytesReceived, ProductWaiting)):
                event = replace(event, product_id=product.id)
            self.progress(event)

        # A worker is on it from here: waiting for a connection slot, receiving,
        # verifying and moving it are all one state of the job.
        self._record(batch, product, ProductState.DOWNLOADING.value)
        target = _Target(product, batch.file_names[product.id])
        plan = batch.plans.get(product.id)
        try:
            outcome: TransferOutcome | FilesOutcome
            if plan is not None:
                outcome = self._download_plan(plan, target, replace(context, progress=progress))
            else:
                outcome = self._download_whole(target, replace(context, progress=progress))
        except StoppedError as exc:
            reason = "the run stopped before it finished; rerun to resume"
            self._finish(
                batch,
                ProductResult(product, "stopped", bytes_received=exc.bytes_received, error=reason),
            )
            return
        except (StorageError, AuthError, ProxyError) as exc:
            self._fail_batch(batch, exc)
            self._finish(batch, ProductResult(product, "failed", error=_reason(product, exc)))
            return
        except SentinelFetchError as exc:
            transfer = exc if isinstance(exc, TransferError) else None
            self._finish(
                batch,
                ProductResult(
                    product,
                    "failed",
                    bytes_received=transfer.bytes_received if transfer else 0,
                    attempts=transfer.attempts if transfer else 0,
                    error=_reason(product, exc),
                ),
            )
            return
        except Exception as exc:  # a bug must not take the batch down with it
            log.exception("unexpected error while downloading %s", product.name)
            reason = redact(f"internal error: {exc!r}")
            self._finish(batch, ProductResult(product, "failed", error=reason))
            return
        self._finish(
            batch,
            ProductResult(
                product,
                "downloaded",
                path=outcome.path,
                bytes_received=outcome.bytes_received,
                attempts=outcome.attempts,
                verified_by=outcome.verified_by,
                unverified=getattr(outcome, "unverified", ()),
            ),
        )

    def _download_whole(self, target: _Target, context: TransferContext) -> TransferOutcome:
        """The product's archive: its native ``$zip`` where chosen, else ``$value``.

        A native form the download host no longer has (its window closed since the
        catalogue listed it) falls back to the ``$value`` archive, from byte 0.
        """
        url = getattr(target.product, "download_url", None)
        if url is None:
            return download_product(target, context)
        try:
            return download_product(target, context, url=url)
        except TransferError as exc:
            text = str(exc)
            if "not found on the download host" not in text and "HTTP 410" not in text:
                raise
            log.info("%s: the native $zip is gone (%s); fetching $value", target.name, text)
        # The partial file holds native bytes: useless for the other archive.
        context.layout.partial(target.file_name).unlink(missing_ok=True)
        whole: Downloadable = getattr(target.product, "product", target.product)
        return download_product(_Target(whole, target.file_name), context)

    def _download_plan(
        self, plan: ProductPlan, target: _Target, context: TransferContext
    ) -> FilesOutcome:
        """A product's chosen files, each its own transfer, each recorded in the ledger."""
        record_file = getattr(self.recorder, "record_file", None)

        def record(planned: PlannedFile, state: str, details: dict[str, object]) -> None:
            if record_file is None:
                return
            try:
                record_file(plan.product, planned, state, **details)
            except StorageError as exc:
                raise exc from None

        return download_files(plan, safe_folder(target.file_name), context, record=record)

    def _source(self, products: list[Downloadable], batch: _Batch) -> Iterator[Downloadable | None]:
        """The products to work on, in turn; ``None``: none now, ask again soon."""
        if self.team is None:
            yield from products
            return
        from sentinel_fetch.downloads.coordination import claims

        by_id = {product.id: product for product in products}
        sizes = {
            p.id: batch.plans[p.id].size if p.id in batch.plans else max(p.size, 0)
            for p in products
        }
        try:
            for claim in claims(self.team, sizes, batch.deferred):
                if claim is None:
                    yield None
                    continue
                batch.claims[claim.item.product_id] = claim
                yield by_id[claim.item.product_id]
        except SentinelFetchError as exc:  # the ledger is out of reach: nothing to claim
            self._fail_batch(batch, exc)

    def _run_pool(self, products: list[Downloadable], batch: _Batch) -> bool:
        """Run transfers; return ``True`` if interrupted by the user."""
        if not products:
            return False
        board = Board(self.layout.temp_dir, self.min_piece_bytes)
        board.clear()
        context = self._context(board)
        # One thread more than connections: while a finished product is fsynced, checked
        # and moved, the spare thread already uses the connection slot it freed. The
        # governor still bounds open requests to the download host by ``workers``.
        threads = self.settings.limits.workers + 1
        pending: set[Future[None]] = set()
        source = self._source(products, batch)
        interrupted = False
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="download") as pool:
            try:
                exhausted = False
                while True:
                    while not exhausted and len(pending) < threads and not self.stop.is_set():
                        product = next(source, _END)
                        if product is _END:
                            exhausted = True
                            break
                        if product is None:  # nothing now; others hold the rest
                            break
                        assert not isinstance(product, _End)
                        pending.add(pool.submit(self._work, product, context, batch))
                    if exhausted:
                        # Every product has started: free threads help the ones in flight.
                        helpers = threads - len(pending)
                        while helpers > 0 and not self.stop.is_set() and board.splittable():
                            pending.add(pool.submit(self._help, context, board))
                            helpers -= 1
                    if not pending:
                        if exhausted or self.stop.is_set():
                            break
                        poll_s = self.team.options.poll_s if self.team is not None else 0.5
                        self.stop.wait(poll_s)
                        continue
                    # A short timeout keeps the calling thread responsive to Ctrl-C.
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
            except KeyboardInterrupt:
                interrupted = True
                log.warning("stopping: letting transfers write their last chunk")
                self.stop.set()
                for future in pending:
                    future.cancel()
                wait(pending)
        return interrupted
