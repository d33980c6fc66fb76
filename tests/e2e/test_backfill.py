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
from collections.abc import Iterator
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


def test_redis_restarted_mid_job_the_producer_waits_and_finishes(
        setup: tuple[dict[str, str], JobStore, str], redis_srv: RedisServer, history: Path,
        expected: Counter[tuple[str, str]], tmp_path: Path) -> None:
    env, store, jid = setup
    out = tmp_path / "out"
    with celery_worker(env, concurrency=1, name="w-outage") as worker:
        producer = _cli("start", str(history), "--output", str(out), "--chunk-replies", str(CHUNK),
                        "--max-pending", "3", "--wait", "--interval", "1", env=env)
        wait_until(lambda: store.get(jid) is not None and _job(store, jid).enqueued >= 5, timeout=30,
                   what="5 chunks enqueued")
        redis_srv.stop()  # down until the producer has noticed (a restart quicker than redis-py's retries is
        # no outage to it), then up again on the same port and append-only file
        wait_until(lambda: "Redis unreachable" in producer.output() or producer.popen.poll() is not None,
                   timeout=60, what="the producer notices the outage")
        redis_srv.start()
        # The same producer, never restarted, finishes the job: no `backfill resume`.
        assert _finish(producer, timeout=90, worker=worker) == 0, producer.output()
    assert "Redis is back" in producer.output()
    job = _job(store, jid)
    assert job.state == "done" and job.complete
    got = _output(out)
    assert got == expected
    assert max(got.values()) == 1


def test_redis_full_mid_job_the_producer_and_the_worker_wait_for_room_and_finish(
        setup: tuple[dict[str, str], JobStore, str], history: Path, expected: Counter[tuple[str, str]],
        tmp_path: Path) -> None:
    """Redis at its memory limit refuses writes but still answers: the producer waits for room (not for a
    ping, which a full Redis answers), the worker's chunks wait in their tasks, and nobody exits."""
    env, store, jid = setup
    out = tmp_path / "out"
    with celery_worker(env, concurrency=1, name="w-full") as worker:
        producer = _cli("start", str(history), "--output", str(out), "--chunk-replies", str(CHUNK),
                        "--max-pending", "3", "--wait", "--interval", "1", env=env)
        wait_until(lambda: store.get(jid) is not None and _job(store, jid).enqueued >= 5, timeout=30,
                   what="5 chunks enqueued")
        store.redis.config_set("maxmemory", "1")  # full: every write refused
        wait_until(lambda: "Redis is full" in producer.output() or producer.popen.poll() is not None,
                   timeout=60, what="the producer notices Redis is full")
        store.redis.config_set("maxmemory", "0")  # the operator makes room
        assert _finish(producer, timeout=90, worker=worker) == 0, producer.output()
        assert worker.popen.poll() is None
    assert "Redis is back" in producer.output()
    job = _job(store, jid)
    assert job.state == "done" and job.complete
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
