"""Prometheus metrics of the remediation functions (default registry, served at /metrics)."""

from prometheus_client import Counter, Histogram

RESULTS = Counter("agent_sre_function_results_total", "Function runs by outcome", ["function", "status"])
DURATION = Histogram("agent_sre_function_duration_seconds", "Function run time", ["function"],
                     buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
DUPLICATES = Counter("agent_sre_function_duplicate_triggers_total",
                     "Triggers whose id was seen before (answered with the first result)", ["function"])
REJECTED = Counter("agent_sre_function_rejected_events_total", "Events refused by the HTTP app", ["reason"])
SINK_ERRORS = Counter("agent_sre_function_sink_errors_total", "Result events the sink did not accept")
