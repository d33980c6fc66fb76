"""What happens to one backfill chunk, whatever runs it: judge its tickets, write or deliver, mark done.

Guarantees: a chunk is marked done only after its shard is renamed into place (or its deliveries are
enqueued), so a worker killed mid-chunk leaves it to be run again, and running it again replaces the
same shard (or re-sends deliveries whose stable ids the delivery task skips): nothing appears twice.
"""

from __future__ import annotations

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
    store = deps.store
    job = store.get(job_id)
    if job is None:
        return "missing"
    if job.state == "cancelled":
        return "cancelled"
    if store.is_done(job_id, index):
        return "duplicate"
    raw = store.chunk_payload(job_id, index)
    if raw is None:  # done meanwhile by another worker (its input is dropped when done)
        return "duplicate"
    chunk = Chunk.decode(raw)
    policy = deps.policy(job.policy)
    if policy.version != job.policy_version:
        raise BackfillError(f"job {job_id} was started under policy {job.policy_version} but this worker "
                            f"loads {policy.version} from {job.policy or 'the default preset'}: give every "
                            "worker the same policy file")
    result = judge_chunk(chunk, policy)
    if job.deliver:
        _deliver(job_id, job.rate, result, deps)
    elif job.output is not None:
        write_shard(job.output, index, result.lines())
    store.finish_chunk(job_id, index, chunk.replies, result.verdicts, result.failures)
    log.info("backfill chunk done", job=job_id, chunk=index, replies=chunk.replies, verdicts=result.verdicts,
             failed=len(result.failures))
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
            if deps.journal is not None:
                deps.journal.record([("delivery", job.delivery_id, [job.to_payload()])], due_in=delay)
            deps.send_delivery(job.to_payload(), delay)

