"""VADER's compound score, computed exactly as `vaderSentiment` does, in linear time.

The library lower-cases the whole word list again for every sentiment word it scores (twice: for the
negation and the idiom checks) and rebuilds the text one character at a time to replace emoji. Both are
quadratic or per-character Python work on texts where a few words carry sentiment. Here the text is
lower-cased once and the emoji pass is skipped for ASCII text (the emoji table has no ASCII key); every
rule, constant and floating-point operation is the library's, in the library's order, so the score is the
same to the last bit (tests/unit/test_sentiment.py compares the two). The dependency is pinned to the
release this reproduces (3.3.2); on an upgrade that test says whether the rules changed. Upstream knows its
scorer is slow (cjhutto/vaderSentiment#110, open); this module goes when a release fixes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
    SentiText,
    allcap_differential,
    normalize,
    scalar_inc_dec,
)

_NEGATE = frozenset(NEGATE)


@lru_cache(maxsize=1)
def analyzer() -> SentimentIntensityAnalyzer:
    """The library's analyzer: its word and emoji tables (loaded once)."""
    return SentimentIntensityAnalyzer()


def compound(text: str) -> float:
    """`SentimentIntensityAnalyzer().polarity_scores(text)["compound"]`, without the quadratic work."""
    vader = analyzer()
    lexicon: Mapping[str, float] = vader.lexicon
    text = (text if text.isascii() else _describe_emoji(text, vader.emojis)).strip()
    words = [SentiText._strip_punc_if_word(w) for w in text.split()]
    low = [w.lower() for w in words]
    is_cap_diff = allcap_differential(words)
    sentiments: list[float] = []
    for i, word in enumerate(low):
        # Boosters and "kind of" score 0 themselves, as does every word outside the lexicon.
        if word not in lexicon or word in BOOSTER_DICT or (word == "kind" and low[i + 1:i + 2] == ["of"]):
            sentiments.append(0)
        else:
            sentiments.append(_valence(i, words, low, is_cap_diff, lexicon))
    if "but" in low:
        _but_check(low.index("but"), sentiments)
    if not sentiments:
        return 0.0
    sum_s = float(sum(sentiments))
    emphasis = _punctuation_emphasis(text)
    if sum_s > 0:
        sum_s += emphasis
    elif sum_s < 0:
        sum_s -= emphasis
    score: float = normalize(sum_s)
    return round(score, 4)


def _describe_emoji(text: str, emojis: Mapping[str, str]) -> str:
    out: list[str] = []
    prev_space = True
    for char in text:
        if char in emojis:
            if not prev_space:
                out.append(" ")
            out.append(emojis[char])
            prev_space = False
        else:
            out.append(char)
            prev_space = char == " "
    return "".join(out)


def _valence(i: int, words: list[str], low: list[str], is_cap_diff: bool, lexicon: Mapping[str, float]) -> float:
    """The library's `sentiment_valence` for word `i`, reading the lower-cased words from `low`."""
    word = low[i]
    valence = lexicon[word]
    if word == "no" and i != len(low) - 1 and low[i + 1] in lexicon:
        valence = 0.0
    if (i > 0 and low[i - 1] == "no") or (i > 1 and low[i - 2] == "no") \
            or (i > 2 and low[i - 3] == "no" and low[i - 1] in ["or", "nor"]):
        valence = lexicon[word] * N_SCALAR
    if words[i].isupper() and is_cap_diff:
        if valence > 0:
            valence += C_INCR
        else:
            valence -= C_INCR
    for start_i in range(0, 3):
        if i > start_i and low[i - (start_i + 1)] not in lexicon:
            s = scalar_inc_dec(words[i - (start_i + 1)], valence, is_cap_diff)
            if start_i == 1 and s != 0:
                s = s * 0.95
            if start_i == 2 and s != 0:
                s = s * 0.9
            valence = valence + s
            valence = _negation_check(valence, low, start_i, i)
            if start_i == 2:
                valence = _special_idioms_check(valence, low, i)
    return _least_check(valence, low, i, lexicon)


def _negated(word: str) -> bool:
    return word in _NEGATE or "n't" in word


def _negation_check(valence: float, low: list[str], start_i: int, i: int) -> float:
    """The library's negation rules for the word `start_i + 1` places before word `i`."""
    if start_i == 1:
        if low[i - 2] == "never" and low[i - 1] in ("so", "this"):
            return valence * 1.25
        if low[i - 2] == "without" and low[i - 1] == "doubt":
            return valence
    elif start_i == 2:
        if (low[i - 3] == "never" and low[i - 2] in ("so", "this")) or low[i - 1] in ("so", "this"):
            return valence * 1.25
        if low[i - 3] == "without" and "doubt" in (low[i - 2], low[i - 1]):
            return valence
    return valence * N_SCALAR if _negated(low[i - start_i - 1]) else valence


def _special_idioms_check(valence: float, low: list[str], i: int) -> float:
    onezero = f"{low[i - 1]} {low[i]}"
    twoonezero = f"{low[i - 2]} {low[i - 1]} {low[i]}"
    twoone = f"{low[i - 2]} {low[i - 1]}"
    threetwoone = f"{low[i - 3]} {low[i - 2]} {low[i - 1]}"
    threetwo = f"{low[i - 3]} {low[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in SPECIAL_CASES:
            valence = SPECIAL_CASES[seq]
            break
    if len(low) - 1 > i:
        zeroone = f"{low[i]} {low[i + 1]}"
        if zeroone in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroone]
    if len(low) - 1 > i + 1:
        zeroonetwo = f"{low[i]} {low[i + 1]} {low[i + 2]}"
        if zeroonetwo in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[n_gram]
    return valence


def _least_check(valence: float, low: list[str], i: int, lexicon: Mapping[str, float]) -> float:
    if i > 1 and low[i - 1] not in lexicon and low[i - 1] == "least":
        if low[i - 2] != "at" and low[i - 2] != "very":
            valence = valence * N_SCALAR
    elif i > 0 and low[i - 1] not in lexicon and low[i - 1] == "least":
        valence = valence * N_SCALAR
    return valence


def _but_check(but_at: int, sentiments: list[float]) -> None:
    """Halve what comes before the first "but" and add half again after it, quirks included: the library
    finds each value's position with `list.index`, so equal values resolve to the first occurrence."""
    for sentiment in sentiments:
        si = sentiments.index(sentiment)
        if si < but_at:
            sentiments[si] = sentiment * 0.5
        elif si > but_at:
            sentiments[si] = sentiment * 1.5


def _punctuation_emphasis(text: str) -> float:
    ep_count = min(text.count("!"), 4)
    qm_count = text.count("?")
    qm_amplifier: float = 0
    if qm_count > 1:
        qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
    return ep_count * 0.292 + qm_amplifier
