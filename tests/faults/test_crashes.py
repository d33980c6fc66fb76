"""A worker SIGKILLed mid-stream, Redis restarted mid-stream: nothing lost, nothing applied twice."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from tests.support.processes import wait_until
from worker import bootstrap
from worker.settings import load_settings

from .conftest import VISIBILITY_TIMEOUT, Cluster, assert_exactly_once, counts, events

pytestmark = pytest.mark.faults
STREAM = 2000


# The timeouts a test runs at. The cluster's own shorten the visibility timeout to 6 s (tests/faults/conftest.py);
# "production" are the settings' defaults. The short timeout hid two bugs: the messages a worker held
# (prefetched, or running with late acknowledgement) when Redis went away, which kombu cannot restore while it
# is down, waited for the visibility timeout before anyone reviewed them (session 13: the first channel that
# reaches Redis again restores them, worker/broker.py); and that timeout was 1,500 s, because kombu hands
# back whatever sits in `unacked` that long, held by a live worker or not, so a killed worker's tasks waited
# 25 minutes (session 14: live workers renew what they hold, and the timeout is 120 s). A message whose BRPOP
# reply died with a connection is found missing by the reconciler after 60 s (worker/reconcile.py; before
# session 14 it waited 2,260 s, and the restart test at production timeouts failed one run in nine).
TIMEOUTS = ("shortened", "production")


def _timeouts(name: str) -> dict[str, str]:
    if name == "shortened":
        return {}  # the cluster's own (tests/faults/conftest.py)
    defaults = load_settings()
    return {"APOLOGY_VISIBILITY_TIMEOUT_SECONDS": str(defaults.visibility_timeout),
            "APOLOGY_RECONCILE_AFTER_SECONDS": str(defaults.reconcile_after),
            "APOLOGY_RECONCILE_MISSING_SECONDS": str(defaults.reconcile_missing)}


def _settle_within(name: str, shortened: float) -> float:
    """How long a stream may take to settle after the fault: at production timeouts, well inside the 1,500 s
    visibility timeout and 2,260 s reconciler age of session 13."""
    if name == "shortened":
        return shortened
    defaults = load_settings()
    return defaults.visibility_timeout + defaults.restore_sweep_seconds + defaults.reconcile_missing + 60


@pytest.mark.parametrize("timeouts", TIMEOUTS)
def test_a_worker_killed_mid_stream_loses_nothing_and_duplicates_nothing(
        cluster_factory: Callable[..., Cluster], timeouts: str) -> None:
    cluster = cluster_factory(**_timeouts(timeouts))
    stream, expected = events(STREAM, f"kill-{timeouts}")
    with cluster.worker("doomed") as doomed:
        cluster.submit(stream)
        cluster.receiver.wait_for(lambda r: len(r.deliveries) >= STREAM // 5, timeout=120)
        # The whole process group: the main process and its prefork children, in the middle of tasks.
        os.killpg(doomed.popen.pid, signal.SIGKILL)
        doomed.popen.wait(timeout=10)
        in_flight = cluster.stores.redis.hlen("unacked")
        at_kill = len(cluster.receiver.deliveries)
    assert in_flight > 0, "the kill should have caught tasks reserved but not acknowledged"
    assert at_kill < len(expected), "the kill came too late to prove anything"
    with cluster.worker("heir"):
        # Reserved tasks come back after the visibility timeout; a message the killed main process had
        # taken off the queue (BRPOP) but not yet recorded as unacknowledged is in neither place, and the
        # journal's reconciler publishes it again (RELIABILITY.md).
        started = time.monotonic()
        cluster.settle(expected, timeout=_settle_within(timeouts, 300))
        took = time.monotonic() - started
    c = counts(cluster, len(stream), expected)
    c.report(f"worker SIGKILLed after {at_kill} deliveries with {in_flight} tasks unacknowledged; {timeouts} "
             f"timeouts, settled {took:.0f} s after the heir started")
    assert_exactly_once(c, cluster, expected, cut_short=2)  # a POST a killed pool process cut off
    assert c.dead_letters == 0
    # A POST whose 2xx arrived but whose record the kill prevented is sent again with the same
    # webhook-id (the receiver's idempotency key); at most one per pool process that was killed.
    assert c.duplicates <= 2


def test_a_live_worker_keeps_what_it_holds_past_the_visibility_timeout(cluster_factory: Callable[..., Cluster]) -> None:
    """The lease: a delivery waiting out a long countdown in a live worker stays with it however long the
    visibility timeout (6 s here) is exceeded, because the worker renews it on its own timer, even with its
    consumer cancelled (kombu's own sweep would skip it then). Without the renewal Redis hands it back to
    the queue after the timeout, to run twice."""
    cluster = cluster_factory()
    client = cluster.stores.redis
    with cluster.worker("holder"):
        bootstrap.send_delivery({"delivery_id": "msg_lease", "target": "webhook", "verdict": {}, "event": ""},
                                cluster.producer, countdown=300)
        wait_until(lambda: client.hlen("unacked") == 1, timeout=30, what="the worker holding the delivery")
        cluster.producer.control.cancel_consumer("apology.deliveries", reply=True)
        (tag,) = client.hkeys("unacked")
        first = client.zscore("unacked_index", tag)
        assert first is not None
        wait_until(lambda: (client.zscore("unacked_index", tag) or 0) >= first + 3 * VISIBILITY_TIMEOUT,
                   timeout=60, what="the lease renewed for three visibility timeouts")
        assert client.hkeys("unacked") == [tag] and client.llen("apology.deliveries") == 0


def test_a_thread_pool_deliverer_killed_mid_stream_loses_nothing(
        cluster_factory: Callable[..., Cluster]) -> None:
    """The Procfile's `deliverer` (threads) SIGKILLed with deliveries in flight: the deliveries it held come
    back after the visibility timeout and a new deliverer sends them, each webhook-id once (a POST whose 2xx
    arrived before the kill cut its record may repeat, at most one per thread that was sending)."""
    cluster = cluster_factory()
    stream, expected = events(STREAM, "dkill")
    with cluster.worker("events", queues="apology,apology.backfill"):
        with cluster.worker("doomed-deliverer", concurrency=16, pool="threads",
                            queues="apology.deliveries") as doomed:
            cluster.submit(stream)
            cluster.receiver.wait_for(lambda r: len(r.deliveries) >= STREAM // 5, timeout=120)
            os.killpg(doomed.popen.pid, signal.SIGKILL)
            doomed.popen.wait(timeout=10)
            at_kill = len(cluster.receiver.deliveries)
        assert at_kill < len(expected), "the kill came too late to prove anything"
        with cluster.worker("heir-deliverer", concurrency=16, pool="threads", queues="apology.deliveries"):
            cluster.settle(expected, timeout=300)
    c = counts(cluster, len(stream), expected)
    c.report(f"thread-pool deliverer SIGKILLed after {at_kill} deliveries")
    assert_exactly_once(c, cluster, expected, cut_short=16)  # a POST the kill cut off fails its signature
    assert c.dead_letters == 0
    assert c.duplicates <= 16


# How the reconciler finds them: by age (the queues seen empty a safe age after they were due; here 15 s, 810
# at the defaults), or by looking (in no queue and held by no worker at every sweep for 3 s), with the safe age
# at its production default so that only looking can find them within the test.
FINDING = {"overdue": {"APOLOGY_RECONCILE_MISSING_SECONDS": "600"},
           "missing": {"APOLOGY_RECONCILE_AFTER_SECONDS": str(load_settings().reconcile_after),
                       "APOLOGY_RECONCILE_MISSING_SECONDS": "3"}}


@pytest.mark.parametrize("found", FINDING)
def test_messages_taken_off_the_queue_and_never_recorded_are_published_again(
        cluster_factory: Callable[..., Cluster], found: str) -> None:
    """What a worker killed between BRPOP and its `unacked` record does, on purpose and every time: the
    messages leave the queue and are nowhere else. The journal's reconciler publishes them again."""
    cluster = cluster_factory(**FINDING[found])
    stream, expected = events(200, f"taken-{found}")
    cluster.submit(stream)
    taken = [cluster.stores.redis.rpop("apology") for _ in range(3)]  # BRPOP pops from the right
    assert all(taken) and cluster.stores.redis.hlen("unacked") == 0
    with cluster.worker("worker"):
        cluster.settle(expected, timeout=180)
    c = counts(cluster, len(stream), expected)
    c.report(f"3 messages taken off the queue and dropped; found {found}")
    assert_exactly_once(c, cluster, expected)
    assert c.resent == 3
    assert cluster.resent(found) == 3
    assert c.dead_letters == 0 and c.duplicates == 0


# The workers of each topology: (name, worker options), and the most POSTs that may repeat, one per process or
# thread that was sending when Redis went away (its 2xx arrived, its record could not be written).
TOPOLOGIES = {
    "one worker": ([("survivor", {})], 2),
    # The Procfile's: events on prefork, deliveries on a `deliverer` of threads.
    "split": ([("events", {"queues": "apology,apology.backfill"}),
               ("deliverer", {"concurrency": 16, "pool": "threads", "queues": "apology.deliveries"})], 16),
}


@pytest.mark.parametrize("timeouts", TIMEOUTS)
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_redis_restarted_mid_stream_the_same_workers_reconnect_and_lose_nothing(
        cluster_factory: Callable[..., Cluster], topology: str, timeouts: str) -> None:
    """Every worker process rides out the restart without restarting (the broker fix is the transport's,
    whatever the pool) and nothing is lost: what the workers held is restored once Redis is back, in a prefork
    worker and in the Procfile's thread-pool deliverer alike, and a message whose BRPOP reply was lost with
    the old connection is published again by the reconciler."""
    specs, most_repeats = TOPOLOGIES[topology]
    cluster = cluster_factory(**_timeouts(timeouts))
    stream, expected = events(STREAM, f"restart-{timeouts}-{len(specs)}")
    first, rest = stream[: STREAM * 3 // 4], stream[STREAM * 3 // 4:]
    with ExitStack() as stack:
        workers = [stack.enter_context(cluster.worker(name, **options)) for name, options in specs]
        pids = [w.popen.pid for w in workers]
        cluster.submit(first)
        cluster.receiver.wait_for(lambda r: len(r.deliveries) >= STREAM // 5, timeout=120)
        cluster.redis.restart()  # SIGTERM, then the same port and append-only file
        at_restart = len(cluster.receiver.deliveries)
        cluster.submit(rest)  # producers reconnect too
        started = time.monotonic()
        cluster.settle(expected, timeout=_settle_within(timeouts, 300), alive=workers[-1])
        took = time.monotonic() - started
        assert [w.popen.poll() for w in workers] == [None] * len(workers)
        assert [w.popen.pid for w in workers] == pids
        reconnects = [sum("Connection to broker lost" in line for line in w.history) for w in workers]
        restored = [sum("restored the messages held" in line for line in w.history) for w in workers]
    c = counts(cluster, len(stream), expected)
    c.report(f"redis restarted after {at_restart} deliveries; {topology}, {timeouts} timeouts: the same processes "
             f"reconnected ({reconnects} connection losses logged, {restored} restores of what they held), settled "
             f"{took:.0f} s after the restart")
    assert min(reconnects) >= 1, "the restart should have cut every worker's broker connection"
    assert_exactly_once(c, cluster, expected)
    assert c.dead_letters == 0
    assert c.duplicates <= most_repeats
