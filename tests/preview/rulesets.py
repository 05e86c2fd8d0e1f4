"""Rule sets the preview tests read: plain rule files, a PrometheusRule manifest, and things that
are not rule files, written the way users write them."""

from __future__ import annotations

from pathlib import Path

PLAIN = """\
groups:
  - name: apps
    rules:
      - record: namespace:restarts:rate5m
        expr: sum by (namespace) (rate(kube_pod_container_status_restarts_total[5m]))
      - alert: MyAppCrashing
        expr: kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff", namespace="media"} == 1
        for: 5m
        labels: {severity: critical}
        annotations:
          summary: "{{ $labels.pod }} keeps crashing"
          lambda_function: pod-restart
          lambda_parameters: '{"name": "{{ $labels.pod }}", "namespace": "{{ $labels.namespace }}", "type": "pod"}'
      - alert: Watchdog
        expr: vector(1)
        labels: {severity: none}
"""

MANIFEST = """\
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: flux, namespace: monitoring}
spec:
  groups:
    - name: flux
      rules:
        - alert: FluxReconciliationFailure
          expr: max by (exported_namespace, name, kind) (gotk_reconcile_condition{type="Ready", status="False", kind=~"Kustomization|HelmRepository"}) == 1
          for: 10m
          labels: {severity: warning}
          annotations:
            summary: "{{ $labels.kind }} {{ $labels.exported_namespace }}/{{ $labels.name }} is not ready"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-rules}
data: {a: b}
"""

BROKEN = "groups: [\n"


def write_ruleset(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "apps.rules.yaml").write_text(PLAIN)
    (root / "flux-prometheusrule.yaml").write_text(MANIFEST)
    (root / "broken.yaml").write_text(BROKEN)
    (root / "README.md").write_text("not yaml, not read\n")
    return root
