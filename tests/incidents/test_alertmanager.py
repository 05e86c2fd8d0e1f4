"""A real Alertmanager (Debian's 0.25, loopback, no gossip) in front of the served agent: alerts
are posted to Alertmanager's API, it groups them by alertname and namespace and delivers the
webhooks; the agent also reads its v2 API (ALERTMANAGER_URL). Pods on a node that went NotReady
arrive first, in their own groups; the node's alert after them."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import yaml

from agent_sre import ce
from agent_sre.chain.chain import Chain
from agent_sre.events import ESCALATION, TRIGGER
from agent_sre.incidents.alertmanager import AlertmanagerFeed, parse_alerts
from agent_sre.server import app_from_env
from tests.e2e import harness
from tests.helpers import EventSink, serve_asgi
from tests.keys import key_files

pytestmark = pytest.mark.skipif(bool(harness.binaries_missing()), reason="Debian's alertmanager is not installed")


def _am(workdir, webhook_url: str) -> tuple[harness.Process, str]:
    port = harness.free_port()
    cfg = {"route": {"receiver": "agent-sre", "group_by": ["alertname", "namespace"], "group_wait": "1s",
                     "group_interval": "1s", "repeat_interval": "1h"},
           "receivers": [{"name": "agent-sre", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}]}
    (workdir / "am.yml").write_text(yaml.safe_dump(cfg))
    (workdir / "am-data").mkdir()
    p = harness.start_process("alertmanager", [harness.ALERTMANAGER_BIN, f"--config.file={workdir / 'am.yml'}",
                                               f"--storage.path={workdir / 'am-data'}",
                                               f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                              workdir)
    url = f"http://127.0.0.1:{port}"
    harness.wait_until(lambda: httpx.get(url + "/-/ready", timeout=1).status_code == 200, 30, what="alertmanager")
    return p, url


def _post(am: str, *labelsets: dict[str, str]) -> None:
    now = datetime.now(timezone.utc)
    body = [{"labels": ls, "annotations": {"summary": "x"}, "startsAt": now.isoformat(),
             "endsAt": (now + timedelta(minutes=10)).isoformat()} for ls in labelsets]
    r = httpx.post(am + "/api/v2/alerts", json=body, timeout=5)
    assert r.status_code == 200, r.text


def test_pods_before_their_node_through_alertmanager_restart_nothing_and_page_once(tmp_path):
    with EventSink() as sink:
        env = {"STATE_DIR": str(tmp_path / "state"), "BROKER_URL": sink.url, "INCIDENT_SETTLE_SECONDS": "4",
               **key_files(tmp_path / "keys")[0]}
        chain = Chain()
        app = app_from_env(env, chain=chain)
        with serve_asgi(app) as agent_url:
            am_proc, am = _am(tmp_path, agent_url + "/webhook")
            try:
                # the agent reads Alertmanager's list as well as its webhooks
                feed = AlertmanagerFeed(am, 0.5, app.state.agent.sync_incidents)
                app.state.agent.feeds.append(feed)
                feed.start()
                _post(am, *({"alertname": "KubePodCrashLooping", "namespace": ns, "pod": pod, "container": "app"}
                            for ns, pod in (("shop", "cart-0"), ("shop", "web-0"), ("media", "jellyfin-0"))))
                time.sleep(1.0)
                _post(am, {"alertname": "KubeNodeNotReady", "node": "worker-1", "condition": "Ready",
                           "status": "true", "namespace": "monitoring"})

                def settled():
                    ob = httpx.get(agent_url + "/readyz").json()["outbox"]
                    esc = [ev for ev in _events(sink) if ev[0] == ESCALATION]
                    return esc and not ob["inbox"].get("pending") and not ob["events"].get("pending")

                harness.wait_until(settled, 40, what="the incident's escalation")
                time.sleep(2.5)  # Alertmanager's re-sends after that change nothing
                evs = _events(sink)
                assert [t for t, _ in evs if t == TRIGGER] == []
                (esc,) = [d for t, d in evs if t == ESCALATION]
                assert esc["alert"]["labels"]["alertname"] == "KubeNodeNotReady"
                assert len(esc["incident"]["members"]) == 4
                view = httpx.get(agent_url + "/incidents").json()["alerts"]
                assert sorted(a["state"] for a in view) == ["escalated", "held", "held", "held"]
                assert len(parse_alerts(httpx.get(am + "/api/v2/alerts").json())) == 4
            finally:
                am_proc.stop()


def _events(sink):
    out = []
    for headers, body in list(sink.requests):
        ev = ce.from_http(headers, body)
        out.append((ev.get_type(), ce.data_of(ev) or {}))
    return out
