"""Micro-batching: concurrent requests share one forward pass.

Requests put their alerts on an asyncio queue; one worker takes the first waiting item, collects more
for at most ``max_wait_ms`` (or until ``max_batch`` items), and runs the batched function once, in a
single dedicated thread so the event loop keeps accepting requests and only one forward pass runs at a
time (no thread oversubscription on a small CPU). While a pass runs, new requests queue up and form
the next batch, so under load batches fill without any added wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Overloaded(RuntimeError):
    """The queue is full: the caller should answer 503 and let the client retry."""


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    max_seen: int = 0
    last_run_s: float = 0.0


class MicroBatcher(Generic[T, R]):
    def __init__(self, fn: Callable[[list[T]], Sequence[R | BaseException]], *, max_batch: int = 64,
                 max_wait_ms: float = 2.0, max_queue: int = 4096,
                 on_batch: Callable[[int, float], None] | None = None):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_ms / 1000)
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[T, asyncio.Future]] | None = None
        self._worker: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trm-forward")

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._worker is None:
            self._queue = asyncio.Queue(self.max_queue)
            self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        if self._queue is not None:  # fail whatever is still waiting
            while not self._queue.empty():
                _, fut = self._queue.get_nowait()
                if not fut.done():
                    fut.set_exception(RuntimeError("service shutting down"))
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ submit
    async def submit_many(self, items: list[T]) -> list[R | BaseException]:
        """Results in order; a per-item exception is returned, not raised. Raises Overloaded when full."""
        if self._queue is None:
            raise RuntimeError("batcher not started")
        if self._queue.qsize() + len(items) > self.max_queue:
            raise Overloaded(f"queue full ({self._queue.qsize()} waiting, limit {self.max_queue})")
        loop = asyncio.get_running_loop()
        futs = []
        for it in items:
            fut = loop.create_future()
            self._queue.put_nowait((it, fut))
            futs.append(fut)
        return list(await asyncio.gather(*futs, return_exceptions=True))

    async def submit(self, item: T) -> R | BaseException:
        return (await self.submit_many([item]))[0]

    # ------------------------------------------------------------------ worker
    async def _collect(self) -> list[tuple[T, asyncio.Future]]:
        q = self._queue
        assert q is not None
        batch = [await q.get()]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                batch.append(q.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(q.get(), left))
            except (asyncio.TimeoutError, TimeoutError):
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            batch = [(it, f) for it, f in batch if not f.cancelled()]  # the client went away
            if not batch:
                continue
            items = [it for it, _ in batch]
            t0 = time.perf_counter()
            try:
                results: Sequence[Any] = await loop.run_in_executor(self._pool, self.fn, items)
                if len(results) != len(items):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            except asyncio.CancelledError:
                for _, f in batch:
                    if not f.done():
                        f.set_exception(RuntimeError("service shutting down"))
                raise
            except Exception as e:  # noqa: BLE001 - the worker must survive a failing batch
                log.exception("batched predict failed on %d items", len(items))
                results = [e] * len(items)
            dt = time.perf_counter() - t0
            self.stats.batches += 1
            self.stats.items += len(items)
            self.stats.max_seen = max(self.stats.max_seen, len(items))
            self.stats.last_run_s = dt
            if self.on_batch is not None:
                try:
                    self.on_batch(len(items), dt)
                except Exception:  # noqa: BLE001 - metrics never break serving
                    log.exception("on_batch hook failed")
            for (_, f), r in zip(batch, results):
                if not f.done():
                    f.set_result(r)
