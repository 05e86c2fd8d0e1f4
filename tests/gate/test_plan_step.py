"""One plan-step path: step 0 (from the decision) and step n (from the previous step's result) go
through the same ``Agent._step``, with the same outcomes: allowed → trigger, refused → escalation,
suggest → escalation, duplicate → the reserved trigger again (never sent twice)."""

from __future__ import annotations

import pytest

from agent_sre import policy as pol
from agent_sre.agent import Agent
from agent_sre.ce import make_event
from agent_sre.chain.chain import Chain
from agent_sre.events import ESCALATION, TRIGGER, result_event
from agent_sre.gate import Gate
from agent_sre.state import SQLiteState
from tests.gate.support import FakeModel, Recorder, alert, data
from tests.keys import agent_trust, by_functions

PLAN = [{"lambda_function": "pod-check-status"},
        {"lambda_function": "pod-restart", "parameters": {"type": "pod"}, "from_previous": ["name", "namespace"]}]
DOWN = alert(alertname="PrometheusServiceDown", namespace="monitoring", pod="prometheus-0", fingerprint="prom")
SICK = {"name": "prometheus-0", "namespace": "monitoring", "type": "pod"}


def make(policy: str = "mode: execute", state: SQLiteState | None = None) -> tuple[Agent, Recorder, list[int]]:
    """An inline agent proposing the two-step plan, with every ``_step`` call's index recorded."""
    rec = Recorder()
    agent = Agent(chain=Chain([FakeModel(lambda _: ("pod-check-status", {"namespace": "monitoring"}, 1.0, PLAN))]),
                  broker=rec, gate=Gate(policy=pol.parse(policy + "\ndefaults: {enabled: true, cooldown_seconds: 0}"),
                                      state=state),
                  trust=agent_trust())
    steps: list[int] = []
    inner = agent._step

    def spy(out, index, *args, **kw):
        steps.append(index)
        return inner(out, index, *args, **kw)

    agent._step = spy  # the agent calls self._step for every step, so the instance attribute sees them all
    return agent, rec, steps


def check_result(trigger, unhealthy, rid: str | None = None):
    ev = result_event(trigger, {"function": "pod-check-status", "status": "success", "action": "check",
                                "message": "checked", "dry_run": False,
                                "details": {"healthy": not unhealthy, "unhealthy": unhealthy}})
    if rid is None:
        return by_functions(ev)
    # another run of the check: the same answer under a result id of its own
    return by_functions(make_event(ev.get_type(), ev.get_source(), data(ev), id=rid,
                                   extensions={"correlationid": ev.get_attributes()["correlationid"]}))


def test_step_zero_and_step_n_take_the_same_path_to_a_trigger():
    agent, rec, steps = make()
    [out] = agent.handle_alerts([DOWN])
    [check] = rec.triggers
    assert steps == [0] and out.verdict.allowed
    assert data(check)["step"] == 0 and data(check)["lambda_function"] == "pod-check-status"
    later = agent.handle_result(check_result(check, [SICK]))
    assert steps == [0, 1] and later.verdicts[0].allowed
    [_, restart] = rec.triggers
    assert data(restart)["step"] == 1 and data(restart)["parameters"] == SICK
    assert data(restart)["dry_run"] is False and data(restart)["correlation_id"] == data(check)["correlation_id"]
    assert [e.get_id() for e in later.events] == [restart.get_id()]


@pytest.mark.parametrize("index", [0, 1])
def test_a_refused_step_escalates(index):
    # step 0: pod-check-status in a denied namespace; step n: a target the check did not observe
    agent, rec, steps = make("mode: execute\nnamespaces: {deny: [monitoring]}" if index == 0 else "mode: execute")
    [out] = agent.handle_alerts([DOWN])
    if index == 1:
        out = agent.handle_result(check_result(rec.triggers[0], [{**SICK, "namespace": "payments"}]))
    verdict = out.verdict if index == 0 else out.verdicts[0]
    assert steps[-1] == index and not verdict.allowed
    [esc] = [e for e in out.events if e.get_type() == ESCALATION]
    assert data(esc)["code"] == f"{index}:{verdict.code}"
    assert data(esc)["reason"].startswith("gate refused" + (f" step {index}" if index else "") + ": ")
    assert len(rec.triggers) == index  # nothing triggered for the refused step
    assert [e.get_id() for e in rec.escalations] == [esc.get_id()]


@pytest.mark.parametrize("index", [0, 1])
def test_a_suggested_step_escalates_and_never_triggers(index):
    fn = "pod-check-status" if index == 0 else "pod-restart"
    agent, rec, steps = make(f"mode: execute\nfunctions: {{{fn}: {{mode: suggest}}}}")
    [out] = agent.handle_alerts([DOWN])
    if index == 1:
        out = agent.handle_result(check_result(rec.triggers[0], [SICK]))
    verdict = out.verdict if index == 0 else out.verdicts[0]
    assert steps[-1] == index and verdict.allowed and verdict.mode == "suggest"
    [esc] = rec.escalations
    assert data(esc)["code"] == f"{index}:suggest"
    assert data(esc)["reason"].startswith("suggest-only: would run " + (f"step {index} " if index else "") + fn)
    assert len(rec.triggers) == index


@pytest.mark.parametrize("index", [0, 1])
def test_a_duplicate_step_replays_its_trigger_without_sending_it_again(tmp_path, index):
    agent, rec, steps = make(state=SQLiteState(tmp_path / "state.db"))
    [first] = agent.handle_alerts([DOWN])
    if index == 1:
        first = agent.handle_result(check_result(rec.triggers[0], [SICK], rid="check-run-1"))
        again = agent.handle_result(check_result(rec.triggers[0], [SICK], rid="check-run-2"))
        verdict = again.verdicts[0]
    else:
        [again] = agent.handle_alerts([DOWN])
        verdict = again.verdict
    assert steps[-1] == index and verdict.duplicate
    sent = [e for e in first.events if e.get_type() == TRIGGER]
    assert [e.get_id() for e in again.events] == [e.get_id() for e in sent]  # the same trigger, re-enqueued
    assert len(rec.triggers) == index + 1 and rec.escalations == []  # ... and not sent a second time
