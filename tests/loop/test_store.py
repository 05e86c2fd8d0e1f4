"""The loop's stores, SQLite and a real redis-server, held to the same assertions: outcomes are
counted once, approvals and watches change state once (two replicas racing: one wins), and what
is written is there for the next process."""

from __future__ import annotations

import threading
import uuid

import pytest

from agent_sre.loop.records import Approval, OutcomeRecord, Watch
from agent_sre.loop.store import RedisLoopStore, SQLiteLoopStore
from tests.loop.support import CLASS, T0, crash, make


@pytest.fixture(params=["sqlite", "redis"])
def opener(request, tmp_path):
    """A function opening a new handle on one shared store (what another process would get)."""
    if request.param == "sqlite":
        path = tmp_path / "state.db"
        return lambda: SQLiteLoopStore(path)
    url = request.getfixturevalue("redis_url")
    prefix = f"t-{uuid.uuid4().hex[:8]}:"
    return lambda: RedisLoopStore(url, prefix=prefix)


def rec(i, outcome="verified", cls=CLASS):
    return OutcomeRecord(id=f"c{i}:0", alert_class=cls, alertname=cls.split("/")[0], function="pod-restart",
                         outcome=outcome, reason="r", ts=T0 + i)


def approval(i=1):
    return Approval(id=f"a{i}", alert_class=CLASS, alertname="PodCrashLoopBackOff", function="pod-restart",
                    parameters={"name": "web"}, correlation_id="c", fingerprint="fp", alert={"labels": {}},
                    decision={}, created=T0, expires=T0 + 60)


def watch(i=1, deadline=T0 + 100):
    return Watch(id=f"w{i}", alert_class=CLASS, alertname="PodCrashLoopBackOff", function="pod-restart",
                 correlation_id="c", fingerprint="fp", alert={}, decision={}, started=T0, deadline=deadline)


def test_outcomes_are_counted_once_with_the_streak_rule(opener):
    s = opener()
    assert s.record_outcome(rec(1)) is not None
    assert s.record_outcome(rec(1)) is None  # the same id again (a redelivered result)
    s.record_outcome(rec(2))
    before, after = s.record_outcome(rec(3, "ineffective"))
    assert (before.streak, after.streak, after.attempts, after.ineffective) == (2, 0, 3, 1)
    s.record_outcome(rec(4, "unverified"))
    s.record_outcome(rec(5))
    _, last = s.record_outcome(rec(6, "rejected"))
    assert (last.verified, last.unverified, last.rejected, last.attempts, last.streak) == (3, 1, 1, 5, 0)
    again = opener()
    assert again.get_class(CLASS) == last
    assert [o.id for o in again.outcomes(limit=3)] == ["c6:0", "c5:0", "c4:0"]
    assert [c.alert_class for c in again.classes()] == [CLASS]


def test_pins(opener):
    s = opener()
    before, after = s.pin("X/pod-restart", "X", "pod-restart", "execute")
    assert before.pin is None and after.pin == "execute" and after.alertname == "X"
    s.record_outcome(rec(1, cls="X/pod-restart"))
    assert opener().get_class("X/pod-restart").pin == "execute"
    assert opener().pin("X/pod-restart", "X", "pod-restart", None)[1].pin is None


def test_an_approval_changes_once_even_when_two_race(opener):
    s = opener()
    assert s.add_approval(approval())[1] is True
    stored, new = s.add_approval(approval().model_copy(update={"created": T0 + 5}))
    assert new is False and stored.created == T0
    wins: list = []

    def answer(store, who):
        got = store.resolve_approval("a1", "approved", by=who, note=None, now=T0 + 1)
        if got is not None:
            wins.append(got)

    ts = [threading.Thread(target=answer, args=(opener(), f"p{i}")) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(wins) == 1 and wins[0].status == "approved"
    assert opener().get_approval("a1").by == wins[0].by
    assert s.resolve_approval("a1", "rejected", by="x", note="late", now=T0 + 2) is None
    assert s.approvals(status="pending") == [] and [a.id for a in s.approvals(status="approved")] == ["a1"]


def test_watches_close_once_and_suppress_until_their_deadline(opener):
    s = opener()
    assert s.open_watch(watch()) is True and s.open_watch(watch()) is False
    assert s.suppressing("fp", T0 + 50).id == "w1"
    assert s.suppressing("fp", T0 + 100) is None and s.suppressing("other", T0) is None
    s.count_suppressed("w1")
    assert opener().watches()[0].suppressed == 1
    closed = [opener().close_watch("w1", "verified", T0 + 10) for _ in range(3)]
    assert [c is not None for c in closed] == [True, False, False]
    assert s.watches() == [] and s.watches(status="closed")[0].outcome == "verified"
    assert s.suppressing("fp", T0 + 50) is not None  # closed early: its window still holds re-fires


def test_the_whole_loop_on_redis(tmp_path, redis_url):
    rig = make(tmp_path, "mode: execute\nautonomy: {promote_after: 1}",
               store=RedisLoopStore(redis_url, prefix=f"t-{uuid.uuid4().hex[:8]}:"))
    from tests.loop.test_loop import fixed

    fixed(rig, 1)
    assert [o["outcome"] for o in rig.outcomes()] == ["verified"]
    [out] = rig.agent.handle_alerts([crash(2)])
    assert out.verdict.mode == "execute" and rig.broker.triggers[-1] is not None
