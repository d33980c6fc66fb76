"""`apology-worker enqueue FILE...`: send ticket history files to the workers as events, in order.

Each message becomes one canonical event whose id derives from its ticket and message ids, so sending a
file twice delivers nothing new. Exit codes: 0 sent; 2 usage or settings error; 3 some lines unreadable.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import Any

from worker import bootstrap
from worker.exports import readable_histories
from worker.history import Skipped
from worker.pipeline import history_events, submit_events


def register(sub: Any) -> None:
    p = sub.add_parser("enqueue", help="send ticket history files to the workers as events")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="history files: canonical JSONL (.gz), message CSV or Zendesk export; - for stdin")
    p.add_argument("--source", default="history", help="event source recorded on each event (default: "
                                                       "history); the deduplication key is (source, id)")
    p.set_defaults(run=run)


# How long a Redis restart or failover may take before `enqueue` gives up (as a backfill's producer waits).
OUTAGE_PATIENCE = 300.0


def run(args: argparse.Namespace) -> int:
    cfg = bootstrap.settings()
    stores = bootstrap.stores(cfg)
    skipped = Skipped()
    sent = 0
    for history in readable_histories(args.files, skipped):
        # A ticket's events go again whole after an outage: the workers drop what they have already seen. Not
        # before the first ticket went: a Redis that is not there at the start is more often a wrong URL
        # than a restart, and is said at once (exit 2).
        sent += bootstrap.riding_out(
            partial(submit_events, history_events(history, args.source), stores, bootstrap.send_event),
            stores.redis, _say if sent else None, what="enqueue", patience=OUTAGE_PATIENCE if sent else 0.0,
            later=f"{sent:,} events sent so far; running the same command again delivers nothing twice")
    print(f"enqueued {sent} events" + (f"; {len(skipped)} unreadable lines" if skipped else ""))
    return 3 if skipped else 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
