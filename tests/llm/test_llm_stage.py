"""The LLM stage against loopback servers speaking the real Ollama and OpenAI wire formats."""

import time

import pytest

from agent_sre import catalog
from agent_sre.alerts import parse_payload
from agent_sre.chain.base import Abstain
from agent_sre.chain.llm import LLMStage
from agent_sre.decision import InvalidProposal, Method
from agent_sre.llm import CircuitBreaker, LLMClient, LLMConfig, detect_api, endpoint
from agent_sre.llm.parse import functiongemma_calls
from agent_sre.llm.prompt import SYSTEM_PROMPT, TASK
from tests.helpers import free_port

from .fakes import FakeLLM, Reply

ALERT = parse_payload({"labels": {"alertname": "PodCrashLoopBackOff", "namespace": "media",
                                  "pod": "jellyfin-5c8-abcde", "container": "jellyfin"},
                       "annotations": {"summary": "jellyfin keeps restarting"}})[0]
RESTART = ("pod-restart", {"name": "jellyfin-5c8-abcde", "namespace": "media", "type": "pod"})


def stage(url, api="", **kw):
    cfg = LLMConfig(url=url, api=api, model=kw.pop("model", "functiongemma:270m"), **kw)
    return LLMStage(client=LLMClient(cfg))


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_native_tool_call_becomes_a_validated_decision_and_request_is_well_formed(api):
    with FakeLLM(api, Reply(calls=[RESTART], content="" if api == "ollama" else None)) as llm:
        d = stage(llm.url, model="functiongemma:270m")(ALERT)
        path, headers, req = llm.requests[0]
    assert d.method is Method.LLM and d.method.value == "function_gemma"
    assert d.lambda_function == "pod-restart"
    assert d.parameters == {"name": "jellyfin-5c8-abcde", "namespace": "media", "type": "pod"}
    assert path == ("/api/chat" if api == "ollama" else "/v1/chat/completions")
    assert req["model"] == "functiongemma:270m" and req["stream"] is False
    # Offered without hyphens (some servers' FunctionGemma parsers match only word names).
    names = [t["function"]["name"] for t in req["tools"]]
    assert names == [n.replace("-", "_") for n in catalog.function_names()]
    assert all("-" not in n for n in names)
    restart = next(t for t in req["tools"] if t["function"]["name"] == "pod_restart")
    assert "One of: pod, deployment, statefulset, daemonset" in \
        restart["function"]["parameters"]["properties"]["type"]["description"]
    assert [m["role"] for m in req["messages"]] == ["system", "user"]
    # FunctionGemma's system turn is that sentence alone: the server appends the declarations to it.
    assert req["messages"][0]["content"] == SYSTEM_PROMPT
    assert SYSTEM_PROMPT == "You are a model that can do function calling with the following functions"
    user = req["messages"][1]["content"]
    assert user.startswith(TASK) and "PodCrashLoopBackOff" in user and "pod=jellyfin-5c8-abcde" in user and "namespace=media" in user
    if api == "ollama":
        assert req["options"] == {"temperature": 0, "num_predict": 256}
        assert req["keep_alive"] == "30m"  # else Ollama unloads the model after 5 idle minutes
    else:
        # No tool_choice unless configured: servers not started for it refuse the request.
        assert "tool_choice" not in req and req["temperature"] == 0 and req["max_tokens"] == 256


@pytest.mark.parametrize("env, ollama, openai", [
    ({"LLM_KEEP_ALIVE": "24h", "LLM_MAX_TOKENS": "64"}, {"keep_alive": "24h", "num_predict": 64}, {"max_tokens": 64}),
    ({"LLM_KEEP_ALIVE": "-1", "LLM_TOOL_CHOICE": "auto"}, {"keep_alive": -1}, {"tool_choice": "auto"}),
])
def test_keep_alive_max_tokens_and_tool_choice_come_from_the_settings(env, ollama, openai):
    for api, want in (("ollama", ollama), ("openai", openai)):
        cfg = LLMConfig.from_env({"LLM_URL": "http://llm:11434", "LLM_API": api, **env})
        body = LLMClient(cfg).request_body([], [])
        flat = {**body, **body.get("options", {})}
        assert {k: flat.get(k) for k in want} == want, (api, body)


@pytest.mark.parametrize("var, value", [("LLM_KEEP_ALIVE", "forever"), ("LLM_KEEP_ALIVE", "5 minutes"),
                                        ("LLM_TOOL_CHOICE", "always"), ("LLM_MAX_TOKENS", "0")])
def test_unusable_llm_settings_fail_closed(var, value):
    from agent_sre.settings import SettingsError

    with pytest.raises(SettingsError, match=var):
        LLMConfig.from_env({"LLM_URL": "http://llm:11434", var: value})


def test_openai_arguments_as_json_string_and_ollama_arguments_as_object_both_parse():
    with FakeLLM("openai", Reply(calls=[("check-pvc-status", '{"name": "data-pg-0", "namespace": "home"}')])) as llm:
        d = stage(llm.url)(ALERT)
    assert d.lambda_function == "check-pvc-status" and d.parameters == {"name": "data-pg-0", "namespace": "home"}


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_functiongemma_raw_text_call_in_content(api):
    text = ("<start_function_call>call:pod-restart{name:<escape>jellyfin-5c8-abcde<escape>,"
            "namespace:<escape>media<escape>,type:<escape>pod<escape>}<end_function_call>")
    with FakeLLM(api, Reply(content=text)) as llm:
        d = stage(llm.url)(ALERT)
    assert d.lambda_function == "pod-restart" and d.parameters["name"] == "jellyfin-5c8-abcde"
    assert "functiongemma_text" in d.reasoning


@pytest.mark.parametrize("text", [
    "call:pod_restart{name:<escape>jellyfin-5c8-abcde<escape>,namespace:<escape>media<escape>,type:<escape>pod<escape>}",
    "call:pod_restart{name:<escape>jellyfin-5c8-abcde<escape>,namespace:<escape>media<escape>,"
    "type:<escape>pod<escape>}<end_function_call>",
    "Restarting it.\ncall:pod-restart{name:<escape>jellyfin-5c8-abcde<escape>,namespace:<escape>media<escape>}",
])
def test_bare_functiongemma_call_without_markers_maps_back_to_the_catalog(text):
    with FakeLLM("openai", Reply(content=text)) as llm:
        d = stage(llm.url)(ALERT)
    assert (d.lambda_function, d.parameters) == RESTART
    assert "functiongemma_text" in d.reasoning


def test_bare_call_needs_a_word_boundary_and_a_body():
    assert functiongemma_calls("please recall:pod_restart{x:1}") == []
    assert functiongemma_calls("call: nothing to do") == []
    [c] = functiongemma_calls("call:check_pvc_status{name:<escape>a,b{c}<escape>,namespace:<escape>ns<escape>}")
    assert (c.name, c.arguments) == ("check_pvc_status", {"name": "a,b{c}", "namespace": "ns"})


def test_offered_names_map_back_and_unknown_names_stay_unknown():
    from agent_sre.llm.prompt import catalog_name

    assert catalog_name("flux_reconcile_helmrelease") == "flux-reconcile-helmrelease"
    assert catalog_name("pod-restart") == "pod-restart"
    assert catalog_name("pod_nuke") == "pod_nuke"


def test_plain_json_in_text_and_underscore_spelling():
    content = 'Sure! ```json\n{"name": "pod_restart", "arguments": {"name": "jellyfin-5c8-abcde", "namespace": "media"}}\n```'
    with FakeLLM("ollama", Reply(content=content)) as llm:
        d = stage(llm.url)(ALERT)
    assert d.lambda_function == "pod-restart" and d.parameters["type"] == "pod"


@pytest.mark.parametrize("reply,expect", [
    (Reply(content="I think you should look at the logs."), "made no tool call"),
    (Reply(content="<start_function_call>call:pod-restart{name:<escape>x"), "unreadable"),
    (Reply(calls=[("rm-rf-everything", {"path": "/"})]), "unknown function 'rm-rf-everything'"),
    (Reply(calls=[("", {})]), "without a name"),
])
def test_garbage_no_call_and_unknown_names_abstain(reply, expect):
    with FakeLLM("ollama", reply) as llm:
        with pytest.raises(Abstain, match=expect):
            stage(llm.url)(ALERT)


def test_invalid_arguments_are_rejected_by_the_catalog():
    bad = ("pod-restart", {"name": "Jelly_Fin!", "namespace": "media", "type": "vm"})
    with FakeLLM("openai", Reply(calls=[bad])) as llm:
        with pytest.raises(InvalidProposal, match="invalid arguments"):
            stage(llm.url)(ALERT)


def test_non_json_body_and_http_error_are_unavailable_not_crashes():
    with FakeLLM("ollama", Reply(raw=b"<html>bad gateway</html>", status=200)) as llm:
        with pytest.raises(Abstain, match="not JSON"):
            stage(llm.url)(ALERT)
    with FakeLLM("ollama", Reply(raw=b'{"error":"model \\"functiongemma:270m\\" not found"}', status=404)) as llm:
        with pytest.raises(Abstain, match="HTTP 404"):
            stage(llm.url)(ALERT)


def test_slow_server_times_out_within_the_read_timeout():
    with FakeLLM("ollama", Reply(calls=[RESTART], delay=3.0)) as llm:
        s = stage(llm.url, read_timeout_s=0.3)
        t0 = time.perf_counter()
        with pytest.raises(Abstain, match="timed out"):
            s(ALERT)
        assert time.perf_counter() - t0 < 1.5


def test_circuit_breaker_opens_then_half_opens_with_one_trial():
    state = {"fail": True}

    def reply(_req):
        return Reply(status=500, raw=b'{"error":"boom"}') if state["fail"] else Reply(calls=[RESTART])

    with FakeLLM("ollama", reply) as llm:
        s = stage(llm.url, breaker_failures=2, breaker_cooloff_s=0.5)
        for _ in range(2):
            with pytest.raises(Abstain, match="HTTP 500"):
                s(ALERT)
        assert s.client.breaker.state == "open"
        with pytest.raises(Abstain, match=r"circuit open after 2 consecutive failures .*retry in"):
            s(ALERT)
        assert len(llm.requests) == 2  # the open circuit sent nothing
        time.sleep(0.6)
        assert s.client.breaker.state == "half-open"
        with pytest.raises(Abstain, match="HTTP 500"):  # the trial fails: open again at once
            s(ALERT)
        assert len(llm.requests) == 3 and s.client.breaker.state == "open"
        with pytest.raises(Abstain, match="circuit open"):
            s(ALERT)
        time.sleep(0.6)
        state["fail"] = False
        d = s(ALERT)  # the trial succeeds: closed
        assert d.lambda_function == "pod-restart" and s.client.breaker.state == "closed"
        assert len(llm.requests) == 4


def test_breaker_counts_unreachable_server_and_reports_it():
    s = stage(f"http://127.0.0.1:{free_port()}", breaker_failures=1, breaker_cooloff_s=60)
    with pytest.raises(Abstain, match="unreachable"):
        s(ALERT)
    with pytest.raises(Abstain, match="circuit open .*unreachable"):
        s(ALERT)


def test_half_open_lets_exactly_one_trial_through():
    now = [0.0]
    b = CircuitBreaker(failures=1, cooloff_s=10, clock=lambda: now[0])
    b.failure("x")
    now[0] = 11
    b.before_call()  # the trial
    with pytest.raises(Exception, match="trial call is in flight"):
        b.before_call()


def test_unconfigured_stage_abstains(monkeypatch):
    monkeypatch.delenv("LLM_URL", raising=False)
    with pytest.raises(Abstain, match="LLM_URL unset"):
        LLMStage()(ALERT)


def test_config_from_env(monkeypatch):
    monkeypatch.setenv("LLM_URL", "http://vllm:8000/v1")
    monkeypatch.setenv("LLM_TIMEOUT_MS", "2500")
    monkeypatch.delenv("LLM_MODEL", raising=False)
    monkeypatch.delenv("LLM_API", raising=False)
    c = LLMConfig.from_env()
    assert (c.api, c.model, c.read_timeout_s, c.endpoint) == (
        "openai", "functiongemma:270m", 2.5, "http://vllm:8000/v1/chat/completions")
    monkeypatch.setenv("LLM_API", "ollama")
    assert LLMConfig.from_env().endpoint == "http://vllm:8000/v1/api/chat"


@pytest.mark.parametrize("url,api,ep", [
    ("http://ollama:11434", "ollama", "http://ollama:11434/api/chat"),
    ("http://ollama:11434/api/chat", "ollama", "http://ollama:11434/api/chat"),
    ("http://ollama:11434/v1", "openai", "http://ollama:11434/v1/chat/completions"),
    ("https://x.example/v1/chat/completions", "openai", "https://x.example/v1/chat/completions"),
])
def test_api_detection(url, api, ep):
    assert detect_api(url) == api and endpoint(url, api) == ep
