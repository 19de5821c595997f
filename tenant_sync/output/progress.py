"""Progress of a run: a live line on a terminal, or a log line every few seconds.

::

    from tenant_sync.output.progress import LiveProgress

    progress = LiveProgress(sys.stderr)
    ts = TenantSync(url, Base.metadata, on_result=progress)
    progress.start(len(ts.list_tenants()))
    report = ts.sync_all()
    progress.clear()

The line shows tenants done out of the total, counts by status, the rate and an ETA:
``120/1,200 tenants (10%)  90 migrated, 30 unchanged  41.3/s  ETA 27s``.
:func:`render_progress` builds it from counts alone, so it is testable without a
terminal.  Off a terminal, the ``tenant_sync`` logger has a progress line every
``PROGRESS_INTERVAL_S`` seconds instead, from the :class:`ProgressLog` of each run.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from ..report import STATUSES, TenantResult
from .summary import format_duration

__all__ = [
    "PROGRESS_INTERVAL_S",
    "LiveProgress",
    "ProgressLog",
    "ProgressLogHandler",
    "render_progress",
]

log = logging.getLogger(__name__)

#: Seconds between progress lines in the log during a long run.
PROGRESS_INTERVAL_S = 5.0

# Carriage return, then "erase to end of line": the line is redrawn in place.
_REDRAW = "\r{}\x1b[K"
_ERASE = "\r\x1b[K"


def render_progress(
    counts: Mapping[str, int], total: int | None, elapsed_s: float, width: int = 0
) -> str:
    """Return the progress line for ``counts`` (tenants per status) out of ``total``.

    A pure function.  ``total`` None means not yet known.  The ETA assumes the
    remaining tenants go at the rate seen so far.  ``width`` > 0 cuts the line to
    that many characters, ending it with ``…``.
    """
    done = sum(counts.values())
    if total:
        percent = math.floor(100 * min(done, total) / total)
        parts = [f"{done:,}/{total:,} tenants ({percent}%)"]
    else:
        parts = [f"{done:,} tenants"]
    by_status = ", ".join(f"{counts[s]:,} {s}" for s in STATUSES if counts.get(s))
    if by_status:
        parts.append(by_status)
    if done and elapsed_s > 0:
        parts.append(f"{done / elapsed_s:,.1f}/s")
    if total and done >= total:
        parts.append(f"done in {format_duration(elapsed_s)}")
    elif total and done and elapsed_s > 0:
        parts.append(f"ETA {_eta(elapsed_s / done * (total - done))}")
    else:
        parts.append("ETA --")
    line = "  ".join(parts)
    if 0 < width < len(line):
        line = line[: max(width - 1, 0)] + "…"
    return line


class LiveProgress:
    """The progress line on a terminal stream; pass it as ``on_result``.

    Redraws at most every ``min_interval_s`` seconds (and always for the last
    tenant), cut to the terminal's width.  :meth:`clear` erases the line, e.g. before
    printing a summary.  Safe to call from several threads: log records from worker
    threads pass through :class:`ProgressLogHandler`, which draws under the same lock.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        min_interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.total: int | None = None
        self.counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self.active = False
        # Guards the line on the stream and the counts: drawing, erasing and logging
        # above the line are one critical section.
        self.lock = threading.RLock()
        self._started = clock()
        self._drawn_at = -math.inf
        self._visible = False

    def start(self, total: int | None) -> None:
        """Start showing the line, for ``total`` tenants (None if unknown)."""
        with self.lock:
            self.total = total
            self.counts = dict.fromkeys(STATUSES, 0)
            self._started = self.clock()
            self.active = True
            self.draw()

    def __call__(self, result: TenantResult) -> None:
        """Count one finished tenant and redraw the line if it is due."""
        with self.lock:
            self.counts[result.status] = self.counts.get(result.status, 0) + 1
            last = self.total is not None and sum(self.counts.values()) >= self.total
            if self.active and (last or self.clock() - self._drawn_at >= self.min_interval_s):
                self.draw()

    def line(self) -> str:
        """The line as it would be drawn now."""
        width = shutil.get_terminal_size().columns - 1
        return render_progress(self.counts, self.total, self.clock() - self._started, width)

    def draw(self) -> None:
        """Redraw the line now."""
        with self.lock:
            self.stream.write(_REDRAW.format(self.line()))
            self.stream.flush()
            self._drawn_at = self.clock()
            self._visible = True

    def erase(self) -> None:
        """Erase the line, leaving it to be drawn again (for text printed above it)."""
        with self.lock:
            if self._visible:
                self.stream.write(_ERASE)
                self.stream.flush()
                self._visible = False

    def clear(self) -> None:
        """Erase the line and stop drawing it."""
        with self.lock:
            self.erase()
            self.active = False


class ProgressLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that prints each record above the progress line, then redraws it."""

    def __init__(self, progress: LiveProgress) -> None:
        super().__init__(progress.stream)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        """Erase the line, write the record, draw the line again."""
        with self.progress.lock:
            self.progress.erase()
            super().emit(record)
            if self.progress.active:
                self.progress.draw()


class ProgressLog:
    """Counts a run's results and logs a progress line every few seconds.

    Used by the calling thread of :meth:`~tenant_sync.TenantSync.sync_all` only.
    """

    def __init__(self, total: int, started: float) -> None:
        self.total = total
        self.started = started
        self.done = 0
        self.failed = 0
        self._last_log = started

    def add(self, result: TenantResult) -> None:
        """Count one finished tenant."""
        self.done += 1
        self.failed += result.status == "failed"

    def maybe_log(self) -> None:
        """Log the progress line if ``PROGRESS_INTERVAL_S`` has passed since the last one."""
        now = time.monotonic()
        if now - self._last_log < PROGRESS_INTERVAL_S or self.done >= self.total:
            return
        self._last_log = now
        elapsed = now - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        log.info(
            "progress: %d/%d tenants, %d failed, %.0fs elapsed, ETA %.0fs",
            self.done,
            self.total,
            self.failed,
            elapsed,
            eta,
        )


def _eta(seconds: float) -> str:
    if seconds < 60:
        return f"{math.ceil(seconds)}s"
    return format_duration(seconds)
