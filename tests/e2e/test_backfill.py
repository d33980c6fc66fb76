"""End to end: a backfill on a real redis-server and real celery workers survives SIGKILL of its producer
and, separately, of a worker; after `backfill resume` every reply of the input is in the output once. A
Redis restart mid-job needs no resume: the producer waits for Redis and carries on; so does Redis reaching its
memory limit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.support.histories import write_history
from tests.support.processes import Proc, RedisServer, celery_worker, python_env, spawn, venv_bin, wait_until
from worker.backfill import job_id
from worker.engine import Policy, review_history
from worker.jobs import Job, JobStore
from worker.models import TicketHistory

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CHUNK = 50


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_history(tmp_path_factory.mktemp("input") / "history.jsonl", tickets=3000, seed=11)


@pytest.fixture(scope="module")
def expected(history: Path, policy: Policy) -> Counter[tuple[str, str]]:
    replies = Counter((v.ticket_id, v.message_id) for line in history.read_text().splitlines()
                      for v in review_history(TicketHistory.model_validate_json(line), policy))
    assert len(replies) > 3000
    return replies


def _cli(*args: str, env: dict[str, str]) -> Proc:
    return spawn([venv_bin("apology-worker"), "backfill", *args], env=python_env(**env), cwd=ROOT)


def _finish(proc: Proc, timeout: float = 50.0, worker: Proc | None = None) -> int:
    try:
        return proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.stop(signal.SIGKILL)
        seen = f"\nthe worker's last lines:\n{worker.output()}" if worker is not None else ""
        raise AssertionError(f"backfill did not finish within {timeout}s:\n{proc.output()}{seen}") from None


def _output(out: Path) -> Counter[tuple[str, str]]:
    return Counter((d["ticket_id"], d["message_id"]) for p in sorted(out.glob("part-*.jsonl"))
                   for d in map(json.loads, p.read_text().splitlines()))


def _job(store: JobStore, jid: str) -> Job:
    job = store.get(jid)
    assert job is not None
    return job


@pytest.fixture()
def setup(redis_srv: RedisServer, history: Path, policy: Policy) -> Iterator[tuple[dict[str, str], JobStore, str]]:
    env = {"APOLOGY_BROKER_URL": redis_srv.url, "APOLOGY_LOG_FORMAT": "json"}
    client = redis.Redis.from_url(redis_srv.url)
    yield env, JobStore(client), job_id([str(history)], policy.version, CHUNK)
    client.close()


def test_producer_killed_mid_job_then_resumed(setup: tuple[dict[str, str], JobStore, str], history: Path,
                                              expected: Counter[tuple[str, str]], tmp_path: Path) -> None:
    env, store, jid = setup
    out = tmp_path / "out"
    with celery_worker(env, concurrency=1, name="w-producer-test"):
        producer = _cli("start", str(history), "--output", str(out), "--chunk-replies", str(CHUNK),
                        "--max-pending", "3", "--wait", env=env)
        wait_until(lambda: store.get(jid) is not None and _job(store, jid).enqueued >= 10, timeout=30,
                   what="10 chunks enqueued")
        os.killpg(producer.popen.pid, signal.SIGKILL)
        producer.popen.wait(timeout=10)
        stopped = _job(store, jid)
        assert not stopped.reading_done and stopped.state == "reading"

        resumed = _cli("resume", jid, "--wait", "--interval", "1", env=env)
        assert _finish(resumed) == 0, resumed.output()
    job = _job(store, jid)
    assert job.state == "done" and job.complete and job.verdicts == sum(expected.values())
    got = _output(out)
    assert got == expected
    assert max(got.values()) == 1


# How to break Redis mid-job, what the producer says when it notices, and how to mend it.
FAULTS: dict[str, tuple[Callable[[RedisServer], object], str, Callable[[RedisServer], object]]] = {
    # Down until the producer has noticed (a restart quicker than redis-py's retries is no outage to it), then
    # up again on the same port and append-only file.
    "restarted": (lambda srv: srv.stop(), "Redis unreachable", lambda srv: srv.start()),
    # At its memory limit Redis refuses every write but still answers: the producer must wait for room, not
    # for a ping, and the worker's chunks wait inside their tasks.
    "full": (lambda srv: _admin(srv).config_set("maxmemory", "1"), "Redis is full",
             lambda srv: _admin(srv).config_set("maxmemory", "0")),
}


def _admin(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


@pytest.mark.parametrize("fault", FAULTS)
def test_redis_broken_mid_job_the_same_producer_and_worker_wait_and_finish(
        setup: tuple[dict[str, str], JobStore, str], redis_srv: RedisServer, history: Path,
        expected: Counter[tuple[str, str]], tmp_path: Path, fault: str) -> None:
    """No `backfill resume`: the producer, never restarted, finishes the job, and the worker never exits."""
    env, store, jid = setup
    inflict, noticed, mend = FAULTS[fault]
    out = tmp_path / "out"
    with celery_worker(env, concurrency=1, name=f"w-{fault}") as worker:
        producer = _cli("start", str(history), "--output", str(out), "--chunk-replies", str(CHUNK),
                        "--max-pending", "3", "--wait", "--interval", "1", env=env)
        wait_until(lambda: store.get(jid) is not None and _job(store, jid).enqueued >= 5, timeout=30,
                   what="5 chunks enqueued")
        inflict(redis_srv)
        wait_until(lambda: noticed in producer.output() or producer.popen.poll() is not None,
                   timeout=60, what=f"the producer notices: {noticed}")
        mend(redis_srv)
        assert _finish(producer, timeout=90, worker=worker) == 0, producer.output()
        assert worker.popen.poll() is None
    assert "Redis is back" in producer.output()
    job = _job(store, jid)
    assert job.state == "done" and job.complete
    got = _output(out)
    assert got == expected
    assert max(got.values()) == 1


def test_redis_restarted_while_the_worker_holds_chunks_they_run_again_without_waiting_for_the_visibility_timeout(
        setup: tuple[dict[str, str], JobStore, str], redis_srv: RedisServer, history: Path,
        expected: Counter[tuple[str, str]], policy: Policy, tmp_path: Path) -> None:
    """The worker runs one chunk and holds the next (prefetch); kombu's restore of the held one fails with
    Redis down, and it used to wait in `unacked` for the visibility timeout (25 minutes here)."""
    env, store, _ = setup
    jid = job_id([str(history)], policy.version, 400)  # chunks larger than CHUNK: each takes a while
    out = tmp_path / "out"
    with celery_worker(env, concurrency=1, name="w-holding") as worker:
        producer = _cli("start", str(history), "--output", str(out), "--chunk-replies", "400", env=env)
        assert _finish(producer) == 0, producer.output()  # everything enqueued
        wait_until(lambda: _job(store, jid).done >= 1, timeout=30, what="a chunk done")
        redis_srv.stop()
        wait_until(lambda: "consumer: Cannot connect to" in "".join(worker.history), timeout=30,
                   what="the worker noticing (its channel closed while Redis was down)")
        redis_srv.start()
        wait_until(lambda: _job(store, jid).state == "done", timeout=60, what="the job done")
        assert "restored the messages held" in "".join(worker.history)
        assert worker.popen.poll() is None
    got = _output(out)
    assert got == expected
    assert max(got.values()) == 1


def test_worker_killed_mid_job_then_resumed(setup: tuple[dict[str, str], JobStore, str], history: Path,
                                            expected: Counter[tuple[str, str]], tmp_path: Path) -> None:
    env, store, jid = setup
    out = tmp_path / "out"
    with celery_worker(env, concurrency=2, name="w-doomed") as doomed:
        producer = _cli("start", str(history), "--output", str(out), "--chunk-replies", str(CHUNK),
                        "--max-pending", "1000", env=env)  # enqueues everything, then exits
        wait_until(lambda: store.get(jid) is not None and _job(store, jid).done >= 5, timeout=30,
                   what="5 chunks done")
        os.killpg(doomed.popen.pid, signal.SIGKILL)  # the whole worker: main process and its pool
        doomed.popen.wait(timeout=10)
        assert _finish(producer) == 0, producer.output()
    job = _job(store, jid)
    assert job.reading_done and job.state == "enqueued" and job.done < (job.chunks or 0)

    with celery_worker(env, concurrency=2, name="w-rescue"):
        resumed = _cli("resume", jid, "--wait", "--interval", "1", env=env)
        assert _finish(resumed) == 0, resumed.output()
        assert "replies/s" in resumed.output()  # plain progress lines off a terminal
    job = _job(store, jid)
    assert job.state == "done" and job.complete
    got = _output(out)
    assert got == expected
    assert max(got.values()) == 1

    again = _cli("start", str(history), "--output", str(out), "--chunk-replies", str(CHUNK), env=env)
    assert _finish(again) == 0
    assert "nothing new" in again.output()
