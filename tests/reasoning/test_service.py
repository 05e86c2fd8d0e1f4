"""trm-reasoning over real HTTP (uvicorn on loopback), with a real exported TRM where it matters."""

import asyncio
import shutil
import threading
import time

import httpx
import pytest

from agent_sre.alerts import parse_payload
from agent_sre.chain.trm import TRMStage
from agent_sre.decision import Abstain, Method, validated
from agent_sre.reasoning.engine import DecisionEngine
from agent_sre.reasoning.service import create_app
from tests.helpers import serve_asgi
from testsupport.models import sample_alerts

ALERTS = sample_alerts(6, seed=3)
KEYS = {"alertname", "status", "lambda_function", "parameters", "plan", "reasoning", "confidence", "method",
        "iterations", "q_halt", "abstained", "reason"}


def test_decide_single_batch_and_webhook_with_a_real_model(tiny_model):
    with serve_asgi(create_app(model_dir=tiny_model, threshold=0.0)) as url:
        assert httpx.get(url + "/readyz").json()["status"] == "ready"
        one = httpx.post(url + "/v1/decide", json=ALERTS[0])
        assert one.status_code == 200
        doc = one.json()
        assert set(doc) == KEYS and doc["alertname"] == ALERTS[0]["labels"]["alertname"]
        assert doc["method"] == Method.TRM.value and 1 <= doc["iterations"] <= 4  # tiny preset: n_sup 4
        assert 0.0 <= doc["confidence"] <= 1.0
        many = httpx.post(url + "/v1/decide/batch", json=ALERTS).json()["decisions"]
        assert [d["alertname"] for d in many] == [a["labels"]["alertname"] for a in ALERTS]
        assert many[0] == doc  # same alert alone or in a batch: same answer
        hook = {"version": "4", "status": "firing", "receiver": "agent", "alerts": ALERTS[:2]
                + [{**ALERTS[2], "status": "resolved"}]}
        got = httpx.post(url + "/v1/decide", json=hook).json()["decisions"]
        assert len(got) == 3 and got[2]["method"] == "none" and not got[2]["abstained"]
        assert "resolved" in got[2]["reasoning"]
        # the service agrees with the in-process stage on every alert (same threshold rule)
        stage = TRMStage.from_path(tiny_model, threshold=0.0)
        for a, d in zip(ALERTS, many):
            alert = parse_payload(a)[0]
            try:
                local = stage(alert)
                assert not d["abstained"] and d["lambda_function"] == local.lambda_function
                assert d["parameters"] == local.parameters
            except Abstain as e:
                assert d["abstained"] and d["reason"] == str(e)
        metrics = httpx.get(url + "/metrics").text
        assert 'trm_reasoning_requests_total{code="200",endpoint="decide"} 2.0' in metrics
        assert "trm_reasoning_batch_size_count" in metrics and "trm_reasoning_halting_steps_bucket" in metrics
        assert "trm_reasoning_model_ready 1.0" in metrics
        spec = httpx.get(url + "/openapi.json").json()
        assert {"/v1/decide", "/v1/decide/batch", "/readyz", "/healthz", "/metrics"} <= set(spec["paths"])


def test_bad_input_is_400(tiny_model):
    with serve_asgi(create_app(model_dir=tiny_model)) as url:
        r = httpx.post(url + "/v1/decide", content=b"not json")
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
        r = httpx.post(url + "/v1/decide", json={"labels": {"severity": "x"}})
        assert r.status_code == 400 and "alertname" in r.json()["error"]


def test_missing_model_fails_readiness_not_the_process(tmp_path):
    with serve_asgi(create_app(model_dir=tmp_path / "nowhere")) as url:
        assert httpx.get(url + "/healthz").status_code == 200
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and "does not exist" in r.json()["reason"]
        r = httpx.post(url + "/v1/decide", json=ALERTS[0])
        assert r.status_code == 503 and "model not ready" in r.json()["error"]
        assert "trm_reasoning_model_ready 0.0" in httpx.get(url + "/metrics").text


def test_corrupt_model_fails_readiness_then_recovers_when_fixed(tiny_model, model_copy):
    w = model_copy / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF
    w.write_bytes(bytes(data))
    with serve_asgi(create_app(model_dir=model_copy, reload_interval_s=0.2)) as url:
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and "checksum" in r.json()["reason"]
        shutil.copy(tiny_model / "model.safetensors", w)  # the volume gets the good file
        time.sleep(0.3)
        assert httpx.get(url + "/readyz").status_code == 200
        assert httpx.post(url + "/v1/decide", json=ALERTS[0]).status_code == 200


class EchoPredictor:
    """Decides pod-check-status for every alert, naming it; records batch sizes; takes 30 ms per batch."""

    def __init__(self, delay=0.03):
        self.sizes = []
        self.delay = delay
        self.lock = threading.Lock()

    def predict_batch(self, alerts):
        with self.lock:
            self.sizes.append(len(alerts))
        time.sleep(self.delay)
        return [validated("pod-check-status", {"namespace": "ns"}, method=Method.TRM, confidence=0.99,
                          reasoning=a.name, iterations=2) for a in alerts]


def _concurrent(url, n):
    async def go():
        async with httpx.AsyncClient(timeout=10) as c:
            rs = await asyncio.gather(*[c.post(url + "/v1/decide", json={"labels": {"alertname": f"A{i}"}})
                                        for i in range(n)])
        return rs
    return asyncio.run(go())


def test_concurrent_requests_are_micro_batched_and_answers_stay_in_order():
    p = EchoPredictor()
    with serve_asgi(create_app(DecisionEngine(p), max_batch=16, max_wait_ms=5)) as url:
        rs = _concurrent(url, 48)
        m = httpx.get(url + "/metrics").text
    assert all(r.status_code == 200 for r in rs)
    assert [r.json()["reasoning"] for r in rs] == [f"A{i}" for i in range(48)]
    assert sum(p.sizes) == 48 and max(p.sizes) <= 16
    assert len(p.sizes) <= 12, p.sizes  # 48 one-alert requests shared a handful of forward passes
    assert "trm_reasoning_batch_size_sum 48.0" in m


def test_full_queue_answers_503():
    p = EchoPredictor(delay=0.3)
    with serve_asgi(create_app(DecisionEngine(p), max_batch=2, max_wait_ms=0, max_queue=4)) as url:
        rs = _concurrent(url, 20)
    codes = sorted(r.status_code for r in rs)
    assert 503 in codes and 200 in codes
    assert any("queue full" in r.json()["error"] for r in rs if r.status_code == 503)


def test_a_failing_engine_answers_per_alert_and_keeps_serving():
    class Flaky:
        calls = 0

        def predict_batch(self, alerts):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("boom")
            return [Abstain("not sure") for _ in alerts]

    with serve_asgi(create_app(DecisionEngine(Flaky()))) as url:
        d = httpx.post(url + "/v1/decide", json=ALERTS[0]).json()
        assert d["abstained"] and "RuntimeError: boom" in d["reason"]
        d = httpx.post(url + "/v1/decide", json=ALERTS[0]).json()
        assert d["abstained"] and d["reason"] == "not sure"


def test_backend_auto_uses_onnx_runtime_when_installed_and_agrees_with_torch(tiny_model):
    import importlib.util

    from agent_sre.reasoning.engine import TRMEngine

    auto = TRMEngine.load(tiny_model, threshold=0.0)
    torch_ = TRMEngine.load(tiny_model, threshold=0.0, backend="torch")
    has_ort = importlib.util.find_spec("onnxruntime") is not None
    assert auto.info["backend"] == ("onnx" if has_ort else "torch") and torch_.info["backend"] == "torch"
    alerts = [parse_payload(a)[0] for a in ALERTS]
    for a, b in zip(auto.decide_batch(alerts), torch_.decide_batch(alerts)):
        assert (a.abstain, a.iterations) == (b.abstain, b.iterations)
        assert a.confidence == pytest.approx(b.confidence, rel=1e-3, abs=1e-9)
        da, db = (x.decision.model_dump(exclude={"confidence"}) if x.decision else None for x in (a, b))
        assert da == db
    with serve_asgi(create_app(model_dir=tiny_model, threshold=0.0)) as url:
        assert httpx.get(url + "/readyz").json()["model"]["backend"] == auto.info["backend"]
