"""The backfill chunk task: translate the message, hand it to `worker.backfill_service`, nothing more."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from worker import bootstrap, logs
from worker.app import app, settings
from worker.backfill_service import ChunkDeps, process_chunk
from worker.engine import Policy, load_policy
from worker.jobs import JobStore
from worker.journal import Journal
from worker.routing import Router
from worker.tasks import through_outages

BACKFILL_CHUNK = bootstrap.BACKFILL_CHUNK


@cache
def _policy(spec: str | None) -> Policy:
    return load_policy(spec)


_router: Callable[[], Router] = bootstrap.once(lambda: bootstrap.router(settings))


def _send_delivery(job: dict[str, Any], countdown: float) -> None:
    bootstrap.send_delivery(job, app, countdown=countdown or None)


def _build_deps() -> ChunkDeps:
    client = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
    return ChunkDeps(JobStore(client), _policy, _router, _send_delivery,
                     Journal(client, ttl=settings.journal_ttl_seconds))


# Built on first use in each pool process, after the fork, once whatever the pool (bootstrap.once).
_deps = bootstrap.once(_build_deps)


@app.task(name=BACKFILL_CHUNK, bind=True, max_retries=5, autoretry_for=(SoftTimeLimitExceeded,),
          retry_backoff=True)
def backfill_chunk(self: Task, job_id: str, index: int) -> str:
    # Through an outage, as the event tasks: a chunk whose task raised on a Redis error was acknowledged as
    # failed and lost, and a producer waiting for room (`--wait`) then waited for it for ever. A chunk runs
    # once whatever the number of its copies, so running it again from the start is safe.
    with logs.task_context(task_id=self.request.id):
        return through_outages(lambda: process_chunk(job_id, int(index), _deps()))
