"""Celery tasks: translate the message, hand it to the service layer, turn its answer into a retry."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task, signals
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.exceptions import Reject, SoftTimeLimitExceeded

from worker import bootstrap, logs, pipeline
from worker.app import app, settings
from worker.errors import ConfigError, PolicyError

T = TypeVar("T")
log = logs.get_logger("worker.tasks")


# Built once per process, after the fork, whichever of a thread pool's threads asks first (bootstrap.once).
_deps: Callable[[], pipeline.Deps] = bootstrap.once(
    lambda: bootstrap.deps(settings, lambda job: bootstrap.send_delivery(job, app)))


@signals.worker_init.connect
def _check(**_: Any) -> None:
    """Refuse to start on a bad policy or routes file (Celery logs and swallows a signal handler's errors,
    so this one exits: SystemExit is not an Exception)."""
    try:
        bootstrap.check_at_start(settings)
    except (PolicyError, ConfigError) as exc:
        sys.stderr.write(f"apology-worker: cannot start the worker: {exc}\n")
        raise SystemExit(2) from None


@signals.worker_process_init.connect
def _warm(**_: Any) -> None:
    """Load the policy, open the HTTP pool and run the engine once before the first real task, so the
    first events a fresh process takes are not hundreds of milliseconds late."""
    bootstrap.warm(_deps())


@signals.worker_ready.connect
def _warm_in_process(sender: Any = None, **_: Any) -> None:
    """A pool that does not fork (threads, solo) runs tasks in this process: warm it here, once. A prefork
    worker's main process runs no task, so it builds nothing (its children warm after their fork)."""
    if not isinstance(getattr(sender, "pool", None), PreforkPool):
        bootstrap.warm(_deps())


@app.task(name=bootstrap.HANDLE_EVENT, bind=True, max_retries=None, autoretry_for=(SoftTimeLimitExceeded,),
          retry_backoff=True)
def handle_event(self: Task, *args: Any, **kwargs: Any) -> str:
    # Takes (payload, busy=0). Any other shape is a malformed event, dead-lettered like one (a signature
    # mismatch would fail inside Celery and lose the event).
    try:
        payload, busy = _event_arguments(*args, **kwargs)
    except TypeError:
        with logs.task_context(task_id=self.request.id):
            return through_outages(lambda: pipeline.reject_call(args, kwargs, _deps())).status
    # Waits for another worker's claim on the event are retries too, but they must not use up the reply's
    # order-wait attempts: `busy` counts them. The claim is in the task's name (its id), so this task run again
    # after a failure that left its claim behind (a Redis restart, a lost worker) takes it back at once.
    with logs.task_context(task_id=self.request.id):
        outcome = through_outages(
            lambda: pipeline.handle_event(payload, _deps(), attempt=self.request.retries - busy,
                                          owner=self.request.id))
    if outcome.status == "busy":
        return _finish(self, outcome.status, outcome.retry_in, kwargs={"busy": busy + 1})
    return _finish(self, outcome.status, outcome.retry_in)


@app.task(name=bootstrap.DELIVER, bind=True, max_retries=None, autoretry_for=(SoftTimeLimitExceeded,),
          retry_backoff=True)
def deliver(self: Task, job: dict[str, Any]) -> str:
    # Waits for a target's rate limit, or for another worker's claim on the same delivery (in a task's name, as
    # above), are retries too, but they must not use up the delivery's attempts: the job counts them, and the
    # attempt number leaves them out.
    throttled = int(job.get("throttled", 0)) if isinstance(job, dict) else 0
    with logs.task_context(task_id=self.request.id):
        outcome = through_outages(
            lambda: pipeline.deliver(job, _deps(), attempt=self.request.retries - throttled,
                                     owner=self.request.id))
    if outcome.status in ("throttled", "busy"):
        return _finish(self, outcome.status, outcome.retry_in, args=[{**job, "throttled": throttled + 1}])
    return _finish(self, outcome.status, outcome.retry_in)


def _event_arguments(payload: Any, busy: int = 0) -> tuple[Any, int]:
    if not isinstance(busy, int):
        raise TypeError("busy must be an int")
    return payload, busy


def through_outages(run: Callable[[], T]) -> T:
    """Run a handler again, inside the same task, while Redis is away (a restart, a failover) or full (it
    refuses writes at its memory limit); every task's body goes through it (the backfill chunk's too).

    Raising would make Celery acknowledge the message as failed and lose it; rejecting it during the
    outage can take down the worker's consumer. Handlers are idempotent, so running one again from the
    start is safe. Past the deadline the message goes back to the queue (or, if Redis still cannot take
    it, stays unacknowledged until the visibility sweep).
    """
    pauses = bootstrap.outage_pauses(settings.task_soft_time_limit * 0.8)
    while True:
        try:
            return run()
        except bootstrap.OUTAGE_ERRORS + bootstrap.FULL_ERRORS as exc:
            pause = next(pauses, None)
            if pause is None:
                raise Reject(f"{type(exc).__name__}: {exc}", requeue=True) from exc
            log.warning("redis full (maxmemory); running the task again" if isinstance(exc, bootstrap.FULL_ERRORS)
                        else "redis unavailable; running the task again", error=f"{type(exc).__name__}: {exc}",
                        retry_in=pause)
            time.sleep(pause)


def _finish(task: Task, status: str, retry_in: float | None, args: list[Any] | None = None,
            kwargs: dict[str, Any] | None = None) -> str:
    if retry_in is None:
        return status
    try:
        # The retry keeps the short argument repr of the first publish (bootstrap.event_options).
        raise task.retry(args=args, kwargs=kwargs, countdown=retry_in, argsrepr=getattr(task.request, "argsrepr", None),
                         kwargsrepr=getattr(task.request, "kwargsrepr", None))
    except Reject as exc:
        # Celery rejects *without* requeueing when it cannot publish the retry (the broker is away),
        # which would drop the message: requeue it instead.
        raise Reject(exc.reason, requeue=True) from exc


@app.task(name="apology.ping")
def ping() -> str:
    """A no-op: health checks (`celery -A worker.app call apology.ping`) and the benchmark's baseline."""
    return "pong"
