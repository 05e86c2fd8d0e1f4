"""Batching: requests that wait while a worker is busy are merged into its next call.

One ``Batcher`` serves the three places that batch; they differ only in their settings:

* the agent's intake (``IntakeBatcher``, server.py): a request is one webhook's alerts; two workers,
  so while one call's batch is in the TRM's forward pass (native code, the GIL released) the next is
  committed to the inbox and the previous one goes through the gate; no wait to fill a batch.
* the TRM stage's model thread (chain/trm.py): a request is one caller's encoded alerts; ONE worker
  runs every forward pass, so concurrent passes never fight over a small node's cores, and callers
  encode and decode on their own threads, overlapping that Python work with the model.
* trm-reasoning (reasoning/service.py): a request is one alert; one worker; it waits up to
  ``BATCH_WAIT_MS`` to fill a batch and refuses work past ``QUEUE_MAX`` (``Overloaded``: a 503).

How a worker batches: it takes the oldest request, then every request already queued (waiting at
most ``max_wait_s`` for more) until the batch holds ``max_size`` items (a request's items are never
split, so one large request may exceed it), and makes ONE call of ``fn`` with the requests in
order. ``fn`` returns one result per request. If it raises, every request of that call gets the
exception; the other calls are not affected. A request whose future was cancelled before its call
started (its client went away) is dropped. Workers are daemon threads, started when requests
arrive; one idle for ``IDLE_S`` exits. Sync callers block on ``__call__``, async callers
``await submit``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Res = TypeVar("Res")
T = TypeVar("T")
R = TypeVar("R")

_STOP = object()
IDLE_S = 30.0  # a worker with nothing to do for this long exits; the next request starts another


class Overloaded(RuntimeError):
    """The queue is full: the caller should answer 503 and let the client retry."""


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    max_seen: int = 0
    last_run_s: float = 0.0


@dataclass
class _Pending(Generic[Req, Res]):
    req: Req
    size: int
    fut: Future


class Batcher(Generic[Req, Res]):
    def __init__(self, fn: Callable[[list[Req]], Sequence[Res]], *, max_size: int = 64,
                 size: Callable[[Req], int] = len, workers: int = 1, max_wait_s: float = 0.0,
                 max_queue: int | None = None, on_batch: Callable[[int, float], None] | None = None,
                 name: str = "batcher"):
        if max_size < 1 or workers < 1:
            raise ValueError("max_size and workers must be >= 1")
        self.fn = fn
        self.max_size = max_size
        self.size = size
        self.workers = workers
        self.max_wait_s = max(0.0, max_wait_s)
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.name = name
        self.stats = BatchStats()
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued = 0  # items waiting (not yet taken by a worker)
        self._alive = 0  # worker threads running
        self._started = 0
        self._closed = False

    @property
    def queued(self) -> int:
        return self._queued

    # ------------------------------------------------------------------ submit
    def put_many(self, reqs: list[Req]) -> list[Future]:
        """Queue requests (all or none); one future per request. Raises Overloaded when
        ``max_queue`` items would be exceeded."""
        sizes = [self.size(r) for r in reqs]
        futs = []
        with self._lock:  # queueing and starting workers under the lock: a worker exits only on an empty queue
            if self._closed:
                raise RuntimeError(f"{self.name} is closed")
            if self.max_queue is not None and self._queued + sum(sizes) > self.max_queue:
                raise Overloaded(f"queue full ({self._queued} waiting, limit {self.max_queue})")
            self._queued += sum(sizes)
            for r, n in zip(reqs, sizes):
                p = _Pending(r, n, Future())
                self._q.put(p)
                futs.append(p.fut)
            while self._alive < self.workers:
                self._alive += 1
                self._started += 1
                threading.Thread(target=self._work, name=f"{self.name}-{self._started}", daemon=True).start()
        return futs

    def put(self, req: Req) -> Future:
        return self.put_many([req])[0]

    def __call__(self, req: Req) -> Res:
        """Block until the request's call is done (from a thread)."""
        return self.put(req).result()

    async def submit(self, req: Req) -> Res:
        """Await the request's result (from the event loop)."""
        return await asyncio.wrap_future(self.put(req))

    def close(self) -> None:
        """Stop the workers after their current call; requests still queued fail."""
        waiting = []
        with self._lock:
            self._closed = True
            while True:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    waiting.append(item)
            self._queued = 0
            for _ in range(self._alive):
                self._q.put(_STOP)
        for item in waiting:
            if item.fut.set_running_or_notify_cancel():
                item.fut.set_exception(RuntimeError(f"{self.name} shut down"))

    # ------------------------------------------------------------------ worker
    def _take(self) -> list[_Pending] | None:
        """The next batch, or None when this worker should exit (closed, or idle)."""
        while True:
            try:
                first = self._q.get(timeout=IDLE_S)
                break
            except queue.Empty:
                with self._lock:
                    if self._q.empty():
                        self._alive -= 1
                        return None
        if first is _STOP:
            with self._lock:
                self._alive -= 1
            return None
        batch, n = [first], first.size
        deadline = time.monotonic() + self.max_wait_s
        while n < self.max_size:
            try:
                left = deadline - time.monotonic()
                item = self._q.get(timeout=left) if left > 0 else self._q.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._q.put(_STOP)  # for this worker's next round
                break
            batch.append(item)
            n += item.size
        with self._lock:
            self._queued -= n
        return batch

    def _work(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            live = [p for p in batch if p.fut.set_running_or_notify_cancel()]
            if not live:
                continue
            t0 = time.perf_counter()
            try:
                results = self.fn([p.req for p in live])
                if len(results) != len(live):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(live)} requests")
            except BaseException as e:  # noqa: BLE001 - every request of this call gets the error
                for p in live:
                    p.fut.set_exception(e)
                continue
            dt = time.perf_counter() - t0
            n = sum(p.size for p in live)
            self.stats.batches += 1
            self.stats.items += n
            self.stats.max_seen = max(self.stats.max_seen, n)
            self.stats.last_run_s = dt
            for p, r in zip(live, results):
                p.fut.set_result(r)
            if self.on_batch is not None:
                try:
                    self.on_batch(n, dt)
                except Exception:  # noqa: BLE001 - metrics never break serving
                    log.exception("%s: on_batch hook failed", self.name)


def per_item(fn: Callable[[list[T]], Sequence[R]]) -> Callable[[list[list[T]]], list[list[R]]]:
    """A Batcher function over requests that are lists of items, from ``fn`` over items: one call of
    ``fn`` with every request's items, its results split back per request."""

    def call(reqs: list[list[T]]) -> list[list[R]]:
        flat = [x for r in reqs for x in r]
        out = list(fn(flat))
        if len(out) != len(flat):
            raise RuntimeError(f"{getattr(fn, '__name__', fn)} returned {len(out)} results for {len(flat)} items")
        res, i = [], 0
        for r in reqs:
            res.append(out[i:i + len(r)])
            i += len(r)
        return res

    return call


class IntakeBatcher(Batcher[list, list]):
    """The agent's intake: ``await submit(alerts)`` returns ``handle``'s results for those alerts,
    after one call of ``handle`` for everything that was queued with them. Up to ``concurrency``
    calls run at once (default 2). Each request gets its answer only after its own call returned, and
    an idle agent adds no wait. ``handle`` must be safe to run on two threads at once (the agent's
    gate and outbox are: per-thread SQLite connections, atomic reservations)."""

    def __init__(self, handle: Callable[[list[Any]], Sequence[Any]], max_alerts: int = 256, concurrency: int = 2):
        super().__init__(per_item(handle), max_size=max_alerts, workers=max(1, concurrency), name="intake")
