"""The chain in the agent with the TRM behind TRM_API_URL and the LLM behind LLM_URL, all over real HTTP:
whatever fails, the chain falls through, says why, and the rules decide."""

import time

import httpx

from agent_sre.agent import Agent
from agent_sre.alerts import parse_payload
from agent_sre.chain.annotations import AnnotationStage
from agent_sre.chain.chain import Chain, build_stages
from agent_sre.chain.llm import LLMStage
from agent_sre.chain.rules import RuleStage
from agent_sre.chain.trm import RemoteTRM, TRMStage
from agent_sre.decision import Abstain, Method, validated
from agent_sre.reasoning.engine import DecisionEngine
from agent_sre.reasoning.service import create_app
from agent_sre.server import create_app as agent_app
from tests.helpers import free_port, serve_asgi
from tests.llm.fakes import FakeLLM, Reply

CRASH = {"labels": {"alertname": "PodCrashLoopBackOff", "namespace": "media", "pod": "jellyfin-5c8-abcde"}}
RULED = {"name": "jellyfin-5c8-abcde", "namespace": "media", "type": "pod"}


def crash():
    return parse_payload(CRASH)[0]


class Fixed:
    """A service-side predictor: restarts the pod named in the alert, or abstains, after ``delay``."""

    def __init__(self, abstain=False, delay=0.0):
        self.abstain, self.delay = abstain, delay

    def predict_batch(self, alerts):
        time.sleep(self.delay)
        if self.abstain:
            return [Abstain("abstained (pod-restart: confidence 0.41 < 0.90)") for _ in alerts]
        return [validated("pod-restart", {"name": a.labels["pod"], "namespace": a.labels["namespace"],
                                          "type": "deployment"}, method=Method.TRM, confidence=0.97,
                          reasoning="trm: pod-restart", iterations=3) for a in alerts]


def chain(trm_url, llm_url=None):
    stages = [AnnotationStage(), RemoteTRM(trm_url)]
    stages.append(LLMStage(url=llm_url) if llm_url else LLMStage(url=""))
    return Chain(stages + [RuleStage()])


def test_trm_api_url_selects_the_remote_stage(monkeypatch):
    monkeypatch.setenv("TRM_API_URL", "http://trm-reasoning:8080")
    monkeypatch.delenv("USE_TRM", raising=False)
    [trm] = [s for s in build_stages() if s.name == "trm"]
    assert isinstance(trm, RemoteTRM) and trm.url == "http://trm-reasoning:8080"
    monkeypatch.setenv("USE_TRM", "false")
    assert not any(s.name == "trm" for s in build_stages())
    monkeypatch.delenv("TRM_API_URL")
    assert isinstance(TRMStage(), TRMStage)  # in-process path unchanged


def test_the_llm_stage_is_built_only_with_llm_url(monkeypatch):
    monkeypatch.delenv("LLM_URL", raising=False)
    monkeypatch.setenv("USE_TRM", "false")
    assert [s.name for s in build_stages()] == ["annotations", "rules"]
    monkeypatch.setenv("LLM_URL", "http://ollama:11434")
    assert [s.name for s in build_stages()] == ["annotations", "rules", "llm"]


def test_remote_trm_decides_single_and_batched():
    with serve_asgi(create_app(DecisionEngine(Fixed()))) as url:
        c = chain(url)
        d = c.decide(crash())
        assert d.method is Method.TRM and d.parameters == {**RULED, "type": "deployment"} and d.iterations == 3
        two = c.decide_many([crash(), parse_payload({**CRASH, "status": "resolved"})[0], crash()])
        assert [x.method for x in two] == [Method.TRM, Method.NONE, Method.TRM]


def test_remote_abstention_falls_through_with_the_services_reason():
    with serve_asgi(create_app(DecisionEngine(Fixed(abstain=True)))) as url:
        d = chain(url).decide(crash())
    assert d.method is Method.RULES and d.parameters == RULED
    assert d.fallthrough[1] == "trm: abstained (pod-restart: confidence 0.41 < 0.90)"


def test_trm_service_down_falls_through_and_says_so():
    d = chain(f"http://127.0.0.1:{free_port()}").decide(crash())
    assert d.method is Method.RULES and d.parameters == RULED
    assert d.fallthrough[1].startswith("trm: service unreachable at http://127.0.0.1:")


def test_trm_service_not_ready_falls_through(tmp_path):
    with serve_asgi(create_app(model_dir=tmp_path / "missing")) as url:
        d = chain(url).decide(crash())
    assert d.method is Method.RULES
    assert "trm: service answered HTTP 503: model not ready" in d.fallthrough[1]


def test_slow_trm_service_is_cut_off_by_its_timeout(monkeypatch):
    monkeypatch.setenv("TRM_TIMEOUT_MS", "200")
    with serve_asgi(create_app(DecisionEngine(Fixed(delay=1.5)))) as url:
        t0 = time.perf_counter()
        d = chain(url).decide(crash())
        took = time.perf_counter() - t0
    assert d.method is Method.RULES and took < 1.0
    assert d.fallthrough[1].startswith("trm: service timed out after 200 ms")


def test_llm_garbage_falls_through_to_rules():
    with FakeLLM("ollama", Reply(content="¯\\_(ツ)_/¯ restart everything?")) as llm:
        d = Chain([AnnotationStage(), LLMStage(url=llm.url), RuleStage()]).decide(crash())
    assert d.method is Method.RULES and d.parameters == RULED
    assert d.fallthrough[1].startswith("llm: functiongemma:270m made no tool call")


def test_llm_decides_when_trm_is_down():
    with FakeLLM("openai", Reply(calls=[("pod-restart", {"name": "jellyfin-5c8-abcde", "namespace": "media"})])) as llm:
        d = chain(f"http://127.0.0.1:{free_port()}", llm.url).decide(crash())
    assert d.method is Method.LLM and d.parameters == RULED
    assert d.fallthrough[1].startswith("trm: service unreachable")


def test_both_down_rules_decide_through_the_agents_http_intake():
    """Webhook into the real agent service: TRM service down + LLM answering garbage → rules decide,
    and the answer says why each stage passed."""
    with FakeLLM("openai", Reply(content="<start_function_call>call:pod-restart{name:<escape>oops")) as llm:
        agent = Agent(chain=chain(f"http://127.0.0.1:{free_port()}", llm.url))
        with serve_asgi(agent_app(agent)) as url:
            hook = {"version": "4", "status": "firing", "receiver": "agent-sre", "alerts": [CRASH]}
            r = httpx.post(url + "/webhook", json=hook, timeout=10)
    assert r.status_code == 202
    d = r.json()["outcomes"][0]["decision"]
    assert d["method"] == "rule_based" and d["lambda_function"] == "pod-restart" and d["parameters"] == RULED
    assert d["fallthrough"][0].startswith("annotations: no lambda_function annotation")
    assert d["fallthrough"][1].startswith("trm: service unreachable")
    assert d["fallthrough"][2].startswith("llm: unreadable model output")


class Sleepy:
    name = "sleepy"
    timeout_s = 0.1

    def __call__(self, alert):
        time.sleep(1.0)
        return validated("pod-restart", RULED, method=Method.TRM, confidence=1.0)


def test_in_process_stage_over_its_budget_is_abandoned():
    t0 = time.perf_counter()
    d = Chain([Sleepy(), RuleStage()]).decide(crash())
    assert time.perf_counter() - t0 < 0.6
    assert d.method is Method.RULES and d.fallthrough == ["sleepy: timed out after 100 ms"]
