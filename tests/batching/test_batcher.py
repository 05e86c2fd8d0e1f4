"""The one Batcher (intake, the TRM model thread, trm-reasoning): merging, limits, refusal,
cancelled requests, idle workers, shutdown. IntakeBatcher's own contract is in test_intake_batcher.py."""
from __future__ import annotations

import threading
import time

import pytest

from agent_sre import batching
from agent_sre.batching import Batcher, Overloaded


class Gate:
    """A batch function that blocks until released, recording each call's requests."""

    def __init__(self):
        self.calls: list[list[int]] = []
        self.release = threading.Event()

    def __call__(self, reqs):
        self.calls.append(list(reqs))
        self.release.wait(10)
        return [r * 10 for r in reqs]


def test_requests_queued_while_busy_share_one_call_up_to_max_size():
    fn = Gate()
    b = Batcher(fn, max_size=4, size=lambda _r: 1, name="t-merge")
    first = b.put(0)
    time.sleep(0.05)  # the worker is now inside the first call
    rest = b.put_many(list(range(1, 10)))
    fn.release.set()
    assert first.result(5) == 0 and [f.result(5) for f in rest] == [r * 10 for r in range(1, 10)]
    assert fn.calls == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_wait_window_fills_a_batch():
    calls = []
    b = Batcher(lambda reqs: calls.append(list(reqs)) or reqs, max_size=8, size=lambda _r: 1, max_wait_s=0.2,
                name="t-wait")
    futs = [b.put(0)]
    time.sleep(0.05)  # within the window: joins the same call
    futs.append(b.put(1))
    assert [f.result(5) for f in futs] == [0, 1] and calls == [[0, 1]]


def test_full_queue_refuses_all_or_nothing():
    fn = Gate()
    b = Batcher(fn, max_size=1, size=lambda _r: 1, max_queue=3, name="t-full")
    busy = b.put(0)
    time.sleep(0.05)
    waiting = b.put_many([1, 2])
    with pytest.raises(Overloaded, match="queue full"):
        b.put_many([3, 4])  # 2 + 2 > 3: none of them is queued
    assert b.queued == 2
    fn.release.set()
    assert busy.result(5) == 0 and [f.result(5) for f in waiting] == [10, 20]


def test_a_request_cancelled_before_its_call_is_dropped():
    fn = Gate()
    b = Batcher(fn, max_size=8, size=lambda _r: 1, name="t-cancel")
    busy = b.put(0)
    time.sleep(0.05)
    gone, kept = b.put(1), b.put(2)
    assert gone.cancel()
    fn.release.set()
    assert busy.result(5) == 0 and kept.result(5) == 20
    assert fn.calls == [[0], [2]]


def test_idle_workers_exit_and_the_next_request_starts_one(monkeypatch):
    monkeypatch.setattr(batching, "IDLE_S", 0.1)
    b = Batcher(lambda reqs: reqs, size=lambda _r: 1, workers=2, name="t-idle")
    assert b(1) == 1
    time.sleep(0.4)
    assert not [t for t in threading.enumerate() if t.name.startswith("t-idle-")]
    assert b(2) == 2


def test_close_fails_waiting_requests_and_refuses_new_ones():
    fn = Gate()
    b = Batcher(fn, max_size=1, size=lambda _r: 1, name="t-close")
    busy = b.put(0)
    time.sleep(0.05)
    waiting = b.put(1)
    b.close()
    with pytest.raises(RuntimeError, match="shut down"):
        waiting.result(5)
    fn.release.set()
    assert busy.result(5) == 0  # the call in progress finishes
    with pytest.raises(RuntimeError, match="closed"):
        b.put(2)
