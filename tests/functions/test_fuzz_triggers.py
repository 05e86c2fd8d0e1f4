"""Crafted trigger events, fuzzed with hypothesis, against the functions' HTTP app (uvicorn on
loopback) and KMock: unsigned, garbage signatures, other keys (an attacker's, the functions' own),
the agent's signature over an event changed afterwards, stale and future times, and validly
signed triggers aimed where the policy or the cluster's state says no. It reports how many were
sent and how they were answered, by reason, and asserts that none was executed: no write reached
the API server other than a server-side dry run.

The cluster is set up so that nothing may be executed by anyone: what is broken lives in
namespaces the policy protects (kube-system, flux-system), what lives elsewhere is healthy.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import httpx
import pytest
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_sre import catalog, signing
from agent_sre.functions.app import create_app
from agent_sre.functions.kube import load_api_client
from agent_sre.functions.runner import Runner
from agent_sre.functions.store import MemoryStore
from agent_sre.settings import FunctionSettings
from tests.helpers import serve_asgi
from tests.keys import AGENT, ATTACKER, FUNCTIONS, function_trust

from .kcluster import Cluster
from .test_pods import DEP, PODS, UNREADY, crashing, pod

KS = "kustomize.toolkit.fluxcd.io/v1/kustomizations"
TRIGGER = "io.homelab.agent-sre.lambda.trigger"
READY = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]}


def populate(c: Cluster) -> None:
    # broken, but where the policy forbids mutations
    c.add(DEP, "kube-system", {"metadata": {"name": "coredns"}, "spec": {"replicas": 2, "template": {}}, "status": UNREADY})
    c.add(PODS, "kube-system", crashing("coredns-5d78-abcde", owner=("ReplicaSet", "coredns-5d78")))
    c.add(PODS, "flux-system", crashing("source-controller-1", owner=("ReplicaSet", "source-controller")))
    # healthy everywhere else
    c.add(DEP, "shop", {"metadata": {"name": "web"}, "spec": {"replicas": 2, "template": {}},
                        "status": {"replicas": 2, "readyReplicas": 2}})
    c.add(PODS, "shop", pod("web-7d9f-abcde", owner=("ReplicaSet", "web-7d9f")))
    c.add(PODS, "monitoring", pod("prometheus-0", owner=("StatefulSet", "prometheus")))
    c.add(KS, "flux-system", {"metadata": {"name": "apps", "generation": 1}, "spec": {}, "status": READY})
    c.add(KS, "media", {"metadata": {"name": "sonarr", "generation": 1}, "spec": {}, "status": READY})


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("kmock"))
    populate(c)
    runner = Runner(FunctionSettings(dry_run=False, flux_wait_seconds=0.1, flux_poll_seconds=0.02),
                    api_client=load_api_client(c.kubeconfig), store=MemoryStore())
    try:
        with serve_asgi(create_app(runner=runner, sink="", trust=function_trust())) as url:
            with httpx.Client(base_url=url, timeout=20) as client:
                yield client, c
    finally:
        c.close()


NAMES = st.sampled_from(["coredns", "coredns-5d78-abcde", "source-controller-1", "web", "web-7d9f-abcde",
                         "prometheus-0", "apps", "sonarr", "ghost", "Not_A_Name", "a" * 300, ""])
NAMESPACES = st.sampled_from(["kube-system", "flux-system", "shop", "monitoring", "media", "payments", "", "BAD!"])
TARGETS = st.fixed_dictionaries({"name": NAMES, "namespace": NAMESPACES}, optional={
    "type": st.sampled_from(["pod", "deployment", "statefulset", "daemonset", "node"]),
    "selector": st.sampled_from(["app=web", "app!=web", "x"])})
# mostly well-formed targets, so that the policy and the live checks get their share
PARAMS = st.one_of(TARGETS, TARGETS, TARGETS, TARGETS, st.none(), st.lists(st.integers(), max_size=2),
                   st.text(max_size=5))
DRY_RUN = st.sampled_from([False, True, "false", "no", "0", None, 0, "maybe", ["false"]])
FUNCTIONS_ = st.sampled_from(catalog.function_names() + ["rm-rf", ""])
HOW = st.sampled_from(["unsigned", "garbage", "attacker-key", "functions-key", "tampered-data", "tampered-function",
                       "tampered-id", "tampered-type", "stale", "future", "wrong-type-signed", "valid", "valid",
                       "valid"])


def craft(how: str, fn: str, params, dry_run, eid: str, corr: str) -> CloudEvent:
    data = {"lambda_function": fn, "parameters": params, "dry_run": dry_run, "correlation_id": corr, "step": 0}
    attrs = {"type": "io.homelab.other" if how == "wrong-type-signed" else TRIGGER,
             "source": "/agent-sre/remediation", "id": eid, "datacontenttype": "application/json",
             "lambdafunction": fn or "none", "correlationid": corr}
    ev = CloudEvent(attrs, data)
    if how == "unsigned":
        return ev
    if how == "garbage":
        return CloudEvent({**attrs, "signature": "Zm9vYmFy", "signaturekeyid": AGENT.id}, data)
    if how in ("attacker-key", "functions-key"):
        return signing.sign(ev, ATTACKER if how == "attacker-key" else FUNCTIONS)
    now = time.time() + {"stale": -600, "future": 600}.get(how, 0)
    signed = signing.sign(ev, AGENT, now=now)
    a = signed.get_attributes()
    if how == "tampered-data":
        return CloudEvent(a, {**data, "dry_run": False, "parameters": {"name": "coredns", "namespace": "kube-system",
                                                                       "type": "deployment"}})
    if how == "tampered-function":  # another function than the one signed for
        other = "pod-restart" if fn != "pod-restart" else "flux-reconcile-kustomization"
        return CloudEvent({**a, "lambdafunction": other}, {**data, "lambda_function": other})
    if how == "tampered-id":
        return CloudEvent({**a, "id": eid + "-2"}, data)
    if how == "tampered-type":
        return CloudEvent({**a, "type": TRIGGER if a["type"] != TRIGGER else "io.homelab.other"}, data)
    return signed


def test_crafted_triggers_are_never_executed(fuzz_target):
    client, cluster = fuzz_target
    table: Counter = Counter()
    per_how: Counter = Counter()
    counter = iter(range(10**9))

    @settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(how=HOW, fn=FUNCTIONS_, params=PARAMS, dry_run=DRY_RUN, reuse=st.booleans())
    def one(how, fn, params, dry_run, reuse):
        n = next(counter)
        eid = f"fuzz-{n // 2 if reuse else n}-{how}"  # some ids come twice (a replay)
        ev = craft(how, fn, params, dry_run, eid, f"corr-{n}")
        try:
            msg = to_binary_event(ev)
        except (TypeError, ValueError):  # the SDK cannot even serialise it: nothing was sent
            return
        r = client.post("/", headers=msg.headers, content=msg.body)
        assert r.status_code < 500, r.text
        per_how[how] += 1
        if r.status_code == 200:
            data = json.loads(r.content)
            executed = data["status"] == "success" and data["dry_run"] is False and data["action"] != "check"
            assert not executed, data
            outcome = f"200 answered: {data['status']}" + (" (dry run)" if data["dry_run"] else "")
        else:
            assert r.status_code in (400, 401, 403, 404, 422), r.text
            outcome = f"{r.status_code} refused: {r.json()['error']}"
        table[outcome] += 1
        if how != "valid":  # only the agent's untouched signature may ever get past authentication
            assert r.status_code in (400, 401, 403, 404, 422) and not (r.status_code == 200), (how, r.text)

    one()
    writes = cluster.writes()
    real = [w for w in writes if w.params.get("dryRun") != "All"]
    sent = sum(table.values())
    lines = [f"crafted triggers sent: {sent}", f"{'answer':<44}{'count':>7}"]
    lines += [f"{k:<44}{v:>7}" for k, v in sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))]
    lines += ["", "by construction: " + ", ".join(f"{k} {v}" for k, v in sorted(per_how.items())),
              f"writes at the API server: {len(writes)}, of which not a dry run (executed): {len(real)}"]
    print("\n" + "\n".join(lines))
    if os.environ.get("FUZZ_REPORT"):
        with open(os.environ["FUZZ_REPORT"], "w") as f:
            f.write("\n".join(lines) + "\n")
    assert real == [], [(w.method, w.url.path, w.params) for w in real]
    assert sent >= 100
    refused = sum(v for k, v in table.items() if "refused" in k)
    assert refused >= sent * 0.8  # almost everything crafted is turned away before a handler runs
