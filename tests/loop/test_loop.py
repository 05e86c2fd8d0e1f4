"""The closed loop inside one agent: suggest → approve → act → verify → autonomy, and what stops
it (rejection, failure, ineffective fixes, resolution, expiry, the gate when an approval comes).

An inline agent (events delivered as they are made) with a fake model proposing pod-restart, the
loop on SQLite, and a clock the test moves."""

from __future__ import annotations

import pytest

from agent_sre import audit
from agent_sre.loop import LoopError
from agent_sre.loop.store import SQLiteLoopStore
from tests.gate.support import data
from tests.loop.support import CLASS, T0, crash, make


def approve_next(rig, by="alice"):
    [req] = [r for r in rig.requests() if rig.loop.store.get_approval(r["id"]).status == "pending"]
    return rig.loop.decide(req["id"], True, by)


def fixed(rig, i, after=30):
    """Alert i fires, is approved, its pod is restarted, and it resolves ``after`` seconds later."""
    a = crash(i)
    rig.agent.handle_alerts([a])
    if len([t for t in rig.broker.triggers if data(t)["parameters"]["name"] == f"web-{i}"]) == 0:
        approve_next(rig)
    trig = [t for t in rig.broker.triggers if data(t)["parameters"]["name"] == f"web-{i}"][-1]
    rig.answer(trig, ok=True, observed="replacement pod web-x is Ready")
    rig.clock.advance(after)
    rig.agent.handle_alerts([a.model_copy(update={"status": "resolved"})])
    return trig


def test_a_new_class_asks_first_and_acts_once_approved(tmp_path):
    rig = make(tmp_path)
    [out] = rig.agent.handle_alerts([crash(1)])
    assert out.verdict.allowed and out.verdict.mode == "suggest" and out.verdict.approvable
    assert out.verdict.alert_class == CLASS
    assert rig.broker.triggers == [] and rig.broker.escalations == []  # asked, not escalated
    [req] = rig.requests()
    assert req["function"] == "pod-restart" and req["parameters"] == {"name": "web-1", "namespace": "media",
                                                                      "type": "pod"}
    assert req["alert_class"] == CLASS and req["reasoning"] == "fake model"

    # Alertmanager sends the same alert again: the same request, no second one.
    rig.agent.handle_alerts([crash(1)])
    assert len(rig.loop.store.approvals()) == 1 and rig.broker.triggers == []

    a = rig.loop.decide(req["id"], True, "alice")
    assert a.status == "approved" and a.by == "alice"
    [trig] = rig.broker.triggers
    assert data(trig)["dry_run"] is False and data(trig)["parameters"]["name"] == "web-1"
    assert [r["status"] for r in rig.resolutions()] == ["approved"]
    # Answered once: a second approval (another person, another replica) is refused.
    with pytest.raises(LoopError) as e:
        rig.loop.decide(req["id"], True, "bob")
    assert e.value.status == 409 and "approved" in str(e.value)
    assert len(rig.broker.triggers) == 1


def test_the_alert_resolving_verifies_and_three_in_a_row_earn_execute(tmp_path):
    rig = make(tmp_path)
    for i in range(3):
        fixed(rig, i, after=40)
    outs = rig.outcomes()
    assert [o["outcome"] for o in outs] == ["verified"] * 3
    assert outs[0]["seconds"] == 40 and outs[0]["alert_class"] == CLASS
    [change] = rig.autonomy()
    assert (change["from"], change["to"]) == ("suggest", "execute") and "3 verified" in change["why"]
    stats = rig.loop.store.get_class(CLASS)
    assert (stats.attempts, stats.verified, stats.streak) == (3, 3, 3)

    # The fourth runs without asking.
    [out] = rig.agent.handle_alerts([crash(9)])
    assert out.verdict.mode == "execute" and not out.verdict.approvable
    assert data(rig.broker.triggers[-1])["parameters"]["name"] == "web-9"
    assert len(rig.requests()) == 3
    kinds = rig.kinds()
    for k in ("approval", "verify", "outcome", "autonomy"):
        assert k in kinds


def test_a_failed_remediation_escalates_and_demotes(tmp_path):
    rig = make(tmp_path, "mode: execute\nautonomy: {promote_after: 1}")
    fixed(rig, 1)
    assert rig.loop.autonomy.mode_for(crash(2), "pod-restart")[1] == "execute"
    rig.agent.handle_alerts([crash(2)])
    rig.answer(rig.broker.triggers[-1], status="error")
    assert [o["outcome"] for o in rig.outcomes()] == ["verified", "failed"]
    [esc] = rig.broker.escalations
    assert data(esc)["code"] == "outcome:failed" and "remediation failed" in data(esc)["reason"]
    assert [(c["from"], c["to"]) for c in rig.autonomy()] == [("suggest", "execute"), ("execute", "suggest")]
    rig.agent.handle_alerts([crash(3)])
    assert rig.requests()[-1]["parameters"]["name"] == "web-3"  # asks again


def test_a_target_that_does_not_recover_is_ineffective_at_once(tmp_path):
    rig = make(tmp_path, "mode: execute\nautonomy: {promote_after: 1}")
    rig.loop.pin(CLASS, "execute", "ops")
    rig.agent.handle_alerts([crash(1)])
    rig.answer(rig.broker.triggers[-1], ok=False, observed="replacement pod web-1-x is not recovering: CrashLoopBackOff")
    [o] = rig.outcomes()
    assert o["outcome"] == "ineffective" and "CrashLoopBackOff" in o["reason"]
    assert data(rig.broker.escalations[-1])["code"] == "outcome:ineffective"
    assert rig.loop.store.watches() == []  # nothing left to watch


def test_still_firing_after_the_window_is_ineffective_when_alertmanager_says_so(tmp_path):
    from tests.helpers import serve_asgi
    from fastapi import FastAPI

    active: list[dict] = []
    am = FastAPI()

    @am.get("/api/v2/alerts")
    def alerts():
        return active

    with serve_asgi(am) as url:
        rig = make(tmp_path, alertmanager_url=url)
        rig.loop.pin(CLASS, "execute", "ops")
        a = crash(1)
        rig.agent.handle_alerts([a])
        rig.answer(rig.broker.triggers[-1])
        active.append({"fingerprint": a.fingerprint, "labels": a.labels})
        rig.loop.tick()
        assert rig.outcomes() == []  # inside the window: wait
        rig.clock.advance(601)
        rig.loop.tick()
        [o] = rig.outcomes()
        assert o["outcome"] == "ineffective" and "still firing" in o["reason"]
        assert data(rig.broker.escalations[-1])["code"] == "outcome:ineffective"

        # Another one: Alertmanager no longer lists it -> verified before the deadline.
        b = crash(2)
        rig.agent.handle_alerts([b])
        rig.answer(rig.broker.triggers[-1])
        rig.clock.advance(20)
        rig.loop.tick()
        assert rig.outcomes()[-1]["outcome"] == "verified" and rig.outcomes()[-1]["seconds"] == 20


def test_no_signal_is_unverified_and_changes_no_mode(tmp_path):
    rig = make(tmp_path)
    rig.agent.handle_alerts([crash(1)])
    approve_next(rig)
    rig.answer(rig.broker.triggers[-1])
    rig.clock.advance(601)
    rig.loop.tick()
    [o] = rig.outcomes()
    assert o["outcome"] == "unverified" and "no signal" in o["reason"]
    assert rig.autonomy() == [] and rig.broker.escalations == []
    assert rig.loop.store.get_class(CLASS).streak == 0


def test_re_fires_inside_the_window_are_suppressed(tmp_path):
    rig = make(tmp_path)
    rig.loop.pin(CLASS, "execute", "ops")
    rig.agent.handle_alerts([crash(1)])
    rig.answer(rig.broker.triggers[-1])
    before = len(rig.broker.sent)
    # The alert decays: Alertmanager repeats it, and it fires anew (new startsAt), inside the window.
    outs = rig.agent.handle_alerts([crash(1), crash(1, starts="2026-11-25T08:03:00Z")])
    assert all(o.suppressed and "decay window" in o.suppressed for o in outs)
    assert all(o.verdict is None and o.events == [] for o in outs)
    assert len(rig.broker.sent) == before
    [w] = rig.loop.store.watches()
    assert w.suppressed == 2
    assert [r["kind"] for r in audit.read(rig.audit.path)].count("suppressed") == 2
    # After the window, a re-fire is a new occurrence: the gate decides again.
    rig.clock.advance(601)
    rig.loop.tick()
    [out] = rig.agent.handle_alerts([crash(1, starts="2026-11-25T08:30:00Z")])
    assert out.suppressed is None and out.verdict is not None


def test_rejection_counts_against_the_class(tmp_path):
    rig = make(tmp_path, "mode: execute\nautonomy: {promote_after: 2}")
    fixed(rig, 1)
    assert rig.loop.store.get_class(CLASS).streak == 1
    rig.agent.handle_alerts([crash(2)])
    [req] = [r for r in rig.requests() if r["parameters"]["name"] == "web-2"]
    a = rig.loop.decide(req["id"], False, "bob", "that pod holds a lock; do not restart it")
    assert a.status == "rejected" and a.note.startswith("that pod")
    s = rig.loop.store.get_class(CLASS)
    assert (s.rejected, s.streak, s.attempts) == (1, 0, 1)
    assert [o["outcome"] for o in rig.outcomes()] == ["verified", "rejected"]
    assert not [t for t in rig.broker.triggers if data(t)["parameters"]["name"] == "web-2"]


def test_a_resolved_alert_withdraws_its_request_and_nothing_acts_on_it(tmp_path):
    rig = make(tmp_path)
    rig.agent.handle_alerts([crash(1)])
    [req] = rig.requests()
    rig.agent.handle_alerts([crash(1, status="resolved")])
    assert rig.loop.store.get_approval(req["id"]).status == "withdrawn"
    assert [r["status"] for r in rig.resolutions()] == ["withdrawn"]
    with pytest.raises(LoopError) as e:
        rig.loop.decide(req["id"], True, "alice")
    assert e.value.status == 409 and "withdrawn" in str(e.value)
    assert rig.broker.triggers == []


def test_requests_expire(tmp_path):
    rig = make(tmp_path, approval_ttl_seconds=60)
    rig.agent.handle_alerts([crash(1)])
    [req] = rig.requests()
    rig.clock.advance(61)
    rig.loop.tick()
    assert rig.loop.store.get_approval(req["id"]).status == "expired"
    with pytest.raises(LoopError):
        rig.loop.decide(req["id"], True, "alice")
    assert rig.broker.triggers == []


def test_an_approval_passes_through_the_gate_again(tmp_path):
    # Two alerts about the same pod (two rules): both wait; once one has acted, the cooldown on
    # that pod refuses the second approval.
    rig = make(tmp_path)
    a1 = crash(1)
    a2 = a1.model_copy(update={"fingerprint": "other", "labels": {**a1.labels, "alertname": "KubePodCrashLooping"}})
    rig.agent.handle_alerts([a1, a2])
    r1, r2 = rig.requests()
    assert rig.loop.decide(r1["id"], True, "alice").status == "approved"
    got = rig.loop.decide(r2["id"], True, "alice")
    assert got.status == "refused" and "cooldown" in got.note
    assert len(rig.broker.triggers) == 1
    assert "cooldown" in data(rig.broker.escalations[-1])["reason"]


def test_a_pin_applies_under_the_ceiling_and_dry_run_stays_dry_run(tmp_path):
    rig = make(tmp_path, "mode: dry_run")
    [out] = rig.agent.handle_alerts([crash(1)])
    # Under dry-run nothing is earned or asked: the trigger goes out in dry-run at once.
    assert out.verdict.mode == "dry_run" and rig.requests() == []
    rig.answer(rig.broker.triggers[-1])
    assert rig.outcomes() == [] and rig.loop.store.watches() == []  # a dry run verifies nothing
    rig.loop.pin(CLASS, "execute", "ops")
    rig.agent.handle_alerts([crash(2)])
    assert data(rig.broker.triggers[-1])["dry_run"] is True  # the ceiling holds
    rig.loop.pin(CLASS, "suggest", "ops")
    rig.agent.handle_alerts([crash(3)])
    assert rig.requests()[-1]["parameters"]["name"] == "web-3"


def test_outcomes_approvals_and_autonomy_survive_a_restart(tmp_path):
    rig = make(tmp_path, "mode: execute\nautonomy: {promote_after: 1}")
    fixed(rig, 1)
    rig.agent.handle_alerts([crash(2)])  # executes (earned), opens a watch
    rig.answer(rig.broker.triggers[-1])
    rig.loop.pin("KubePodCrashLooping/pod-restart", "suggest", "ops")
    rig.store.close()
    again = make(tmp_path, "mode: execute\nautonomy: {promote_after: 1}", store=SQLiteLoopStore(tmp_path / "state.db"),
                 clock=rig.clock)
    s = again.loop.store.get_class(CLASS)
    assert (s.verified, s.streak) == (1, 1)
    assert again.loop.autonomy.mode_for(crash(5), "pod-restart")[1:] == ("execute", False)
    assert [a.status for a in again.loop.store.approvals()] == ["approved"]
    [w] = again.loop.store.watches()
    assert w.alertname == "PodCrashLoopBackOff" and w.deadline == T0 + 30 + 600
    assert again.loop.store.get_class("KubePodCrashLooping/pod-restart").pin == "suggest"


def test_a_later_plan_step_asks_with_what_the_check_observed(tmp_path):
    # PrometheusServiceDown: a read-only check runs at once (no class to earn for reading); the
    # restart it calls for waits for a person, and runs with the check's observation once approved.
    from agent_sre.chain.chain import Chain
    from agent_sre.events import result_event
    from tests.gate.support import FakeModel, alert
    from tests.keys import by_functions

    plan = [{"lambda_function": "pod-check-status"},
            {"lambda_function": "pod-restart", "parameters": {"type": "pod"}, "from_previous": ["name", "namespace"]}]
    rig = make(tmp_path)
    rig.agent.chain = Chain([FakeModel(lambda _: ("pod-check-status", {"namespace": "monitoring"}, 1.0, plan))])
    down = alert(alertname="PrometheusServiceDown", namespace="monitoring", pod="prometheus-0", fingerprint="prom")
    [out] = rig.agent.handle_alerts([down])
    [check] = rig.broker.triggers
    assert out.verdict.mode == "execute" and out.verdict.alert_class is None
    sick = {"name": "prometheus-0", "namespace": "monitoring", "type": "pod"}
    rig.agent.handle_result(by_functions(result_event(check, {
        "function": "pod-check-status", "status": "success", "message": "1 unhealthy", "dry_run": False,
        "details": {"healthy": False, "unhealthy": [sick]}})))
    assert rig.outcomes() == []  # a check is not a remediation
    [req] = rig.requests()
    assert req["step"] == 1 and req["parameters"] == sick and req["alert_class"] == "PrometheusServiceDown/pod-restart"
    rig.loop.decide(req["id"], True, "alice")
    [_, restart] = rig.broker.triggers
    assert data(restart)["step"] == 1 and data(restart)["parameters"] == sick and data(restart)["dry_run"] is False


def test_one_structured_log_line_per_decision_and_per_result(tmp_path, caplog):
    import json
    import logging

    rig = make(tmp_path)
    rig.loop.pin(CLASS, "execute", "ops")
    with caplog.at_level(logging.INFO, logger="agent_sre.agent"):
        rig.agent.handle_alerts([crash(1)])
        rig.answer(rig.broker.triggers[-1])
    lines = [r.getMessage() for r in caplog.records if r.name == "agent_sre.agent"]
    [dec] = [json.loads(m.split(" ", 1)[1]) for m in lines if m.startswith("decision ")]
    [res] = [json.loads(m.split(" ", 1)[1]) for m in lines if m.startswith("result ")]
    assert dec["alertname"] == "PodCrashLoopBackOff" and dec["stage"] == "function_gemma"
    assert dec["function"] == "pod-restart" and dec["verdict"] == "ok" and dec["mode"] == "execute"
    assert dec["confidence"] == 0.95 and dec["why"] == "fake model" and dec["events"] == ["trigger"]
    assert res["alertname"] == "PodCrashLoopBackOff" and res["status"] == "success"
    assert res["request"]["method"] == "DELETE" and res["message"].startswith("success on")
