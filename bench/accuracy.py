"""Accuracy of the engine against the labelled corpus: precision, recall and F1 per signal and per rule.

    python bench/accuracy.py [--corpus tests/corpus ...] [--policy liability-aware] [--errors SIGNAL]
        [--split dev|test]

`--corpus` may be given more than once: the sets are scored as one pool (the held-out test halves
together are the figure for text nobody tuned the engine on).

Rule scores compare the rules fired on the engine's signals with the same rules evaluated on the
labelled signals, so a rule's figure shows how detection errors turn into wrong findings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.corpus import Item, in_split, load_corpus  # noqa: E402 (load_corpus: for the other benches)
from worker.engine import load_policy, review_reply  # noqa: E402
from worker.engine.policy import CONFIG_DIR, Policy  # noqa: E402
from worker.engine.review import response_minutes  # noqa: E402
from worker.models import Verdict  # noqa: E402

BINARY = ("liability_admission", "blame", "empathy", "solution", "prevention", "legal_risk")
TARGETS = {"apology present": 0.97, "generic vs specific": 0.90, "liability_admission": 0.90,
           "blame": 0.85, "empathy": 0.90, "solution": 0.85, "incident accuracy": 0.80}


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, gold: bool, pred: bool) -> None:
        if gold and pred:
            self.tp += 1
        elif pred:
            self.fp += 1
        elif gold:
            self.fn += 1
        else:
            self.tn += 1

    def prf(self) -> tuple[float, float, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f


def evaluate(items: list[Item], policy: Policy) -> tuple[dict[str, Any], list[tuple[Item, Verdict]]]:
    counts: dict[str, Counts] = defaultdict(Counts)
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    exact = defaultdict(int)
    results = []
    for item in items:
        msgs = item.history.messages
        verdict = review_reply(msgs[-1], msgs[:-1], item.history.ticket, policy)
        results.append((item, verdict))
        s, c, g = verdict.signals, verdict.context, item.labels
        counts["apology present"].add(g["apology"] != "none", s.apology != "none")
        for cls in ("generic", "specific"):
            counts[f"apology={cls}"].add(g["apology"] == cls, s.apology == cls)
        for name in BINARY:
            pred = c.legal_risk if name == "legal_risk" else getattr(s, name)
            counts[name].add(bool(g[name]), bool(pred))
        exact["incident"] += c.incident == g["incident"]
        confusion[g["incident"]][c.incident] += 1
        if g["apology"] != "none" and s.apology != "none":
            exact["stance n"] += 1
            exact["stance"] += s.apology_stance == g["apology_stance"]
        exact["count"] += s.apology_count == g["apology_count"]
        _score_rules(policy, item, verdict, counts)
    n = len(items)
    gen_f = counts["apology=generic"].prf()[2]
    spec_f = counts["apology=specific"].prf()[2]
    summary = {
        "n": n, "counts": counts, "confusion": confusion,
        "generic vs specific": (gen_f + spec_f) / 2,
        "incident accuracy": exact["incident"] / n if n else 0.0,
        "stance accuracy": exact["stance"] / exact["stance n"] if exact["stance n"] else 0.0,
        "count accuracy": exact["count"] / n if n else 0.0,
    }
    return summary, results


def _score_rules(policy: Policy, item: Item, verdict: Verdict, counts: dict[str, Counts]) -> None:
    """Evaluate each rule on the gold labels and compare with what fired on detected signals."""
    g = item.labels
    msgs = item.history.messages
    gold_facts = {
        "apology": g["apology"], "apology_stance": g["apology_stance"], "apology_count": g["apology_count"],
        **{k: g[k] for k in BINARY}, "incident": g["incident"],
        "frustration": verdict.context.frustration, "customer_language": verdict.context.language,
        "language": verdict.signals.language,
        "response_minutes": response_minutes(msgs[-1], msgs[:-1]),
    }
    profile = policy.profile_for(item.history.ticket.team, item.history.ticket.channel, item.history.ticket.tags)
    sla = profile.sla.response_minutes
    rm = gold_facts["response_minutes"]
    gold_facts["sla_breached"] = bool(sla is not None and rm is not None and rm > sla)
    gold_facts["first_reply"] = not any(m.role == "agent" and m.public for m in msgs[:-1])
    gold_facts["reply_words"] = len(msgs[-1].body.split())
    t = item.history.ticket
    gold_facts.update(channel=t.channel, team=t.team, tags=list(t.tags))
    fired = {f.rule for f in verdict.findings}
    for rule in profile.rules:
        counts[f"rule {rule.id}"].add(rule.condition(gold_facts), rule.id in fired)


def report(summary: dict[str, Any], policy: Policy) -> None:
    counts = summary["counts"]
    print(f"corpus: {summary['n']} agent replies · policy {policy.name} {policy.version}\n")
    print(f"{'signal':28} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}   target")
    for name in ("apology present", "apology=generic", "apology=specific", *BINARY):
        c = counts[name]
        p, r, f = c.prf()
        target = TARGETS.get(name)
        mark = "" if target is None else f"≥ {target:.2f} {'ok' if f >= target else 'MISS'}"
        print(f"{name:28} {p:9.3f} {r:7.3f} {f:6.3f} {c.tp + c.fn:8d}   {mark}")
    for name in ("generic vs specific", "incident accuracy"):
        v = summary[name]
        t = TARGETS[name]
        label = "macro F1" if name.startswith("generic") else "accuracy"
        print(f"{name + ' (' + label + ')':45} {v:6.3f}            ≥ {t:.2f} {'ok' if v >= t else 'MISS'}")
    print(f"{'apology stance (accuracy, both apologise)':45} {summary['stance accuracy']:6.3f}")
    print(f"{'apology count (exact)':45} {summary['count accuracy']:6.3f}")
    print("\nincident confusion (rows gold, columns predicted):")
    kinds = ["defect", "delay", "misinformation", "staff_conduct", "billing", "beyond_control", "other", "none"]
    print(" " * 16 + "".join(f"{k[:8]:>9}" for k in kinds))
    for g in kinds:
        print(f"{g:16}" + "".join(f"{summary['confusion'][g].get(k, 0):9d}" for k in kinds))
    print(f"\n{'rule':34} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}")
    for name in sorted(k for k in counts if k.startswith("rule ")):
        c = counts[name]
        p, r, f = c.prf()
        print(f"{name[5:]:34} {p:9.3f} {r:7.3f} {f:6.3f} {c.tp + c.fn:8d}")


def show_errors(results: list[tuple[Item, Verdict]], signal: str) -> None:
    for item, v in results:
        g = item.labels
        if signal == "incident":
            gold, pred = g["incident"], v.context.incident
        elif signal == "legal_risk":
            gold, pred = g["legal_risk"], v.context.legal_risk
        else:
            gold, pred = g[signal], getattr(v.signals, signal)
        if gold != pred:
            body = item.history.messages[-1].body.replace("\n", " ")
            cust = next((m.body for m in reversed(item.history.messages[:-1]) if m.role == "customer"), "")
            print(f"--- {item.id}: gold={gold} pred={pred}\n  reply: {body[:400]}")
            if signal in ("incident", "legal_risk"):
                print(f"  customer: {cust[:300]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", action="append", help="a corpus folder or file; repeat to pool several "
                                                      "(default: tests/corpus)")
    ap.add_argument("--policy", default="liability-aware")
    ap.add_argument("--errors", help="print the items where this signal is wrong")
    ap.add_argument("--split", choices=["dev", "test"],
                    help="only the odd-numbered items (dev: errors may be read) or the even-numbered ones (test: "
                         "scores only); see tests/corpus/holdout3/README.md")
    args = ap.parse_args()
    policy = load_policy(args.policy)
    corpora = [Path(c) for c in args.corpus or [ROOT / "tests" / "corpus"]]
    items = [item for corpus in corpora for item in load_corpus(corpus)
             if args.split is None or in_split(item.id, args.split)]
    if args.errors and args.split == "test":
        ap.error("--errors on the test split would make it a tuning set")
    summary, results = evaluate(items, policy)
    if args.errors:
        show_errors(results, args.errors)
        return 0
    report(summary, policy)
    for corpus in corpora:
        print(f"{corpus}: {_in_sample_note(corpus, args.split)}")
    return 0


def _in_sample_note(corpus: Path, split: str | None) -> str:
    """Whether the shipped incident model was fitted to what was just scored (then its incident figure
    is in-sample and says nothing about unseen text)."""
    model = json.loads((CONFIG_DIR / "incident-model.json").read_text(encoding="utf-8"))
    here = corpus.resolve()
    for source in model.get("trained_on", []):
        path, _, half = source.partition(" (")
        if (ROOT / path).resolve() == here and (not half or split != "test"):
            return ("note: the incident model was trained on this corpus" + (" (its dev half)" if half else "")
                    + ": the incident figure is in-sample; held-out sets give the honest one")
    return "incident model: not trained on this corpus (the incident figure is out-of-sample)"


if __name__ == "__main__":
    sys.exit(main())
