"""The outbox does not grow without end: delivered events, decided alerts, results and plans older
than the retention are pruned (dead letters and failed alerts stay for an operator), and a
retention shorter than the policy's dedup window is refused at start."""

from __future__ import annotations

import time

import pytest

from agent_sre import ce
from agent_sre.alerts import Alert
from agent_sre.events import TRIGGER
from agent_sre.outbox import Outbox, Retry
from agent_sre.server import agent_from_env
from agent_sre.settings import SettingsError
from tests.gate.support import alert


def ev(i: int):
    return ce.make_event(TRIGGER, "/t", {"i": i}, id=f"e{i}", extensions={"correlationid": f"c{i}"})


def test_prune_forgets_what_is_past_the_retention(tmp_path):
    box = Outbox(tmp_path / "o.db", retention_s=100)
    ids = box.accept([alert(fingerprint=f"f{i}", pod=f"p{i}", namespace="n") for i in range(6)])
    box.finish(ids[:4], [ev(i) for i in range(4)], [(f"c{i}", "{}", "{}") for i in range(2)])
    box.fail_alert(ids[4], "boom", max_attempts=1)  # dead: stays
    box.delivered_many(["e0", "e1", "e2"])
    box.failed("e3", "down", Retry(max_attempts=1))  # a dead letter: stays
    box.record_result("r0", "c0", {"status": "success"}, [])
    assert box.prune() == {"events": 0, "inbox": 0, "results": 0, "plans": 0}  # nothing old yet
    gone = box.prune(now=time.time() + 101)
    assert gone == {"events": 3, "inbox": 4, "results": 1, "plans": 2}
    stats = box.stats()
    assert stats["events"] == {"dead": 1} and stats["inbox"] == {"dead": 1, "pending": 1}
    assert stats["results"] == 0 and stats["plans"] == 0


def test_prune_works_in_batches(tmp_path):
    box = Outbox(tmp_path / "o.db", retention_s=1)
    box.finish([], [ev(i) for i in range(250)])
    box.delivered_many([f"e{i}" for i in range(250)])
    assert box.prune(now=time.time() + 10, batch=40)["events"] == 250


def test_release_frees_what_this_process_holds(tmp_path):
    box = Outbox(tmp_path / "o.db", lease_s=3600)
    box.accept([Alert.model_validate({"labels": {"alertname": "A"}, "fingerprint": "a"})])
    box.finish([], [ev(1)])
    box.claim_events()
    other = Outbox(tmp_path / "o.db", lease_s=3600)
    assert other.claim_alerts() == [] and other.claim_events() == []  # leased for an hour
    assert box.release() == 2 and box.held() == {"inbox": 0, "events": 0}
    assert len(other.claim_alerts()) == 1 and len(other.claim_events()) == 1  # at once


def test_a_retention_shorter_than_the_dedup_window_stops_the_agent(tmp_path):
    env = {"STATE_DIR": str(tmp_path), "OUTBOX_RETENTION_SECONDS": "3600"}
    with pytest.raises(SettingsError, match="OUTBOX_RETENTION_SECONDS=3600 is shorter than the policy's dedup"):
        agent_from_env(env)
