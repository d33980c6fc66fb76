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
the queues drain. The sweep is driven by every worker (`worker.app`, one of them per interval under a Redis
lock) or by `apology-worker reconcile`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker import logs
from worker.journal import Entry, Kind
from worker.stores import Stores

log = logs.get_logger("worker.reconcile")

# Between journalling and publishing (a producer publishes right after), and clock differences between hosts.
PUBLISH_SLACK_SECONDS = 5.0
SWEEP_LIMIT = 500  # entries looked at per sweep; a longer list is worked through over the next sweeps


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep saw and did."""

    queues_empty: bool
    cutoff: float | None  # entries due before this were lost; None: the queues were not seen empty long enough ago
    resent: tuple[Entry, ...] = ()
    dead: tuple[Entry, ...] = ()


def sweep(stores: Stores, *, queues_empty: Callable[[], bool], publish: Callable[[Kind, list[Any]], None],
          safe_age: float, max_sends: int, limit: int = SWEEP_LIMIT, dry_run: bool = False,
          now: float | None = None) -> Sweep:
    journal = stores.journal
    now = journal.clock() if now is None else now
    empty = queues_empty()
    if empty and not dry_run:
        journal.note_drained(now)
    drained = journal.drained_before(now - safe_age)
    if drained is None:
        return Sweep(empty, None)
    cutoff = drained - PUBLISH_SLACK_SECONDS
    due = journal.due(cutoff, limit)
    if dry_run:
        return Sweep(empty, cutoff, tuple(e for e in due if e.sends < max_sends),
                     tuple(e for e in due if e.sends >= max_sends))
    resent: list[Entry] = []
    dead: list[Entry] = []
    for entry in due:
        if entry.sends >= max_sends:
            letter = stores.add_dead_letter(
                entry.kind, f"not finished after {entry.sends} re-sends of a message the broker lost "
                            f"(first published {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(entry.first))})",
                entry.args[0] if len(entry.args) == 1 else entry.args, settles=(entry.kind, entry.key))
            log.error("journal entry dead-lettered", kind=entry.kind, key=entry.key, sends=entry.sends,
                      dead_letter=letter)
            dead.append(entry)
            continue
        try:
            journal.resent(entry)
        except LookupError:  # settled since it was read
            continue
        publish(entry.kind, entry.args)
        log.warning("published again: lost between the queue and a worker", kind=entry.kind, key=entry.key,
                    sends=entry.sends + 1, overdue=round(now - entry.due, 1))
        resent.append(entry)
    return Sweep(empty, cutoff, tuple(resent), tuple(dead))
