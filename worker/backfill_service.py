"""What happens to one backfill chunk, whatever runs it: judge its tickets, write or deliver, mark done.

Guarantees: a chunk is marked done only after its shard is renamed into place (or its deliveries are
enqueued), so a worker killed mid-chunk leaves it to be run again, and running it again replaces the
same shard (or re-sends deliveries whose stable ids the delivery task skips): nothing appears twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from worker import logs
from worker.backfill import BackfillError, Chunk, ChunkResult, judge_chunk, write_shard
from worker.engine import Policy
from worker.jobs import JobStore
from worker.journal import Journal, chunk_key
from worker.pipeline import DeliveryJob
from worker.routing import Router
from worker.targets.base import delivery_id

log = logs.get_logger("worker.backfill")

ChunkStatus = Literal["done", "duplicate", "cancelled", "missing"]


@dataclass
class ChunkDeps:
    store: JobStore
    policy: Callable[[str | None], Policy]  # by the job's policy spec, cached by the caller
    router: Callable[[], Router] | None = None
    send_delivery: Callable[[dict[str, Any], float], None] | None = None  # job, countdown seconds
    journal: Journal | None = None  # deliveries journalled before they are sent, chunks settled (worker.journal)


def process_chunk(job_id: str, index: int, deps: ChunkDeps) -> ChunkStatus:
    status = _process(job_id, index, deps)
    if deps.journal is not None:  # a final state: the chunk's journal entry is settled
        deps.journal.settle("chunk", chunk_key(job_id, index))
    return status


def _process(job_id: str, index: int, deps: ChunkDeps) -> ChunkStatus:
    clock = time.process_time
    started = clock()
    store = deps.store
    job, done, raw = store.claim(job_id, index)
    if job is None:
        return "missing"
    if job.state == "cancelled":
        return "cancelled"
    if done or raw is None:  # done, maybe meanwhile by another worker (its input is dropped when done)
        return "duplicate"
    chunk = Chunk.decode(raw)
    decoded = clock()
    policy = deps.policy(job.policy)  # loaded by the first chunk a process runs, then cached
    if policy.version != job.policy_version:
        raise BackfillError(f"job {job_id} was started under policy {job.policy_version} but this worker "
                            f"loads {policy.version} from {job.policy or 'the default preset'}: give every "
                            "worker the same policy file")
    loaded = clock()
    result = judge_chunk(chunk, policy, keep=job.deliver)
    result.cpu["read"] += decoded - started
    result.cpu["policy"] += loaded - decoded
    if job.deliver:
        started = clock()
        _deliver(job_id, job.rate, result, deps)
        result.cpu["write"] += clock() - started
    elif job.output is not None:
        started = clock()
        write_shard(job.output, index, result.lines)
        result.cpu["write"] += clock() - started
    store.finish_chunk(job_id, index, result.replies, result.verdicts, result.failures, estimated=chunk.replies,
                       unreadable=result.unreadable, cpu=result.cpu)
    log.info("backfill chunk done", job=job_id, chunk=index, replies=result.replies, verdicts=result.verdicts,
             failed=len(result.failures), unreadable=len(result.unreadable),
             cpu_engine_s=round(result.cpu["engine"], 3),
             cpu_other_s=round(sum(result.cpu.values()) - result.cpu["engine"], 3))
    return "done"


def _deliver(job_id: str, rate: float | None, result: ChunkResult, deps: ChunkDeps) -> None:
    if deps.router is None or deps.send_delivery is None:
        raise BackfillError("this worker cannot deliver: no router configured")
    router = deps.router()
    for ticket, verdict in result.judged:
        for name in router.destinations(verdict, ticket):
            delay = deps.store.delivery_delay(job_id, rate) if rate else 0.0
            job = DeliveryJob(delivery_id(verdict, name), name, verdict.model_dump(mode="json"),
                              f"backfill:{job_id}/{verdict.ticket_id}/{verdict.message_id}")
            payload = job.to_payload()
            if deps.journal is not None:
                deps.journal.record([("delivery", job.delivery_id, [payload])], due_in=delay)
            deps.send_delivery(payload, delay)

