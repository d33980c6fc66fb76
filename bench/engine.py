"""Engine speed on one core: replies per second over the corpus repeated and varied, against one regex pass.

    python bench/engine.py [--replies 100000] [--policy liability-aware]

Each round rewrites numbers, names and order ids in every conversation so no two replies are the same
text (no cache of verdicts or readings can help), then judges every agent reply with the customer messages
before it, exactly as `review` does. The baseline is a single compiled regular expression
(`sorry|apolog...`) scanning the same reply and customer texts: the cheapest possible "review". Prints
CPU-time rates (one process, one core), their ratio, and the peak resident memory.

It prints first the rate on text the engine has never read: every labelled conversation of every set once,
in a fresh process. RE2 builds its automata's states lazily and keeps them, so the varied rounds, which
differ from each other in digits and names, reuse states that new text has to build: live traffic is new
text, and the first-sight rate is the one to plan capacity on.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.accuracy import load_corpus  # noqa: E402
from worker.corpus import labelled_folders  # noqa: E402
from worker.engine import load_policy, review_history  # noqa: E402
from worker.models import TicketHistory  # noqa: E402

NAMES = ["Dana", "Sam", "Priya", "Luca", "Mei", "Tomás", "Aisha", "Jonas", "Noor", "Ravi", "Ines", "Kofi"]
_DIGITS = re.compile(r"\d")
_NAME = re.compile(r"\b(?:Dana|Sam|Priya|Hi [A-Z][a-z]+)\b")
BASELINE = re.compile(r"\b(?:sorry|apolog\w*|regret)\b", re.IGNORECASE)


def varied(histories: list[TicketHistory], total: int, seed: int = 7) -> Iterator[TicketHistory]:
    """The corpus again and again, each copy with fresh numbers and names, until `total` replies."""
    rng = random.Random(seed)
    made = 0
    round_no = 0
    while made < total:
        round_no += 1
        def vary(text: str) -> str:
            text = _DIGITS.sub(lambda _: str(rng.randrange(10)), text)
            return _NAME.sub(lambda hit: ("Hi " if hit.group().startswith("Hi ") else "") + rng.choice(NAMES), text)

        for h in histories:
            messages = [m.model_copy(update={"body": vary(m.body), "id": f"{m.id}-{round_no}"}) for m in h.messages]
            ticket = h.ticket.model_copy(update={"id": f"{h.ticket.id}-{round_no}"})
            yield TicketHistory(ticket=ticket, messages=messages)
            made += sum(1 for m in messages if m.role == "agent" and m.public)
            if made >= total:
                return


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--replies", type=int, default=100_000)
    ap.add_argument("--policy", default="liability-aware")
    args = ap.parse_args()
    policy = load_policy(args.policy)
    corpus = [item.history for item in load_corpus(ROOT / "tests" / "corpus")]
    inputs = list(varied(corpus, args.replies))
    texts = [m.body for h in inputs for m in h.messages]
    chars = sum(len(t) for t in texts)

    # First sight: every labelled conversation once, before the engine has read any of them. RE2 builds its
    # automata's states lazily and keeps them, so text it has read the like of before (the varied rounds
    # below differ in digits and names) costs less than text it has not; live traffic is all new text.
    review_history(corpus[0], policy)  # load the models and the language identifier first
    everything = [item.history for folder in labelled_folders(ROOT / "tests" / "corpus")
                  for item in load_corpus(folder)]
    start = time.process_time()
    first_sight = sum(1 for h in everything for _ in review_history(h, policy))
    first_sight_s = time.process_time() - start
    print(f"first sight: {first_sight / first_sight_s:7,.0f} replies/s on one core over all {first_sight} labelled "
          f"replies, each read once ({first_sight_s:.1f} s CPU): text new to the engine", flush=True)

    start = time.process_time()
    replies = sum(1 for h in inputs for _ in review_history(h, policy))
    engine_s = time.process_time() - start

    start = time.process_time()
    for text in texts:
        for _ in BASELINE.finditer(text):
            pass
    regex_s = time.process_time() - start

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine_rate = replies / engine_s
    regex_rate = replies / regex_s
    print(f"input: {replies} replies in {len(inputs)} conversations, {len(texts)} messages, "
          f"{chars / 1e6:.1f} M characters")
    print(f"engine:   {engine_rate:10,.0f} replies/s on one core ({engine_s:.1f} s CPU, policy {policy.name})")
    print(f"baseline: {regex_rate:10,.0f} replies/s for one compiled-regex pass over the same texts")
    print(f"ratio engine/baseline: {engine_rate / regex_rate:.4f}  (target: >= 10,000 replies/s on one core: "
          f"{'met' if engine_rate >= 10_000 else 'NOT met'})")
    print(f"peak resident memory: {peak_mb:.0f} MB (includes the {len(inputs)} conversations held in memory)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
