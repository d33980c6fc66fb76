"""Second opinions on the reply signals the lexicon reads least well on text it was not written against.

The lexicon's phrases are precise, but agents commit to change, offer a fix or argue with a customer in
wording no phrase list foresees: on the held-out sets' test halves the lexicon found 58% of the prevention
commitments and 64% of the blame. Per signal, a linear model over the reply's words and word pairs
(`incident_model.features`) reads vocabulary instead. It only adds: when the lexicon found the signal
nothing changes, and when it did not, the model's posterior must reach `present_at` on at least
`min_features` known features. The signal's span is then the sentence whose words most favour it (never a
question, for a solution: DESIGN.md's clarifying question is none).

Solution and prevention use naive Bayes (the incident model's `train`, two classes: absent and present);
their presence quiets a finding, so a mistake costs a missed nudge. Blame, which the policy flags, uses
logistic regression (`_train_logistic`): naive Bayes counts correlated words again and again, and its
additions were mostly plain policy refusals ("We're unable to refund it."), the very replies DESIGN.md
says are not blame; a discriminative model weighs the words that separate the two. Its threshold keeps
the blame findings about as precise as the lexicon's own (0.84 on unseen text).

Measured by leave-one-set-out cross-validation and on the held-out test halves (bench/reply_model_cv.py).
Each threshold is the one with the best cross-validated F1 of the model alone at the signal's
`MIN_PRECISION`.

Pure: the models are data (JSON written by `apology-worker signals train`, named by the lexicon's
`reply_model:`, loaded with the policy); the weights are the same two-column rows for both kinds of model.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.engine.signals.incident_model import features
from worker.engine.signals.incident_model import train as train_nb
from worker.engine.text import Prepared

FORMAT = 1
SIGNALS = ("solution", "prevention", "blame")  # the reply signals a model may add to
_ABSENT, _PRESENT = "absent", "present"
_STATEMENTS_ONLY = frozenset({"solution"})
_CLOSERS = " \t\n\"')]\u201d\u2019"  # after a question mark: "Could you ...?)"
# Chosen by cross-validation (bench/reply_model_cv.py): the best F1 of the model alone at a precision of at
# least MIN_PRECISION: about the lexicon's on unseen text where a mistake quiets a finding, and surer than it
# for blame, whose mistake accuses an agent (and the lexicon's own precision there is in-sample, tuned on
# these folds: 0.94 against 0.84 on unseen text). Session 20's 82 folds moved blame from 0.88 to 0.8 (model
# alone at 0.8: precision 0.904, F1 0.775 against 0.731) and prevention from 0.999 to 0.99.
PRESENT_AT = {"solution": 0.5, "prevention": 0.99, "blame": 0.8}
MIN_PRECISION = {"solution": 0.75, "prevention": 0.75, "blame": 0.9}
# Naive Bayes is overconfident on a few words: not on one-line replies (about 15 words). Logistic
# regression is not, and a one-line reply can be all blame ("Nothing wrong on our end, declines come from
# your bank.").
MIN_FEATURES = {"solution": 30, "prevention": 30, "blame": 0}
LOGISTIC = frozenset({"blame"})
# A linear model over words scores a one-line reply on its few common words alone, without the content words
# whose weights pull a longer reply's score down: of the dev halves' non-blame sentences, each sent alone as a
# reply, 3.5% read as blame ("Your return label is in your order confirmation email."). A token for the
# reply's length gives short replies a bias of their own: 1.6%, at the same cross-validated F1 (0.898;
# session 17). The tokens start with "_", which no word feature does.
_LENGTH_CUTS = (10, 20, 40, 80)


@dataclass(frozen=True, slots=True)
class SignalModel:
    # Both kinds of model are one linear score in log-odds. Naive Bayes: the log prior ratio (0 as trained, a
    # uniform prior as for incidents) and per feature log P(f | present) - log P(f | absent). Logistic
    # regression: its bias and its weights.
    prior_odds: float
    odds: Mapping[str, float]
    present_at: float
    min_features: int

    @property
    def needed(self) -> float:
        """The log-odds `present_at` asks for (compared as log-odds: a probability rounds to 1.0 long
        before the evidence runs out, so `present_at: 1` would not mean "never")."""
        return math.inf if self.present_at >= 1.0 else math.log(self.present_at / (1.0 - self.present_at))

    def present(self, feats: frozenset[str]) -> bool:
        """Summed exactly, in no particular order (as `incident_model.log_likelihoods`)."""
        known = self.odds.keys() & feats
        return (len(known) >= self.min_features
                and self.prior_odds + math.fsum(map(self.odds.__getitem__, known)) >= self.needed)

    def sentence(self, doc: Prepared, spans: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
        """Of `spans` (sentences), the one whose features favour the signal most, if any does: the span a
        finding quotes. A sentence of a few words (a greeting, a signature) only when no longer one does."""
        best: tuple[bool, float] = (False, 0.0)
        span = None
        for start, end in spans:
            score = sum(self.odds.get(f, 0.0) for f in features(doc.text[start:end]))
            rank = (len(doc.text[start:end].split()) >= 4, score)
            if score > 0 and rank > best:
                best, span = rank, (start, end)
        return span


@dataclass(frozen=True, slots=True)
class ReplyModel:
    signals: Mapping[str, SignalModel]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ReplyModel:
        """The models from their JSON form; ValueError saying what is wrong."""
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown reply model format {data.get('format')!r} (expected {FORMAT})")
        models = data.get("signals")
        if not isinstance(models, Mapping) or not models:
            raise ValueError("reply model: `signals` must map signal names to models")
        unknown = sorted(set(models) - set(SIGNALS))
        if unknown:
            raise ValueError(f"reply model: unknown signals {unknown} (known: {', '.join(SIGNALS)})")
        out = {}
        for name, model in models.items():
            try:
                if list(model["kinds"]) != [_ABSENT, _PRESENT]:
                    raise ValueError(f"kinds must be [{_ABSENT!r}, {_PRESENT!r}]")
                prior = float(model["prior"][1]) - float(model["prior"][0])
                odds = {str(f): _pair(v) for f, v in model["features"].items()}
                present_at, min_features = float(model["present_at"]), int(model["min_features"])
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise ValueError(f"reply model for {name}: missing or malformed field: {exc}") from None
            if not 0.0 < present_at <= 1.0:
                raise ValueError(f"reply model for {name}: present_at must be in (0, 1]")
            if min_features < 0 or not math.isfinite(prior):
                raise ValueError(f"reply model for {name}: min_features must be >= 0 and the prior finite")
            out[name] = SignalModel(prior, odds, present_at, min_features)
        return cls(out)

    def add(self, name: str, doc: Prepared, spans: list[tuple[int, int]],
            memo: dict[str, frozenset[str]]) -> list[tuple[int, int]]:
        """The lexicon's `spans` for signal `name`, or the model's sentence when it finds the signal they
        missed. `memo` holds the features of what the models read, computed once for all signals."""
        model = self.signals.get(name)
        if spans or model is None:
            return spans
        # Without a question mark the statements are the whole reply: one feature pass serves both models.
        key = "statements" if name in _STATEMENTS_ONLY and "?" in doc.text else "all"
        if key not in memo:
            memo[key] = features(_joined(doc, read_sentences(name, doc)) if key == "statements" else doc.text)
        if not model.present(_with_length(name, memo[key], doc.text)):
            return spans
        span = model.sentence(doc, read_sentences(name, doc))
        return [span] if span is not None else spans


def model_features(name: str, text: str) -> frozenset[str]:
    """What the model of signal `name` reads in `text`: its words and word pairs, and for the logistic
    models the reply's length."""
    return _with_length(name, features(text), text)


def _with_length(name: str, feats: frozenset[str], text: str) -> frozenset[str]:
    """`feats` (the words of `text`), with the tokens of its length for a logistic model."""
    if name not in LOGISTIC:
        return feats
    words = len(text.split())
    return feats | frozenset(f"_words<={cut}" for cut in _LENGTH_CUTS if words <= cut)


def read_sentences(name: str, doc: Prepared) -> list[tuple[int, int]]:
    """The sentences a signal's model reads: for a solution the reply without its questions (DESIGN.md: a
    clarifying question is no solution, so neither it nor the thanks around it may make one), else all."""
    spans = [_trimmed(doc.text, a, b) for a, b in doc.sentences()]
    spans = [(a, b) for a, b in spans if b > a]
    if name in _STATEMENTS_ONLY:
        spans = [(a, b) for a, b in spans if not doc.text[a:b].rstrip(_CLOSERS).endswith("?")]
    return spans


def train(examples: Iterable[tuple[Prepared, Mapping[str, Any]]], *, signals: Sequence[str] = SIGNALS,
          trained_on: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON form of one model per signal, from (prepared reply, labels) examples. Deterministic: the
    same examples give the same file (tests/unit/test_reply_model.py holds the shipped one to it)."""
    examples = list(examples)
    out: dict[str, Any] = {"format": FORMAT, "trained_on": list(trained_on), "signals": {}}
    for name in signals:
        texts = [(_joined(doc, read_sentences(name, doc)), bool(labels[name])) for doc, labels in examples]
        if name in LOGISTIC:
            data = _train_logistic([(model_features(name, text), present) for text, present in texts])
        else:
            data = train_nb(([text], _PRESENT if present else _ABSENT) for text, present in texts)
        if data["kinds"] != [_ABSENT, _PRESENT]:
            raise ValueError(f"{name}: the examples need replies with and without it")
        out["signals"][name] = {"kinds": data["kinds"], "examples": data["examples"], "prior": data["prior"],
                                "method": "logistic" if name in LOGISTIC else "naive_bayes",
                                "present_at": PRESENT_AT[name], "min_features": MIN_FEATURES[name],
                                "features": data["features"]}
    return out


def _train_logistic(examples: Sequence[tuple[frozenset[str], bool]], *, l2: float = 1e-5, epochs: int = 8,
                    rate: float = 0.1, min_count: int = 2, seed: int = 1) -> dict[str, Any]:
    """Logistic regression by AdaGrad over the features seen in at least `min_count` replies, the rarer
    class weighted up to balance the two; in the naive Bayes models' JSON shape ([0, bias] as the prior, [0,
    weight] per feature), so `SignalModel` reads both alike. Deterministic: a seeded shuffle, and each
    reply's features summed in sorted order, so the floats come out the same in every process."""
    seen = Counter(f for feats, _ in examples for f in feats)
    rows = [(tuple(sorted(f for f in feats if seen[f] >= min_count)), present) for feats, present in examples]
    present_n = sum(1 for _, present in rows if present)
    if not 0 < present_n < len(rows):
        return {"kinds": sorted({_PRESENT if present else _ABSENT for _, present in rows})}
    upweight = (len(rows) - present_n) / present_n
    weights: dict[str, float] = {}
    squares: dict[str, float] = {}
    bias, bias_squares = 0.0, 1e-8
    order = list(range(len(rows)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(order)
        for i in order:
            feats, present = rows[i]
            z = bias + sum(weights.get(f, 0.0) for f in feats)
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            g = (p - present) * (upweight if present else 1.0)
            bias_squares += g * g
            bias -= rate * g / math.sqrt(bias_squares)
            for f in feats:
                w = weights.get(f, 0.0)
                step = g + l2 * w
                squares[f] = squares.get(f, 1e-8) + step * step
                weights[f] = w - rate * step / math.sqrt(squares[f])
    kept = {f: round(w, 4) for f, w in sorted(weights.items()) if round(w, 4) != 0.0}
    return {"kinds": [_ABSENT, _PRESENT], "examples": {_ABSENT: len(rows) - present_n, _PRESENT: present_n},
            "prior": [0.0, round(bias, 4)], "features": {f: [0.0, w] for f, w in kept.items()}}


def _joined(doc: Prepared, spans: Sequence[tuple[int, int]]) -> str:
    return " ".join(doc.text[a:b] for a, b in spans)


def _pair(value: Sequence[Any]) -> float:
    """A feature's row, [log P(f | absent), log P(f | present)], as the difference of two finite numbers."""
    if len(value) != 2:
        raise ValueError("a feature's row needs two values")
    odds = float(value[1]) - float(value[0])
    if not math.isfinite(odds):
        raise ValueError("a feature's values must be finite")
    return odds


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
