"""Generated training data: determinism, runbook consistency, splits."""

from __future__ import annotations

import json

import pytest

from agent_sre import catalog
from agent_sre import runbook as rb
from agent_sre.alerts import Alert
from agent_sre.chain.rules import RuleStage
from agent_sre.decision import Abstain
from agent_sre.trm import records, words
from agent_sre.trm.generator import generate, template_id


@pytest.fixture(scope="module")
def recs() -> list[dict]:
    return generate(n=3000, seed=7)


def test_generate_is_deterministic(recs):
    again = generate(n=3000, seed=7)
    assert json.dumps(again, sort_keys=True) == json.dumps(recs, sort_keys=True)
    other = generate(n=300, seed=8)
    assert json.dumps(other[:50]) != json.dumps(recs[:50])


def test_records_shape_and_validity(recs):
    fns = {r["expect"]["lambda_function"] for r in recs}
    assert fns >= {None, *rb.load().functions()}
    for r in recs:
        a = Alert.model_validate(r["alert"])  # a valid Alertmanager alert
        exp = r["expect"]
        assert set(r["meta"]) >= {"template", "alertname", "source", "family"}
        assert r["meta"]["alertname"] == a.name
        if exp["lambda_function"] is None:
            assert exp["parameters"] == {} and exp["plan"] == []
            continue
        assert a.firing
        catalog.validate_parameters(exp["lambda_function"], exp["parameters"])
        for p, key in exp["sources"].items():  # every parameter is a label value, copied whole
            assert a.labels[key] == exp["parameters"][p]


def test_resolved_and_missing_labels_need_no_action(recs):
    resolved = [r for r in recs if r["alert"]["status"] == "resolved"]
    assert len(resolved) > 100
    assert all(r["expect"]["lambda_function"] is None for r in resolved)
    crash_missing = [r for r in recs if r["meta"]["family"] == "crash" and "pod" not in r["alert"]["labels"]]
    assert crash_missing and all(r["expect"]["lambda_function"] is None for r in crash_missing)


def test_expectations_agree_with_runbook_rules_on_canonical_names(recs):
    """Where a generated alert carries a runbook alert name, the rule stage decides the same."""
    stage = RuleStage()
    book = rb.load()
    checked = 0
    for r in recs:
        a = Alert.model_validate(r["alert"])
        if not a.firing or book.entry_for(a.name) is None:
            continue
        try:
            d = stage(a)
            got = (d.lambda_function, d.parameters)
        except Abstain:  # the runbook has no answer: the record must expect no action
            got = (None, {})
        exp = r["expect"]
        want_params = catalog.validate_parameters(exp["lambda_function"], exp["parameters"]) if exp[
            "lambda_function"] else {}
        if r["meta"]["style"].split(":")[-1].startswith("unsupported"):
            continue
        assert got == (exp["lambda_function"], want_params), r
        checked += 1
    assert checked > 20


def test_hard_negatives_share_label_keys(recs):
    neg = [r for r in recs if r["expect"]["lambda_function"] is None and r["alert"]["status"] == "firing"]
    with_name_ns = [r for r in neg if {"name", "namespace"} <= set(r["alert"]["labels"])]
    with_pod = [r for r in neg if {"pod", "namespace"} <= set(r["alert"]["labels"])]
    assert len(with_name_ns) > 30 and len(with_pod) > 30


def test_runbook_dataset(tmp_path):
    p = tmp_path / "runbook_test_dataset.jsonl"
    n = records.write_runbook_dataset(p)
    book = rb.load()
    assert n == sum(len(e.when) for e in book.alerts)
    recs = records.read_jsonl(p)
    assert len(recs) == n
    stage = RuleStage()
    for r in recs:
        a = Alert.model_validate(r["alert"])
        try:
            d = stage(a)
            got = (d.lambda_function, d.parameters)
        except Abstain:
            got = (None, {})
        exp = r["expect"]
        want_params = catalog.validate_parameters(exp["lambda_function"], exp["parameters"]) if exp[
            "lambda_function"] else {}
        assert got == (exp["lambda_function"], want_params), r


def test_split_deterministic_and_by_name_disjoint(recs):
    s1 = records.split(recs, seed=1)
    s2 = records.split(recs, seed=1)
    assert [r["alert"]["fingerprint"] for r in s1.test] == [r["alert"]["fingerprint"] for r in s2.test]
    assert s1.info["sizes"] == {"train": len(s1.train), "val": len(s1.val), "test": len(s1.test)}
    assert s1.info["seed"] == 1
    train_names = {r["meta"]["alertname"] for r in s1.train}
    train_tmpl = {r["meta"]["template"] for r in s1.train}
    assert not train_names & {r["meta"]["alertname"] for r in s1.test}
    assert not train_names & {r["meta"]["alertname"] for r in s1.val}
    assert not train_tmpl & set(s1.info["held_out_templates"]["test"])
    # every function appears in the held-out test set
    assert {r["expect"]["lambda_function"] for r in s1.test} >= rb.load().functions()
    assert len(s1.train) + len(s1.val) + len(s1.test) <= len(recs)
    assert len(s1.test) > 0.08 * len(recs)
    r = records.split(recs, seed=1, by="random")
    assert len(r.train) + len(r.val) + len(r.test) == len(recs)
    with pytest.raises(ValueError):
        records.split(recs, by="nope")


def test_a_sentence_shared_by_families_is_one_template_held_out_for_all(recs):
    # The same words on Prometheus' own target (a check) and on any other job's (no action): the job
    # decides. Held out for one family only, training would see the words with one answer alone.
    tid = template_id(words.PROM_DOWN_TEXT[1])
    users = [r for r in recs if r["meta"]["template"] == tid]
    assert {"down", "target-other"} <= {r["meta"]["family"] for r in users}
    assert {r["expect"]["lambda_function"] for r in users} >= {None, "pod-check-status"}
    assert template_id(words.PROM_DOWN_TEXT[0]) != tid
    for seed in range(4):
        s = records.split(recs, seed=seed)
        held = set(s.info["held_out_templates"]["test"]) | set(s.info["held_out_templates"]["val"])
        in_train = {r["meta"]["template"] for r in s.train}
        assert not held & in_train
        if tid in held:
            assert not any(r["meta"]["template"] == tid for r in s.train)


def test_flux_controller_labels_follow_the_object_kind(recs):
    # gotk metrics come from the controller that reconciles the kind: a GitRepository alert whose rule
    # dropped the kind label still carries source-controller's pod, never kustomize-controller's.
    ctrl = {"flux-reconcile-gitrepository": "source-controller", "flux-reconcile-helmrelease": "helm-controller",
            "flux-reconcile-kustomization": "kustomize-controller"}
    seen = 0
    for r in recs:
        lab, fn = r["alert"]["labels"], r["expect"]["lambda_function"]
        if r["meta"]["family"] == "flux" and fn in ctrl and lab.get("container") == "manager":
            assert lab["pod"].startswith(ctrl[fn] + "-"), r
            seen += "kind" not in lab
    assert seen > 0


def test_merge_dedups_and_detects_conflicts(tmp_path, recs):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    records.write_jsonl(a, recs[:100])
    records.write_jsonl(b, recs[50:150])
    merged = records.merge([a, b])
    assert len(merged) == len({records.record_key(r) for r in recs[:150]})
    bad = json.loads(json.dumps(recs[0]))
    bad["expect"] = {"lambda_function": "pod-restart", "parameters": {"name": "x", "namespace": "y"}}
    if recs[0]["expect"]["lambda_function"] == "pod-restart":
        bad["expect"]["parameters"]["name"] = "other"
    c = tmp_path / "c.jsonl"
    records.write_jsonl(c, [bad])
    with pytest.raises(ValueError, match="conflicting"):
        records.merge([a, c])


# --------------------------------------------------------------------------- real-world shapes


def _fams(recs, *names):
    return [r for r in recs if r["meta"]["family"] in names and r["alert"]["status"] == "firing"]


def test_mix_is_mostly_no_action_with_hard_negatives(recs):
    act = [r for r in recs if r["expect"]["lambda_function"]]
    assert 0.2 < len(act) / len(recs) < 0.35
    hard = _fams(recs, "flux-suspended", "flux-other", "prom-self", "target-other", "pod-other", "crash-other",
                 "storage-other")
    idle = [r for r in recs if not r["expect"]["lambda_function"]]
    assert len(hard) > 0.3 * len(idle)
    assert all(not r["expect"]["lambda_function"] for r in hard)


def test_kube_state_metrics_flux_alerts_carry_the_exporters_labels(recs):
    ksm = _fams(recs, "flux-ksm")
    assert len(ksm) > 100
    sizes = [len(r["alert"]["labels"]) for r in ksm]
    assert max(sizes) >= 20 and sum(s >= 17 for s in sizes) > len(sizes) / 2
    for r in ksm:
        lab, exp = r["alert"]["labels"], r["expect"]
        assert lab["job"] == "kube-state-metrics" and lab["pod"].startswith(lab["service"])  # KSM's own pod
        if lab.get("suspended") in ("true", "True") or lab["customresource_kind"] not in (
                "Kustomization", "HelmRelease", "GitRepository"):
            assert exp["lambda_function"] is None
        else:  # the object's namespace, never kube-state-metrics' own
            assert exp["lambda_function"].startswith("flux-reconcile-"), r
            assert exp["parameters"] == {"name": lab["name"], "namespace": lab["exported_namespace"]}
            assert exp["sources"] == {"name": "name", "namespace": "exported_namespace"}


def test_suspended_objects_need_no_action_whatever_says_so(recs):
    op = _fams(recs, "flux-operator", "flux-ksm")
    susp = [r for r in op if r["alert"]["labels"].get("suspended") in ("true", "True")]
    live = [r for r in op if r["alert"]["labels"].get("suspended") in ("false", "False", None)
            and r["alert"]["labels"].get("customresource_kind", r["alert"]["labels"].get("kind")) == "Kustomization"]
    assert susp and all(r["expect"]["lambda_function"] is None for r in susp)
    assert live and all(r["expect"]["lambda_function"] == "flux-reconcile-kustomization" for r in live)
    named = _fams(recs, "flux-suspended")
    styles = {r["meta"]["style"] for r in named}
    assert {"named", "text", "progress"} <= styles
    for r in named:
        if r["meta"]["style"] == "text":
            text = " ".join(r["alert"]["annotations"].values()).lower()
            assert "suspend" in text or "paused" in text


def test_prometheus_self_monitoring_vs_its_target_missing(recs):
    selfmon = _fams(recs, "prom-self")
    assert len(selfmon) > 50
    assert all("pod" in r["alert"]["labels"] and r["expect"]["lambda_function"] is None for r in selfmon
               if r["alert"]["labels"].get("container") == "prometheus")
    down = [r for r in _fams(recs, "down") if r["meta"]["style"].startswith("targetdown")]
    assert down and all(r["expect"]["lambda_function"] == "pod-check-status" for r in down)
    assert all(set(r["expect"]["parameters"]) == {"namespace"} for r in down)
    other = [r for r in _fams(recs, "target-other") if r["meta"]["style"].startswith("other-job")]
    assert other and all(r["expect"]["lambda_function"] is None for r in other)
    assert not {r["alert"]["labels"]["job"] for r in down} & {r["alert"]["labels"]["job"] for r in other}


def test_crash_loops_outside_kubernetes_carry_a_pod_but_need_no_action(recs):
    systemd = [r for r in _fams(recs, "crash-other") if r["meta"]["style"].startswith("systemd")]
    assert any("pod" in r["alert"]["labels"] for r in systemd)
    assert all(r["expect"]["lambda_function"] is None for r in systemd)
    assert all(r["alert"]["labels"]["name"].split(".")[-1] in ("service", "timer", "mount") for r in systemd)


def test_generate_cli_takes_a_runbook_and_teaches_its_own_entries(tmp_path):
    """An operator's entry (not a shape the generator knows) gets generated variants answered by the
    runbook; the packaged entries keep their shapes."""
    from typer.testing import CliRunner

    from agent_sre.cli import app

    book = rb.default_path().read_text() + """
  - alert: MyAppStuck
    description: My app stopped processing; restart its deployment.
    when:
      - match: {}
        plan:
          - function: pod-restart
            parameters:
              name: [deployment]
              namespace: [namespace]
              type: {value: deployment}
"""
    path = tmp_path / "runbook.yaml"
    path.write_text(book)
    out = tmp_path / "gen.jsonl"
    r = CliRunner().invoke(app, ["dataset", "generate", "--runbook", str(path), "--n", "600", "--seed", "2",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    recs = records.read_jsonl(out)
    mine = [x for x in recs if x["meta"]["family"] == "custom-MyAppStuck" and x["alert"]["status"] == "firing"]
    assert len(mine) > 5
    for x in mine:
        lab = x["alert"]["labels"]
        assert x["expect"]["lambda_function"] == "pod-restart"
        assert x["expect"]["parameters"] == {"name": lab["deployment"], "namespace": lab["namespace"],
                                             "type": "deployment"}
    assert any(x["alert"]["labels"]["alertname"] != "MyAppStuck" for x in mine)  # variants of the name
    assert any(x["meta"]["family"] == "crash" for x in recs)  # the packaged shapes are still there
    bad = tmp_path / "bad.yaml"
    bad.write_text("alerts: [{alert: X, when: [{plan: [{function: no-such-function}]}]}]")
    r = CliRunner().invoke(app, ["dataset", "generate", "--runbook", str(bad), "-o", str(tmp_path / "x.jsonl")])
    assert r.exit_code != 0 and "no-such-function" in r.output
    r = CliRunner().invoke(app, ["dataset", "generate", "--runbook", str(tmp_path / "missing.yaml")])
    assert r.exit_code != 0 and "no runbook at" in r.output
