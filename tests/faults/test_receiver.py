"""The receiver erroring for a window, then down past the retry budget: all delivered, or all kept; a slow
receiver held by a deliveries worker on threads while the event workers carry on."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.processes import wait_until

from .conftest import Cluster, Gate, assert_exactly_once, counts, events

pytestmark = pytest.mark.faults
BATCH = 300


def test_a_receiver_answering_500_for_a_window_gets_everything_once_it_recovers(
        cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(APOLOGY_DELIVERY_MAX_ATTEMPTS="30")
    stream, expected = events(BATCH, "window")
    cluster.switch.status = 500
    with cluster.worker("w"):
        cluster.submit(stream)
        # The window: every delivery has been refused at least once before the receiver recovers.
        cluster.receiver.wait_for(lambda r: r.requests >= len(expected), timeout=120)
        refused = cluster.receiver.requests
        cluster.switch.status = 204
        cluster.settle(expected)
    c = counts(cluster, len(stream), expected)
    c.report(f"receiver answered 500 to {refused} requests, then recovered")
    assert_exactly_once(c, cluster, expected)
    assert c.duplicates == 0 and c.dead_letters == 0


def test_a_receiver_down_past_the_retry_budget_leaves_every_delivery_in_dead_letters_for_replay(
        cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(APOLOGY_DELIVERY_MAX_ATTEMPTS="3", APOLOGY_DELIVERY_BACKOFF_SECONDS="0.1",
                              APOLOGY_DELIVERY_BACKOFF_MAX_SECONDS="0.3")
    stream, expected = events(BATCH, "down")
    cluster.switch.status = 503
    with cluster.worker("w"):
        cluster.submit(stream)
        wait_until(lambda: cluster.stores.dead_letter_count() == len(expected) and cluster.idle(),
                   timeout=120, what="every delivery dead-lettered")
        assert cluster.receiver.deliveries == []
        assert cluster.receiver.requests == 3 * len(expected)  # the whole budget, no more
        letters = cluster.stores.dead_letters(limit=len(expected))
        assert {letter.payload["delivery_id"] for letter in letters} == expected
        assert all(letter.kind == "delivery" and letter.reason == "gave up after 3 attempts: HTTP 503"
                   for letter in letters)
        dead = cluster.stores.dead_letter_count()

        cluster.switch.status = 204
        replay = cluster.cli("dead-letters", "replay", "--all")
        assert replay.returncode == 0, replay.stderr
        assert replay.stdout.count("replayed ") == len(expected)
        cluster.settle(expected)
    c = counts(cluster, len(stream), expected)
    c.report(f"receiver down past 3 attempts: {dead} dead letters, replayed")
    assert_exactly_once(c, cluster, expected)
    assert c.duplicates == 0 and c.dead_letters == 0


def test_a_slow_receiver_holds_the_deliveries_worker_not_the_review_of_replies(
        cluster_factory: Callable[..., Cluster]) -> None:
    """The Procfile's `deliverer`: deliveries, which wait on the network, on a thread pool of their own, and
    events on prefork workers that take no deliveries. A receiver that answers nothing for a while then
    holds every delivery at once, and every reply is judged meanwhile (a delivery exists only once its reply
    is judged); the same events on one prefork worker for all queues hold at most its concurrency."""
    # Nothing may send a held delivery again while the receiver holds it (on a loaded machine reaching all
    # twelve took over 10 s): not the HTTP read timeout, not the cluster's short visibility timeout and
    # delivery claim (6 s and 5 s, for the crash tests), not the journal's re-publishing. Production's
    # defaults keep the read timeout (10 s) well inside the claim (120 s).
    cluster = cluster_factory(APOLOGY_HTTP_READ_TIMEOUT="120", APOLOGY_EVENT_LOCK_SECONDS="300",
                              APOLOGY_VISIBILITY_TIMEOUT_SECONDS="600", APOLOGY_RECONCILE_AFTER_SECONDS="900")
    gate = Gate()
    cluster.receiver.respond = gate
    stream, expected = events(12, "slow")
    with cluster.worker("events", concurrency=1, queues="apology,apology.backfill"), \
            cluster.worker("deliverer", concurrency=16, pool="threads", queues="apology.deliveries"):
        cluster.submit(stream)
        wait_until(lambda: gate.held >= len(expected), timeout=60, what="every delivery held by the receiver")
        assert cluster.receiver.deliveries == []  # none answered yet
        gate.open()
        cluster.settle(expected)
    c = counts(cluster, len(stream), expected)
    c.report(f"receiver held {gate.held} requests at once, then answered")
    assert_exactly_once(c, cluster, expected)
    assert c.duplicates == 0 and c.dead_letters == 0
