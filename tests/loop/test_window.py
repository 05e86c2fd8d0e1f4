"""The decay window: read from the rule (for, keep_firing_for, the longest range, the group's
interval) and Alertmanager's routes, against real HTTP answers shaped like Prometheus 2.42's
/api/v1/rules and Alertmanager 0.25's /api/v2/status; the default when they cannot be read."""

from __future__ import annotations

import pytest
import yaml
from fastapi import FastAPI

from agent_sre.collect.promql import PromQLError, duration_seconds, lookback_seconds
from agent_sre.loop.window import WindowReader, longest_group_interval
from tests.helpers import free_port, serve_asgi


@pytest.mark.parametrize("expr,seconds", [
    ("up == 0", 0), ("rate(x[5m]) > 1", 300), ("increase(kube_pod_container_status_restarts_total[15m]) > 3", 900),
    ("max_over_time(rate(x[5m])[1h:1m]) > 0", 3900), ("sum(rate(a[10m] offset 5m)) / sum(rate(b[1h])) > 0", 3600),
    ("avg_over_time(x[1h30m]) > 1 and on (pod) y", 5400), ("rate(a[2m] offset 30m) > 0", 1920)])
def test_lookback(expr, seconds):
    assert lookback_seconds(expr) == seconds


def test_durations():
    assert duration_seconds("1h30m") == 5400 and duration_seconds("250ms") == 0.25
    with pytest.raises(PromQLError):
        duration_seconds("5 minutes")


def test_the_longest_group_interval_in_a_route_tree():
    route = {"group_interval": "5m", "routes": [{"group_interval": "1m"}, {"routes": [{"group_interval": "10m"}]}]}
    assert longest_group_interval(route) == 600
    assert longest_group_interval({"routes": [{"group_interval": "30s"}]}) == 300  # the default is inherited


def test_the_window_comes_from_the_rule_and_the_routes():
    prom = FastAPI()
    am = FastAPI()

    @prom.get("/api/v1/rules")
    def rules(type: str = ""):
        assert type == "alert"
        return {"status": "success", "data": {"groups": [{"name": "g", "interval": 30, "rules": [
            {"type": "alerting", "name": "KubePodCrashLooping", "duration": 900, "keepFiringFor": 60,
             "query": 'max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff"}[5m]) >= 1'},
            {"type": "alerting", "name": "Broken", "duration": 60, "query": "this is not ( promql"},
        ]}]}}

    @am.get("/api/v2/status")
    def status():
        cfg = {"route": {"receiver": "x", "group_interval": "5m",
                         "routes": [{"receiver": "agent-sre", "group_interval": "1m"}]}}
        return {"config": {"original": yaml.safe_dump(cfg)}}

    with serve_asgi(prom) as p, serve_asgi(am) as a:
        w = WindowReader(p, a, default_s=123, grace_s=10)
        got = w.for_alert("KubePodCrashLooping")
        assert got.seconds == 900 + 60 + 300 + 30 + 300 + 10
        assert got.parts == {"source": "rule", "for_s": 900, "keep_firing_for_s": 60, "lookback_s": 300,
                             "evaluation_interval_s": 30, "group_interval_s": 300, "grace_s": 10}
        assert w.for_alert("Broken").parts["lookback_s"] == 0  # unreadable expression: no range counted
        assert w.for_alert("NotARule").parts["source"] == "default"
        assert WindowReader(p, a, grace_s=0, group_interval_s=42).for_alert("KubePodCrashLooping").parts[
            "group_interval_s"] == 42


def test_unreachable_apis_mean_the_default():
    nowhere = f"http://127.0.0.1:{free_port()}"
    w = WindowReader(nowhere, nowhere, default_s=900, grace_s=60, timeout_s=0.5)
    got = w.for_alert("KubePodCrashLooping")
    assert got.seconds == 960 and got.parts["source"] == "default"
