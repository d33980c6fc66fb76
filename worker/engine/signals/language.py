"""Which language a reply is written in, so a policy never judges words its lexicon cannot read.

The lexicon, VADER and the naive Bayes models read English. A reply in German finds no apology and no
solution, and before this check it drew findings it did not deserve ("apology without a fix", "missing
empathy"). fastText's language identifier names the language: `lid.176.ftz`, the compressed 176-language
model (917 KB, shipped in config/ under CC BY-SA 3.0, see config/NOTICE.md), run by `fasttext-predict`, the
predict-only build SearXNG maintains for the same job.

Only a confident call on enough text counts: a short reply ("Merci !", "ok", a name) is read in the policy's
own language, and so is one the model is unsure of. On the 4,460 labelled replies (all English, many of them
one-line social replies with handles and initials) these thresholds call none foreign; on short replies
written in German, Spanish, French, Dutch, Portuguese, Italian and Swedish they name the language
(tests/unit/test_language.py).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import fasttext

from worker.engine.policy import CONFIG_DIR

MODEL_FILE = CONFIG_DIR / "lid.176.ftz"
MIN_LETTERS = 20  # fewer letters than this say too little ("Gracias!", "Thanks Ana")
CONFIDENT = 0.7  # the model's probability a call needs
SAMPLE_CHARS = 300  # the opening of a long reply names its language as well as the whole (and costs a third)
_LABEL = "__label__"
# Words of English that no other language the model knows uses as a common word ("will" and "for" are
# German and Danish, "in", "is", "we" Dutch, "a" Romance: none of those). Three of them in a reply's opening
# make it English without asking the model, which is most of the cost of this check.
_ENGLISH = frozenset({"the", "and", "you", "your", "you're", "you've", "with", "have", "please", "thanks", "thank",
                      "sorry", "this", "that", "our", "we're", "we've", "i'm", "i've", "it's", "can't", "don't",
                      "what", "which", "would", "could", "should", "been", "from", "about", "just", "there",
                      # ... and the customer's side ("why", "still", "didn't"; not "my": Polish for "we").
                      "not", "but", "it", "why", "how", "when", "where", "they", "got", "get", "did", "didn't",
                      "isn't", "won't", "still", "because", "want", "need", "if", "who",
                      # ... and a thank-you ("Thanks Bea!! Ella loved the doll": "Ella" is Spanish for "she").
                      "she", "love", "loved", "really", "were"})
ENGLISH_AT = 3
ENGLISH_IN = 160  # characters of the opening the shortcut reads
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


@lru_cache(maxsize=1)
def _model() -> Any:
    """The model, loaded once per process (a worker's warm-up loads it before the first task)."""
    return fasttext.load_model(str(MODEL_FILE))


def language(text: str) -> str | None:
    """The ISO 639 code of `text`'s language when there is enough text and the model is confident; else
    None (read it as the policy's own language)."""
    opening = text[:SAMPLE_CHARS]
    if len(_ENGLISH.intersection(_WORD.findall(opening[:ENGLISH_IN].lower()))) >= ENGLISH_AT:
        return "en"  # plainly English: the model would say so at ten times the cost
    sample = " ".join(opening.split())  # the model reads one line
    if sum(map(str.isalpha, sample)) < MIN_LETTERS:
        return None
    labels, probabilities = _model().predict(sample, k=1)
    if not labels or probabilities[0] < CONFIDENT:
        return None
    return str(labels[0]).removeprefix(_LABEL)
