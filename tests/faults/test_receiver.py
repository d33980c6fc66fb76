"""The receiver erroring for a window, then down past the retry budget: all delivered, or all kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.processes import wait_until

from .conftest import Cluster, assert_exactly_once, counts, events

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
