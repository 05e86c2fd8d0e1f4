"""Alert ⇄ TRM grid.

An alert becomes a fixed-length sequence of ``L`` positions with ``F`` integer feature channels
(id 0 = padding in every channel). The model predicts one class per position from a joint label
space derived from the catalog; ``decode`` turns the per-position probabilities back into the
model's text answer (a JSON object), which is parsed and validated like any other stage's output.

Layout (default ``L = 48``)::

    [FN1] [FN2] [ENUM pod-restart.type] [STATUS] | alertname words (≤ 8) | labels (≤ max_labels) | annotation words

* ``FN1`` / ``FN2`` are output slots: plan step 1 / step 2 function, or ``none``.
* one ``ENUM`` slot per enumerated catalog parameter (``catalog.enum_slots()``): its value or ``none``.
* ``STATUS`` carries firing/resolved.
* alertname words: ``KubePodCrashLooping`` → kube pod crash looping (CamelCase, snake, kebab).
* one position per label (key, whole value): the ``key`` channel says which label, and the output
  says which parameter of step 1 this value fills (``param:name`` ...) or ``none``. A parameter is
  copied as the whole label value, so a value never has to be in the vocabulary. Real alerts carry
  up to ~21 labels (kube-state-metrics custom-resource-state); when an alert has more than
  ``max_labels``, the runbook's keys are kept first, then the keys that told most about the decision
  in training (``key_rank``, from ``label_relevance``), then the rest alphabetically.
* annotation words (summary, message, description) fill the rest.

Channels (``F = 8``): segment, word, key, index, prefix-3 hash, prefix-5 hash, suffix-3 hash,
shape. Words outside the vocabulary get ``UNK`` in the word channel but still carry their hashed
character n-grams and shape, so ``homepage`` or ``GitRepo`` have meaningful features.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .. import catalog
from ..alert_words import words as split_name  # ``KubePodCrashLooping`` → [kube, pod, crash, looping]
from ..alerts import Alert
from ..decision import Decision, InvalidProposal, Method, validated

try:  # the project's robust parser; json.loads behind a shim if it is missing
    from ..jsonparse import extract_json as _extract_json
except ImportError:  # pragma: no cover - only before jsonparse landed
    def _extract_json(text: str, prefer_key: str | None = "lambda_function") -> dict[str, Any]:
        obj = json.loads(text)
        if not isinstance(obj, dict):
            raise ValueError("model output is not a JSON object")
        return obj

PAD, NA, UNK = 0, 1, 2
RESERVED = 3

# segment channel
SEG_FN1, SEG_FN2, SEG_ENUM, SEG_STATUS, SEG_NAME, SEG_LABEL, SEG_ANNOT = range(1, 8)
N_SEGMENTS = 8

MAX_NAME_WORDS = 8
MAX_LABELS = 16  # the budget of models exported before ``max_labels`` was recorded
MAX_INDEX = 32
ANNOTATION_KEYS = ("summary", "message", "description")
_ALERTNAME_KEY = "__alertname__"

_WORD = re.compile(r"[A-Za-z0-9]+(?:[._/:-][A-Za-z0-9]+)*")


def text_words(text: str) -> list[str]:
    """Annotation text → words; a dotted/slashed/dashed run (``web/wiki``) is split on separators."""
    out: list[str] = []
    for tok in _WORD.findall(text or ""):
        for part in re.split(r"[._/:-]+", tok):
            out.extend(split_name(part) or ([part.lower()] if part else []))
    return out


def _h(s: str, buckets: int) -> int:
    return RESERVED + zlib.crc32(s.encode("utf-8", "replace")) % buckets


def shape(token: str) -> str:
    """Character-class pattern per dash/dot segment: ``blog-v3khwngp0g-edq84`` → ``a-x-x``."""
    segs = re.split(r"([-./_])", token)[:11]
    out = []
    for s in segs:
        if s in "-./_" and len(s) == 1:
            out.append(s)
        elif s.isdigit():
            out.append("9")
        elif s.isalpha():
            out.append("A" if s.isupper() else ("a" if s.islower() else "Aa"))
        elif s:
            out.append("x")
    n = len(token)
    lb = "s" if n <= 4 else "m" if n <= 12 else "l" if n <= 32 else "xl"
    return "".join(out) + "|" + lb


# --------------------------------------------------------------------------- label space


@dataclass(frozen=True)
class LabelSpace:
    """Joint output classes: ``none``, one per function, one per enum value, one per copyable parameter."""

    functions: tuple[str, ...]
    enum_slots: tuple[tuple[str, str, tuple[str, ...]], ...]
    params: tuple[str, ...]

    @classmethod
    def from_catalog(cls) -> "LabelSpace":
        slots = tuple(catalog.enum_slots())
        enum_only = {p for _, p, _ in slots}
        # A parameter is copied from a label unless it is an enum everywhere it appears.
        copyable = []
        for p in catalog.parameter_names():
            if p in enum_only and all(p in s.enums() for s in catalog.specs() if p in s.parameter_names()):
                continue
            copyable.append(p)
        return cls(tuple(catalog.function_names()), slots, tuple(copyable))

    @property
    def classes(self) -> list[str]:
        out = ["none"]
        out += [f"fn:{f}" for f in self.functions]
        for fn, p, values in self.enum_slots:
            out += [f"enum:{fn}.{p}={v}" for v in values]
        out += [f"param:{p}" for p in self.params]
        return out

    @property
    def n_out(self) -> int:
        return len(self.classes)

    def index(self, cls_name: str) -> int:
        return self.classes.index(cls_name)

    def to_dict(self) -> dict[str, Any]:
        return {"functions": list(self.functions), "params": list(self.params),
                "enum_slots": [[f, p, list(v)] for f, p, v in self.enum_slots]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LabelSpace":
        return cls(tuple(d["functions"]), tuple((f, p, tuple(v)) for f, p, v in d["enum_slots"]),
                   tuple(d["params"]))


# --------------------------------------------------------------------------- tokenizer


@dataclass
class Position:
    segment: int
    key: str | None = None  # label key for SEG_LABEL, annotation key for SEG_ANNOT
    value: str | None = None  # raw label value / word
    slot: int | None = None  # enum slot index for SEG_ENUM


@dataclass
class Encoded:
    ids: list[list[int]]  # [L][F]
    layout: list[Position]  # one per non-padding position

    def label_positions(self) -> list[tuple[int, Position]]:
        return [(i, p) for i, p in enumerate(self.layout) if p.segment == SEG_LABEL]


def _label_order(labels: Mapping[str, str], priority: Iterable[str], max_labels: int = MAX_LABELS,
                 rank: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
    """Labels to encode (alertname excluded, empty values dropped), in key order: at most
    ``max_labels``, chosen priority keys first (the runbook's parameter and match keys), then by
    ``rank`` (lower first), then alphabetically."""
    items = {k: v for k, v in labels.items() if k != "alertname" and v != ""}
    if len(items) > max_labels:
        pri = [k for k in priority if k in items]
        pri_set = set(pri)
        far = len(rank or ())
        rest = sorted((k for k in items if k not in pri_set), key=lambda k: ((rank or {}).get(k, far), k))
        items = {k: items[k] for k in (pri + rest)[:max_labels]}
    return sorted(items.items())


def label_relevance(records: Iterable[Mapping[str, Any]], *, max_value_cardinality: int = 64,
                    min_count: int = 5) -> dict[str, float]:
    """How much each label key tells about the expected decision, in bits: the information gain of
    the key's value (its presence, for keys with many values) about the expected function, over
    training records ``{alert, expect}``. Used to rank keys for the label budget."""
    import math

    recs = list(records)
    target = [str((r.get("expect") or {}).get("lambda_function")) for r in recs]

    def entropy(c: Counter[str]) -> float:
        n = sum(c.values())
        return -sum(v / n * math.log2(v / n) for v in c.values() if v)

    h = entropy(Counter(target))
    values: dict[str, Counter[str]] = {}
    for r in recs:
        for k, v in ((r.get("alert") or {}).get("labels") or {}).items():
            if k != "alertname":
                values.setdefault(k, Counter())[str(v).lower()] += 1
    out: dict[str, float] = {}
    n = len(recs)
    for k, vc in values.items():
        if sum(vc.values()) < min_count:
            continue
        by_value = len(vc) <= max_value_cardinality
        groups: dict[str, Counter[str]] = {}
        for r, t in zip(recs, target):
            v = ((r.get("alert") or {}).get("labels") or {}).get(k)
            g = "<absent>" if v in (None, "") else (str(v).lower() if by_value else "<present>")
            groups.setdefault(g, Counter())[t] += 1
        out[k] = h - sum(sum(c.values()) / n * entropy(c) for c in groups.values())
    return out


@dataclass
class Tokenizer:
    seq_len: int = 48
    words: dict[str, int] = field(default_factory=dict)  # word → id (≥ RESERVED)
    keys: dict[str, int] = field(default_factory=dict)  # label/annotation key → id (≥ RESERVED)
    key_buckets: int = 64
    hash_buckets: int = 2048
    shape_buckets: int = 512
    priority_keys: list[str] = field(default_factory=list)
    max_labels: int = MAX_LABELS
    key_rank: list[str] = field(default_factory=list)  # label keys, most relevant first (label_relevance)
    space: LabelSpace = field(default_factory=LabelSpace.from_catalog)
    # (segment, token, key, index, word) → features: alert names, label keys and annotation words
    # repeat across alerts, so most positions are a dict hit instead of four CRCs and a regex.
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _rank_map: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ------------------------------------------------------------------ vocabulary
    @classmethod
    def build(cls, alerts: Iterable[Mapping[str, Any] | Alert], *, seq_len: int = 48, min_count: int = 2,
              max_words: int = 6000, max_value_cardinality: int = 64,
              priority_keys: Iterable[str] = (), max_labels: int = MAX_LABELS,
              relevance: Mapping[str, float] | None = None, frequent_value: int = 20) -> "Tokenizer":
        """Vocabulary from training alerts: alertname and annotation words, label keys, and the values
        of low-cardinality labels (kind, severity, ...) and the values seen at least ``frequent_value``
        times of the others (``job=kube-state-metrics``). ``relevance`` (``label_relevance`` of the
        training records) ranks label keys for the ``max_labels`` budget. Deterministic: sorted by
        count, then text."""
        word_count: Counter[str] = Counter()
        key_count: Counter[str] = Counter()
        values: dict[str, Counter[str]] = {}
        for a in alerts:
            labels, annotations, status = _parts(a)
            word_count[status] += 1
            word_count.update(split_name(labels.get("alertname", "")))
            for k, v in labels.items():
                if k == "alertname":
                    continue
                key_count[k] += 1
                values.setdefault(k, Counter())[v.lower()] += 1
            for k in ANNOTATION_KEYS:
                if annotations.get(k):
                    key_count[k] += 1
                    word_count.update(text_words(annotations[k]))
        for k, c in values.items():
            if len(c) <= max_value_cardinality:
                word_count.update(c)
            else:  # a many-valued key (job, service): its frequent values still say something
                word_count.update({v: n for v, n in c.items() if n >= frequent_value})
        ranked = sorted((w for w, n in word_count.items() if n >= min_count), key=lambda w: (-word_count[w], w))
        words = {w: RESERVED + i for i, w in enumerate(ranked[:max_words])}
        ranked_keys = sorted((k for k, n in key_count.items() if n >= min_count), key=lambda k: (-key_count[k], k))
        keys = {k: RESERVED + i for i, k in enumerate([_ALERTNAME_KEY, *ANNOTATION_KEYS] +
                                                      [k for k in ranked_keys if k not in ANNOTATION_KEYS])}
        rank = sorted(relevance or {}, key=lambda k: (-round((relevance or {})[k], 9), k))
        return cls(seq_len=seq_len, words=words, keys=keys, priority_keys=list(priority_keys),
                   max_labels=max_labels, key_rank=rank)

    @property
    def n_slots(self) -> int:
        return 2 + len(self.space.enum_slots) + 1

    @property
    def feature_vocab(self) -> tuple[int, ...]:
        word_v = RESERVED + len(self.words)
        key_v = RESERVED + len(self.keys) + self.key_buckets
        hv = RESERVED + self.hash_buckets
        return (N_SEGMENTS, word_v, key_v, MAX_INDEX + RESERVED, hv, hv, hv, RESERVED + self.shape_buckets)

    def to_dict(self) -> dict[str, Any]:
        return {"seq_len": self.seq_len, "words": self.words, "keys": self.keys,
                "key_buckets": self.key_buckets, "hash_buckets": self.hash_buckets,
                "shape_buckets": self.shape_buckets, "priority_keys": self.priority_keys,
                "max_labels": self.max_labels, "key_rank": self.key_rank,
                "space": self.space.to_dict(), "feature_vocab": list(self.feature_vocab), "version": 1}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Tokenizer":
        t = cls(seq_len=int(d["seq_len"]), words={k: int(v) for k, v in d["words"].items()},
                keys={k: int(v) for k, v in d["keys"].items()}, key_buckets=int(d["key_buckets"]),
                hash_buckets=int(d["hash_buckets"]), shape_buckets=int(d["shape_buckets"]),
                priority_keys=list(d.get("priority_keys", [])), max_labels=int(d.get("max_labels", MAX_LABELS)),
                key_rank=list(d.get("key_rank", [])), space=LabelSpace.from_dict(d["space"]))
        if "feature_vocab" in d and tuple(d["feature_vocab"]) != t.feature_vocab:
            raise ValueError("tokenizer vocabulary is inconsistent with its recorded feature sizes")
        return t

    # ------------------------------------------------------------------ features
    @property
    def _rank(self) -> dict[str, int]:
        if len(self._rank_map) != len(self.key_rank):
            self._rank_map = {k: i for i, k in enumerate(self.key_rank)}
        return self._rank_map

    def word_id(self, w: str) -> int:
        return self.words.get(w.lower(), UNK)

    def key_id(self, k: str) -> int:
        if k in self.keys:
            return self.keys[k]
        return RESERVED + len(self.keys) + zlib.crc32(k.encode()) % self.key_buckets

    def _features(self, seg: int, token: str | None, key: str | None, index: int, *, word: bool = True) -> list[int]:
        ck = (seg, token, key, index, word)
        hit = self._cache.get(ck)
        if hit is None:
            hit = self._compute_features(seg, token, key, index, word=word)
            if len(self._cache) >= 100_000:  # bounded: unique values (pod names) would grow it forever
                self._cache.clear()
            self._cache[ck] = hit
        return hit

    def _compute_features(self, seg: int, token: str | None, key: str | None, index: int, *,
                          word: bool = True) -> list[int]:
        if token is None:
            return [seg, NA, self.key_id(key) if key else NA, min(index, MAX_INDEX - 1) + RESERVED, NA, NA, NA, NA]
        t = token.lower()
        hb = self.hash_buckets
        return [
            seg,
            self.word_id(t) if word else UNK,
            self.key_id(key) if key else NA,
            min(index, MAX_INDEX - 1) + RESERVED,
            _h("<" + t[:3], hb),
            _h("<" + t[:5], hb),
            _h(t[-3:] + ">", hb),
            _h(shape(token), self.shape_buckets),
        ]

    def encode(self, alert: Mapping[str, Any] | Alert) -> Encoded:
        labels, annotations, status = _parts(alert)
        L = self.seq_len
        ids: list[list[int]] = []
        layout: list[Position] = []

        def add(pos: Position, feats: list[int]) -> bool:
            if len(ids) >= L:
                return False
            ids.append(feats)
            layout.append(pos)
            return True

        add(Position(SEG_FN1), self._features(SEG_FN1, None, None, 0))
        add(Position(SEG_FN2), self._features(SEG_FN2, None, None, 1))
        for i, _ in enumerate(self.space.enum_slots):
            add(Position(SEG_ENUM, slot=i), self._features(SEG_ENUM, None, None, 2 + i))
        add(Position(SEG_STATUS, value=status), self._features(SEG_STATUS, status, None, 0))
        for i, w in enumerate(split_name(labels.get("alertname", ""))[:MAX_NAME_WORDS]):
            add(Position(SEG_NAME, key=_ALERTNAME_KEY, value=w), self._features(SEG_NAME, w, _ALERTNAME_KEY, i))
        for i, (k, v) in enumerate(_label_order(labels, self.priority_keys, self.max_labels, self._rank)):
            add(Position(SEG_LABEL, key=k, value=v), self._features(SEG_LABEL, v, k, i))
        for k in ANNOTATION_KEYS:
            for i, w in enumerate(text_words(annotations.get(k, ""))):
                if not add(Position(SEG_ANNOT, key=k, value=w), self._features(SEG_ANNOT, w, k, i)):
                    break
        if len(ids) < L:
            pad = [PAD] * len(ids[0])
            ids.extend([pad] * (L - len(ids)))
        return Encoded(ids, layout)

    # ------------------------------------------------------------------ targets
    def labels(self, alert: Mapping[str, Any] | Alert, expect: Mapping[str, Any],
               enc: Encoded | None = None) -> list[int]:
        """Target class per position (-100 = ignored) for an expected decision
        ``{lambda_function, parameters, plan, sources?}``; ``sources`` maps parameter → label key."""
        enc = enc or self.encode(alert)
        sp = self.space
        cls = sp.classes
        y = [-100] * self.seq_len
        fn1 = expect.get("lambda_function")
        plan = list(expect.get("plan") or [])
        if fn1 and not plan:
            plan = [{"lambda_function": fn1, "parameters": expect.get("parameters") or {}}]
        fn2 = plan[1]["lambda_function"] if len(plan) > 1 else None
        params = dict(expect.get("parameters") or {}) if fn1 else {}
        sources = dict(expect.get("sources") or {})
        labels_map, _, _ = _parts(alert)
        for i, pos in enumerate(enc.layout):
            if pos.segment == SEG_FN1:
                y[i] = cls.index(f"fn:{fn1}") if fn1 else 0
            elif pos.segment == SEG_FN2:
                y[i] = cls.index(f"fn:{fn2}") if fn1 and fn2 else 0
            elif pos.segment == SEG_ENUM:
                sfn, sp_name, _values = sp.enum_slots[pos.slot]
                val = None
                for st in plan if fn1 else []:
                    if st.get("lambda_function") == sfn and (st.get("parameters") or {}).get(sp_name) is not None:
                        val = st["parameters"][sp_name]
                        break
                if val is None and fn1 == sfn:
                    val = params.get(sp_name)
                y[i] = cls.index(f"enum:{sfn}.{sp_name}={val}") if val is not None else 0
            elif pos.segment == SEG_LABEL:
                y[i] = 0
        # parameter → the label position it is copied from
        for p, v in params.items():
            if p not in sp.params:
                continue
            key = sources.get(p)
            if key is None:  # no record of the source: the first label carrying the value
                key = next((k for k, lv in labels_map.items() if k != "alertname" and lv == v), None)
            for i, pos in enc.label_positions():
                if pos.key == key:
                    y[i] = cls.index(f"param:{p}")
                    break
        return y

    # ------------------------------------------------------------------ decoding
    def decode(self, probs: Any, alert: Mapping[str, Any] | Alert, enc: Encoded | None = None,
               members: Any = None) -> "Answer":
        """Per-position class probabilities ``[L, n_out]`` → the model's text answer plus confidence.
        ``members``: an ensemble's per-member probabilities ``[M, L, n_out]`` (``probs`` being their
        average): the answer stays the average's, and its confidence is the lowest of the average's
        and each member's probability for the same choices."""
        enc = enc or self.encode(alert)
        sp = self.space
        cls = sp.classes
        n = len(enc.layout)  # positions past the layout are padding: never read

        P = [list(map(float, row)) for row in (probs[:n].tolist() if hasattr(probs, "tolist") else probs[:n])]
        picks: list[tuple[int, list[int]]] = []  # every choice the answer rests on: (position, classes)

        def sure(Q: Any) -> float:
            """The product of every choice's probability under ``Q``: a remediation is only as sure as
            all of them together. Reads only the picked cells, so a member's grid is not converted."""
            return math.prod(max(float(Q[i][c]) for c in cs) for i, cs in picks)

        def confidence() -> float:
            return min([sure(P)] + [sure(m) for m in (members if members is not None else [])])

        def best(i: int, allowed: list[int]) -> tuple[int, float]:
            j = max(allowed, key=lambda c: P[i][c])
            return j, P[i][j]

        fn_classes = [0] + [cls.index(f"fn:{f}") for f in sp.functions]
        seg_index = {pos.segment: i for i, pos in reversed(list(enumerate(enc.layout)))}
        j1, _ = best(seg_index[SEG_FN1], fn_classes)
        j2, _ = best(seg_index[SEG_FN2], fn_classes)
        fn1 = None if j1 == 0 else cls[j1][3:]
        fn2 = None if j2 == 0 else cls[j2][3:]
        picks.append((seg_index[SEG_FN1], [j1]))
        if fn1 is None:
            return Answer(json.dumps({"lambda_function": None, "parameters": {},
                                      "reasoning": "trm: no remediation for this alert"}), confidence(), [])
        picks.append((seg_index[SEG_FN2], [j2]))
        spec1 = catalog.get(fn1) if fn1 in catalog.function_names() else None
        wanted = [p for p in (spec1.parameter_names() if spec1 else []) if p in sp.params]
        param_classes = [0] + [cls.index(f"param:{p}") for p in sp.params]
        params: dict[str, str] = {}
        sources: dict[str, str] = {}
        chosen: dict[str, tuple[int, float]] = {}
        for i, pos in enc.label_positions():
            j, pj = best(i, param_classes)
            if j == 0:
                continue
            p = cls[j][len("param:"):]
            if p not in chosen or pj > chosen[p][1]:
                chosen[p] = (i, pj)
        used: set[int] = set()
        for p, (i, pj) in chosen.items():
            if p not in wanted:
                continue  # a parameter the chosen function does not take: ignored
            params[p] = enc.layout[i].value or ""
            sources[p] = enc.layout[i].key or ""
            used.add(i)
            picks.append((i, [cls.index(f"param:{p}")]))
        # Every label position not used must be confidently "none" (no second candidate).
        for i, _pos in enc.label_positions():
            if i not in used:
                picks.append((i, [0] + [c for c in param_classes[1:] if cls[c][6:] not in wanted]))
        plan: list[dict[str, Any]] = [{"lambda_function": fn1, "parameters": params}]
        steps = [fn1] + ([fn2] if fn2 else [])
        enum_values: dict[tuple[str, str], str] = {}
        for s, (sfn, sparam, values) in enumerate(sp.enum_slots):
            if sfn not in steps:
                continue
            i = next(i for i, pos in enumerate(enc.layout) if pos.segment == SEG_ENUM and pos.slot == s)
            allowed = [cls.index(f"enum:{sfn}.{sparam}={v}") for v in values]
            j, _ = best(i, [0] + allowed)
            if j != 0:
                enum_values[(sfn, sparam)] = cls[j].split("=", 1)[1]
                picks.append((i, [j]))
        for (sfn, sparam), v in enum_values.items():
            if sfn == fn1:
                params[sparam] = v
        if fn2:
            spec2 = catalog.get(fn2) if fn2 in catalog.function_names() else None
            later = {k: v for (f, k), v in enum_values.items() if f == fn2}
            prev = [k for k in (spec2.required_parameters() if spec2 else []) if k not in later]
            plan.append({"lambda_function": fn2, "parameters": later, "from_previous": prev})
        conf = confidence()
        src = ", ".join(f"{k}<-{v}" for k, v in sources.items())
        text = json.dumps({"lambda_function": fn1, "parameters": params, "plan": plan,
                           "reasoning": f"trm: {fn1}" + (f" then {fn2}" if fn2 else "") + (f" ({src})" if src else "")})
        return Answer(text, conf, plan)


@dataclass
class Answer:
    text: str  # the model's output as text (a JSON object)
    confidence: float
    plan: list[dict[str, Any]]


def parse_answer(answer: Answer, *, iterations: int | None = None) -> Decision:
    """Parse the model's text with the project's JSON parser and validate it against the catalog.
    No action → a no-action Decision (method TRM); invalid → ``InvalidProposal``."""
    try:
        obj = _extract_json(answer.text)
    except Exception as e:  # NoJSONFound or a decoding error
        raise InvalidProposal(f"unparseable model output: {e}") from None
    conf = min(max(float(answer.confidence), 0.0), 1.0)
    fn = obj.get("lambda_function")
    if fn in (None, "", "none"):
        return Decision(lambda_function=None, reasoning=str(obj.get("reasoning") or ""), confidence=conf,
                        method=Method.TRM, iterations=iterations)
    return validated(fn, obj.get("parameters") or {}, method=Method.TRM, reasoning=str(obj.get("reasoning") or ""),
                     confidence=conf, plan=obj.get("plan"), iterations=iterations)


def _parts(alert: Mapping[str, Any] | Alert) -> tuple[dict[str, str], dict[str, str], str]:
    if isinstance(alert, Alert):
        return dict(alert.labels), dict(alert.annotations), alert.status
    labels = {str(k): "" if v is None else str(v) for k, v in (alert.get("labels") or {}).items()}
    if "alertname" not in labels and alert.get("alertname"):
        labels["alertname"] = str(alert["alertname"])
    annotations = {str(k): "" if v is None else str(v) for k, v in (alert.get("annotations") or {}).items()}
    status = str(alert.get("status") or "firing").lower()
    return labels, annotations, status


def default_priority_keys() -> list[str]:
    """Label keys the runbook reads (parameter sources and case matches): always encoded first."""
    from .. import runbook as rb

    keys: dict[str, None] = {}
    try:
        book = rb.load()
    except Exception:
        return []
    for e in book.alerts:
        for c in e.when:
            for k in c.match:
                keys.setdefault(k, None)
            for s in c.plan:
                for src in s.parameters.values():
                    for k in src.labels:
                        keys.setdefault(k, None)
    return list(keys)
