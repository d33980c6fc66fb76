"""`celery -A bench.null_engine worker`: the real worker with the engine swapped for a null one, to measure
everything around the engine (bench/backfill.py --null-engine). For benchmarks only.

The null engine answers every reply with one of a few hundred verdicts the real engine gave on the corpus
at start-up, so the chunk task validates, counts, serialises and writes exactly what it would with the
real engine, at no engine cost.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import worker.backfill
from bench.accuracy import load_corpus
from worker.app import app
from worker.engine import Policy, load_policy, review_history, reviewable
from worker.models import TicketHistory, Verdict

__all__ = ["app"]

_SAMPLE = 300


def _verdicts() -> Iterator[Verdict]:
    policy = load_policy(os.environ.get("APOLOGY_POLICY") or None)
    corpus = itertools.islice(load_corpus(Path(__file__).resolve().parents[1] / "tests" / "corpus"), _SAMPLE)
    judged = [v for item in corpus for v in review_history(item.history, policy)]
    return itertools.cycle(judged)


_CANNED = _verdicts()


def null_review(history: TicketHistory, policy: Policy) -> Iterator[Verdict]:
    for message in history.messages:
        if reviewable(message, policy):
            yield next(_CANNED)


worker.backfill.review_history = null_review
