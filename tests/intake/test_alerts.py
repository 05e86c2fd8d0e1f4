import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_sre.alerts import IntakeError, parse_json_bytes, parse_payload

WEBHOOK = {
    "version": "4", "status": "firing", "receiver": "agent-sre", "groupKey": "{}:{}",
    "groupLabels": {"alertname": "PodCrashLoopBackOff"},
    "commonLabels": {"alertname": "PodCrashLoopBackOff", "severity": "critical"},
    "commonAnnotations": {},
    "alerts": [
        {"status": "firing", "labels": {"alertname": "PodCrashLoopBackOff", "namespace": "a", "pod": "p1"},
         "annotations": {}, "startsAt": "2026-11-01T00:00:00Z", "fingerprint": "f1"},
        {"status": "resolved", "labels": {"alertname": "PodCrashLoopBackOff", "namespace": "a", "pod": "p2"},
         "annotations": {}, "startsAt": "2026-11-01T00:00:00Z", "fingerprint": "f2"},
    ],
}


def test_webhook_is_split_per_alert_with_each_alerts_own_status():
    alerts = parse_payload(WEBHOOK)
    assert [a.labels["pod"] for a in alerts] == ["p1", "p2"]
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert alerts[0].labels["severity"] == "critical"  # commonLabels merged in
    assert alerts[0].key() != alerts[1].key()


def test_origin_cloudevent_data_shape_is_accepted():
    data = {"alertname": "FluxReconciliationFailure", "status": "firing", "severity": "warning",
            "labels": {"kind": "Kustomization", "name": "apps"}, "annotations": {}}
    [a] = parse_payload(data)
    assert a.name == "FluxReconciliationFailure" and a.labels["kind"] == "Kustomization"


@pytest.mark.parametrize("body,why", [
    (b"", "empty"),
    (b"{not json", "not valid JSON"),
    (b"[]", "empty list"),
    (b"42", "expected a JSON object"),
    (b'{"foo": 1}', "neither"),
    (json.dumps({**WEBHOOK, "version": "3"}).encode(), "version"),
    (json.dumps({**WEBHOOK, "alerts": []}).encode(), "alerts"),
    (b'{"labels": {"severity": "x"}}', "alertname"),
    (b'{"labels": {"alertname": "X", "a": {"nested": 1}}}', "must be a string"),
    (b'{"labels": {"alertname": "X"}, "status": "exploded"}', "status"),
])
def test_malformed_input_says_what_is_wrong(body, why):
    with pytest.raises(IntakeError) as e:
        parse_json_bytes(body)
    assert why in str(e.value)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=12))
def test_any_json_either_parses_or_raises_intake_error(doc):
    try:
        alerts = parse_payload(doc)
    except IntakeError:
        return
    assert all(a.labels.get("alertname") for a in alerts)


def test_alerts_as_alertmanagers_v2_api_lists_them():
    """``GET /api/v2/alerts`` gives status as an object and no status string: listed alerts are
    firing (active, silenced or unprocessed) unless their endsAt has passed."""
    listed = [{"labels": {"alertname": "KubePodCrashLooping", "pod": "p-1", "namespace": "media"},
               "annotations": {"summary": "s"}, "startsAt": "2026-11-29T10:00:00.000Z",
               "endsAt": "2999-01-01T00:00:00.000Z", "fingerprint": "c22c840480b18df7",
               "updatedAt": "2026-11-29T10:00:01.000Z", "generatorURL": "http://prometheus/graph",
               "receivers": [{"name": "agent-sre"}],
               "status": {"state": state, "silencedBy": [], "inhibitedBy": []}}
              for state in ("active", "suppressed", "unprocessed")]
    alerts = parse_payload(listed)
    assert [a.status for a in alerts] == ["firing"] * 3
    assert alerts[0].fingerprint == "c22c840480b18df7" and alerts[0].labels["pod"] == "p-1"
    ended = parse_payload({**listed[0], "endsAt": "2020-01-01T00:00:00.000Z"})
    assert ended[0].status == "resolved"
