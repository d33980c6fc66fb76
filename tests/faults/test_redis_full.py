"""Redis at its memory limit (`maxmemory` under `noeviction`, as deployments must run it) mid-stream: it
refuses every write, and every command queued in a transaction, until the operator makes room. The same
worker processes ride it out and lose nothing: tasks wait for room, a message taken off the queue that could
not be recorded as unacknowledged is run anyway, and a requeue Redis refuses is left to the visibility sweep
or the journal."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import pytest
import redis

from tests.support.processes import Proc, wait_until

from .conftest import Cluster, assert_exactly_once, counts, events
from .test_crashes import TOPOLOGIES

pytestmark = pytest.mark.faults
STREAM = 1000
# What the workers log on each path (worker.tasks.through_outages, worker.broker.QoS).
TASK_WAITS = "redis full (maxmemory); running the task again"
TAKEN_UNRECORDED = "redis full (maxmemory): running a message not recorded as unacknowledged"
REQUEUE_REFUSED = "redis refused a requeue"


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_redis_at_its_memory_limit_mid_stream_loses_nothing(cluster_factory: Callable[..., Cluster],
                                                            topology: str) -> None:
    specs, most_repeats = TOPOLOGIES[topology]
    # A short soft limit: a task gives up waiting for room after 0.8 of it and asks for a requeue, which
    # Redis refuses too.
    cluster = cluster_factory(APOLOGY_TASK_SOFT_TIME_LIMIT="3", APOLOGY_TASK_TIME_LIMIT="6")
    admin = cluster.stores.redis
    stream, expected = events(STREAM, f"full-{len(specs)}")
    with ExitStack() as stack:
        workers = [stack.enter_context(cluster.worker(name, **options)) for name, options in specs]
        cluster.submit(stream)
        cluster.receiver.wait_for(lambda r: len(r.deliveries) >= STREAM // 5, timeout=120)
        admin.config_set("maxmemory", "1")  # every write refused from now on: the instance is "full"
        wait_until(lambda: all(_logged(workers, line) for line in (TASK_WAITS, TAKEN_UNRECORDED, REQUEUE_REFUSED)),
                   timeout=60, what="tasks waiting for room, a message run unrecorded, a requeue refused")
        at_full = len(cluster.receiver.deliveries)
        refused = _oom_refusals(admin)
        admin.config_set("maxmemory", "0")  # the operator makes room
        cluster.settle(expected, timeout=300, alive=workers[-1])
        assert [w.popen.poll() for w in workers] == [None] * len(workers)
        assert not _logged(workers, "Unrecoverable error")
    c = counts(cluster, len(stream), expected)
    c.report(f"redis full after {at_full} deliveries, {refused} writes refused; {topology}")
    assert at_full < len(expected), "Redis filled too late to prove anything"
    assert_exactly_once(c, cluster, expected)
    assert c.dead_letters == 0
    assert c.duplicates <= most_repeats  # a POST whose 2xx came while Redis refused to record it


def _logged(workers: list[Proc], text: str) -> bool:
    return any(text in line for w in workers for line in w.history)


def _oom_refusals(client: redis.Redis) -> int:
    """How many commands Redis has refused for want of memory (INFO errorstats, Redis 6.2+)."""
    stats = client.info("errorstats")
    return int(stats.get("errorstat_OOM", {}).get("count", 0))
