"""The linear-time compound score equals vaderSentiment's on every text, to the last bit."""

from __future__ import annotations

import json
import random

import pytest
from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SPECIAL_CASES

from tests.conftest import ROOT
from worker.engine.signals.sentiment import analyzer, compound

CASES = [
    "", "   ", "good", "not good", "NOT GOOD at all", "I am not happy", "this is NOT good!!!", "never so bad",
    "without doubt the best", "no problem", "no good", "no refund or help", "kind of bad", "sort of awful",
    "the least helpful", "at least it works", "very least bad", "good but awful", "awful but good but bad",
    "good good bad bad but fine fine", "yeah right", "kiss of death", "this is the shit", "bus stop",
    "I'm so angry :(", "great :) :D", "terrible 😠 service", "😢😢", "I ❤️ it", "wow!!!!!!", "why??", "why????",
    "It's BROKEN and nobody CARES", "ALL CAPS TEXT IS ANGRY", "hardly acceptable", "barely working",
    "cant believe how bad", "dont like it", "nothing good", "rarely helpful", "despite the help",
    "I haven't received it", "it's the bomb", "a bad ass fix", "to die for", "beating heart broken heart",
]


def _texts() -> list[str]:
    texts = list(CASES)
    for path in sorted((ROOT / "tests" / "corpus").rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.extend(m["body"] for m in json.loads(line)["messages"])
    rng = random.Random(3)
    words = [*sorted(analyzer().lexicon)[::7], *BOOSTER_DICT, *NEGATE, "but", "kind", "of", "least", "at",
             "no", "or", "so", "this", "doubt", "!", "??", ":(", "😠", *" ".join(SPECIAL_CASES).split()]
    for _ in range(3000):
        picked = [rng.choice(words) for _ in range(rng.randint(1, 14))]
        texts.append(" ".join(w.upper() if rng.random() < 0.1 else w for w in picked))
    return texts


def test_compound_equals_the_library_on_corpus_cases_and_random_word_salads() -> None:
    vader = analyzer()
    mismatches = [(t, vader.polarity_scores(t)["compound"], compound(t)) for t in _texts()
                  if vader.polarity_scores(t)["compound"] != compound(t)]
    assert mismatches == []


@pytest.mark.parametrize("text", ["no", "not", "kind of", "but", "BUT no"])
def test_compound_on_texts_of_modifiers_only(text: str) -> None:
    assert compound(text) == analyzer().polarity_scores(text)["compound"]
