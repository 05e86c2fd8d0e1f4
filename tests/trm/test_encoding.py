"""Alert ⇄ grid encoding: layout, unseen names, targets, decode + validate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent_sre import catalog
from agent_sre import runbook as rb
from agent_sre.decision import InvalidProposal, Method
from agent_sre.trm import records
from agent_sre.trm.encoding import (
    SEG_LABEL, UNK, LabelSpace, Tokenizer, default_priority_keys, parse_answer, split_name,
)
from agent_sre.trm.generator import generate


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    recs = generate(n=600, seed=3)
    return Tokenizer.build([r["alert"] for r in recs], priority_keys=default_priority_keys())


def one_hot(tok: Tokenizer, y: list[int], p: float = 1.0) -> np.ndarray:
    P = np.zeros((tok.seq_len, tok.space.n_out))
    rest = (1 - p) / (tok.space.n_out - 1)
    for i, c in enumerate(y):
        P[i, :] = rest
        P[i, c if c >= 0 else 0] = p
    return P


def test_label_space_follows_catalog():
    sp = LabelSpace.from_catalog()
    assert sp.classes[0] == "none"
    for f in catalog.function_names():
        assert f"fn:{f}" in sp.classes
    for fn, p, values in catalog.enum_slots():
        for v in values:
            assert f"enum:{fn}.{p}={v}" in sp.classes
        assert f"param:{p}" not in sp.classes  # enums are slots, not copied from labels
    assert {"param:name", "param:namespace", "param:selector"} <= set(sp.classes)
    assert sp.n_out == len(set(sp.classes))


def test_split_name_styles():
    assert split_name("KubePodCrashLooping") == ["kube", "pod", "crash", "looping"]
    assert split_name("PVCAlmostFull") == ["pvc", "almost", "full"]
    assert split_name("flux_helmrelease-not.ready") == ["flux", "helmrelease", "not", "ready"]


def test_shape_and_length(tok: Tokenizer):
    a = {"labels": {"alertname": "X", **{f"k{i}": f"v{i}" for i in range(40)}},
         "annotations": {"summary": " ".join(["word"] * 200)}}
    enc = tok.encode(a)
    assert len(enc.ids) == tok.seq_len == 48
    assert all(len(row) == len(tok.feature_vocab) == 8 for row in enc.ids)
    for c, v in enumerate(tok.feature_vocab):
        assert all(0 <= row[c] < v for row in enc.ids)
    assert sum(p.segment == SEG_LABEL for p in enc.layout) == 16


def test_unseen_names_get_ngram_features(tok: Tokenizer):
    assert "homepage" not in tok.words and "gitrepo" not in tok.words
    a1 = {"labels": {"alertname": "HomepageGitRepoBroken", "name": "homepage", "namespace": "x"}}
    enc = tok.encode(a1)
    rows = {p.value: r for p, r in zip(enc.layout, enc.ids)}
    for w in ("homepage", "gitrepo") if "gitrepo" in rows else ("homepage",):
        r = rows[w]
        assert r[1] == UNK  # word channel: unknown
        assert all(v > 2 for v in r[4:8])  # n-gram and shape channels: real features
    # n-grams are shared with related seen words: "git" prefix of GitRepo equals that of "git" words
    r_homepage = rows["homepage"]
    a2 = {"labels": {"alertname": "HomeAssistantDown"}}
    rows2 = {p.value: r for p, r in zip(tok.encode(a2).layout, tok.encode(a2).ids)}
    assert rows2["home"][4] == r_homepage[4]  # same "<hom" prefix hash
    assert rows2["home"][1] != UNK


def test_vocab_roundtrip_and_determinism(tok: Tokenizer):
    d = json.loads(json.dumps(tok.to_dict()))
    t2 = Tokenizer.from_dict(d)
    recs = generate(n=50, seed=9)
    for r in recs:
        assert t2.encode(r["alert"]).ids == tok.encode(r["alert"]).ids
    again = Tokenizer.build([r["alert"] for r in generate(n=600, seed=3)], priority_keys=default_priority_keys())
    assert again.to_dict() == tok.to_dict()
    d["words"]["zzz-extra"] = 99999
    with pytest.raises(ValueError):
        Tokenizer.from_dict(d)


def test_round_trip_every_runbook_case(tok: Tokenizer):
    recs = records.runbook_records()
    assert len(recs) == sum(len(e.when) for e in rb.load().alerts)
    for r in recs:
        y = tok.labels(r["alert"], r["expect"])
        ans = tok.decode(one_hot(tok, y), r["alert"])
        d = parse_answer(ans, iterations=2)
        exp = r["expect"]
        assert d.lambda_function == exp["lambda_function"], r["meta"]
        assert d.method is Method.TRM and d.iterations == 2
        if exp["lambda_function"]:
            assert d.parameters == catalog.validate_parameters(exp["lambda_function"], exp["parameters"])
            assert [s.lambda_function for s in d.plan] == [s["lambda_function"] for s in exp["plan"]]
            for got, want in zip(d.plan[1:], exp["plan"][1:]):
                assert got.from_previous == want["from_previous"]
                assert got.parameters == want["parameters"]
            assert d.confidence == pytest.approx(1.0)


def test_round_trip_generated(tok: Tokenizer):
    n_act = 0
    for r in generate(n=400, seed=11):
        y = tok.labels(r["alert"], r["expect"])
        d = parse_answer(tok.decode(one_hot(tok, y, 0.9), r["alert"]))
        assert d.lambda_function == r["expect"]["lambda_function"]
        if d.lambda_function:
            n_act += 1
            assert d.parameters == catalog.validate_parameters(d.lambda_function, r["expect"]["parameters"])
            assert 0 < d.confidence < 0.9
    assert n_act > 100


def test_gotk_namespace_comes_from_exported_namespace(tok: Tokenizer):
    a = {"labels": {"alertname": "FluxReconciliationFailure", "kind": "HelmRelease", "name": "flux-system",
                    "namespace": "flux-system", "exported_namespace": "flux-system"}}
    exp = records.runbook_expect(rb.load(), a["labels"])
    y = tok.labels(a, exp)
    enc = tok.encode(a)
    tagged = {enc.layout[i].key: tok.space.classes[c] for i, c in enumerate(y) if c > 0 and enc.layout[i].key}
    assert tagged == {"name": "param:name", "exported_namespace": "param:namespace"}


def test_invalid_grids_fall_through(tok: Tokenizer):
    a = {"labels": {"alertname": "KubePodCrashLooping", "pod": "Not_A_Valid_Name!", "namespace": "apps"}}
    exp = {"lambda_function": "pod-restart", "parameters": {"name": "Not_A_Valid_Name!", "namespace": "apps",
                                                              "type": "pod"}, "sources": {"name": "pod"}}
    y = tok.labels(a, exp)
    with pytest.raises(InvalidProposal):  # label value is not a Kubernetes name
        parse_answer(tok.decode(one_hot(tok, y), a))
    # a function whose required parameter no position supplies
    a2 = {"labels": {"alertname": "Something", "severity": "warning"}}
    y2 = [-100] * tok.seq_len
    y2[0] = tok.space.index("fn:check-pvc-status")
    with pytest.raises(InvalidProposal):
        parse_answer(tok.decode(one_hot(tok, y2), a2))


def test_no_action_decodes_to_no_action(tok: Tokenizer):
    a = {"status": "resolved", "labels": {"alertname": "Watchdog"}}
    y = tok.labels(a, records.no_action_expect())
    assert y[0] == 0 and y[1] == 0
    d = parse_answer(tok.decode(one_hot(tok, y, 0.8), a))
    assert d.lambda_function is None and d.plan == [] and d.confidence == pytest.approx(0.8)


def test_label_budget_keeps_decisive_labels_of_crowded_alerts():
    """An alert with more labels than the budget keeps the runbook's keys and the most relevant ones."""
    from agent_sre.trm.encoding import label_relevance

    recs = generate(n=1500, seed=4)
    rel = label_relevance(recs)
    assert rel["customresource_kind"] > rel["severity"] and rel["suspended"] > rel["endpoint"] * 0.1
    tok = Tokenizer.build([r["alert"] for r in recs], seq_len=64, priority_keys=default_priority_keys(),
                          max_labels=12, relevance=rel)
    assert tok.key_rank[0] == max(rel, key=lambda k: (rel[k], k))
    crowded = {"alertname": "HelmReleaseNotReady", "name": "app", "exported_namespace": "media",
               "customresource_kind": "HelmRelease", "suspended": "true", "ready": "False",
               **{f"zz_extra_{i}": "x" for i in range(20)}}
    keys = {p.key for p in tok.encode({"labels": crowded}).layout if p.segment == SEG_LABEL}
    assert len(keys) == 12
    assert {"name", "exported_namespace", "customresource_kind", "suspended", "ready"} <= keys
    again = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode({"labels": crowded}).ids == tok.encode({"labels": crowded}).ids
    # a model exported before the budget was recorded keeps its 16 labels
    old = tok.to_dict()
    del old["max_labels"], old["key_rank"]
    assert Tokenizer.from_dict(old).max_labels == 16
