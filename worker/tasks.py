"""Celery tasks: translate the message, hand it to the service layer, turn its answer into a retry."""

from __future__ import annotations

from functools import cache
from typing import Any

from celery import Task, signals
from celery.exceptions import SoftTimeLimitExceeded

from worker import bootstrap, logs, pipeline
from worker.app import app, settings


@cache
def _deps() -> pipeline.Deps:
    # Built once per pool process, after the fork (sockets are not shared across it).
    return bootstrap.deps(settings, lambda job: deliver.apply_async(args=[job]))


@signals.worker_process_init.connect
def _warm(**_: Any) -> None:
    """Load the policy, open the HTTP pool and run the engine once before the first real task, so the
    first events a fresh process takes are not hundreds of milliseconds late."""
    bootstrap.warm(_deps())


@app.task(name=bootstrap.HANDLE_EVENT, bind=True, max_retries=None, autoretry_for=(SoftTimeLimitExceeded,),
          retry_backoff=True)
def handle_event(self: Task, payload: Any) -> str:
    with logs.task_context(task_id=self.request.id):
        outcome = pipeline.handle_event(payload, _deps(), attempt=self.request.retries)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@app.task(name=bootstrap.DELIVER, bind=True, max_retries=None, autoretry_for=(SoftTimeLimitExceeded,),
          retry_backoff=True)
def deliver(self: Task, job: dict[str, Any]) -> str:
    # Waits for a target's rate limit are retries too, but they must not use up the delivery's attempts:
    # the job counts them, and the attempt number leaves them out.
    throttled = int(job.get("throttled", 0))
    with logs.task_context(task_id=self.request.id):
        outcome = pipeline.deliver(job, _deps(), attempt=self.request.retries - throttled)
    if outcome.status == "throttled":
        raise self.retry(args=[{**job, "throttled": throttled + 1}], countdown=outcome.retry_in)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@app.task(name="apology.ping")
def ping() -> str:
    """A no-op: health checks (`celery -A worker.app call apology.ping`) and the benchmark's baseline."""
    return "pong"
