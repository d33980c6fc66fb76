"""Second opinions on the reply signals the lexicon reads least well on text it was not written against.

The lexicon's phrases for prevention and a solution are precise, but agents commit to change or offer a fix
in wording no phrase list foresees: on the held-out sets' test halves the lexicon found 58% of the
prevention commitments. Per signal, a naive Bayes model over the reply's words and word pairs (the incident
model's, `incident_model.train`, with two classes: absent and present) reads vocabulary instead. It only
adds: when the lexicon found the signal nothing changes, and when it did not, the model's posterior must
reach `present_at` on at least `min_features` known features. The signal's span is then the sentence whose
words most favour it (never a question, for a solution: DESIGN.md's clarifying question is none).

Only signals whose presence quiets a finding ("apology without a fix", "no prevention") get a model: a
model's mistake then costs a missed nudge, never a false accusation. Blame, which the policy flags, stays
with the lexicon, whose findings quote the words that made them (a blame model gained 0.03 F1 on unseen
text and flagged plain replies).

Measured by leave-one-set-out cross-validation and on the held-out test halves (bench/reply_model_cv.py):
there, prevention F1 0.667 -> 0.803, solution 0.914 -> 0.945. Each threshold is the one with the best
cross-validated F1 of the model alone at a precision of at least 0.75.

Pure: the models are data (JSON written by `apology-worker signals train`, named by the lexicon's
`reply_model:`, loaded with the policy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.engine.signals.incident_model import features
from worker.engine.signals.incident_model import train as train_nb
from worker.engine.text import Prepared

FORMAT = 1
SIGNALS = ("solution", "prevention")  # the reply signals a model may add to
_ABSENT, _PRESENT = "absent", "present"
# Chosen by cross-validation (bench/reply_model_cv.py): the best F1 of the model alone at a precision of at
# least 0.75 (about the lexicon's on unseen text).
PRESENT_AT = {"solution": 0.8, "prevention": 0.99}
MIN_FEATURES = 30  # naive Bayes is overconfident on a few words: not on one-line replies (about 15 words)


@dataclass(frozen=True, slots=True)
class SignalModel:
    prior_odds: float  # log P(present) - log P(absent)
    odds: Mapping[str, float]  # feature -> log P(f | present) - log P(f | absent): two classes need one number
    present_at: float
    min_features: int

    def present(self, feats: frozenset[str]) -> bool:
        known = [v for v in map(self.odds.get, feats) if v is not None]
        if len(known) < self.min_features:
            return False
        score = self.prior_odds + sum(known)  # the log-odds: P(present) is its logistic, computed without overflow
        probability = 1.0 / (1.0 + math.exp(-score)) if score >= 0 else math.exp(score) / (1.0 + math.exp(score))
        return probability >= self.present_at

    def sentence(self, doc: Prepared, *, questions: bool = True) -> tuple[int, int] | None:
        """The sentence whose features favour the signal most (the span a finding quotes); with
        `questions=False` a question is never it, and a reply of questions only has none."""
        best, span = float("-inf"), None
        for start, end in doc.sentences():
            start, end = _trimmed(doc.text, start, end)
            if end <= start or (not questions and doc.text[end - 1] == "?"):
                continue
            score = sum(self.odds.get(f, 0.0) for f in features(doc.text[start:end]))
            if score > best:
                best, span = score, (start, end)
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
                odds = {str(f): float(v[1]) - float(v[0]) for f, v in model["features"].items()}
                present_at, min_features = float(model["present_at"]), int(model["min_features"])
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise ValueError(f"reply model for {name}: missing or malformed field: {exc}") from None
            if not 0.0 < present_at <= 1.0:
                raise ValueError(f"reply model for {name}: present_at must be in (0, 1]")
            out[name] = SignalModel(prior, odds, present_at, min_features)
        return cls(out)

    def add(self, name: str, doc: Prepared, spans: list[tuple[int, int]],
            memo: dict[str, frozenset[str]]) -> list[tuple[int, int]]:
        """The lexicon's `spans` for signal `name`, or the model's sentence when it finds the signal they
        missed. `memo` holds the reply's features, computed once for all signals."""
        model = self.signals.get(name)
        if spans or model is None:
            return spans
        if "features" not in memo:
            memo["features"] = features(doc.text)
        if not model.present(memo["features"]):
            return spans
        span = model.sentence(doc, questions=name != "solution")
        return [span] if span is not None else spans


def train(examples: Iterable[tuple[str, Mapping[str, Any]]], *, signals: Sequence[str] = SIGNALS,
          trained_on: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON form of one model per signal, from (prepared reply text, labels) examples."""
    examples = list(examples)
    out: dict[str, Any] = {"format": FORMAT, "trained_on": list(trained_on), "signals": {}}
    for name in signals:
        data = train_nb(([text], _PRESENT if labels[name] else _ABSENT) for text, labels in examples)
        if data["kinds"] != [_ABSENT, _PRESENT]:
            raise ValueError(f"{name}: the examples need replies with and without it")
        out["signals"][name] = {"kinds": data["kinds"], "examples": data["examples"], "prior": data["prior"],
                                "present_at": PRESENT_AT[name], "min_features": MIN_FEATURES,
                                "features": data["features"]}
    return out


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
