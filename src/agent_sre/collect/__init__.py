"""Offline tooling: alert examples gathered from rule files, live Prometheus/Alertmanager and the
audit log, and the PromQL reader they rely on.

* ``promql`` — which labels the alerts of an expression carry (``infer_labels`` → ``Inferred``).
* ``rules`` — rule files and PrometheusRule manifests → ``AlertRule`` (``parse_rules``,
  ``load_rules``, ``rule_files``), and every label an alert of a rule carries (``alert_labels``).
* ``sources`` — each source → records in the dataset shape, and ``collect`` combining them
  (what ``agent-sre dataset collect`` runs).

Data flows one way: ``promql`` ← ``rules`` ← ``sources``. Nothing here is imported by the serving path.
"""

from .sources import CollectError, collect

__all__ = ["CollectError", "collect"]
