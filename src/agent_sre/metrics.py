"""The agent's Prometheus metrics, one registry per agent (served at ``/metrics`` with the HTTP
service's own). Counted where things happen: the gate's verdicts and the events in agent.py, the
closed loop's outcomes, approvals and notifications in agent_sre.loop."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_VERIFY = (5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.verdicts = Counter("agent_sre_gate_verdicts_total", "Gate verdicts by code (ok, cooldown, namespace...) "
                                "and mode", ["code", "mode"], registry=r)
        self.triggers = Counter("agent_sre_triggers_total", "Trigger events enqueued", ["function", "mode"], registry=r)
        self.escalations = Counter("agent_sre_escalations_total", "Escalations by reason", ["reason"], registry=r)
        self.results = Counter("agent_sre_results_total", "Function results received", ["function", "status"],
                               registry=r)
        self.decision_seconds = Histogram("agent_sre_decision_seconds", "Time from intake to a decision, per alert",
                                          buckets=_SECONDS, registry=r)
        self.outbox_lag = Gauge("agent_sre_outbox_lag_seconds", "Age of the oldest event waiting for delivery",
                                registry=r)
        self.outcomes = Counter("agent_sre_outcomes_total", "Outcomes of remediations",
                                ["alertname", "function", "outcome"], registry=r)
        self.time_to_verified = Histogram("agent_sre_time_to_verified_seconds",
                                          "From the remediation to its alert's resolution", buckets=_VERIFY, registry=r)
        self.suppressed = Counter("agent_sre_suppressed_total", "Re-fires suppressed inside a decay window",
                                  ["alertname"], registry=r)
        self.approvals = Counter("agent_sre_approvals_total", "Approval requests by what became of them", ["status"],
                                 registry=r)
        self.autonomy = Counter("agent_sre_autonomy_changes_total", "Alert classes changing mode", ["to"], registry=r)
        self.notifications = Counter("agent_sre_notifications_total", "Messages to people (Slack, Alertmanager)",
                                     ["sink", "result"], registry=r)
