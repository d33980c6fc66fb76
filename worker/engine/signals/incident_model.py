"""What the customer's messages are about, read statistically, beside the lexicon's cues.

The lexicon names incident kinds by phrases a support lead can read and edit, but customers describe a
problem in the words of their own product ("the webhook fires twice", "my meter reading jumped"), which no
phrase list covers; on replies from authors the lexicon was not written against it found the kind six
times in ten. A multinomial naive Bayes model over the words and word pairs of labelled conversations
generalises from vocabulary instead. The two disagree often and are right on different conversations, so
the model overrules the lexicon only when it is confident (its posterior for another kind reaches
`override_at`, or `override_cued_at` against a kind one of the lexicon's strong patterns named: on a short
message a few words make naive Bayes overconfident); otherwise the lexicon's reading, which a lead can
explain and fix, stands. Nor does it speak on fewer than `min_features` known words and word pairs. The
thresholds were chosen by leave-one-corpus-out cross-validation.

Pure: the model is data (JSON written by `apology-worker incidents train`, loaded with the policy).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, get_args

from worker.models import Incident

FORMAT = 1
KINDS = frozenset(get_args(Incident))
Evidence = tuple[int, tuple[float, ...]]  # one message's known features and per-kind log-likelihood
_WORD = re.compile(r"[a-z][a-z']+")


def features(text: str) -> frozenset[str]:
    """The words and adjacent word pairs of a (prepared) message, lower-cased, apostrophes straightened."""
    words = _WORD.findall(text.lower().replace("\u2019", "'"))
    return frozenset(words).union(f"{a} {b}" for a, b in pairwise(words))


def log_likelihoods(rows: Mapping[str, Sequence[float]], feats: Iterable[str], width: int) -> Evidence:
    """How many of `feats` the model knows, and per class their summed log-likelihood.

    The known features are found by one set intersection in C, and each column is summed exactly
    (`math.fsum`), so the result does not depend on the order a set hands its features out in, which
    changes with Python's string hashing from one process to the next. Unknown features weigh nothing in
    any class; a lookup per feature and class cost a tenth of the engine's time.
    """
    known = [rows[f] for f in rows.keys() & feats]
    if not known:
        return 0, tuple(0.0 for _ in range(width))
    return len(known), tuple(map(math.fsum, zip(*known, strict=True)))


def posterior(prior: Sequence[float], likelihoods: Sequence[Sequence[float]],
              weights: Sequence[float] | None = None) -> list[float]:
    """P(class | evidence) from the log prior and (weighted) per-message log-likelihoods."""
    scores = list(prior)
    for n, ll in enumerate(likelihoods):
        weight = 1.0 if weights is None else weights[n]
        for i, value in enumerate(ll):
            scores[i] += weight * value
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return [e / total for e in exps]


@dataclass(frozen=True, slots=True)
class IncidentModel:
    kinds: tuple[str, ...]
    prior: tuple[float, ...]  # log P(kind)
    rows: dict[str, tuple[float, ...]]  # feature -> per kind log P(feature | kind)
    override_at: float  # posterior at which the model's kind replaces the lexicon's
    override_cued_at: float  # the same, against a kind a strong lexicon pattern named
    earlier_weight: float  # weight of a customer message before the latest one
    min_features: int  # known features the conversation needs before the model may overrule

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> IncidentModel:
        """The model from its JSON form; ValueError saying what is wrong with it."""
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown incident model format {data.get('format')!r} (expected {FORMAT})")
        try:
            kinds = tuple(str(k) for k in data["kinds"])
            prior = tuple(float(p) for p in data["prior"])
            rows: Mapping[str, Sequence[float]] = data["features"]
            override_at, earlier = float(data["override_at"]), float(data["earlier_weight"])
            override_cued_at = float(data["override_cued_at"])
            min_features = int(data["min_features"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"incident model is missing or has a malformed field: {exc}") from None
        if not set(kinds) <= KINDS:
            raise ValueError(f"incident model: unknown kinds {sorted(set(kinds) - KINDS)} "
                             f"(known: {', '.join(sorted(KINDS))})")
        if len(prior) != len(kinds) or any(len(row) != len(kinds) for row in rows.values()):
            raise ValueError("incident model: every row must have one value per kind")
        if not (0.0 < override_at <= 1.0 and 0.0 < override_cued_at <= 1.0):
            raise ValueError("incident model: override_at and override_cued_at must be in (0, 1]")
        table = {f: tuple(float(v) for v in row) for f, row in rows.items()}
        return cls(kinds, prior, table, override_at, override_cued_at, earlier, min_features)

    def evidence(self, feats: frozenset[str]) -> Evidence:
        """How many of one message's features the model knows, and per kind their log-likelihood."""
        return log_likelihoods(self.rows, feats, len(self.kinds))

    def overrule(self, kind: str, evidence: Sequence[Evidence], *, cued: bool = False) -> str:
        """The lexicon's `kind`, or the model's if it is sure enough of another (`cued`: the lexicon read
        `kind` firmly, from a strong pattern or a closed matter).

        `evidence` is the customer's messages', oldest first; the latest weighs most.
        """
        if sum(known for known, _ in evidence) < max(1, self.min_features):
            return kind
        last = len(evidence) - 1
        weights = [1.0 if n == last else self.earlier_weight for n in range(len(evidence))]
        probabilities = posterior(self.prior, [ll for _, ll in evidence], weights)
        confidence = max(probabilities)
        best = probabilities.index(confidence)
        needed = self.override_cued_at if cued else self.override_at
        return self.kinds[best] if confidence >= needed and self.kinds[best] != kind else kind


def train(examples: Iterable[tuple[Sequence[str], str]], *, alpha: float = 0.5, min_count: int = 2,
          earlier_weight: float = 0.6, override_at: float = 0.9, override_cued_at: float = 0.99, min_features: int = 10,
          trained_on: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON form of a model trained on (customer messages oldest first, incident kind) examples.

    Features seen in fewer than `min_count` conversations are dropped (names, order numbers); `alpha` is
    the additive smoothing. Every kind gets the same prior: how often each kind occurs in a labelled set
    says how its authors balanced it, not how often a team meets it; cross-validation scored the two
    alike. Deterministic: the same examples give the
    same file.
    """
    counts: dict[str, dict[str, float]] = {}
    seen_in: Counter[str] = Counter()
    per_kind: Counter[str] = Counter()
    for texts, kind in examples:
        per_kind[kind] += 1
        table = counts.setdefault(kind, defaultdict(float))
        conversation: set[str] = set()
        for n, text in enumerate(texts):
            weight = 1.0 if n == len(texts) - 1 else earlier_weight
            feats = features(text)
            conversation |= feats
            for f in feats:
                table[f] += weight
        seen_in.update(conversation)
    kinds = sorted(per_kind)
    vocab = sorted(f for f, n in seen_in.items() if n >= min_count)
    mass = {k: sum(counts[k][f] for f in vocab) + alpha * len(vocab) for k in kinds}
    return {
        "format": FORMAT,
        "kinds": kinds,
        "trained_on": list(trained_on),  # so a score on these corpora can be called in-sample
        "examples": {k: per_kind[k] for k in kinds},
        "alpha": alpha, "min_count": min_count, "earlier_weight": earlier_weight, "override_at": override_at,
        "override_cued_at": override_cued_at, "min_features": min_features,
        "prior": [round(math.log(1 / len(kinds)), 5) for _ in kinds],
        "features": {f: [round(math.log((counts[k][f] + alpha) / mass[k]), 4) for k in kinds] for f in vocab},
    }
