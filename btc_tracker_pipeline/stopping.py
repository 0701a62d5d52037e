"""A clean stop of long CLI jobs (backfill, demo, collect) on Ctrl+C or SIGTERM.

The first signal asks for a stop: the window being written is finished, the assets stop
at the next window boundary (their run fails with "stopped"), and no further run starts.
A second signal stops at once; the window then being written is rolled back by DuckDB,
like a crash (every window write is one transaction).

Dagster replaces the SIGINT handler while it executes in the main thread and raises
inside the running step (``dagster._utils.interrupts``); runs are therefore executed in a
worker thread, where Dagster leaves signals alone, and the main thread keeps our handlers.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

_requested: dict[str, str | None] = {"signal": None}


def requested() -> str | None:
    """The name of the signal that asked for a stop (``"SIGINT"``), or None."""
    return _requested["signal"]


def request(name: str = "SIGTERM") -> None:
    """Ask running jobs to stop at the next window boundary."""
    _requested["signal"] = name


def reset() -> None:
    """Forget a stop request (the next job starts fresh)."""
    _requested["signal"] = None


def exit_code() -> int:
    """The shell's exit code for the signal that stopped us (130 for SIGINT, 143 for SIGTERM)."""
    name = requested() or "SIGINT"
    return 128 + int(getattr(signal, name))


@contextlib.contextmanager
def graceful_signals(on_first: Callable[[str], None]) -> Iterator[None]:
    """Within the block, the first SIGINT/SIGTERM calls ``on_first(name)`` and requests a
    stop; a second raises KeyboardInterrupt. Handlers are restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if requested() is not None:
            raise KeyboardInterrupt(name)
        request(name)
        on_first(name)

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in saved:
        signal.signal(s, handle)
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _not_ignored() -> Iterator[None]:
    """While the block runs, SIGINT/SIGTERM that are ignored (a background job; Dagster
    maps SIGTERM to SIGINT's disposition) request a stop instead.

    Children inherit ignored signals: Dagster's log-capturing ``tail`` processes could
    then not be terminated, and each run would wait 2 × 30 s for them and leak them.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ignored = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) == signal.SIG_IGN]
    for s in ignored:
        signal.signal(s, lambda signum, _frame: request(signal.Signals(signum).name))
    try:
        yield
    finally:
        for s in ignored:
            signal.signal(s, signal.SIG_IGN)


def in_worker_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a daemon thread and return its result (re-raising its exception).

    The main thread stays free to handle signals; if the process exits while ``fn`` is
    still running (second Ctrl+C), the daemon thread dies with it.
    """
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name="btc-tracker-run", daemon=True)
    with _not_ignored():
        worker.start()
        while worker.is_alive():
            worker.join(timeout=0.2)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]
