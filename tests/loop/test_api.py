"""The loop over real HTTP: the agent's /api (what `agent-sre approve/reject/pin` talk to), the
commands themselves, /metrics, `history` and `outcomes`, and the messages to people."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from agent_sre.cli import app as cli
from agent_sre.loop.notify import Notifier, escalation_alert
from agent_sre.server import create_app
from tests.gate.support import data, webhook
from tests.helpers import EventSink, serve_asgi
from tests.loop.support import CLASS, crash, make

TOKEN = "s3cret"


def run(*args: str, **env: str):
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200", **env})


@pytest.fixture
def served(tmp_path):
    rig = make(tmp_path)
    with serve_asgi(create_app(rig.agent, auth_token=TOKEN)) as url:
        yield rig, url


def post_alert(url, a):
    doc = a.model_dump(mode="json", exclude_none=True)
    r = httpx.post(url + "/webhook", json=webhook(doc), headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 202, r.text
    return r.json()


def test_approve_and_reject_from_the_command_line(served):
    rig, url = served
    post_alert(url, crash(1))
    post_alert(url, crash(2))
    r1, r2 = rig.requests()
    env = {"AGENT_URL": url, "AUTH_TOKEN": TOKEN}
    res = run("approve", r1["id"], "--reason", "looks right", **env)
    assert res.exit_code == 0, res.output
    assert f"{r1['id']}: approved" in res.output and "pod-restart" in res.output
    [trig] = rig.broker.triggers
    assert data(trig)["parameters"]["name"] == "web-1" and data(trig)["dry_run"] is False
    assert rig.loop.store.get_approval(r1["id"]).by.startswith("cli")

    res = run("reject", r2["id"], "--reason", "not during the backup", **env)
    assert res.exit_code == 0 and f"{r2['id']}: rejected" in res.output, res.output
    assert rig.loop.store.get_class(CLASS).rejected == 1

    # Answered already, unknown, no token, wrong token: refused with the reason.
    res = run("approve", r2["id"], **env)
    assert res.exit_code == 1 and "409" in res.output and "rejected" in res.output
    res = run("approve", "nope", **env)
    assert res.exit_code == 1 and "404" in res.output
    res = run("approve", r2["id"], AGENT_URL=url)
    assert res.exit_code == 1 and "401" in res.output
    res = run("reject", r2["id"], AGENT_URL=url, AUTH_TOKEN="wrong")
    assert res.exit_code == 2 and "--reason" in res.output  # reason is required before anything is sent
    assert len(rig.broker.triggers) == 1


def test_the_api_refuses_bad_input_with_a_reason(served):
    rig, url = served
    h = {"Authorization": f"Bearer {TOKEN}"}
    post_alert(url, crash(1))
    [req] = rig.requests()
    r = httpx.post(f"{url}/api/approvals/{req['id']}/reject", json={"reason": ""}, headers=h)
    assert r.status_code == 422
    r = httpx.post(f"{url}/api/approvals/{req['id']}/approve", json={"by": "x", "extra": 1}, headers=h)
    assert r.status_code == 422
    r = httpx.post(f"{url}/api/autonomy", json={"alert_class": "no-slash", "mode": "execute"}, headers=h)
    assert r.status_code == 422
    r = httpx.get(f"{url}/api/approvals", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "Bearer" in r.json()["error"]
    assert httpx.get(f"{url}/api/approvals?status=pending", headers=h).json()[0]["id"] == req["id"]


def test_pin_from_the_command_line_and_the_ledger_in_outcomes(served, tmp_path):
    rig, url = served
    res = run("pin", CLASS, "execute", AGENT_URL=url, AUTH_TOKEN=TOKEN)
    assert res.exit_code == 0 and "execute (pinned)" in res.output, res.output
    post_alert(url, crash(1))
    assert rig.requests() == [] and len(rig.broker.triggers) == 1  # runs without asking
    rig.answer(rig.broker.triggers[0], status="error")
    res = run("outcomes", STATE_DIR=str(tmp_path))
    assert res.exit_code == 0, res.output
    assert CLASS in res.output and "execute (pinned)" in res.output and "failed" in res.output
    doc = json.loads(run("outcomes", "--json", STATE_DIR=str(tmp_path)).output)
    [c] = doc["classes"]
    assert (c["attempts"], c["failed"], c["mode"], c["pinned"]) == (1, 1, "execute", True)
    assert doc["outcomes"][0]["outcome"] == "failed"
    assert run("pin", CLASS, "auto", AGENT_URL=url, AUTH_TOKEN=TOKEN).output.startswith(f"{CLASS}: suggest")
    res = run("outcomes", STATE_DIR=str(tmp_path / "none"))
    assert res.exit_code == 1 and "no state database" in res.output


def test_history_shows_a_results_alert_message_and_request(served, tmp_path):
    rig, url = served
    rig.loop.pin(CLASS, "execute", "ops")
    post_alert(url, crash(1))
    rig.answer(rig.broker.triggers[0])
    res = run("history", "--kind", "result", STATE_DIR=str(tmp_path))
    assert res.exit_code == 0, res.output
    [line] = [ln for ln in res.output.splitlines() if " result " in ln]
    assert "PodCrashLoopBackOff" in line and "pod-restart success: success on" in line
    assert "sent DELETE /api/v1/" in line
    [rec] = [json.loads(ln) for ln in run("history", "--json", "--kind", "result", STATE_DIR=str(tmp_path)).output
             .splitlines()]
    assert rec["alertname"] == "PodCrashLoopBackOff" and rec["data"]["details"]["request"]["method"] == "DELETE"
    assert "verify" in run("history", "--kind", "verify", STATE_DIR=str(tmp_path)).output


def test_metrics_name_verdicts_triggers_outcomes_and_approvals(served):
    rig, url = served
    post_alert(url, crash(1))
    [req] = rig.requests()
    httpx.post(f"{url}/api/approvals/{req['id']}/approve", json={"by": "t"},
               headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()
    rig.answer(rig.broker.triggers[0], status="error")
    text = httpx.get(url + "/metrics").text
    for line in ('agent_sre_gate_verdicts_total{code="ok",mode="suggest"} 1.0',
                 'agent_sre_gate_verdicts_total{code="ok",mode="execute"} 1.0',
                 'agent_sre_triggers_total{function="pod-restart",mode="execute"} 1.0',
                 'agent_sre_approvals_total{status="requested"} 1.0',
                 'agent_sre_approvals_total{status="approved"} 1.0',
                 'agent_sre_results_total{function="pod-restart",status="error"} 1.0',
                 'agent_sre_outcomes_total{alertname="PodCrashLoopBackOff",function="pod-restart",outcome="failed"} 1.0',
                 'agent_sre_escalations_total{reason="outcome:failed"} 1.0',
                 "agent_sre_outbox_lag_seconds ", "agent_sre_decision_seconds_count ",
                 "agent_sre_time_to_verified_seconds_bucket"):
        assert line in text, line


def test_escalations_and_requests_reach_people(tmp_path):
    with EventSink(status=200) as am, EventSink(status=200) as slack:
        notifier = Notifier(alertmanager_url=am.url.rstrip("/"), slack_url=slack.url, link="http://agent/ui")
        rig = make(tmp_path)
        rig.loop.notifier = notifier
        rig.agent.handle_alerts([crash(1)])  # an approval request
        rig.loop.pin(CLASS, "execute", "ops")
        rig.agent.handle_alerts([crash(2)])
        rig.answer(rig.broker.triggers[-1], status="error")  # failed: an outcome and an escalation
        [(h, body)] = am.wait_for(1)
        [posted] = json.loads(body)
        assert posted["labels"]["alertname"] == "AgentSREEscalation" and posted["labels"]["agent_sre"] == "escalation"
        assert posted["labels"]["escalated_alertname"] == "PodCrashLoopBackOff"
        assert posted["labels"]["pod"] == "web-2" and posted["labels"]["namespace"] == "media"
        assert posted["labels"]["escalation_reason"] == "outcome:failed" and posted["generatorURL"] == "http://agent/ui"
        assert "remediation failed" in posted["annotations"]["summary"]
        msgs = [json.loads(b) for _, b in slack.wait_for(3)]
        texts = [m["text"] for m in msgs]
        assert any("asks to run pod-restart" in t and "agent-sre approve" in t for t in texts)
        assert any("escalates PodCrashLoopBackOff" in t for t in texts)
        assert any("*failed*" in t for t in texts)
        assert all(m["blocks"][0]["type"] == "section" for m in msgs)


def test_the_agent_never_acts_on_its_own_escalations(tmp_path):
    rig = make(tmp_path)
    rig.loop.pin(CLASS, "execute", "ops")
    esc = escalation_alert({"alert": {"labels": crash(1).labels}, "code": "0:cooldown", "reason": "x"}, None)
    from agent_sre.alerts import Alert

    [out] = rig.agent.handle_alerts([Alert(labels=esc["labels"], annotations=esc["annotations"])])
    assert out.suppressed and out.events == [] and rig.broker.triggers == rig.broker.escalations == []
