"""The reply models (solution, prevention, blame) under cross-validation, and on text never tuned on.

    python bench/reply_model_cv.py

Each fold (a tuning file, the first two held-out sets, the dev half of each later one) is scored by models
trained on every other fold, at several thresholds: the model alone, and the engine (lexicon, then the
model where the lexicon found nothing). The shipped threshold per signal (`PRESENT_AT` in
worker/engine/signals/reply_model.py) is the one with the best cross-validated F1 of the model alone among
those at least as precise as its `MIN_PRECISION`; the lexicon was tuned on these folds, so its figures here
flatter it and cannot choose. Then the engine scores the test halves, which nothing was tuned on, without
and with the shipped models (config/reply-model.json, trained on every fold: scripts/train-reply-model).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.incident_cv import SPLIT_SETS  # noqa: E402 (the held-out sets split into dev and test halves)
from worker.corpus import Item, in_split, load_corpus, reply_example  # noqa: E402
from worker.engine import load_policy, review_reply  # noqa: E402
from worker.engine.policy import Policy  # noqa: E402
from worker.engine.signals.reply_model import (  # noqa: E402
    MIN_PRECISION,
    PRESENT_AT,
    SIGNALS,
    ReplyModel,
    model_features,
    read_sentences,
    train,
)

CORPUS = ROOT / "tests" / "corpus"
THRESHOLDS = (0.5, 0.73, 0.8, 0.88, 0.95, 0.99, 0.999)


def sets() -> tuple[dict[str, list[Item]], list[Item]]:
    folds = {path.stem: list(load_corpus(path)) for path in sorted(CORPUS.glob("*.jsonl"))}
    folds["holdout"] = list(load_corpus(CORPUS / "holdout"))
    folds["holdout2"] = list(load_corpus(CORPUS / "holdout2"))
    tests: list[Item] = []
    for name in SPLIT_SETS:
        items = list(load_corpus(CORPUS / name))
        folds[f"{name} (dev)"] = [i for i in items if in_split(i.id, "dev")]
        tests += [i for i in items if in_split(i.id, "test")]
    return folds, tests


def prf(pairs: list[tuple[bool, bool]]) -> tuple[float, float, float]:
    tp = sum(p and g for p, g in pairs)
    fp = sum(p and not g for p, g in pairs)
    fn = sum(g and not p for p, g in pairs)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def without_model(policy: Policy) -> Policy:
    return dataclasses.replace(policy, lexicon=dataclasses.replace(policy.lexicon, reply_model=None))


def lexicon_reading(policy: Policy) -> Callable[[Item], dict[str, bool]]:
    cache: dict[str, dict[str, bool]] = {}

    def read(item: Item) -> dict[str, bool]:
        if item.id not in cache:
            h = item.history
            signals = review_reply(h.messages[-1], h.messages[:-1], h.ticket, policy).signals
            cache[item.id] = {name: bool(getattr(signals, name)) for name in SIGNALS}
        return cache[item.id]

    return read


def models(items: list[Item], threshold: float | None = None) -> ReplyModel:
    data = train(reply_example(i) for i in items)
    if threshold is not None:
        for model in data["signals"].values():
            model["present_at"] = threshold
    return ReplyModel.from_data(data)


def main() -> int:
    policy = without_model(load_policy(None))
    lexicon = lexicon_reading(policy)
    folds, tests = sets()
    docs = {i.id: reply_example(i)[0] for items in [*folds.values(), tests] for i in items}
    feats = {(item_id, signal): model_features(signal, " ".join(doc.text[a:b] for a, b in read_sentences(signal, doc)))
             for item_id, doc in docs.items() for signal in SIGNALS}
    # Cross-validation: per signal and threshold, (model alone, lexicon then model) against the labels.
    alone: dict[tuple[str, float], list[tuple[bool, bool]]] = {}
    both: dict[tuple[str, float], list[tuple[bool, bool]]] = {}
    lex_cv: dict[str, list[tuple[bool, bool]]] = {name: [] for name in SIGNALS}
    # A one-line reply: each sentence (6 words or more) of a reply without the signal, sent alone.
    alone_sentences: dict[str, list[bool]] = {name: [] for name in SIGNALS}
    for name, items in folds.items():
        fold = models([i for other, its in folds.items() if other != name for i in its], threshold=1.0)
        for item in items:
            for signal in SIGNALS:
                if not item.labels[signal]:
                    shipped = dataclasses.replace(fold.signals[signal], present_at=PRESENT_AT[signal])
                    doc = docs[item.id]
                    alone_sentences[signal] += [shipped.present(model_features(signal, doc.text[a:b]))
                                                for a, b in read_sentences(signal, doc)
                                                if len(doc.text[a:b].split()) >= 6]
            for signal in SIGNALS:
                gold, read = bool(item.labels[signal]), lexicon(item)[signal]
                lex_cv[signal].append((read, gold))
                model = fold.signals[signal]
                for t in THRESHOLDS:
                    says = dataclasses.replace(model, present_at=t).present(feats[(item.id, signal)])
                    alone.setdefault((signal, t), []).append((says, gold))
                    both.setdefault((signal, t), []).append((read or says, gold))
    print(f"cross-validation over {sum(map(len, folds.values()))} replies in {len(folds)} folds "
          f"(the lexicon was tuned on these: its figures are in-sample)")
    for signal in SIGNALS:
        p, r, f = prf(lex_cv[signal])
        print(f"\n{signal}: lexicon P {p:.3f} R {r:.3f} F1 {f:.3f}")
        print(f"  {'present_at':>10s} {'model P':>8s} {'R':>6s} {'F1':>6s}   {'lexicon+model F1':>16s}")
        for t in THRESHOLDS:
            p, r, f = prf(alone[(signal, t)])
            mark = "  <- shipped" if PRESENT_AT[signal] == t else ""
            print(f"  {t:10.3f} {p:8.3f} {r:6.3f} {f:6.3f}   {prf(both[(signal, t)])[2]:16.3f}{mark}")
        flagged = alone_sentences[signal]
        print(f"  sentences of replies without it, each sent alone: {sum(flagged)} of {len(flagged)} "
              f"({sum(flagged) / max(1, len(flagged)):.2%}) read as {signal} at the shipped present_at")
        eligible = [t for t in THRESHOLDS if prf(alone[(signal, t)])[0] >= MIN_PRECISION[signal]]
        if eligible:
            print(f"  best F1 at precision >= {MIN_PRECISION[signal]}: "
                  f"{max(eligible, key=lambda t: prf(alone[(signal, t)])[2])}")
    engine = lexicon_reading(load_policy(None))  # the shipped models: trained on every fold
    print(f"\ntest halves ({len(tests)} replies, never tuned on), the engine with and without the shipped models:")
    for signal in SIGNALS:
        lex = [(lexicon(i)[signal], bool(i.labels[signal])) for i in tests]
        with_model = [(engine(i)[signal], bool(i.labels[signal])) for i in tests]
        (p0, r0, f0), (p1, r1, f1) = prf(lex), prf(with_model)
        print(f"  {signal:11s} lexicon P {p0:.3f} R {r0:.3f} F1 {f0:.3f}   + model P {p1:.3f} R {r1:.3f} F1 {f1:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
