"""Offline tooling: alert examples gathered from rule files, live Prometheus/Alertmanager and the
audit log, and the PromQL reader they rely on.

* ``promql`` — which labels the alerts of an expression carry (``infer_labels`` → ``Inferred``).
* ``rules`` — rule files and PrometheusRule manifests → ``AlertRule`` (``parse_rules``,
  ``load_rules``, ``rule_files``), and every label an alert of a rule carries (``alert_labels``).
* ``sources`` — each source → records in the dataset shape, and ``collect`` combining them
  (what ``agent-sre dataset collect`` runs).
* ``exporters`` — which labels a scraped series carries, per exporter (its own and the scrape
  target's), with example values.
* ``templates`` — Prometheus alert templates (Go text/template) rendered as Prometheus renders them.
* ``synth`` — the alerts a rule fires, synthesised from the rule alone (what ``agent-sre preview``
  decides for).

Data flows one way: ``exporters`` ← ``promql`` ← ``rules`` ← ``sources``/``synth`` (``synth`` also
uses ``templates``). Nothing here is imported by the serving path.
"""

from .sources import CollectError, collect

__all__ = ["CollectError", "collect"]
