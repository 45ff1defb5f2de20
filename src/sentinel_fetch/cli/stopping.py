"""SIGTERM stops a run the way Ctrl-C does.

systemd, ``docker stop``, ``timeout`` and batch schedulers end a process with SIGTERM,
whose default action kills it on the spot: no report, products left "downloading" in
the ledger. The command line turns SIGTERM into the same exception as Ctrl-C
(:class:`Terminated` is a :class:`KeyboardInterrupt`), so one stop path serves both:
each transfer writes its last chunk, partial files stay for the next run, unfinished
products go back to ``queued``, the report is written and the folder lock released.

Exit status: 130 after Ctrl-C (SIGINT), 143 after SIGTERM: 128 plus the signal number,
as shells report a process ended by that signal, so a supervisor can tell a stop it
asked for from a failure.

Only the command line installs the handler (a library must not take over an
application's signals), only in the main thread, and only for the duration of a command.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Terminated", "interrupted_exit_status", "stop_on_sigterm"]

_received: list[int] = []


class Terminated(KeyboardInterrupt):
    """The process got SIGTERM: stop cleanly, as on Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # One clean stop: a second SIGTERM while it runs must not cut it short (a supervisor
    # that cannot wait sends SIGKILL, which no handler sees anyway).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _received.append(signum)
    raise Terminated


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous: Callable[[int, FrameType | None], object] | int | None = signal.getsignal(
        signal.SIGTERM
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def interrupted_exit_status() -> int:
    """143 if the stop came from SIGTERM, else 130 (Ctrl-C)."""
    return 128 + (signal.SIGTERM if _received else signal.SIGINT)
