"""bench/compare.py end to end on a tiny subset (few alerts, a few training steps), so it cannot rot;
plus the pieces whose numbers the benchmark reports (parameter heuristic, scoring)."""

from __future__ import annotations

import json

import pytest

from agent_sre.trm import records as ds
from agent_sre.trm.generator import generate
from bench import compare
from bench.compare import bl  # the module compare.py scores with


def _rec(labels, fn=None, params=None, sources=None, status="firing"):
    return {"alert": {"status": status, "labels": labels, "annotations": {}},
            "expect": {"lambda_function": fn, "parameters": params or {}, "sources": sources or {}}}


def test_param_filler_learns_label_keys_and_constants():
    train = [
        _rec({"alertname": "A", "pod": "p-1", "namespace": "ns"}, "pod-restart",
             {"name": "p-1", "namespace": "ns", "type": "pod"}, {"name": "pod", "namespace": "namespace"}),
        _rec({"alertname": "A", "pod": "p-2", "namespace": "x", "exported_namespace": "y"}, "pod-restart",
             {"name": "p-2", "namespace": "x", "type": "pod"}, {"name": "pod", "namespace": "namespace"}),
        # no recorded source: every label holding the value counts
        _rec({"alertname": "B", "name": "k", "exported_namespace": "apps", "namespace": "flux-system"},
             "flux-reconcile-kustomization", {"name": "k", "namespace": "apps"}),
    ]
    f = bl.ParamFiller().fit(train)
    got = f.fill("pod-restart", {"alertname": "Z", "pod": "web-0", "namespace": "prod", "exported_namespace": "q"})
    assert got == {"name": "web-0", "namespace": "prod", "type": "pod"}
    assert f.fill("flux-reconcile-kustomization", {"name": "n", "exported_namespace": "e", "namespace": "flux-system"}) \
        == {"name": "n", "namespace": "e"}
    assert f.fill("pod-restart", {"alertname": "Z"}) == {"type": "pod"}  # missing labels: not invented


def test_score_counts_remediations_on_no_action_and_abstentions():
    recs = [
        _rec({"alertname": "A"}, "pod-restart", {"name": "p", "namespace": "n", "type": "pod"}),
        _rec({"alertname": "B"}),
        _rec({"alertname": "C"}, status="resolved"),
        _rec({"alertname": "D"}, "check-pvc-status", {"name": "c", "namespace": "n"}),
    ]
    preds = [
        bl.Pred("pod-restart", {"name": "p", "namespace": "n", "type": "pod"}, 0.9),
        bl.Pred("pod-restart", {"name": "b", "namespace": "n", "type": "pod"}, 0.8),
        bl.Pred("check-pvc-status", {"name": "c", "namespace": "n"}, 0.7),
        bl.Pred(None, {}, 0.2, abstained=True),
    ]
    s = bl.score(recs, preds, subset=False)
    assert s["function_accuracy"] == 0.25 and s["exact_accuracy"] == 0.25
    assert s["remediations_on_no_action"] == 2 and s["remediations_on_resolved"] == 1
    assert s["abstention_rate"] == 0.25 and s["answered"] == 3
    # parameters: wrong name is a function hit but not exact; subset mode checks only listed keys
    wrong = [bl.Pred("pod-restart", {"name": "q", "namespace": "n", "type": "pod"}, 1.0)]
    assert bl.score(recs[:1], wrong, subset=False)["function_accuracy"] == 1.0
    assert bl.score(recs[:1], wrong, subset=False)["exact_accuracy"] == 0.0
    sub = [_rec({"alertname": "A"}, "pod-restart", {"namespace": "n"})]
    assert bl.score(sub, wrong, subset=True)["exact_accuracy"] == 1.0
    ece, bins = bl.reliability([1.0, 1.0], [True, False])
    assert ece == pytest.approx(0.5) and bins[-1]["n"] == 2


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench-model")
    recs = generate(n=300, seed=3)
    mdir, info = compare.train_trm(recs, [], d, base_cfg=None, preset="tiny", overrides={}, steps=4, seed=3,
                                   train_cfg={"lr": 3e-3, "batch_size": 32}, threads=2)
    assert info["steps"] == 4
    return mdir


def test_compare_end_to_end_tiny(tmp_path, tiny_model):
    public = tmp_path / "public.jsonl"
    cases = ds.runbook_records()
    public.write_text("\n".join(json.dumps({"alert": c["alert"], "expect": c["expect"], "id": str(i)})
                                for i, c in enumerate(cases)) + "\n")
    out = tmp_path / "out"
    res = compare.main(["--n", "300", "--seed", "3", "--gen-seed", "3", "--public", str(public), "--model-dir", str(tiny_model),
                        "--out", str(out), "--test-max", "8", "--knn-max-train", "24", "--knn-test-max", "6",
                        "--latency-n", "3", "--batch", "8", "--ablation-steps", "2",
                        "--ablation-dir", str(tmp_path / "abl"), *real_rules_args(tmp_path)])
    rows = {r["method"]: r for r in res["methods"]}
    assert set(rows) == {"rules", "tfidf-logreg", "minilm-1nn", "trm-cpu", "trm-cpu@0.9 (stage)", "trm-paper",
                         "chain"}
    assert "not available" in (out / "results.md").read_text() and rows["trm-paper"]["unavailable"]
    # the runbook's own canonical alerts: the rules decide every one of them exactly, never wrongly
    assert rows["rules"]["public"]["exact_accuracy"] == 1.0
    assert rows["rules"]["public"]["n"] == len(cases)
    assert rows["minilm-1nn"]["test"]["n"] == 6 and rows["rules"]["test"]["n"] == 8
    for name, r in rows.items():
        if r.get("unavailable"):
            continue
        for part in ("test", "public"):
            s = r[part]
            assert 0.0 <= s["exact_accuracy"] <= s["function_accuracy"] <= 1.0, name
            assert 0.0 <= s["abstention_rate"] <= 1.0 and 0.0 <= s["ece"] <= 1.0
        if "@" not in name:
            assert r["latency_ms"]["p50"] > 0 and r["latency_ms"]["p99"] >= r["latency_ms"]["p50"]
            assert r["batched_throughput_aps"] > 0 and r["size_bytes"] > 0
    # resolved alerts never get a remediation from the chain
    assert rows["chain"]["test"]["remediations_on_resolved"] == 0
    ab = res["ablations"]
    assert [c["max_steps"] for c in ab["depth"]["trm-cpu"]["curve"]] == [1, 2, 3, 4]  # tiny preset: N_sup = 4
    assert set(ab["act"]) == {"n", "on", "off"} and ab["act"]["off"]["mean_steps"] == 4
    plain = ab["recursion"]["models"][1]
    assert (plain["n"], plain["T"], plain["n_sup"], plain["steps"]) == (1, 1, 1, 2)
    assert 2 <= ab["recursion"]["models"][0]["steps"] <= 2 + 4 - 1  # max_steps is checked per batch
    for png in ("accuracy_vs_latency.png", "accuracy_vs_depth.png", "reliability.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "results.json").read_text())
    expected = ds.split(generate(n=300, seed=3), seed=3, by="name").info["sizes"]  # no duplicates at n=300
    assert saved["data"]["sizes"] == expected and saved["data"]["n"] == 300
    assert "bench/compare.py" in (out / "results.md").read_text()
    # paths are recorded relative to the repository: the committed results name no one's directories
    assert not [w for w in saved["command"].split() if w.startswith("/")]
    assert not saved["real_rules"]["rules_dir"].startswith("/") and not saved["data"]["public"].startswith("/")
    assert saved["model_dir"] and not saved["model_dir"].startswith("/")
    real = res["real_rules"]
    assert set(real["methods"]) == {"trm-cpu", "tfidf-logreg"} and real["info"]["rules"] == 1
    assert "## Real rule sets" in (out / "results.md").read_text()
    assert (out / "reliability_real_rules.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def real_rules_args(tmp_path):
    d = tmp_path / "rules" / "me__r"
    d.mkdir(parents=True)
    (d / "r.yaml").write_text("groups: [{name: g, rules: [{alert: KubePodCrashLooping, expr: 'kube_pod_container_status"
                              "_restarts_total > 3'}]}]")
    labels = tmp_path / "labels.yaml"
    labels.write_text("rules: [{source: 'me/r:r.yaml', group: g, alert: KubePodCrashLooping, expect: {function: "
                      "pod-restart, parameters: {name: pod, namespace: namespace, type: '=pod'}}}]")
    return ["--rules-dir", str(tmp_path / "rules"), "--labels", str(labels)]


def test_an_ensembles_training_time_counts_every_member(tmp_path):
    """``train``'s layout: run/ and run-k/ beside model/; a missing member's record gives no figure."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps({"extra": {"members": ["member-1"]}}))
    for d in ("run", "run-1"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "train_meta.json").write_text(json.dumps({"wall_time_s": 10.0, "steps": 5}))
    got = compare.member_train_metas(tmp_path / "model", None)
    assert got == [tmp_path / "run" / "train_meta.json", tmp_path / "run-1" / "train_meta.json"]
    (tmp_path / "run-1" / "train_meta.json").unlink()
    assert compare.member_train_metas(tmp_path / "model", None) == []
    given = [tmp_path / "a.json", tmp_path / "b.json"]
    assert compare.member_train_metas(tmp_path / "model", given) == given
