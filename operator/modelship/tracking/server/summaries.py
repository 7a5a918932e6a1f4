"""Builds the per-block summaries of long metric histories in the background.

A chart of a long history reads its blocks (``store/blocks.py``) in milliseconds, but a
history without them is read whole first: a million points are one to three seconds of
SQLite here, however the reduction is written (a full scan of the index is most of it). So
the server builds them before a chart asks: once at start-up (a database written by another
server, restored from a backup, or seeded, has histories without blocks) and then every
``interval_s``, for the histories that grew past the end of theirs or whose blocks a write
in the middle dropped. The logging path is left as it is: it only deletes blocks a write
makes untrue (``TrackingStore._insert_metrics``), and a history still being written is
extended here from its last row of blocks on, not read again whole.

Blocks are a cache: a pass that fails or races with a write leaves the answers right (a
chart then reads the points), and the next pass tries again.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import SQLAlchemyError

from modelship.tracking.logs import event
from modelship.tracking.server.downsample import DEFAULT_WINDOWS
from modelship.tracking.store.blocks import BLOCK
from modelship.tracking.store.history import MetricHistoryStore

log = logging.getLogger(__name__)

MIN_POINTS = BLOCK * DEFAULT_WINDOWS
"""The shortest history a chart of the default 1,000 windows reads from blocks (``uses_blocks``)."""


class ChartSummaries:
    """A daemon thread that keeps the blocks of long histories built (``run_once`` is one pass)."""

    def __init__(self, history: MetricHistoryStore, interval_s: float) -> None:
        self.history, self.interval_s = history, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Histories found shorter than MIN_POINTS (a last step far above their count of
        # points): not read again while their last point stays the same.
        self._short: set[tuple[str, str, int, int, float]] = set()

    def run_once(self) -> int:
        """Build the blocks of every history that needs them; how many were built."""
        started, built = time.monotonic(), 0
        for found in self.history.histories_to_summarize(MIN_POINTS):
            if self._stop.is_set():
                break
            if found in self._short:
                continue
            run_id, key = found[:2]
            if self.history.chart_history(run_id, key, DEFAULT_WINDOWS).blocks is None:
                self._short.add(found)
            else:
                built += 1
        if built:
            event(log, "chart summaries built", histories=built, seconds=round(time.monotonic() - started, 3))
        return built

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except SQLAlchemyError as exc:  # a cache: a failed pass costs a slower first chart, never the server
                event(log, "chart summaries failed", logging.WARNING, error=repr(exc)[:300])
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chart-summaries", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
