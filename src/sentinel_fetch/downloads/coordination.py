"""Cooperating runs: many ``download`` processes, one batch, one account budget.

Any number of workers (processes on one machine sharing a save folder and its SQLite
ledger, or on many machines sharing a PostgreSQL ledger) run the same batch. Each one:

1. enqueues the batch (idempotent: the first one adds it, the others find it there);
2. claims products one at a time through leases in the ledger
   (:meth:`~sentinel_fetch.ledger.base.Ledger.claim_next`): a product is worked on by
   exactly one worker, the one holding its lease;
3. renews its leases from a heartbeat thread while it works, a third of a lease at a
   time; a lease it lost (it was too late: stalled, suspended, cut off from the ledger)
   stops that product's writer before its next chunk (:class:`LinkedStop`), and a worker
   that cannot reach the ledger for most of a lease stops all its writers on its own:
   by the time another worker may take a product over, the old one has stopped writing.
   On a shared folder a per-file lock (:class:`~sentinel_fetch.downloads.folderlock.PartLock`)
   makes sure of it whatever the clocks say;
4. takes one of its account's connection slots
   (:meth:`~sentinel_fetch.ledger.base.Ledger.take_slot`) before each request to the
   download host, besides its own governor's: three workers of one free account never
   hold more than 4 streams between them;
5. counts the bytes it receives against the account's quota meter, warns at 80 % and 95 %
   and stops taking products before a ``--quota-stop`` threshold is passed.

A worker killed with ``kill -9`` simply stops renewing: once its leases expire, another
worker (or the restarted one) claims its products and resumes their ``.part`` files.
Nothing is fetched twice and nothing is moved into Finish unverified: the transfer's
own verification and atomic move stay as they are.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sentinel_fetch.downloads.governor import Governor
from sentinel_fetch.downloads.quota import QuotaMeter
from sentinel_fetch.errors import SentinelFetchError, StoppedError, StorageError, TransferError
from sentinel_fetch.ledger.base import Claim, Ledger, Slot, WorkItem
from sentinel_fetch.progress import (
    BytesReceived,
    ProductFinished,
    Progress,
    ProgressEvent,
    QuotaWarning,
)

if TYPE_CHECKING:
    from sentinel_fetch.downloads.engine import DownloadEngine, _Batch
    from sentinel_fetch.downloads.transfer import Downloadable, TransferContext

__all__ = [
    "LinkedStop",
    "Team",
    "TeamGovernor",
    "TeamOptions",
    "account_key",
    "claims",
    "lease_lost",
    "metered",
    "settle",
    "work_claimed",
]

log = logging.getLogger("sentinel_fetch.download")

#: The heartbeat thread's tick: bytes reach the quota meter about this often.
_TICK_S = 1.0
#: The longest pause between two tries for an account slot (a slot given back by this
#: process wakes its waiters at once; one given back by another process is seen at the
#: next try: at 20 MB/s a 0.1 s pause costs 2 MB of a 100 MB product's connection).
_SLOT_POLL_MAX_S = 0.1
#: States of a product no worker will work on again in this batch.
_TERMINAL = frozenset({"done", "skipped", "failed", "offline"})


def account_key(username: str) -> str:
    """The account's name as the ledger keys it: what CDSE matches, case aside.

    Example:
        >>> account_key("  Me@Example.COM ")
        'me@example.com'
    """
    return username.strip().lower()


class LinkedStop(threading.Event):
    """A stop event for one product: set on its own (its lease is lost) or by the batch's.

    The transfer checks its stop event after every chunk and waits on it between
    retries; this one answers for both the product and the batch, so losing a lease
    stops one writer and a Ctrl-C still stops them all.
    """

    def __init__(self, parent: threading.Event) -> None:
        super().__init__()
        self._parent = parent

    def is_set(self) -> bool:
        """Whether this product or the whole batch must stop."""
        return super().is_set() or self._parent.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until either is set (checked at least every 0.1 s) or ``timeout`` passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            remaining = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if remaining <= 0:
                return False
            super().wait(remaining)
        return True


@dataclass(frozen=True)
class TeamOptions:
    """How one worker takes part in a shared job.

    Attributes:
        account: the CDSE account (:func:`account_key`); its budget is shared.
        max_connections: the account's connection budget across every worker.
        lease_s: a lease's length; renewed every third of it.
        slot_wait_max_s: the longest a request waits for one of the account's slots
            before its product fails (the other workers keep them all for that long).
        quota_bytes: the account's volume per 30 days.
        quota_stop_bytes: stop taking products before this much is used (``None``: never).
        own_finish: the job's ledger is the save folder's own (SQLite): its Finish is the
            job's only one, so a product recorded done that is not there (deleted, or
            other files chosen this time) is to be fetched again. With a ledger shared
            by many save folders, "done" means done in some worker's folder.
        poll_s: how often a worker with nothing to claim asks again (others hold the
            rest: their leases may expire).
    """

    account: str
    max_connections: int = 4
    lease_s: float = 60.0
    slot_wait_max_s: float = 3600.0
    quota_bytes: int = 12 * 10**12
    quota_stop_bytes: int | None = None
    poll_s: float = 0.1
    own_finish: bool = True


class Team:
    """This worker's part in a shared job: its claims, its heartbeat, its slots, its bytes.

    The constructor does no I/O; :meth:`start` registers the worker and starts the
    heartbeat thread; :meth:`close` stops it and tells the ledger the worker ended (its
    leases and slots go back at once instead of expiring).

    Args:
        ledger: the job's ledger (SQLite in the save folder, or PostgreSQL).
        options: account, budget, leases, quota.
        stop: the batch's stop event.
        save_path: the worker's save folder (``status`` shows it).
        emit: receives :class:`~sentinel_fetch.progress.QuotaWarning` events.
    """

    def __init__(
        self,
        ledger: Ledger,
        options: TeamOptions,
        *,
        stop: threading.Event,
        save_path: str,
        emit: Callable[[QuotaWarning], None] | None = None,
        worker: str | None = None,
    ) -> None:
        from sentinel_fetch.ledger.base import new_worker_id

        self.ledger = ledger
        self.options = options
        self.stop = stop
        self.save_path = save_path
        self.worker = worker or new_worker_id()
        #: Receives quota warnings (the engine's progress sink, if not given).
        self.emit = emit
        self._lock = threading.Lock()
        self._held: dict[WorkItem, LinkedStop] = {}
        #: Held while a lease or slot is taken and while renewing: the ledger's renew
        #: keeps only what it is told of, so nothing taken may be missing from the list.
        self._taking = threading.Lock()
        self._lost: set[WorkItem] = set()
        self._slots: set[tuple[str, int]] = set()
        self._unsent_bytes = 0
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._returns: queue.SimpleQueue[Slot | None] = queue.SimpleQueue()
        #: Notified whenever this process gives a slot back: its waiters try at once.
        self._slot_freed = threading.Condition()
        self._returner: threading.Thread | None = None
        self._last_renewal = time.monotonic()
        self.meter = QuotaMeter(0, options.quota_bytes, options.quota_stop_bytes)
        #: Why the run stopped taking products early (a quota stop), or ``None``.
        self.stopped_because: str | None = None
        #: Leases this worker lost while working (taken over after it was too late).
        self.lost = 0

    # -- life -------------------------------------------------------------------------

    def start(self) -> None:
        """Register the worker, read the quota meter, start the heartbeat thread.

        Workers of this machine and save folder that died without ending (``kill -9``,
        a crash) are ended first: their leases go back at once, so a restarted run does
        not wait a whole lease for its own products.
        """
        self._end_dead_neighbours()
        self.ledger.register_worker(
            self.worker, account=self.options.account, save_path=self.save_path
        )
        self.meter.update(self.ledger.bytes_in_window(self.options.account))
        for crossing in self.meter.start():
            self._warn(crossing.fraction, crossing.used_bytes)
        self._last_renewal = time.monotonic()
        self._thread = threading.Thread(
            target=self._heartbeat, name="sentinel-fetch-heartbeat", daemon=True
        )
        self._thread.start()
        self._returner = threading.Thread(
            target=self._return_slots, name="sentinel-fetch-slots", daemon=True
        )
        self._returner.start()

    def _end_dead_neighbours(self) -> None:
        host = socket.gethostname()
        for worker in self.ledger.workers():
            if worker.finished is not None or worker.id == self.worker:
                continue
            # Only what this machine can tell for sure: a process of this host, for this
            # save folder, that no longer exists. Anything else waits for its lease.
            if worker.host != host or worker.save_path != self.save_path:
                continue
            if _process_exists(worker.pid):
                continue
            log.warning(
                "worker %s (pid %d) of this folder is gone: its products go back now",
                worker.id,
                worker.pid,
            )
            self.ledger.finish_worker(worker.id)

    def close(self) -> None:
        """Stop the heartbeat, send the last bytes, and end the worker in the ledger."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
            self._thread = None
        if self._returner is not None:
            self._returns.put(None)  # after every slot already handed over
            self._returner.join(timeout=30.0)
            self._returner = None
        with contextlib.suppress(SentinelFetchError):
            self._flush_bytes()
        with contextlib.suppress(SentinelFetchError):
            self.ledger.finish_worker(self.worker)

    # -- claims -----------------------------------------------------------------------

    def enqueue(self, products: Collection[Any]) -> None:
        """Put this worker's batch in the ledger (idempotent across workers).

        ``products`` are those the plan found not finished in this worker's folders.
        With the job's own Finish (:attr:`TeamOptions.own_finish`) those recorded done
        go back to the queue (their files are not there); a claim looks at the disk
        again before it fetches anything, so one that another worker just finished is
        found, not fetched twice.
        """
        self.ledger.enqueue(products)
        if self.options.own_finish and products:
            self.ledger.requeue([WorkItem(product.id) for product in products])

    def claim(self, among: Collection[str]) -> Claim | None:
        """The next product of ``among`` nobody holds, leased to this worker (and renewed
        from now on)."""
        with self._taking:
            claim = self.ledger.claim_next(self.worker, self.options.lease_s, among=among)
            if claim is not None:
                with self._lock:
                    self._held[claim.item] = LinkedStop(self.stop)
                    self._lost.discard(claim.item)
        return claim

    def hold(self, claim: Claim) -> LinkedStop:
        """``claim``'s stop event: set if the lease is lost."""
        with self._lock:
            event = self._held.get(claim.item)
            if event is None:  # already lost (the heartbeat dropped it): stop at once
                event = LinkedStop(self.stop)
                event.set()
        return event

    def lost_lease(self, item: WorkItem) -> bool:
        """Whether this worker lost ``item``'s lease while working on it."""
        with self._lock:
            return item in self._lost

    def let_go(self, item: WorkItem) -> None:
        """Stop renewing ``item`` and release it (record its state first)."""
        with self._lock:
            self._held.pop(item, None)
        try:
            self.ledger.release(self.worker, item)
        except StorageError as exc:
            # The lease expires by itself; the recorded state already says what happened.
            log.warning("could not release %s in the ledger: %s", item.product_id, exc)

    def unfinished(self, among: Collection[str]) -> int:
        """How many products of ``among`` some worker may still work on (not terminal)."""
        return self.ledger.pending(among=among)

    def states(self, among: Collection[str]) -> dict[str, Mapping[str, Any]]:
        """The ledger's rows for the products of ``among``."""
        wanted = set(among)
        return {row["id"]: row for row in self.ledger.entries() if row["id"] in wanted}

    # -- connection slots -----------------------------------------------------------

    @contextmanager
    def account_slot(self, stop: threading.Event | None) -> Iterator[Slot]:
        """Hold one of the account's connection slots for the duration of a request.

        Waits (stoppably, polling with a growing pause up to 0.1 s; a slot this process
        gives back wakes its waiters at once) while the account's other workers hold them all.

        Raises:
            StoppedError: ``stop`` was set while waiting.
            TransferError: no slot came free within ``slot_wait_max_s``.
        """
        options = self.options
        waited_s = 0.0
        pause_s = 0.02
        started = time.monotonic()
        while True:
            if (stop is not None and stop.is_set()) or self.stop.is_set():
                raise StoppedError
            with self._taking:
                slot = self.ledger.take_slot(
                    options.account, self.worker, options.max_connections, options.lease_s
                )
                if slot is not None:
                    with self._lock:
                        self._slots.add((slot.account, slot.number))
                    break
            waited_s = time.monotonic() - started
            if waited_s >= options.slot_wait_max_s:
                raise TransferError(
                    f"no connection slot of account {options.account} came free in "
                    f"{options.slot_wait_max_s:g} s: other workers hold all "
                    f"{options.max_connections}"
                )
            with self._slot_freed:
                self._slot_freed.wait(pause_s)
            pause_s = min(pause_s * 2, _SLOT_POLL_MAX_S)
        key = (slot.account, slot.number)
        try:
            yield slot
        finally:
            with self._lock:
                self._slots.discard(key)
            if self._returner is not None:
                # Handed to the returner thread: the transfer goes on to verify and move
                # its file at once, even while another process holds the ledger's lock.
                self._returns.put(slot)
            else:
                self._return_slot(slot)

    def _return_slot(self, slot: Slot) -> None:
        try:
            self.ledger.return_slot(slot)
        except SentinelFetchError as exc:
            log.warning("could not return a connection slot: %s (it expires)", exc)
        with self._slot_freed:
            self._slot_freed.notify()

    def _return_slots(self) -> None:
        """The returner thread: gives slots back as soon as transfers are done with them."""
        while True:
            slot = self._returns.get()
            if slot is None:
                return
            self._return_slot(slot)

    # -- bytes and the quota meter -------------------------------------------------

    def add_bytes(self, count: int) -> None:
        """``count`` bytes received (sent to the ledger by the heartbeat, about 1/s)."""
        with self._lock:
            self._unsent_bytes += count
        for crossing in self.meter.add(count):
            self._warn(crossing.fraction, crossing.used_bytes)

    def quota_refuses(self, next_bytes: int) -> bool:
        """Whether a product of ``next_bytes`` would pass the quota stop; says why once."""
        if not self.meter.must_stop(next_bytes):
            return False
        if self.stopped_because is None:
            self.stopped_because = self.meter.describe_stop()
            log.warning("%s", self.stopped_because)
        return True

    def _warn(self, fraction: float, used: int) -> None:
        if self.emit is not None:
            self.emit(QuotaWarning(self.options.account, used, self.options.quota_bytes, fraction))

    def _flush_bytes(self) -> None:
        with self._lock:
            count, self._unsent_bytes = self._unsent_bytes, 0
        if count:
            try:
                self.ledger.add_bytes(self.options.account, count, worker=self.worker)
            except BaseException:
                with self._lock:
                    self._unsent_bytes += count
                raise

    # -- the heartbeat ------------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Renew every third of a lease; send bytes every tick; fence when cut off."""
        lease_s = self.options.lease_s
        every_s = max(lease_s / 3, 0.05)
        tick_s = min(_TICK_S, every_s)
        next_renewal = time.monotonic() + every_s
        while not self._closing.wait(tick_s):
            try:
                self._flush_bytes()
                if time.monotonic() >= next_renewal:
                    self.renew()
                    next_renewal = time.monotonic() + every_s
            except SentinelFetchError as exc:
                log.warning("the job ledger did not answer the heartbeat: %s", exc)
            except Exception:  # a bug must not end the heartbeat silently
                log.exception("heartbeat failed")
            # Cut off from the ledger for most of a lease: others may soon take these
            # products over, so their writers stop now (they resume on a later claim).
            if time.monotonic() - self._last_renewal > 0.8 * lease_s:
                self._fence()

    def renew(self) -> None:
        """One heartbeat now: renew every lease and slot; stop the writers of lost ones."""
        with self._taking:
            with self._lock:
                held = list(self._held)
                slots = list(self._slots)
            # Stamped before the call: the lease runs from the ledger's clock inside it,
            # so a slow answer must not push the fence past the lease's real end.
            asked_at = time.monotonic()
            renewal = self.ledger.renew(self.worker, self.options.lease_s, held=held, slots=slots)
        self._last_renewal = asked_at
        for item in renewal.lost:
            with self._lock:
                event = self._held.pop(item, None)
            if event is not None:
                with self._lock:
                    self._lost.add(item)
                self.lost += 1
                log.warning("lost the lease on %s: another worker has it now", item.product_id)
                event.set()
        if renewal.lost_slots:
            log.warning("%d connection slot(s) expired while in use", len(renewal.lost_slots))
        for crossing in self.meter.update(self.ledger.bytes_in_window(self.options.account)):
            self._warn(crossing.fraction, crossing.used_bytes)

    def _fence(self) -> None:
        with self._lock:
            events = list(self._held.values())
            self._lost.update(self._held)
            self._held.clear()
        for event in events:
            self.lost += 1
            event.set()
        if events:
            log.warning("the job ledger is out of reach: %d transfer(s) stop", len(events))


class TeamGovernor(Governor):
    """The run's governor, plus one of the account's slots in the ledger per request."""

    def __init__(self, team: Team, limit: int, **kwargs: Any) -> None:
        super().__init__(limit, **kwargs)
        self.team = team

    @contextmanager
    def slot(self, stop: threading.Event | None = None, *, spare: bool = False) -> Iterator[None]:
        """This run's slot first (cheap, local), then the account's (the ledger)."""
        with super().slot(stop, spare=spare), self.team.account_slot(stop):
            yield


def claims(
    team: Team,
    sizes: Mapping[str, int],
    deferred: dict[str, float],
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Claim | None]:
    """This worker's claims on its batch, one at a time, until no product is left to do.

    Yields ``None`` when nothing is claimable now but some product of the batch is still
    being worked on (by this worker or another, whose lease may yet expire): the caller
    waits a little, or for one of its own transfers, and asks again. Ends when every
    product of the batch is done, skipped, failed or offline, when the batch stops, or
    when the next product would pass the quota stop (it stays queued).

    Args:
        team: the worker.
        sizes: ``product id -> bytes`` of the batch's products to fetch.
        deferred: ``product id -> monotonic time``: not to be claimed before then (its
            previous writer still holds its part file).
    """
    batch = set(sizes)
    checked_at = float("-inf")
    while not team.stop.is_set():
        if team.quota_refuses(0):
            return
        now = clock()
        for product_id, until in list(deferred.items()):
            if until <= now:
                del deferred[product_id]
        claim = team.claim(batch - set(deferred))
        if claim is not None:
            size = sizes.get(claim.item.product_id, 0)
            if team.options.quota_stop_bytes is not None:
                # Every worker's bytes so far, not only this one's: the stop line is the
                # account's. (Products other workers have in flight are counted as they
                # arrive: the line may be passed by what they are fetching right now.)
                team.meter.update(team.ledger.bytes_in_window(team.options.account))
            if team.quota_refuses(size):
                team.let_go(claim.item)
                return
            team.meter.reserve(claim.item.product_id, size)
            yield claim
            continue
        # Nothing claimable: finished, or held by live leases (ours or others').
        if now - checked_at >= team.options.poll_s:
            checked_at = now
            if not team.unfinished(batch):
                return
        yield None


def _process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (another user's counts)."""
    if pid <= 0 or sys.platform == "win32":
        # Not a pid we can judge (and on Windows os.kill would end the process): alive.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def lease_lost(team: Team, claim: Claim) -> bool:
    """Whether the worker lost ``claim`` while working on it (another worker has it)."""
    return team.lost_lease(claim.item)


def work_claimed(
    engine: DownloadEngine, product: Downloadable, context: TransferContext, batch: _Batch
) -> None:
    """One claimed product: its part file locked, its lease renewed, its result recorded.

    The part file's lock comes first: a previous holder whose lease expired while it
    was alive may still be writing; then the product is put back (not claimed again for
    a third of a lease) and the worker moves on. A product taken over from a worker
    that died after its move into Finish, before it could say so, is found there.
    """
    from sentinel_fetch.downloads.engine import ProductResult
    from sentinel_fetch.downloads.folderlock import PartLock
    from sentinel_fetch.downloads.plan import Action, plan

    team = engine.team
    assert team is not None
    claim = batch.claims[product.id]
    if claim.file_name:
        batch.file_names[product.id] = claim.file_name
    file_name = batch.file_names[product.id]
    part_lock = PartLock(engine.layout.temp_dir, file_name)
    try:
        free = part_lock.try_acquire()
    except StorageError as exc:
        batch.claims.pop(product.id, None)
        team.let_go(claim.item)
        engine._fail_batch(batch, exc)
        return
    if not free:
        team.meter.release(product.id)
        log.info("%s: its part file is still being written elsewhere; later", product.name)
        batch.claims.pop(product.id, None)
        batch.deferred[product.id] = time.monotonic() + max(team.options.lease_s / 3, 0.05)
        team.let_go(claim.item)
        return
    event = team.hold(claim)
    if claim.taken_over:
        # A worker died or stalled: worth telling whoever watches this one.
        log.warning(
            "%s: taking it over from worker %s (its lease ran out); resuming its part file",
            product.name,
            claim.previous_worker,
        )
    try:
        # The disk again: another worker of this folder may have finished it since the
        # plan (then the ledger knows its file), or a dead one may have moved it into
        # Finish just before it died.
        file_plan = batch.plans.get(product.id)
        if file_plan is not None:
            finished = engine._plan_finished(file_plan, file_name)
        else:
            recorded = {product.id: file_name} if claim.taken_over or claim.file_name else {}
            item = plan([product], engine.layout, recorded)[0]
            finished = item.path if item.action is Action.SKIP else None
        if finished is not None:
            engine._finish(batch, ProductResult(product, "skipped", path=finished))
        else:
            engine._work_one(product, replace(context, stop=event), batch)
    finally:
        part_lock.release()
        team.meter.release(product.id)
        lost = team.lost_lease(claim.item)
        result = batch.results.get(product.id)
        if lost and result is not None and result.status != "downloaded":
            # Not ours to report: the worker that has it now says how it ends.
            del batch.results[product.id]
        batch.claims.pop(product.id, None)
        if not lost:
            team.let_go(claim.item)


def settle(engine: DownloadEngine, batch: _Batch, to_fetch: list[Downloadable]) -> None:
    """Results for the products of the batch this worker did not finish itself.

    What the ledger says: verified by another worker (``skipped``: done), failed there
    (with its reason), or still to do (``stopped``: the run ended, or the quota stop
    kept them queued). Nothing is recorded: their states are other workers' to say.
    """
    from sentinel_fetch.downloads.engine import ProductResult

    team = engine.team
    assert team is not None
    missing = [product for product in to_fetch if product.id not in batch.results]
    if not missing:
        return
    try:
        rows = team.states([product.id for product in missing])
    except SentinelFetchError as exc:
        log.warning("could not read the other workers' results: %s", exc)
        rows = {}
    for product in missing:
        row = rows.get(product.id, {})
        state = str(row.get("state") or "")
        who = f" (worker {row['worker']})" if row.get("worker") else ""
        if state in ("done", "skipped"):
            file_name = batch.file_names[product.id]
            path = engine.layout.finished(file_name)
            result = ProductResult(product, "skipped", path=path if path.exists() else None)
            _drop_stale_part(engine, file_name)
        elif state == "failed":
            reason = str(row.get("reason") or "failed in another worker")
            result = ProductResult(product, "failed", error=f"{reason}{who}")
        elif state == "offline":
            result = ProductResult(product, "offline", error=str(row.get("reason") or ""))
        else:
            reason = team.stopped_because or (
                str(batch.fatal) if batch.fatal else "the run stopped before it finished"
            )
            result = ProductResult(product, "stopped", error=reason)
        batch.results[product.id] = result
        engine.progress(
            ProductFinished(product.name, result.status, result.error or "", product_id=product.id)
        )


def metered(progress: Progress, team: Team) -> Progress:
    """``progress``, with every received byte counted on the team's quota meter."""

    def sink(event: ProgressEvent) -> None:
        if isinstance(event, BytesReceived):
            team.add_bytes(event.count)
        progress(event)

    return sink


def _drop_stale_part(engine: DownloadEngine, file_name: str) -> None:
    """A partial file of a product another worker finished (in its own folder) is of no
    use any more: removed, unless someone still writes it."""
    from sentinel_fetch.downloads.folderlock import PartLock

    part = engine.layout.partial(file_name)
    if not part.exists():
        return
    lock = PartLock(engine.layout.temp_dir, file_name)
    try:
        if lock.try_acquire():
            part.unlink(missing_ok=True)
    except (OSError, StorageError) as exc:
        log.debug("could not remove %s: %s", part, exc)
    finally:
        lock.release()
