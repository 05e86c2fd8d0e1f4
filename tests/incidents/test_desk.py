"""The incident desk under a simulated clock: settle, hold, one escalation, release."""

from agent_sre.alerts import Alert
from agent_sre.decision import Decision, Method, validated
from agent_sre.incidents.desk import Desk

NODE = Alert(labels={"alertname": "KubeNodeNotReady", "node": "n1"}, startsAt="2026-11-20T08:00:00Z", fingerprint="node")
GIT = Alert(labels={"alertname": "FluxReconciliationFailure", "kind": "GitRepository", "name": "fleet",
                    "exported_namespace": "flux-system"}, startsAt="2026-11-20T08:00:00Z", fingerprint="git")


def pod(name: str, node: str | None = "n1", fp: str | None = None) -> Alert:
    labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": name}
    if node:
        labels["node"] = node
    return Alert(labels=labels, startsAt="2026-11-20T08:00:30Z", fingerprint=fp or name)


def ks(name: str) -> Alert:
    return Alert(labels={"alertname": "FluxReconciliationFailure", "kind": "Kustomization", "name": name,
                         "exported_namespace": "flux-system"}, annotations={"message": "Source artifact not found"},
                 startsAt="2026-11-20T08:00:10Z", fingerprint=name)


def restart(a: Alert) -> Decision:
    return validated("pod-restart", {"name": a.labels["pod"], "namespace": "shop", "type": "pod"},
                     method=Method.RULES, confidence=1.0)


def reconcile(a: Alert, fn: str = "flux-reconcile-kustomization") -> Decision:
    return validated(fn, {"name": a.labels["name"], "namespace": "flux-system"}, method=Method.RULES, confidence=1.0)


NOTHING = Decision(reasoning="no remediation fits")


def test_a_pod_waits_out_the_settle_window_then_acts_alone():
    d = Desk(settle_s=10)
    p = pod("web-0")
    (st,), _ = d.plan([(p, restart(p))], now=100.0, rows=[1])
    assert st.what == "defer" and st.until == 110.0
    (st,), _ = d.plan([(p, restart(p))], now=110.0, fresh=False, rows=[1])
    assert st.what == "decide"


def test_a_root_arriving_inside_the_window_holds_the_waiting_pods_and_escalates_once():
    d = Desk(settle_s=10)
    p1, p2 = pod("web-0"), pod("db-0")
    steps, _ = d.plan([(p1, restart(p1)), (p2, restart(p2))], now=100.0, rows=[1, 2])
    assert [s.what for s in steps] == ["defer", "defer"]
    (st,), changes = d.plan([(NODE, NOTHING)], now=103.0, rows=[3])
    assert st.what == "defer" and st.until == 113.0  # its escalation waits for the members
    assert sorted((c.what, c.row) for c in changes) == [("hold", 1), ("hold", 2)]
    # Alertmanager re-sends the pods' group: held again, quietly
    steps, changes = d.plan([(p1, restart(p1)), (p2, restart(p2))], now=105.0, rows=[4, 5])
    assert [(s.what, s.quiet) for s in steps] == [("hold", True), ("hold", True)] and not changes
    p3 = pod("cart-0")
    (st,), _ = d.plan([(p3, restart(p3))], now=108.0, rows=[6])
    assert st.what == "hold"
    (st,), _ = d.plan([(NODE, NOTHING)], now=113.0, fresh=False, rows=[3])
    assert st.what == "escalate" and st.incident == "node" and len(st.members) == 4
    # never a second escalation: not for the root re-sent, not for a later member
    (st,), _ = d.plan([(NODE, NOTHING)], now=120.0, rows=[7])
    assert st.what == "hold" and st.quiet


def test_a_root_with_a_function_acts_now_and_its_symptoms_are_held():
    d = Desk(settle_s=10)
    a, b = ks("apps"), ks("infra")
    steps, _ = d.plan([(GIT, reconcile(GIT, "flux-reconcile-gitrepository")), (a, reconcile(a)), (b, reconcile(b))],
                      now=50.0, rows=[1, 2, 3])
    assert [s.what for s in steps] == ["decide", "hold", "hold"]
    assert steps[1].root is GIT and "symptom of" in steps[1].reason


def test_unrelated_read_only_checks_and_heartbeats_do_not_wait():
    d = Desk(settle_s=10, needs_nothing=lambda a: a.name == "Watchdog")
    pvc = Alert(labels={"alertname": "KubePersistentVolumeFillingUp", "namespace": "db", "persistentvolumeclaim": "d"})
    check = validated("check-pvc-status", {"name": "d", "namespace": "db"}, method=Method.RULES, confidence=1.0)
    wd = Alert(labels={"alertname": "Watchdog"})
    steps, _ = d.plan([(pvc, check), (wd, NOTHING)], now=1.0)
    assert [s.what for s in steps] == ["decide", "decide"]


def test_a_rollout_lead_escalates_once_after_the_window_with_its_pods():
    d = Desk(settle_s=5)
    p1, p2, p3 = (pod(f"web-7d9f8c6b5-{s}", node=None) for s in ("bbbbb", "ccccc", "ddddd"))
    steps, _ = d.plan([(p1, restart(p1)), (p2, restart(p2))], now=10.0, rows=[1, 2])
    assert sorted(s.what for s in steps) == ["defer", "hold"]
    lead = p1 if steps[0].what == "defer" else p2
    (st,), _ = d.plan([(p3, restart(p3))], now=12.0, rows=[3])
    assert st.what == "hold"
    (st,), _ = d.plan([(lead, restart(lead))], now=15.0, fresh=False, rows=[1])
    assert st.what == "escalate" and len(st.members) == 3 and st.incident.startswith("rollout:")


def test_symptoms_are_released_when_the_root_resolves_and_decided_alone_later():
    d = Desk(settle_s=0, release_s=30)
    p = pod("web-0")
    (st,), _ = d.plan([(NODE, NOTHING)], now=0.0)
    assert st.what == "escalate"
    (st,), _ = d.plan([(p, restart(p))], now=1.0)
    assert st.what == "hold"
    resolved = NODE.model_copy(update={"status": "resolved"})
    (st,), changes = d.plan([(resolved, NOTHING)], now=100.0)
    assert st.what == "decide" and [(c.what, c.alert.fingerprint, c.until) for c in changes] == [("release", "web-0", 130.0)]
    (st,), _ = d.plan([(p, restart(p))], now=130.0, fresh=False, rows=[9])
    assert st.what == "decide"


def test_a_waiting_alert_that_resolves_is_dropped_and_a_resent_one_is_not_doubled():
    d = Desk(settle_s=10)
    p = pod("web-0")
    (st,), _ = d.plan([(p, restart(p))], now=0.0, rows=[1])
    assert st.what == "defer"
    (st,), _ = d.plan([(p, restart(p))], now=2.0, rows=[2])  # the group re-sent
    assert st.what == "drop"
    d.plan([(p.model_copy(update={"status": "resolved"}), restart(p))], now=3.0, rows=[3])
    (st,), _ = d.plan([(p, restart(p))], now=10.0, fresh=False, rows=[1])
    assert st.what == "drop"


def test_an_alone_alert_with_nothing_to_do_is_escalated_as_its_own_incident_once():
    d = Desk(settle_s=10)
    (st,), _ = d.plan([(NODE, NOTHING)], now=0.0)
    assert st.what == "defer"
    (st,), _ = d.plan([(NODE, NOTHING)], now=10.0, fresh=False)
    assert st.what == "escalate" and st.incident == "node" and len(st.members) == 1
    p = pod("web-0")
    (st,), _ = d.plan([(p, restart(p))], now=1.0)
    assert st.what == "hold"


def test_an_incident_that_resolved_and_comes_back_is_escalated_again():
    """One escalation per incident *occurrence*: once its alert resolves, the next time it fires is
    a new incident that a person must hear about."""
    d = Desk(settle_s=10)
    d.plan([(NODE, NOTHING)], now=0.0)
    (st,), _ = d.plan([(NODE, NOTHING)], now=10.0, fresh=False)
    assert st.what == "escalate"
    gone = NODE.model_copy(update={"status": "resolved", "endsAt": "2026-11-20T09:00:00Z"})
    d.plan([(gone, NOTHING)], now=3600.0)
    again = NODE.model_copy(update={"startsAt": "2026-11-21T08:00:00Z"})
    (st,), _ = d.plan([(again, NOTHING)], now=86400.0)
    assert st.what == "defer"
    (st,), _ = d.plan([(again, NOTHING)], now=86410.0, fresh=False)
    assert st.what == "escalate" and st.incident == "node"
    assert d.stats(86410.0)["escalated"] <= 1  # what is remembered stays bounded by what fires
