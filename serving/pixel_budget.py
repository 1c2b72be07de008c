"""A server-wide limit of concurrent work by input pixels (`serving.max_concurrent_pixels`).

A restoration's memory grows with its input's pixels, so many large requests at once can exhaust
memory although each alone fits. Every prediction holds its input pixels (sum over the batch) from
the budget while it runs; one that does not fit waits, in arrival order (first in, first out: a
large request is never overtaken forever by small ones). A request larger than the whole budget runs
alone, when nothing else does. Waits are logged and counted (serving.metrics).
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import time

from serving.metrics import METRICS

log = logging.getLogger("serving.pixel_budget")


class PixelBudget:
    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.in_flight = 0
        self.most = 0
        self._cond = threading.Condition()
        self._queue: collections.deque = collections.deque()
        self._tickets = itertools.count()
        METRICS.pixel_budget.set(self.capacity)

    @contextlib.contextmanager
    def hold(self, pixels: int, model: str = "-"):
        need = min(int(pixels), self.capacity)
        with self._cond:
            ticket = next(self._tickets)
            self._queue.append(ticket)
            waited = not self._admissible(ticket, need)
            if waited:
                t0 = time.perf_counter()
                METRICS.waiting.add(1)
                log.info("request for model %s (%d pixels) waits for the pixel budget: %d of %d in flight, "
                         "%d queued ahead", model, pixels, self.in_flight, self.capacity, len(self._queue) - 1)
                while not self._admissible(ticket, need):
                    self._cond.wait()
                METRICS.waiting.add(-1)
            self._queue.popleft()
            self.in_flight += need
            self.most = max(self.most, self.in_flight)
            METRICS.pixels_in_flight.set(self.in_flight)
            METRICS.pixels_in_flight_max.set(self.most)
            self._cond.notify_all()  # the next in line may fit too
        if waited:
            METRICS.waited.inc(model)
            METRICS.wait_seconds.observe(time.perf_counter() - t0, model)
            log.info("request for model %s (%d pixels) admitted after %.1f ms", model, pixels,
                     (time.perf_counter() - t0) * 1000)
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= need
                METRICS.pixels_in_flight.set(self.in_flight)
                self._cond.notify_all()

    def _admissible(self, ticket: int, need: int) -> bool:
        return self._queue[0] == ticket and self.in_flight + need <= self.capacity
