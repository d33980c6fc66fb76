"""The incident model under cross-validation: each labelled set scored by a model trained without it.

    python bench/incident_cv.py

`bench/accuracy.py` on a set the shipped model was trained on gives an in-sample incident figure; this
gives the out-of-sample one for every set at once. Each fold trains on every other set of the shipped
model's training data (scripts/train-incident-model) and scores the held-out set with the lexicon alone
and with the lexicon and the fold's model; the lexicon was tuned on these sets, so its own column flatters
it. Then a model trained on every fold scores what it never saw: the test halves (never tuned on) and the
fourth and fifth sets' dev halves (the lexicon was tuned on those; each half holds four incident kinds).
The folds are the tuning files, the first two held-out sets and the dev halves of TRAINS_ON_DEV.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.corpus import Item, in_split, incident_example, load_corpus, split_folders  # noqa: E402
from worker.engine import load_policy, review_reply  # noqa: E402
from worker.engine.policy import Policy  # noqa: E402
from worker.engine.signals.incident_model import IncidentModel, train  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"
# Odd ids dev, even ids test.
SPLIT_SETS = tuple(path.name for path in split_folders(CORPUS))
# Sets whose dev half trains the model (scripts/train-incident-model). The fourth and fifth sets' authors
# wrote the incident kinds in id order, so each of their halves holds four kinds: they train nothing.
TRAINS_ON_DEV = tuple(name for name in SPLIT_SETS if name not in ("holdout4", "holdout5"))


def sets() -> tuple[dict[str, list[Item]], dict[str, list[Item]]]:
    folds = {path.stem: list(load_corpus(path)) for path in sorted(CORPUS.glob("*.jsonl"))}
    folds["holdout"] = list(load_corpus(CORPUS / "holdout"))
    folds["holdout2"] = list(load_corpus(CORPUS / "holdout2"))
    tests: dict[str, list[Item]] = {}
    for name in SPLIT_SETS:
        items = list(load_corpus(CORPUS / name))
        dev = folds if name in TRAINS_ON_DEV else tests
        dev[f"{name} (dev)"] = [i for i in items if in_split(i.id, "dev")]
        tests[f"{name} (test)"] = [i for i in items if in_split(i.id, "test")]
    return folds, dict(sorted(tests.items(), key=lambda kv: "test" not in kv[0]))


def examples(items: list[Item]) -> list[tuple[list[str], str]]:
    return [incident_example(i) for i in items]


def with_model(policy: Policy, model: IncidentModel | None) -> Policy:
    return dataclasses.replace(policy, lexicon=dataclasses.replace(policy.lexicon, incident_model=model))


def right(policy: Policy, items: list[Item]) -> int:
    return sum(review_reply(i.history.messages[-1], i.history.messages[:-1], i.history.ticket,
                            policy).context.incident == i.labels["incident"] for i in items)


def main() -> int:
    policy = load_policy(None)
    lexicon_only = with_model(policy, None)
    folds, tests = sets()
    print(f"{'held-out set':22s} {'items':>6s} {'lexicon':>8s} {'+ model':>8s}")
    totals = [0, 0, 0]
    for name, items in folds.items():
        rest = [i for other, its in folds.items() if other != name for i in its]
        model = IncidentModel.from_data(train(examples(rest)))
        a, b = right(lexicon_only, items), right(with_model(policy, model), items)
        totals = [totals[0] + len(items), totals[1] + a, totals[2] + b]
        print(f"{name:22s} {len(items):6d} {a / len(items):8.3f} {b / len(items):8.3f}")
    n, a, b = totals
    print(f"{'all folds':22s} {n:6d} {a / n:8.3f} {b / n:8.3f}")
    model = IncidentModel.from_data(train(examples([i for its in folds.values() for i in its])))
    print("never seen by the model (test halves never tuned on, then dev halves), the model of every fold:")
    totals = [0, 0, 0]
    for name, test in tests.items():
        a, b = right(lexicon_only, test), right(with_model(policy, model), test)
        if "test" in name:
            totals = [totals[0] + len(test), totals[1] + a, totals[2] + b]
        print(f"{name:22s} {len(test):6d} {a / len(test):8.3f} {b / len(test):8.3f}")
        if name == f"{SPLIT_SETS[-1]} (test)":
            n, a, b = totals
            print(f"{'all test halves':22s} {n:6d} {a / n:8.3f} {b / n:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
