"""Stage stamps: what the pipeline records per event when tracing is on, and nothing when it is off."""

from __future__ import annotations

import fakeredis
import redis

from tests.unit.test_pipeline import Harness, conversation
from worker import tracing
from worker.engine import Policy
from worker.pipeline import Deps, deliver, handle_event, history_events
from worker.tracing import NoTrace, RedisTrace, Timeline


def traced(policy: Policy) -> Harness:
    h = Harness(policy)
    h.deps = Deps(**{**h.deps.__dict__, "trace": RedisTrace(h.deps.stores.redis)})
    return h


def test_a_reply_that_waited_then_was_judged_and_delivered_has_every_stage(policy: Policy) -> None:
    h = traced(policy)
    c_event, a_event = h.submit(history_events(conversation()))
    assert handle_event(a_event, h.deps).status == "waiting"
    handle_event(c_event, h.deps)
    assert handle_event(a_event, h.deps, attempt=1).status == "judged"
    assert deliver(h.queue[0], h.deps).status == "delivered"

    key = f"history:{a_event['event_id']}"
    stamps = tracing.read(h.deps.stores.redis, [key, f"history:{c_event['event_id']}", "history:never"])
    assert set(stamps) == {key, f"history:{c_event['event_id']}"}
    reply = stamps[key]
    assert set(reply) == {"start.0", "taken.0", "wait.0", "start.1", "taken.1", "evaluated", "published",
                          "done", "deliver.0", "sent.0"}
    order = ["start.0", "taken.0", "wait.0", "start.1", "taken.1", "evaluated", "published", "deliver.0",
             "sent.0"]
    assert [reply[k] for k in order] == sorted(reply[k] for k in order)
    assert set(stamps[f"history:{c_event['event_id']}"]) == {"start.0", "taken.0", "done"}
    assert h.deps.stores.redis.ttl(tracing.PREFIX + key) > 0


def test_nothing_is_written_when_tracing_is_off(policy: Policy) -> None:
    h = Harness(policy)
    assert isinstance(h.deps.trace, NoTrace)
    for e in h.submit(history_events(conversation())):
        handle_event(e, h.deps)
    deliver(h.queue[0], h.deps)
    assert list(h.deps.stores.redis.scan_iter(tracing.PREFIX + "*")) == []


def test_a_broken_trace_store_does_not_fail_the_task() -> None:
    class Down(fakeredis.FakeRedis):
        def pipeline(self, transaction: bool = True, shard_hint: object = None) -> redis.client.Pipeline:
            pipe = super().pipeline(transaction, shard_hint)

            def fail(*args: object, **kwargs: object) -> list[object]:
                raise redis.ConnectionError("gone")

            pipe.execute = fail  # type: ignore[method-assign]
            return pipe

    line = Timeline(RedisTrace(Down()), "start.0")
    line.key = "bench:e1"
    line.mark("done")
    line.flush()  # no exception


def test_timeline_without_tracing_collects_nothing() -> None:
    line = Timeline(NoTrace(), "start.0")
    line.mark("done")
    assert line.stamps == {}
