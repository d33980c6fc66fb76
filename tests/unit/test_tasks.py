"""The Celery tasks' retries, run eagerly (Celery's `apply` follows each retry in process): waiting for
another worker's claim, or for a target's rate limit, is retried without using up the attempts that bound
a reply's wait for its ticket's earlier messages, or a delivery's tries."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import redis

from worker import backfill_tasks, bootstrap, tasks
from worker.pipeline import DeliveryOutcome, EventOutcome


def _scripted(outcomes: Sequence[Any], attempts: list[int], owners: list[str | None] | None = None
              ) -> Callable[..., Any]:
    """A service-layer stand-in that answers `outcomes` in turn and records the attempt number of each call
    (and, given `owners`, whose name each call's claim was taken in)."""
    def run(_: Any, deps: Any, attempt: int = 0, owner: str | None = None) -> Any:
        attempts.append(attempt)
        if owners is not None:
            owners.append(owner)
        return outcomes[len(attempts) - 1]
    return run


@pytest.fixture(autouse=True)
def no_deps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "_deps", lambda: None)


def test_busy_waits_do_not_use_up_an_events_order_wait_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = [EventOutcome("busy", retry_in=0.01), EventOutcome("waiting", retry_in=0.01),
                EventOutcome("busy", retry_in=0.01), EventOutcome("busy", retry_in=0.01),
                EventOutcome("waiting", retry_in=0.01), EventOutcome("judged")]
    attempts: list[int] = []
    owners: list[str | None] = []
    monkeypatch.setattr(tasks.pipeline, "handle_event", _scripted(outcomes, attempts, owners))
    result = tasks.handle_event.apply(args=[{"event_id": "e1"}])
    assert result.get() == "judged"
    assert attempts == [0, 0, 1, 1, 1, 2]  # only the two order waits counted
    # Every run claims the event in the task's own name, so a run after a failure takes its claim back.
    assert owners == [result.id] * len(outcomes)


def test_throttled_and_busy_waits_do_not_use_up_a_deliverys_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = [DeliveryOutcome("throttled", retry_in=0.01), DeliveryOutcome("retry", retry_in=0.01),
                DeliveryOutcome("busy", retry_in=0.01), DeliveryOutcome("delivered")]
    attempts: list[int] = []
    monkeypatch.setattr(tasks.pipeline, "deliver", _scripted(outcomes, attempts))
    assert tasks.deliver.apply(args=[{"delivery_id": "d1"}]).get() == "delivered"
    assert attempts == [0, 0, 1, 1]  # only the failed try counted


def test_the_threads_of_a_thread_pool_build_the_dependencies_once() -> None:
    """The deliverer's 32 threads take their first tasks at once; each used to compile the policy. Every
    task module's dependencies (tasks._deps, backfill_tasks._deps and _router) are built by bootstrap.once."""
    threads = 16
    arrived = threading.Event()  # every thread has asked for the dependencies
    attempts: list[int] = []
    lock = threading.Lock()

    class CountingLock:
        def __enter__(self) -> None:
            attempts.append(1)
            if len(attempts) == threads:
                arrived.set()
            lock.acquire()

        def __exit__(self, *_: Any) -> None:
            lock.release()

    builds: list[int] = []

    def slow_build() -> object:
        builds.append(1)
        arrived.wait(timeout=10)  # the build is under way while the other threads arrive
        return object()

    deps = bootstrap.once(slow_build, lock=CountingLock())
    seen: list[object] = []
    workers = [threading.Thread(target=lambda: seen.append(deps())) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert len(builds) == 1 and len(seen) == threads and len({id(d) for d in seen}) == 1


def test_a_backfill_chunk_rides_out_a_redis_outage_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk task that raised on a Redis error was acknowledged as failed and lost: nothing sent it again,
    and a producer waiting for room waited for ever (seen once in CI, Redis restarted mid-job)."""
    calls: list[int] = []

    def flaky_chunk(job_id: str, index: int, deps: Any) -> str:
        calls.append(index)
        if len(calls) < 3:
            raise redis.ConnectionError("Connection refused")
        return "done"

    monkeypatch.setattr(backfill_tasks, "process_chunk", flaky_chunk)
    monkeypatch.setattr(backfill_tasks, "_deps", lambda: None)
    result = backfill_tasks.backfill_chunk.apply(args=["bf-1", 7])
    assert result.successful() and result.get() == "done"
    assert calls == [7, 7, 7]
