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
there, prevention F1 0.667 -> 0.803, solution 0.914 -> 0.942. Each threshold is the one with the best
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
_STATEMENTS_ONLY = frozenset({"solution"})
_CLOSERS = " \t\n\"')]\u201d\u2019"  # after a question mark: "Could you ...?)"
# Chosen by cross-validation (bench/reply_model_cv.py): the best F1 of the model alone at a precision of at
# least 0.75 (about the lexicon's on unseen text).
PRESENT_AT = {"solution": 0.5, "prevention": 0.999}
MIN_FEATURES = 30  # naive Bayes is overconfident on a few words: not on one-line replies (about 15 words)


@dataclass(frozen=True, slots=True)
class SignalModel:
    prior_odds: float  # log P(present) - log P(absent): 0 as trained (a uniform prior, as for incidents)
    odds: Mapping[str, float]  # feature -> log P(f | present) - log P(f | absent): two classes need one number
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
        if not model.present(memo[key]):
            return spans
        span = model.sentence(doc, read_sentences(name, doc))
        return [span] if span is not None else spans


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
    """The JSON form of one model per signal, from (prepared reply, labels) examples."""
    examples = list(examples)
    out: dict[str, Any] = {"format": FORMAT, "trained_on": list(trained_on), "signals": {}}
    for name in signals:
        texts = ((_joined(doc, read_sentences(name, doc)), labels) for doc, labels in examples)
        data = train_nb(([text], _PRESENT if labels[name] else _ABSENT) for text, labels in texts)
        if data["kinds"] != [_ABSENT, _PRESENT]:
            raise ValueError(f"{name}: the examples need replies with and without it")
        out["signals"][name] = {"kinds": data["kinds"], "examples": data["examples"], "prior": data["prior"],
                                "present_at": PRESENT_AT[name], "min_features": MIN_FEATURES,
                                "features": data["features"]}
    return out


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
