"""Gate state: dedup, cooldown, budgets, storm and loop breakers; durable and atomic across processes.

Every test here runs against a ``store`` fixture: SQLite here; tests/gate/test_state_redis.py imports
these tests and runs them again against a real redis-server (RedisState), so both backends are held
to the same assertions.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass, field
from typing import Callable

import pytest

from agent_sre import policy as pol
from agent_sre import state
from agent_sre.agent import Agent
from agent_sre.chain.chain import Chain
from agent_sre.gate import Gate
from agent_sre.settings import StateSettings, load
from agent_sre.state import Action, Limits, SQLiteState, StateStore
from tests.gate.support import FakeModel, Recorder, alert, data

T0 = 1_800_000_000.0


def act(key="fp@1", fp="fp", step=0, fn="pod-restart", target="media/x-1", mutating=True):
    ns, name = target.split("/")
    return Action(alert_key=key, fingerprint=fp, step=step, function=fn, target=target,
                  params={"name": name, "namespace": ns}, mutating=mutating, mode="dry_run")


LOOSE = Limits(cooldown_seconds=0, per_target_per_hour=1000, global_per_hour=1000, storm_targets=1000,
               loop_max_returns=1000)


@dataclass
class Store:
    """One shared store of a backend. ``open()`` is a new handle on it: what a new process or another
    replica gets; ``env`` holds the settings that make ``state.open_store`` open it."""

    kind: type
    env: dict[str, str]
    factory: Callable[[], StateStore]
    opened: list[StateStore] = field(default_factory=list)

    def open(self) -> StateStore:
        s = self.factory()
        self.opened.append(s)
        return s

    def close(self) -> None:
        for s in self.opened:
            s.close()


@pytest.fixture()
def store(tmp_path):
    path = tmp_path / "state.db"
    s = Store(SQLiteState, {"STATE_DB": str(path)}, lambda: SQLiteState(path))
    yield s
    s.close()


@pytest.fixture()
def st(store):
    return store.open()


def test_dedup_by_fingerprint_and_starts_at_survives_a_restart(store):
    s = store.open()
    assert s.reserve(act(), LOOSE, now=T0).ok
    s.close()
    s2 = store.open()  # a new process on the same store
    r = s2.reserve(act(), LOOSE, now=T0 + 60)
    assert not r.ok and r.code == "duplicate" and r.prior["function"] == "pod-restart"
    assert s2.reserve(act(step=1), LOOSE, now=T0 + 60).ok  # another step of the same occurrence
    assert s2.reserve(act(key="fp@2"), LOOSE, now=T0 + 60).ok  # a new occurrence (new startsAt)


def test_cooldown_per_function_and_target(st):
    lim = Limits(cooldown_seconds=300, per_target_per_hour=100, global_per_hour=100, storm_targets=100,
                 loop_max_returns=100)
    assert st.reserve(act(key="a@1"), lim, now=T0).ok
    r = st.reserve(act(key="b@1", fp="b"), lim, now=T0 + 100)
    assert r.code == "cooldown" and "100s ago" in r.reason
    assert st.reserve(act(key="c@1", fp="c", fn="pod-check-status", mutating=False), lim, now=T0 + 100).ok
    assert st.reserve(act(key="d@1", fp="d", target="media/other"), lim, now=T0 + 100).ok
    assert st.reserve(act(key="b@1", fp="b"), lim, now=T0 + 301).ok  # cooldown over


def test_budget_per_target_and_global_over_a_rolling_hour(st):
    lim = Limits(cooldown_seconds=0, per_target_per_hour=2, global_per_hour=3, storm_targets=100,
                 loop_max_returns=100)
    assert st.reserve(act(key="1", fp="1"), lim, now=T0).ok
    assert st.reserve(act(key="2", fp="2"), lim, now=T0 + 1).ok
    r = st.reserve(act(key="3", fp="3"), lim, now=T0 + 2)
    assert r.code == "budget_target" and "limit 2" in r.reason
    assert st.reserve(act(key="4", fp="4", target="media/y-1"), lim, now=T0 + 3).ok
    r = st.reserve(act(key="5", fp="5", target="media/z-1"), lim, now=T0 + 4)
    assert r.code == "budget_global"
    # read-only actions never use the budget
    assert st.reserve(act(key="6", fp="6", fn="pod-check-status", mutating=False), lim, now=T0 + 5).ok
    # an hour later the first two have rolled off
    assert st.reserve(act(key="7", fp="7"), lim, now=T0 + 3601.5).ok


def test_storm_breaker_stops_mutating_actions_only(st):
    lim = Limits(cooldown_seconds=0, per_target_per_hour=100, global_per_hour=100, storm_targets=5,
                 storm_window_seconds=60, loop_max_returns=100)
    ok = [st.reserve(act(key=f"k{i}", fp=f"f{i}", target=f"media/p-{i}"), lim, now=T0 + i).ok for i in range(8)]
    assert ok == [True] * 4 + [False] * 4
    r = st.reserve(act(key="k9", fp="f9", target="media/p-9"), lim, now=T0 + 9)
    assert r.code == "storm" and "distinct targets" in r.reason
    assert st.reserve(act(key="r", fp="r", fn="pod-check-status", target="media/p-9", mutating=False), lim,
                      now=T0 + 9).ok
    # failures count too; and once the window has passed, the breaker closes again
    assert st.reserve(act(key="late", fp="late", target="media/q-1"), lim, now=T0 + 200).ok


def test_failures_feed_the_storm_breaker(st):
    lim = Limits(cooldown_seconds=0, per_target_per_hour=100, global_per_hour=100, storm_targets=3,
                 storm_window_seconds=60, loop_max_returns=100)
    st.signal("media/a", now=T0)
    st.signal("media/b", now=T0)
    assert st.reserve(act(key="x", target="media/c"), lim, now=T0 + 1).code == "storm"


def test_loop_breaker_after_n_returns_of_the_same_alert(st):
    lim = Limits(cooldown_seconds=0, per_target_per_hour=100, global_per_hour=100, storm_targets=100,
                 loop_max_returns=3, loop_window_seconds=86400)
    # the same alert (fingerprint) comes back with a new startsAt after each remediation
    got = [st.reserve(act(key=f"fp@{i}", fp="fp"), lim, now=T0 + i * 600) for i in range(5)]
    assert [g.ok for g in got] == [True, True, True, False, False]
    assert got[3].code == "loop" and "after 3 remediations" in got[3].reason


def _contend(open_state, worker, n, out):
    s = open_state()
    lim = Limits(cooldown_seconds=0, per_target_per_hour=5, global_per_hour=1000, storm_targets=1000,
                 loop_max_returns=1000)
    ok = 0
    for i in range(n):
        # every process also tries the very same occurrence: exactly one may win it
        if s.reserve(act(key="same@1", fp="same", target="media/shared"), LOOSE).ok:
            ok += 100
        if s.reserve(act(key=f"w{worker}-{i}", fp=f"w{worker}-{i}", target="media/budgeted"), lim).ok:
            ok += 1
    out.put(ok)


def test_check_and_reserve_is_atomic_across_processes(store):
    store.open().close()
    ctx = mp.get_context("fork")  # the children open their own connections
    q = ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(store.factory, w, 15, q)) for w in range(4)]
    for p in procs:
        p.start()
    total = sum(q.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    assert total // 100 == 1, "the same occurrence was reserved by more than one process"
    assert total % 100 == 5, "the per-target budget was exceeded under contention"


def test_replaying_the_same_alert_five_times_triggers_once_and_escalates_nothing(store):
    rec = Recorder()
    gate = Gate(state=store.open())
    agent = Agent(chain=Chain([FakeModel(lambda _: ("pod-restart", {"name": "x-1", "namespace": "media"}, 1.0))]),
                  broker=rec, gate=gate)
    outs = [agent.handle_alerts([alert(namespace="media", pod="x-1")])[0] for _ in range(5)]
    assert len(rec.triggers) == 1 and rec.escalations == []
    assert [o.verdict.code for o in outs] == ["ok"] + ["duplicate"] * 4


def test_gate_with_state_refuses_second_occurrence_within_cooldown_and_says_why(store):
    rec = Recorder()
    gate = Gate(policy=pol.parse("defaults: {enabled: true}\nbudget: {per_target_per_hour: 10}"), state=store.open())
    agent = Agent(chain=Chain([FakeModel(lambda _: ("pod-restart", {"name": "x-1", "namespace": "media"}, 1.0))]),
                  broker=rec, gate=gate)
    agent.handle_alerts([alert(namespace="media", pod="x-1", starts="2026-11-25T08:00:00Z")])
    [o] = agent.handle_alerts([alert(namespace="media", pod="x-1", starts="2026-11-25T08:05:00Z")])
    assert o.verdict.code == "cooldown"
    [esc] = rec.escalations
    assert "cooldown: pod-restart acted on media/x-1" in data(esc)["reason"]


def test_prior_keeps_the_exact_time_and_params(st):
    now = T0 + 0.123456789
    params = {"name": "x-1", "namespace": "media", "containers": [], "labels": {}, "replicas": 2**60 + 1,
              "ratio": 0.1, "note": "caf\u00e9 \u2603"}
    a = Action(alert_key="p@1", fingerprint="p", step=0, function="pod-restart", target="media/x-1",
               params=params, mutating=True, mode="dry_run")
    assert st.reserve(a, LOOSE, now=now).ok
    r = st.reserve(a, LOOSE, now=now + 5)
    assert r.code == "duplicate"
    assert r.prior == {"function": "pod-restart", "target": "media/x-1", "params": params, "mode": "dry_run",
                       "ts": now}
    assert "5s ago" in r.reason


def test_window_bounds_are_exact_below_a_millisecond(st):
    lim = Limits(cooldown_seconds=300, per_target_per_hour=1, global_per_hour=100, storm_targets=2,
                 storm_window_seconds=60, loop_max_returns=100)
    s = T0 + 0.25
    st.signal("media/a", now=s)
    # 10 microseconds inside the window: media/a still counts, with media/c that makes a storm
    assert st.reserve(act(key="c", fp="c", target="media/c"), lim, now=s + 60 - 1e-5).code == "storm"
    # just outside it: no storm; the same for cooldown and the hourly budget
    assert st.reserve(act(key="c", fp="c", target="media/c"), lim, now=s + 60 + 1e-5).ok
    assert st.reserve(act(key="c2", fp="c2", target="media/c"), lim,
                      now=s + 60 + 1e-5 + 300 - 1e-5).code == "cooldown"
    assert st.reserve(act(key="c2", fp="c2", target="media/c"), lim,
                      now=s + 60 + 1e-5 + 300 + 1e-5).code == "budget_target"
    assert st.reserve(act(key="c2", fp="c2", target="media/c"), lim, now=s + 60 + 1e-5 + 3600 + 1e-5).ok


def test_cooldown_comes_from_the_history_not_from_the_limits_at_the_time(st):
    # an action reserved while the cooldown was off still counts once a cooldown is configured
    assert st.reserve(act(key="a@1", fp="a"), LOOSE, now=T0).ok
    lim = Limits(cooldown_seconds=300, per_target_per_hour=100, global_per_hour=100, storm_targets=100,
                 loop_max_returns=100)
    r = st.reserve(act(key="a@2", fp="a2"), lim, now=T0 + 10)
    assert r.code == "cooldown" and "10s ago" in r.reason


def test_a_target_named_like_a_key_has_its_own_budget(st):
    lim = Limits(cooldown_seconds=0, per_target_per_hour=2, global_per_hour=100, storm_targets=100,
                 loop_max_returns=100)

    def on(target, key):
        return Action(alert_key=key, fingerprint=key, step=0, function="pod-restart", target=target,
                      params={}, mutating=True, mode="dry_run")

    assert st.reserve(on("media/a", "1"), lim, now=T0).ok
    assert st.reserve(on("media/b", "2"), lim, now=T0 + 1).ok
    # not the global budget, nor anyone else's
    assert st.reserve(on("global", "3"), lim, now=T0 + 2).ok
    assert st.reserve(on("t:global", "4"), lim, now=T0 + 3).ok
    assert st.reserve(on("global", "5"), lim, now=T0 + 4).ok
    assert st.reserve(on("global", "6"), lim, now=T0 + 5).code == "budget_target"


def test_from_env_opens_the_same_store(store):
    s = state.open_store(load(StateSettings, store.env))
    store.opened.append(s)
    assert type(s) is store.kind
    assert s.reserve(act(), LOOSE, now=T0).ok
    assert store.open().reserve(act(), LOOSE, now=T0 + 1).code == "duplicate"
    assert s.stats()["backend"] == {SQLiteState: "sqlite"}.get(store.kind, "redis")


def test_an_occurrence_can_act_again_once_the_dedup_window_has_passed(st):
    # judged on the recorded time (not a Redis TTL), and an expired row gives way (SQLite)
    lim = Limits(dedup_seconds=60, cooldown_seconds=0)
    assert st.reserve(act(), lim, now=T0).ok
    assert st.reserve(act(), lim, now=T0 + 59).code == "duplicate"
    assert st.reserve(act(), lim, now=T0 + 61).ok
    assert st.reserve(act(), Limits(dedup_seconds=0, cooldown_seconds=0), now=T0 + 62).ok
