"""`apology-worker reconcile [--dry-run]`: one sweep of the journal of published messages, now.

Workers sweep on their own (`APOLOGY_RECONCILE`, on by default); this is for looking (`--dry-run` lists
what a sweep would send again, by kind and key, never the message) and for deployments that turn the
workers' sweep off and run this from cron instead (the test by looking re-sends a message at the first run
`APOLOGY_RECONCILE_MISSING_SECONDS` or more after the run that first found it missing). Exit 0.
"""

from __future__ import annotations

import argparse
from typing import Any

from worker import bootstrap


def register(sub: Any) -> None:
    p = sub.add_parser("reconcile", help="publish again what the broker lost between the queue and a worker")
    p.add_argument("--dry-run", action="store_true", help="list what would be sent again; send nothing")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = bootstrap.settings()
    stores, sweep = bootstrap.sweeper(cfg)
    result = sweep(args.dry_run)
    journal = stores.journal
    now = journal.clock()
    oldest = journal.oldest_due()
    print(f"journal: {journal.size()} unsettled" + (f", oldest due {now - oldest:.0f} s ago" if oldest else ""))
    print("queues: " + ("empty" if result.queues_empty else "not empty"))
    if result.cutoff is None:
        print(f"nothing is overdue by age: the queues were not seen empty {cfg.reconcile_after} s ago or earlier")
    verb = ("would send again", "would dead-letter") if args.dry_run else ("sent again", "dead-lettered")
    missing = {e.redis_key for e in result.missing}
    for label, entries in zip(verb, (result.resent, result.dead), strict=True):
        print(f"{label}: {len(entries)}")
        for entry in entries:
            found = (f"in no queue and held by no worker for {cfg.reconcile_missing} s or more"
                     if entry.redis_key in missing else "overdue")
            print(f"  {entry.kind:<8} {entry.key}  sends={entry.sends}  due {now - entry.due:.0f} s ago  ({found})")
    return 0
