"""IntakeBatcher: concurrent requests share agent calls, each gets its own outcomes, and up to
``concurrency`` calls run at once (so one batch's model pass overlaps another's Python work)."""
from __future__ import annotations

import asyncio
import threading

from agent_sre.server import IntakeBatcher


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def test_each_request_gets_its_own_outcomes_in_order():
    calls: list[list[int]] = []

    def handle(alerts):
        calls.append(list(alerts))
        return [a * 10 for a in alerts]

    async def main():
        b = IntakeBatcher(handle, concurrency=1)
        return await asyncio.gather(*[b.submit([i, i + 100]) for i in range(20)])

    out = _run(main())
    assert out == [[i * 10, (i + 100) * 10] for i in range(20)]
    assert sum(len(c) for c in calls) == 40
    assert len(calls) < 20  # requests queued while the agent was busy were merged


def test_two_calls_run_at_once():
    # Each call waits until another call is running beside it: with one call at a time this would
    # never finish (the barrier times out and raises), with two it does.
    barrier = threading.Barrier(2, timeout=10)

    def handle(alerts):
        barrier.wait()
        return list(alerts)

    async def main():
        b = IntakeBatcher(handle, concurrency=2, max_alerts=1)
        return await asyncio.gather(b.submit([1]), b.submit([2]))

    assert _run(main()) == [[1], [2]]


def test_a_failing_call_fails_only_its_requests():
    def handle(alerts):
        if "bad" in alerts:
            raise RuntimeError("boom")
        return list(alerts)

    async def main():
        b = IntakeBatcher(handle, concurrency=1, max_alerts=1)
        return await asyncio.gather(b.submit(["bad"]), b.submit(["ok"]), return_exceptions=True)

    bad, ok = _run(main())
    assert isinstance(bad, RuntimeError) and ok == ["ok"]
