"""The reconciler: publish again what the broker lost between the queue and a worker.

A journal entry (`worker.journal`) is settled when its work reaches a final state, so one that is still
there long after it was due is either lost or still legitimately on its way. Telling the two apart by age
alone would re-send every event of a backlog older than the safe age, so the test is instead: the queues
were seen **empty** at some time `D` at least `safe_age` ago, and the entry was due before `D`. Everything
published before `D` had by then been taken off the queue by a worker; whatever a worker took is final,
in `unacked` (handed out again after the visibility timeout), waiting for a countdown or running, and
`safe_age` is longer than all of those. So the entry's message was lost, or its work loops without
reaching a final state: it is published again (deduplication makes a copy of work that was in fact done
a no-op), and after `max_sends` re-sends it is dead-lettered instead, for a person to look at.

While a backlog keeps the queues from ever being empty nothing is re-sent; a lost message waits until
the queues drain.

That test has to allow for the visibility timeout and every countdown: 810 s at the defaults. A second,
faster one looks where the message should be: a journalled message is on its kind's queue, or held by a
worker (kombu records every message a worker has taken, prefetched, waiting for its countdown or running, in
`unacked` until it is acknowledged), or its work is final and the entry settled. One consistent read of the
broker (the queue's length and every `unacked` record, in one transaction) that finds the kind's queue empty
and the entry's message not held, at every sweep for `missing_after` seconds, means it was lost: a BRPOP
reply that died with its connection, a worker killed between BRPOP and its `unacked` record, a producer that
died before publishing. It is published again then, a minute or two after the loss instead of a quarter of
an hour. The message can also be out of sight legitimately, between BRPOP and its record: a worker that
holds as many tasks as its prefetch allows leaves its BRPOP reply unread until some of them end, usually
seconds (`missing_after` defaults to the hard time limit), longer when a burst of countdowns falls due at
once. So the test by looking never dead-letters: it re-sends up to `max_sends` times and leaves the rest to
the test by age. Either test re-sending a message that was not lost costs a skipped duplicate, never a
second annotation.

The sweep is driven by every worker (`worker.app`, one of them per interval under a Redis lock) or by
`apology-worker reconcile`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker import logs
from worker.journal import KINDS, Entry, Kind
from worker.stores import Stores

log = logs.get_logger("worker.reconcile")

# Between journalling and publishing (a producer publishes right after), and clock differences between hosts.
PUBLISH_SLACK_SECONDS = 5.0
SWEEP_LIMIT = 500  # entries looked at per sweep; a longer list is worked through over the next sweeps
# Index members read per sweep to find the entries of kinds whose queue is empty: another kind's backlog
# beyond this many hides them from the test by looking until it shrinks (the test by age still applies).
SCAN_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class BrokerView:
    """One consistent read of the broker: which kinds' queues are empty, and the journal entries (their
    Redis keys) whose messages workers hold unacknowledged."""

    idle: frozenset[Kind]
    held: frozenset[str] | None  # None: not read (not asked for, or too many to read)

    @property
    def queues_empty(self) -> bool:
        return self.idle == frozenset(KINDS)


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep saw and did."""

    queues_empty: bool
    cutoff: float | None  # entries due before this were lost; None: the queues were not seen empty long enough ago
    resent: tuple[Entry, ...] = ()
    dead: tuple[Entry, ...] = ()
    missing: tuple[Entry, ...] = ()  # those of `resent` and `dead` found lost by looking, not by age


def sweep(stores: Stores, *, look: Callable[[bool], BrokerView], publish: Callable[[Kind, list[Any]], None],
          safe_age: float, max_sends: int, missing_after: float | None = None, limit: int = SWEEP_LIMIT,
          dry_run: bool = False, now: float | None = None) -> Sweep:
    """Publish again (or dead-letter) what is overdue by age, and, with `missing_after`, what has been
    found in no queue and held by no worker at every sweep for that long."""
    journal = stores.journal
    now = journal.clock() if now is None else now
    # The journal first, what workers hold second: an entry settled between the two reads is then at worst
    # suspected once, and gone from the journal at the next sweep. Only kinds whose queue is empty are
    # candidates, so a long backfill's chunks do not crowd a lost live event out of the first `limit`.
    view = look(False)
    candidates: list[Entry] = []
    if missing_after is not None and view.idle:
        candidates = journal.due(now - PUBLISH_SLACK_SECONDS, limit, kinds=view.idle, scan=SCAN_LIMIT)
    if candidates:  # what workers hold is read only when there is something to look for, then in one read
        view = look(True)
    if view.queues_empty and not dry_run:
        journal.note_drained(now)
    missing: dict[str, Entry] = {}
    if missing_after is not None:
        held = view.held
        found = [] if held is None else [e for e in candidates if e.kind in view.idle and e.redis_key not in held]
        since = journal.watch_missing((e.redis_key for e in found), now, record=not dry_run)
        # Past `max_sends` an entry is left to the test by age, the only one that dead-letters: a message
        # out of sight for longer than `missing_after` for a legitimate reason (a worker that cannot read its
        # BRPOP reply until its held tasks end) costs a skipped duplicate, never a dead letter for live work.
        missing = {e.redis_key: e for e in found
                   if since[e.redis_key] <= now - missing_after and e.sends < max_sends}
    drained = journal.drained_before(now - safe_age)
    cutoff = None if drained is None else drained - PUBLISH_SLACK_SECONDS
    overdue = {e.redis_key: e for e in (journal.due(cutoff, limit) if cutoff is not None else [])}
    due = list({**overdue, **missing}.values())
    if dry_run:
        return Sweep(view.queues_empty, cutoff, tuple(e for e in due if e.sends < max_sends),
                     tuple(e for e in due if e.sends >= max_sends), tuple(missing.values()))
    resent: list[Entry] = []
    dead: list[Entry] = []
    for entry in due:
        how = "missing" if entry.redis_key in missing else "overdue"
        if entry.sends >= max_sends:
            first = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(entry.first))
            letter = stores.add_dead_letter(
                entry.kind, f"not finished after {entry.sends} re-sends of a message lost between the queue and a "
                            f"worker, or failing before its final state (first published {first})",
                entry.args[0] if len(entry.args) == 1 else entry.args, settles=(entry.kind, entry.key))
            log.error("journal entry dead-lettered", kind=entry.kind, key=entry.key, sends=entry.sends,
                      found=how, dead_letter=letter)
            dead.append(entry)
            continue
        try:
            journal.resent(entry)
        except LookupError:  # settled since it was read
            continue
        publish(entry.kind, entry.args)
        log.warning("published again: lost between the queue and a worker", kind=entry.kind, key=entry.key,
                    sends=entry.sends + 1, overdue=round(now - entry.due, 1), found=how)
        resent.append(entry)
    journal.unwatch(missing)
    return Sweep(view.queues_empty, cutoff, tuple(resent), tuple(dead),
                 tuple(e for e in [*resent, *dead] if e.redis_key in missing))
