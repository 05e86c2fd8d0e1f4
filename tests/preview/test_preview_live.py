"""Preview against a live Prometheus 2.42 (its rules API) and Alertmanager 0.25 (its v2 alerts API),
and annotation templates rendered by ``collect.templates`` compared with what Prometheus itself
renders for the same alert."""

from __future__ import annotations

import pytest

from agent_sre.alerts import parse_payload
from agent_sre.collect.rules import parse_rules
from agent_sre.collect.templates import render
from agent_sre.preview import (PreviewError, alerts_from_alertmanager, preview_alerts, preview_rules,
                               rules_from_prometheus)
from tests.e2e import harness

pytestmark = [pytest.mark.slow]

CRASH = 'kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff"} == 1'
ZOO = {
    "plain": "{{ $labels.namespace }}/{{ $labels.pod }} ({{ .Labels.container }}) value {{ $value }}",
    "humanized": ("{{ $value | humanize }} {{ $value | humanize1024 }} {{ $value | humanizePercentage }} "
                  "{{ $value | humanizeDuration }}"),
    "printf": '{{ printf "%.2f" $value }} {{ printf "%s in %s" $labels.pod $labels.namespace }}',
    "map": "LABELS = {{ $labels }}",
    "branches": ("{{ with $labels.cluster }}on {{ . }}{{ else }}no cluster{{ end }}, "
                 "{{ if gt $value 100.0 }}big{{ else }}small{{ end }}"),
    "functions": ('{{ .Labels.container | toUpper }} {{ $labels.instance | stripPort }} '
                  '{{ reReplaceAll "-[^-]+$" "" $labels.pod }} {{ title "crash loop" }}'),
    "trims": "x {{- /* trimmed */ -}} y {{- $labels.reason -}} z",
}
RULES = {"groups": [{"name": "apps", "interval": "1s", "rules": [
    {"alert": "PodCrashLoopBackOff", "expr": CRASH, "labels": {"severity": "critical"},
     "annotations": {"summary": "{{ $labels.pod }} is crash looping"}},
    {"alert": "TemplateZoo", "expr": f"({CRASH}) * 1234.5", "labels": {"severity": "info"}, "annotations": ZOO},
    {"alert": "NeverFires", "expr": "vector(0) > 1", "labels": {"severity": "warning"},
     "annotations": {"summary": "never"}},
]}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    work = tmp_path_factory.mktemp("preview-live")
    with harness.Exporter() as exporter, harness.WebhookSink() as sink:
        exporter.set_crashloop("media", "sonarr-7d9c5f6b8-x2kqp", "sonarr", True)
        with harness.Stack(work, exporter.url, f"{sink.url}/webhook", RULES) as st:
            harness.wait_until(lambda: len(st.am_alerts()) >= 2, 60, what="two alerts in Alertmanager")
            yield st


def test_rules_from_a_live_prometheus_preview_like_the_rule_file(stack):
    live = rules_from_prometheus(stack.prometheus_url)
    assert [(r.alert, r.group) for r in live] == [("PodCrashLoopBackOff", "apps"), ("TemplateZoo", "apps"),
                                                 ("NeverFires", "apps")]
    assert live[0].source.startswith(stack.prometheus_url)
    import yaml

    from_file = parse_rules(yaml.safe_dump(RULES), "rules.yaml")
    a, b = preview_rules(live), preview_rules(from_file)
    assert [r.to_json()["labels"] for r in a] == [r.to_json()["labels"] for r in b]
    assert [(r.decision.lambda_function, r.outcome) for r in a] == [(r.decision.lambda_function, r.outcome) for r in b]


def test_templates_render_as_prometheus_renders_them(stack):
    [zoo] = [a for a in stack.prom_alerts() if a["labels"]["alertname"] == "TemplateZoo"]
    series = {k: v for k, v in zoo["labels"].items() if k not in ("alertname", "severity")}
    mine = {k: render(v, series, float(zoo["value"])) for k, v in ZOO.items()}
    assert mine == zoo["annotations"]


def test_alerts_firing_now_from_alertmanager(stack):
    alerts = alerts_from_alertmanager(stack.alertmanager_url)
    names = sorted(a.name for a in alerts)
    assert names == ["PodCrashLoopBackOff", "TemplateZoo"]
    assert all(a.firing and a.fingerprint for a in alerts)
    rows = {r.alert.name: r for r in preview_alerts(alerts)}
    crash = rows["PodCrashLoopBackOff"]
    assert crash.decision.lambda_function == "pod-restart"
    assert crash.decision.parameters == {"name": "sonarr-7d9c5f6b8-x2kqp", "namespace": "media", "type": "pod"}
    assert crash.outcome == "remediate"


def test_select_accepts_alerts_as_alertmanager_lists_them(stack):
    # The v2 API's alert status is an object {state, silencedBy, inhibitedBy}, not "firing".
    raw = stack.am_alerts()
    assert all(isinstance(a["status"], dict) for a in raw)
    alerts = parse_payload(raw)
    assert [a.status for a in alerts] == ["firing"] * len(raw)


def test_unreachable_sources_say_which():
    port = harness.free_port()
    with pytest.raises(PreviewError, match=f"127.0.0.1:{port}/api/v1/rules"):
        rules_from_prometheus(f"http://127.0.0.1:{port}")
    with pytest.raises(PreviewError, match="api/v2/alerts"):
        alerts_from_alertmanager(f"http://127.0.0.1:{port}")
