"""Interrupting a caller while it waits to try again, synchronised on the emulator."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sentinel_fetch.emulator import Emulator


def raised_when_stopped(
    call: Callable[[], object], stop: threading.Event, cdse: Emulator, host: str
) -> list[BaseException]:
    """Run ``call`` in a thread; once ``host`` has answered one 503, set ``stop``.

    Returns what ``call`` raised (empty if it returned). The caller is meant to be
    waiting out a long Retry-After by then, so only the stop can end it soon.
    """
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:  # handed to the test's thread
            outcome.append(error)

    thread = threading.Thread(target=run, name="caller-under-test")
    thread.start()
    assert cdse.stats.wait_for(lambda stats: stats.requests(host, 503) >= 1)
    stop.set()
    thread.join(60)  # a safety net only: without the stop the wait is ten minutes
    assert not thread.is_alive(), "the stop did not end the wait"
    return outcome
