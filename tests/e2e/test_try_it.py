"""The README's walkthrough, run as written: deploy/examples/try-it/ (a metrics file served by
`python3 -m http.server`, Prometheus 2.42, Alertmanager 0.25, `agent-sre serve`), the alert fired
by editing the metrics file, and what the README says to look at afterwards (`history`,
`outbox`, `/metrics`, `preview`). Only the ports differ (free ones instead of 9100/9090/9093/8080).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e import harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TRY_IT = REPO / "deploy" / "examples" / "try-it"
AGENT_SRE = Path(sys.executable).parent / "agent-sre"
PORTS = {"9100": "exporter", "9090": "prometheus", "9093": "alertmanager", "8080": "agent"}


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> str:
    out = subprocess.run([str(AGENT_SRE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _readme_commands() -> str:
    text = (REPO / "README.md").read_text()
    return text[text.index("## Try it with a real Prometheus and Alertmanager"):]


def test_the_walkthrough_commands_are_the_ones_tested():
    readme = _readme_commands()
    for needle in ("python3 -m http.server 9100", "prometheus --config.file=prometheus.yml",
                   "--rules.alert.resend-delay=1s", "prometheus-alertmanager --config.file=alertmanager.yml",
                   "--cluster.listen-address=", "AUTH_TOKEN=try-agent-sre", "agent-sre serve",
                   "agent-sre history", "agent-sre outbox", "/metrics", "agent-sre preview rules.yml",
                   "--alertmanager-url http://127.0.0.1:9093"):
        assert needle in readme, needle


def test_walkthrough(tmp_path):
    work = tmp_path / "try-it"
    shutil.copytree(TRY_IT, work)
    port = {name: harness.free_port() for name in PORTS.values()}
    for f in ("prometheus.yml", "alertmanager.yml"):
        text = (work / f).read_text()
        for fixed, name in PORTS.items():
            text = text.replace(f"127.0.0.1:{fixed}", f"127.0.0.1:{port[name]}")
        (work / f).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "BROKER", "AUTH", "REDIS", "STATE"))}
    env.update(STATE_DIR=str(work / "state"), AUTH_TOKEN=(work / "token").read_text().strip())
    procs = [
        harness.start_process("exporter", [sys.executable, "-m", "http.server", str(port["exporter"]),
                                           "--bind", "127.0.0.1"], work),
        harness.start_process("agent", [str(AGENT_SRE), "serve", "--host", "127.0.0.1", "--port",
                                        str(port["agent"])], work, env=env),
        harness.start_process("prometheus", [harness.PROMETHEUS_BIN, "--config.file=prometheus.yml",
                                             "--storage.tsdb.path=prom-data",
                                             f"--web.listen-address=127.0.0.1:{port['prometheus']}",
                                             "--rules.alert.resend-delay=1s"], work),
        harness.start_process("alertmanager", [harness.ALERTMANAGER_BIN, "--config.file=alertmanager.yml",
                                               "--storage.path=am-data",
                                               f"--web.listen-address=127.0.0.1:{port['alertmanager']}",
                                               "--cluster.listen-address="], work),
    ]
    agent = f"http://127.0.0.1:{port['agent']}"
    try:
        harness.wait_until(lambda: httpx.get(f"{agent}/readyz", timeout=2).status_code == 200, 60,
                           what="agent ready")
        harness.wait_until(lambda: httpx.get(f"http://127.0.0.1:{port['prometheus']}/api/v1/targets",
                                             timeout=2).json()["data"]["activeTargets"][0]["health"] == "up",
                           60, what="Prometheus scraping ./metrics")
        # The README's edit: the pod starts crash looping and the app gets slow.
        metrics = work / "metrics"
        text = metrics.read_text()
        text = re.sub(r'(reason="CrashLoopBackOff"\}) 0\n', r"\1 1\n", text)
        text = re.sub(r'(service="sonarr"\}) 0\.2\n', r"\1 2.5\n", text)
        metrics.write_text(text)

        def decided() -> list[dict]:
            out = _cli("history", "--json", "--kind", "decision", cwd=work, env=env)
            recs = [json.loads(line) for line in out.splitlines() if line.strip()]
            return recs if len(recs) >= 2 else []

        recs = harness.wait_until(decided, 90, interval=1, what="two decisions in the audit log")
        by = {r["alertname"]: r["data"] for r in recs}
        crash = by["KubePodCrashLooping"]
        assert crash["decision"]["lambda_function"] == "pod-restart"
        assert crash["decision"]["parameters"] == {"name": "sonarr-7d9c5f6b8-x2kqp", "namespace": "media",
                                                   "type": "pod"}
        assert crash["verdict"]["allowed"] and crash["verdict"]["mode"] == "dry_run"
        assert by["SonarrSlowRequests"]["decision"]["lambda_function"] is None

        readable = _cli("history", cwd=work, env=env)
        assert "KubePodCrashLooping" in readable and "pod-restart" in readable
        box = json.loads(_cli("outbox", cwd=work, env=env))
        assert box["inbox"].get("done", 0) >= 2
        exposition = httpx.get(f"{agent}/metrics", timeout=5).text
        assert re.search(r'agent_sre_decisions_total\{function="pod-restart",method="[a-z_]+"\} 1\.0', exposition)

        # preview: the rule file, and the alerts Alertmanager holds now.
        rows = [json.loads(line) for line in _cli("preview", "rules.yml", "--json", cwd=work, env=env).splitlines()]
        assert {r["alertname"]: r["outcome"] for r in rows} == {"KubePodCrashLooping": "remediate",
                                                               "SonarrSlowRequests": "escalate"}
        live = [json.loads(line) for line in _cli("preview", "--alertmanager-url",
                                                  f"http://127.0.0.1:{port['alertmanager']}", "--json",
                                                  cwd=work, env=env).splitlines()]
        assert sorted(r["alertname"] for r in live) == ["KubePodCrashLooping", "SonarrSlowRequests"]
        table = _cli("preview", "rules.yml", cwd=work, env=env)
        assert "remediate 1" in table and "escalate 1" in table
    finally:
        for p in reversed(procs):
            p.stop()
