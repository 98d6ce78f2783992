"""Progress display: a tqdm bar on a terminal, a plain line every few percent in a log file.

tqdm redraws its bar with carriage returns; written to a file (a script's ``> log 2>&1``) that
became tens of thousands of updates on one "line". :func:`progress_bar` keeps the bar where
stderr is a terminal and otherwise prints one line per :data:`LOG_PERCENT` percent of the work
or per :data:`LOG_SECONDS` seconds, whichever comes first.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from ..errors import BoltzmatchError

LOG_PERCENT = 5
LOG_SECONDS = 30.0


class LineProgress:
    """The subset of tqdm's interface the commands use, printing whole lines to ``file``."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, initial: int = 0,
                 desc: str = "", unit: str = "it", file=None):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.desc, self.unit = total, initial, desc, unit
        self.file = file if file is not None else sys.stderr
        self.postfix: dict[str, object] = {}
        self._start = self._last_time = time.monotonic()
        self._last_step = self._step(initial)
        self._printed_n: int | None = None
        self._closed = False

    def _step(self, n: int) -> int:
        return int(100 * n / self.total) // LOG_PERCENT if self.total else 0

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now, step = time.monotonic(), self._step(self.n)
        if step > self._last_step or now - self._last_time >= LOG_SECONDS:
            self._last_step, self._last_time = step, now
            self._print()

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = {"": s} if s else {}

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def refresh(self) -> None:
        pass

    def _print(self) -> None:
        elapsed = time.monotonic() - self._start
        done = f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"
        percent = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        extra = ", ".join(f"{k}={v}" if k else str(v) for k, v in self.postfix.items())
        print(f"{self.desc}: {done}{percent}, {elapsed:.0f} s" + (f", {extra}" if extra else ""),
              file=self.file, flush=True)
        self._printed_n = self.n

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.n != self._printed_n:
                self._print()


class Cancelled(BoltzmatchError):
    """Raised inside long work when its :class:`Observer` was asked to stop."""


class Observer:
    """Watches the progress bars of work running in one thread (the desktop app's workers).

    ``callback(desc, n, total, postfix)`` is called on every bar update in that thread; after
    :meth:`request_stop`, the next update raises :class:`Cancelled`, except inside blocks that stop
    on their own at a consistent point (``graceful``: MD stops after the step and checkpoints).
    """

    def __init__(self, callback: Callable[[str, int, int | None, dict], None] | None = None):
        self.callback = callback
        self._stop = threading.Event()
        self.graceful = 0

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def update(self, bar: LineProgress) -> None:
        if self.callback is not None:
            self.callback(bar.desc, bar.n, bar.total, dict(bar.postfix))
        if self._stop.is_set() and not self.graceful:
            raise Cancelled("stopped by the user")


_local = threading.local()


def current_observer() -> Observer | None:
    return getattr(_local, "observer", None)


@contextmanager
def observed(observer: Observer):
    """Within the block, progress bars of this thread report to ``observer`` and print nothing."""
    previous = current_observer()
    _local.observer = observer
    try:
        yield observer
    finally:
        _local.observer = previous


class ObservedProgress(LineProgress):
    """A :class:`LineProgress` that prints nothing and reports every update to an :class:`Observer`."""

    def __init__(self, iterable=None, *, observer: Observer, **kwargs):
        super().__init__(iterable, file=io.StringIO(), **kwargs)
        self.observer = observer

    def update(self, n: int = 1) -> None:
        self.n += n
        self.observer.update(self)

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        super().set_postfix(ordered_dict, refresh, **kwargs)
        self.observer.update(self)

    def close(self) -> None:
        self._closed = True


def progress_bar(iterable: Iterable | None = None, *, disable: bool = False, file=None, **kwargs):
    """tqdm on a terminal; :class:`LineProgress` when the output is a file or pipe; nothing if
    ``disable``; an :class:`ObservedProgress` (even when disabled) in a thread with an :class:`Observer`."""
    from tqdm.auto import tqdm

    keep = {k: kwargs[k] for k in ("total", "initial", "desc", "unit") if k in kwargs}
    observer = current_observer()
    if observer is not None:
        return ObservedProgress(iterable, observer=observer, **keep)
    stream = file if file is not None else sys.stderr
    if disable or (hasattr(stream, "isatty") and stream.isatty()):
        return tqdm(iterable, disable=bool(disable), file=stream, **kwargs)
    return LineProgress(iterable, file=stream, **keep)
