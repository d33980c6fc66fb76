"""`apology-worker dead-letters list|show ID|replay [ID|--all]|drop [ID|--all|--older-than DAYS]`: what the
pipeline could not handle.

Events that were not valid canonical events, and deliveries that a target refused or that ran out of
retries, are kept with the reason and the last response. Replay sends them through the workers again
(after the cause is fixed) and removes them from the store; drop removes them without (they keep message
text, so a retention job drops the old ones).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from worker import bootstrap
from worker.errors import EventError
from worker.journal import chunk_key, event_key
from worker.pipeline import parse_event
from worker.stores import DeadLetter, Stores


def register(sub: Any) -> None:
    p = sub.add_parser("dead-letters", help="list, show or replay events and deliveries that failed")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    ls = verbs.add_parser("list", help="the most recent dead letters")
    ls.add_argument("--limit", type=int, default=50, help="how many to list, newest first (default 50)")
    ls.add_argument("--format", choices=["text", "jsonl"], default="text")
    show = verbs.add_parser("show", help="one dead letter in full, as JSON")
    show.add_argument("id")
    replay = verbs.add_parser("replay", help="send dead letters through the workers again")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?")
    which.add_argument("--all", action="store_true", help="replay every dead letter")
    drop = verbs.add_parser("drop", help="delete dead letters without replaying them (they hold message text)")
    what = drop.add_mutually_exclusive_group(required=True)
    what.add_argument("id", nargs="?")
    what.add_argument("--all", action="store_true", help="delete every dead letter")
    what.add_argument("--older-than", type=_days, metavar="DAYS",
                      help="delete those kept more than DAYS days (a retention job can run this daily)")
    p.set_defaults(run=run)


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not days >= 0:
        raise argparse.ArgumentTypeError("days must be 0 or more")
    return days


def run(args: argparse.Namespace) -> int:
    stores = bootstrap.stores(bootstrap.settings())
    if args.verb == "list":
        letters = stores.dead_letters(args.limit)
        for letter in letters:
            if args.format == "jsonl":
                print(json.dumps(letter.to_dict(), default=str))
            else:
                when = datetime.fromtimestamp(letter.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
                print(f"{letter.id}  {when}  {letter.kind:<8}  {letter.reason}")
        if args.format == "text":
            print(f"{stores.dead_letter_count()} dead letters" + (f" (showing {len(letters)})"
                                                               if len(letters) < stores.dead_letter_count()
                                                               else ""))
        return 0
    if args.verb == "drop":
        return _drop(args, stores)
    if args.verb == "replay" and args.all:
        letters = stores.dead_letters(limit=stores.dead_letter_count())
    else:
        one = stores.dead_letter(args.id)
        if one is None:
            print(f"no dead letter {args.id!r}", file=sys.stderr)
            return 1
        if args.verb == "show":
            print(json.dumps(one.to_dict(), indent=2, default=str))
            return 0
        letters = [one]
    for letter in letters:
        _replay(letter, stores)
        stores.remove_dead_letter(letter.id)
        print(f"replayed {letter.id} ({letter.kind})")
    return 0


def _drop(args: argparse.Namespace, stores: Stores) -> int:
    if args.id is not None:
        if not stores.remove_dead_letter(args.id):
            print(f"no dead letter {args.id!r}", file=sys.stderr)
            return 1
        print(f"dropped {args.id}")
        return 0
    cutoff = None if args.all else stores.clock() - args.older_than * 86_400
    dropped = sum(stores.remove_dead_letter(i) for i in stores.dead_letter_ids_before(cutoff))
    print(f"dropped {dropped} dead letters; {stores.dead_letter_count()} kept")
    return 0


def _replay(letter: DeadLetter, stores: Stores) -> None:
    """Send it through the workers again, journalled like any other message (worker.journal)."""
    if letter.kind == "delivery":
        stores.journal.record([("delivery", str(letter.payload["delivery_id"]), [letter.payload])])
        bootstrap.send_delivery(letter.payload)
        return
    if letter.kind == "chunk":  # a backfill chunk the reconciler gave up on: [job id, index]
        job, index = letter.payload
        stores.journal.record([("chunk", chunk_key(str(job), int(index)), [job, index])])
        bootstrap.publish("chunk", [job, index])
        return
    try:
        event = parse_event(letter.payload)
    except EventError:  # not canonical: it will be rejected again, with the reason
        bootstrap.send_event(letter.payload)
        return
    stores.journal.record([("event", event_key(event.source, event.event_id), [letter.payload])])
    bootstrap.send_event(letter.payload)
