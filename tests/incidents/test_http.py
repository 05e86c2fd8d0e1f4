"""Storms over real HTTP: ``agent-sre serve``'s app on loopback (uvicorn, durable outbox, the
packaged chain and gate), webhooks as Alertmanager sends them (grouped by alertname and namespace,
re-sent with every new member), triggers and escalations counted at a loopback CloudEvent sink."""

from __future__ import annotations

import time

import httpx
import pytest

from agent_sre import ce
from agent_sre.chain.chain import Chain
from agent_sre.events import ESCALATION, TRIGGER
from agent_sre.incidents import scenarios as S
from agent_sre.server import app_from_env
from tests.helpers import EventSink, serve_asgi
from tests.keys import key_files

SETTLE = 2.0
SCALE = 0.3  # the storm's clock: Alertmanager's group_wait 0.3 s, group_interval 0.6 s


@pytest.fixture(scope="module")
def chain():
    c = Chain()
    for s in c.stages:
        getattr(s, "warm", lambda: None)()
    return c


@pytest.fixture()
def agent(tmp_path, chain):
    with EventSink() as sink:
        env = {"STATE_DIR": str(tmp_path), "BROKER_URL": sink.url, "INCIDENT_SETTLE_SECONDS": str(SETTLE),
               "INCIDENT_RELEASE_SECONDS": "1", **key_files(tmp_path / "keys")[0]}
        with serve_asgi(app_from_env(env, chain=chain)) as url:
            yield url, sink


def events(sink):
    out = []
    for headers, body in list(sink.requests):
        ev = ce.from_http(headers, body)
        out.append((ev.get_type(), ce.data_of(ev) or {}))
    return out


def wait_drained(url: str, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    time.sleep(0.3)
    while time.time() < deadline:
        ob = httpx.get(url + "/readyz").json()["outbox"]
        if not ob["inbox"].get("pending") and not ob["events"].get("pending"):
            return
        time.sleep(0.1)
    raise TimeoutError("the agent did not drain")


def play(url: str, scn: S.Scenario) -> None:
    t0 = time.monotonic()
    for d in S.deliveries(scn, time_scale=SCALE):
        time.sleep(max(0.0, d.at - (time.monotonic() - t0)))
        r = httpx.post(url + "/webhook", json=d.payload, timeout=30)
        assert r.status_code == 202, r.text
    wait_drained(url)


def outcome(sink):
    trig = [(d["lambda_function"], d["parameters"], d["alert"]["fingerprint"]) for t, d in events(sink)
            if t == TRIGGER and d.get("step", 0) == 0]
    esc = [d for t, d in events(sink) if t == ESCALATION]
    return trig, esc


@pytest.mark.parametrize("kind,seed", [("gitrepo", 1), ("gitrepo", 0), ("node", 1), ("node", 0), ("helmrepo", 0),
                                       ("rollout", 1), ("rollout", 0), ("control", 0), ("volumes", 1)])
def test_each_kind_gets_one_decision_per_incident(agent, kind, seed):
    url, sink = agent
    scn = S.generate(kind, seed)
    play(url, scn)
    trig, esc = outcome(sink)
    want = sorted((fn, sorted(p.items())) for fn, p in scn.ideal_triggers)
    assert sorted((fn, sorted(p.items())) for fn, p, _ in trig) == want, scn.notes
    assert len(esc) == scn.escalations, [e["code"] for e in esc]
    truth = scn.by_fp()
    assert not [fp for fn, _, fp in trig if truth[fp].on_down_node]  # no pod restarted on a down node
    view = httpx.get(url + "/incidents").json()["alerts"]
    held = {a["fingerprint"]: a for a in view if a["state"] == "held"}
    assert all(truth[fp].truth == "symptom" or truth[fp].truth == "lead" for fp in held)  # controls never held
    assert {fp for fp, a in truth.items() if a.truth == "symptom"} <= set(held) | {
        fp for fp, a in truth.items() if a.cause is None}
    for e in esc:
        inc = e["incident"]
        assert e["code"] == f"incident:{inc['id']}" and len(inc["members"]) >= 1


def test_the_escalation_lists_the_incident_and_symptoms_name_their_root(agent):
    url, sink = agent
    scn = S.generate("node", 2)  # root first, every pod labelled with the node
    play(url, scn)
    (esc,) = outcome(sink)[1]
    root = next(a for a in scn.alerts if a.truth == "root")
    assert esc["alert"]["fingerprint"] == root.fingerprint
    assert {m["fingerprint"] for m in esc["incident"]["members"]} == {a.fingerprint for a in scn.alerts}
    view = {a["fingerprint"]: a for a in httpx.get(url + "/incidents").json()["alerts"]}
    for a in scn.alerts:
        if a.truth == "symptom":
            assert view[a.fingerprint]["root"] == root.fingerprint and "down" in view[a.fingerprint]["reason"]


def _hook(*alerts):
    return {"version": "4", "status": "firing", "receiver": "agent-sre", "groupKey": "k", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "alerts": list(alerts)}


NODE = {"status": "firing", "fingerprint": "n1", "startsAt": "2026-11-25T08:00:00Z",
        "labels": {"alertname": "KubeNodeNotReady", "node": "worker-1"}, "annotations": {}}
POD = {"status": "firing", "fingerprint": "p1", "startsAt": "2026-11-25T08:00:05Z",
       "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-0", "node": "worker-1"},
       "annotations": {}}


def test_a_symptom_before_its_root_waits_and_is_held_when_the_root_arrives(agent):
    url, sink = agent
    r = httpx.post(url + "/webhook", json=_hook(POD))
    (o,) = r.json()["outcomes"]
    assert o["incident"]["step"] == "defer" and o["events"] == []
    assert o["verdict"]["code"] == "deferred" and o["verdict"]["allowed"] is False
    assert o["verdict"]["mode"] == "dry_run"  # the answer says which mode the gate is in
    ready = httpx.get(url + "/readyz").json()
    assert ready["outbox"]["inbox"] == {"pending": 1}  # waiting, durably
    assert ready["incidents"]["waiting"] == 1 and 0 < ready["incidents"]["next_due_s"] <= SETTLE
    httpx.post(url + "/webhook", json=_hook(NODE))
    wait_drained(url)
    trig, esc = outcome(sink)
    assert trig == [] and len(esc) == 1 and esc[0]["alert"]["fingerprint"] == "n1"


def test_held_symptoms_are_released_when_the_root_resolves(agent):
    url, sink = agent
    httpx.post(url + "/webhook", json=_hook(NODE))
    r = httpx.post(url + "/webhook", json=_hook(POD))
    assert r.json()["outcomes"][0]["incident"]["step"] == "hold"
    httpx.post(url + "/webhook", json=_hook({**NODE, "status": "resolved", "endsAt": "2026-11-25T08:10:00Z"}))
    wait_drained(url)
    trig, esc = outcome(sink)
    assert [(fn, fp) for fn, _, fp in trig] == [("pod-restart", "p1")]  # decided on its own, once
    assert esc == []  # the node recovered before its escalation was due: nobody is paged for it


def test_a_lone_pod_acts_after_the_settle_window(agent):
    url, sink = agent
    t0 = time.monotonic()
    httpx.post(url + "/webhook", json=_hook({**POD, "labels": {**POD["labels"], "node": "worker-2"}}))
    wait_drained(url)
    trig, esc = outcome(sink)
    assert [fn for fn, _, _ in trig] == ["pod-restart"] and not esc
    assert time.monotonic() - t0 >= SETTLE - 0.2


def test_incidents_off_decides_each_alert_alone(tmp_path, chain):
    with EventSink() as sink:
        env = {"STATE_DIR": str(tmp_path), "BROKER_URL": sink.url, "INCIDENTS": "false",
               **key_files(tmp_path / "keys")[0]}
        with serve_asgi(app_from_env(env, chain=chain)) as url:
            httpx.post(url + "/webhook", json=_hook(NODE, POD))
            wait_drained(url)
            trig, esc = outcome(sink)
            assert [fn for fn, _, _ in trig] == ["pod-restart"]  # what the layer prevents
            assert httpx.get(url + "/incidents").json() == {"enabled": False, "alerts": []}
