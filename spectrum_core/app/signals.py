"""Signals as exceptions, so that every cleanup path (`finally`, `with`) runs on termination too.

Python turns Ctrl-C (SIGINT) into `KeyboardInterrupt`, which unwinds the stack and runs every
`finally` block: temporary files are removed, staged model folders deleted. SIGTERM — what `kill`,
`timeout`, systemd and container runtimes send — kills the process outright by default, leaving
those temporary files behind. Two context managers close that gap:

- `sigterm_as_interrupt()`: inside the block, SIGTERM raises `KeyboardInterrupt` like Ctrl-C.
  A command-line entry point wraps its whole run in it. A SIGTERM or Ctrl-C that lands while a
  finalizer (`__del__`) runs, where Python would print "Exception ignored" and carry on, is
  delivered again just after the finalizer.
- `deferred_interrupts()`: inside the block, SIGINT and SIGTERM are held and delivered when the
  block ends. For critical sections that take microseconds and must not be cut in half, such as
  renaming the files of an output set into place (see `media.OutputSet.commit`).

Both change process-wide signal handlers, so both act only in the main thread (the only thread
Python lets set handlers, and the one signals are delivered to); elsewhere they do nothing. Both
restore the previous handlers on exit. Neither is applied implicitly by the library: a program
chooses to convert SIGTERM, for example the CLI in its entry point.
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as a KeyboardInterrupt so that code handling Ctrl-C handles it the same way."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(f"terminated by signal {signal.Signals(signum).name}")
        self.signum = signum


def _raise_terminated(signum: int, _frame: Any) -> None:
    raise Terminated(signum)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` (a KeyboardInterrupt). Main thread only; the
    previous handler is restored afterwards. A SIGTERM handler someone else installed is kept."""
    if not _in_main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):  # a program's own handler (or SIG_IGN) wins
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    previous_hook = sys.unraisablehook

    def redeliver(unraisable: Any) -> None:
        # A signal whose handler raised inside a finalizer (`__del__`, a weakref callback: common while
        # imports run the garbage collector) is "ignored" by Python and the process would go on. Trip the
        # signal again: its handler runs at the next check outside the finalizer and the exception unwinds
        # the program as usual. Tripped from a short timer thread: tripping it here would run the handler
        # inside this hook, where its exception is ignored once more. Should it land inside a finalizer
        # again, this hook trips it again.
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            signum = getattr(unraisable.exc_value, "signum", signal.SIGINT)
            timer = threading.Timer(0.01, _thread.interrupt_main, args=(signum,))
            timer.daemon = True
            timer.start()
        else:
            previous_hook(unraisable)

    sys.unraisablehook = redeliver
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook


@contextmanager
def deferred_interrupts(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold `signums` while the block runs and deliver them to the previous handlers when it ends
    (in arrival order, each once). Main thread only; elsewhere the block runs unprotected."""
    if not _in_main_thread():
        yield
        return
    held: list[int] = []
    previous: dict[int, Any] = {}
    for signum in signums:
        handler = signal.getsignal(signum)
        if handler is None:  # installed from C: cannot be restored from Python, leave it alone
            continue
        previous[signum] = handler
        signal.signal(signum, lambda s, _f: held.append(s) if s not in held else None)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in held:
            signal.raise_signal(signum)  # the restored handler acts now (raises, exits or ignores)
