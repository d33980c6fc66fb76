"""The broker transport fix (worker.broker) against a real redis-server that goes away mid-BRPOP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import kombu
import pytest
import redis

from tests.support.processes import RedisServer, redis_full
from worker.broker import LEASES, TRANSPORT, look, queue_keys


@contextmanager
def consuming(server: RedisServer, transport: str | None) -> Iterator[Any]:
    """A channel consuming a queue, with its BRPOP sent and not yet answered."""
    conn = kombu.Connection(server.url, transport=transport)
    try:
        channel = conn.default_channel
        kombu.Queue("q", kombu.Exchange("q", type="direct"), routing_key="q")(channel).declare()
        channel.basic_consume("q", False, lambda message: None, "tag")
        channel.connection.cycle.on_poll_start()
        assert channel._in_poll
        yield channel
    finally:
        conn.release()


def test_kombus_own_channel_is_left_open_when_redis_drops_its_brpop(redis_srv: RedisServer) -> None:
    """The kombu behaviour worker.broker exists for; when this test fails, kombu fixed it (drop the fix)."""
    with consuming(redis_srv, None) as channel:
        redis_srv.proc.stop()
        with pytest.raises(redis.ConnectionError):
            channel.close()
        assert not channel.closed
        redis_srv.restart()


def test_our_channel_finishes_closing_when_redis_drops_its_brpop(redis_srv: RedisServer) -> None:
    with consuming(redis_srv, TRANSPORT) as channel:
        redis_srv.proc.stop()
        # Restoring its unacknowledged messages needs Redis; they stay in `unacked` meanwhile.
        with suppress(redis.ConnectionError):
            channel.close()
        assert channel.closed
        assert not channel._in_poll
        redis_srv.restart()


def test_queue_keys_are_the_lists_kombu_writes(redis_srv: RedisServer) -> None:
    with kombu.Connection(redis_srv.url, transport=TRANSPORT) as conn:
        producer = conn.Producer(serializer="json")
        for priority in (0, 3, 9):
            producer.publish({"n": priority}, routing_key="apology", priority=priority,
                             declare=[kombu.Queue("apology", kombu.Exchange("apology", type="direct"),
                                                  routing_key="apology")])
    client = redis.Redis.from_url(redis_srv.url)
    assert sum(client.llen(k) for k in queue_keys()) == 3


def test_one_client_per_pool_serves_publishes_and_acks_and_a_new_pool_gets_its_own(redis_srv: RedisServer) -> None:
    queue = kombu.Queue("reuse", kombu.Exchange("reuse", type="direct"), routing_key="reuse")
    with kombu.Connection(redis_srv.url, transport=TRANSPORT) as conn:
        channel = conn.default_channel
        producer = conn.Producer(serializer="json")
        for n in range(3):
            producer.publish({"n": n}, routing_key="reuse", declare=[queue])
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
        got = [queue(channel).get(no_ack=False) for _ in range(3)]
        for message in got:
            message.ack()
        assert sorted(m.payload["n"] for m in got) == [0, 1, 2]
        assert redis.Redis.from_url(redis_srv.url).hlen("unacked") == 0

        channel._disconnect_pools()  # what kombu does after a fork: the old pool's connections are gone
        with channel.conn_or_acquire() as after:
            assert after is not first
            assert after.connection_pool is channel.pool
            assert after.ping()


def test_a_queue_entry_that_is_not_a_message_is_dead_lettered_and_the_next_one_delivered(
        redis_srv: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """kombu's own transport raises out of its read loop on such an entry, which stops a Celery worker."""
    import socket

    from worker.stores import Stores

    monkeypatch.setenv("APOLOGY_BROKER_URL", redis_srv.url)
    client = redis.Redis.from_url(redis_srv.url)
    queue = kombu.Queue("apology", kombu.Exchange("apology", type="direct"), routing_key="apology")
    got: list[Any] = []
    with kombu.Connection(redis_srv.url, transport=TRANSPORT) as conn:
        queue(conn.default_channel).declare()
        client.lpush("apology", "hello")  # popped first
        client.lpush("apology", '{"body": "xx", "headers": {}}')
        conn.Producer(serializer="json").publish({"n": 1}, routing_key="apology")
        with conn.Consumer(queue, callbacks=[lambda body, message: (got.append(body), message.ack())]):
            for _ in range(20):
                if got:
                    break
                with suppress(socket.timeout, TimeoutError):
                    conn.drain_events(timeout=1)
    assert got == [{"n": 1}]
    reasons = sorted(letter.reason for letter in Stores(client).dead_letters(5))
    assert len(reasons) == 2 and all(r.startswith("an entry on queue apology is not a task message") for r in reasons)
    assert any("not JSON" in r for r in reasons) and any("no properties" in r for r in reasons)


def _publish(server: RedisServer, queue: kombu.Queue, *bodies: dict[str, int]) -> None:
    with kombu.Connection(server.url, transport=TRANSPORT) as conn:
        producer = conn.Producer(serializer="json")
        for body in bodies:
            producer.publish(body, routing_key=queue.routing_key, declare=[queue])


def _held_across_an_outage(server: RedisServer, queue: kombu.Queue, *bodies: dict[str, int]) -> redis.Redis:
    """Publish `bodies`, take them unacknowledged, and close the channel while Redis is down (its restore
    fails); Redis is started again, and a plain client to it returned."""
    _publish(server, queue, *bodies)
    conn = kombu.Connection(server.url, transport=TRANSPORT)
    held = [queue(conn.default_channel).get(no_ack=False) for _ in bodies]
    assert all(m is not None for m in held)
    server.proc.stop()
    with suppress(redis.ConnectionError):
        conn.default_channel.close()
    conn.release()
    server.start()
    return redis.Redis.from_url(server.url)


def test_messages_held_when_redis_goes_away_are_back_on_their_queue_once_it_returns(redis_srv: RedisServer) -> None:
    """kombu restores a closing channel's unacknowledged messages, which needs Redis: without the fix they
    waited in `unacked` for the visibility timeout (25 minutes by default)."""
    queue = kombu.Queue("held", kombu.Exchange("held", type="direct"), routing_key="held")
    client = _held_across_an_outage(redis_srv, queue, {"n": 1}, {"n": 2})
    assert client.hlen("unacked") == 2 and client.llen("held") == 0  # Redis kept them; nobody restored them

    with kombu.Connection(redis_srv.url, transport=TRANSPORT) as again:
        channel = again.default_channel  # the first channel that reaches Redis restores them
        got = [queue(channel).get(no_ack=True) for _ in range(2)]
    assert sorted(m.payload["n"] for m in got if m is not None) == [1, 2]
    assert client.hlen("unacked") == 0


def test_a_message_whose_unacked_record_a_dropped_connection_refused_goes_back_on_its_queue(
        redis_srv: RedisServer) -> None:
    """Off the queue (BRPOP took it) and not in `unacked`: without the fix only the journal had it."""
    queue = kombu.Queue("taken", kombu.Exchange("taken", type="direct"), routing_key="taken")
    _publish(redis_srv, queue, {"n": 7})
    conn = kombu.Connection(redis_srv.url, transport=TRANSPORT)
    channel = conn.default_channel
    message = queue(channel).get(no_ack=True)  # off the queue; now record it, as a consumer would, with Redis gone
    assert message is not None
    redis_srv.proc.stop()
    with pytest.raises(redis.ConnectionError):
        channel.qos.append(message, "tag-1")
    with suppress(redis.ConnectionError):
        channel.close()
    conn.release()
    redis_srv.start()

    with kombu.Connection(redis_srv.url, transport=TRANSPORT) as again:
        back = queue(again.default_channel).get(no_ack=True)
    assert back is not None and back.payload == {"n": 7}


def test_a_redis_full_when_it_returns_leaves_the_held_messages_for_the_next_connection(
        redis_srv: RedisServer) -> None:
    """Restoring writes, which a full Redis refuses: the new channel still opens (a restore that raised out
    of it would stop the worker), and a later one restores them once there is room."""
    queue = kombu.Queue("held-full", kombu.Exchange("held-full", type="direct"), routing_key="held-full")
    client = _held_across_an_outage(redis_srv, queue, {"n": 1})
    with redis_full(client):
        with kombu.Connection(redis_srv.url, transport=TRANSPORT) as full:
            assert full.default_channel is not None  # opened; nothing restored
        assert client.hlen("unacked") == 1 and client.llen("held-full") == 0
    with kombu.Connection(redis_srv.url, transport=TRANSPORT) as again:
        back = queue(again.default_channel).get(no_ack=True)
    assert back is not None and back.payload == {"n": 1}


def test_the_reconcilers_view_names_the_messages_workers_hold_and_the_empty_queues(redis_srv: RedisServer) -> None:
    """One read of the real broker: queues by kind, and the journal entries of the messages in `unacked`,
    read back from what Celery itself published (base64 bodies, protocol 2)."""
    from worker import bootstrap
    from worker.app import create_app
    from worker.broker import DELIVERY_QUEUE, QUEUE
    from worker.journal import entry_key
    from worker.settings import load_settings

    app = create_app(load_settings(broker_url=redis_srv.url))
    client = redis.Redis.from_url(redis_srv.url)
    try:
        bootstrap.send_event({"source": "zendesk", "event_id": "e-1", "message": {"body": "héllo"}}, app)
        bootstrap.send_delivery({"delivery_id": "msg_1", "verdict": {}}, app, countdown=30)
        client.hset("unacked", "junk", "not a message")  # never mistaken for anything
        view = bootstrap.broker_view(client)
        assert view.idle == {"chunk"} and view.held == set()
        with kombu.Connection(redis_srv.url, transport=TRANSPORT) as conn:
            channel = conn.default_channel
            delivery = kombu.Queue(DELIVERY_QUEUE)(channel).get(no_ack=False)  # reserved, as a worker does
            assert delivery is not None
            view = bootstrap.broker_view(client)
            assert view.idle == {"delivery", "chunk"}
            assert view.held == {entry_key("delivery", "msg_1")}
            event = kombu.Queue(QUEUE)(channel).get(no_ack=False)
            assert event is not None
            delivery.ack()
            view = bootstrap.broker_view(client)
            assert view.queues_empty and view.held == {entry_key("event", "zendesk:e-1")}
            # Not read when not asked for (nothing to look for), nor when there are too many to read.
            assert bootstrap.broker_view(client, held=False).held is None
            assert look(client, bootstrap.QUEUE_KINDS, most=1) == (set(bootstrap.QUEUE_KINDS.values()), None)
            assert look(client, bootstrap.QUEUE_KINDS, most_bytes=64)[1] is None
    finally:
        app.close()


def test_a_live_workers_messages_are_renewed_and_a_dead_workers_go_back_to_the_queue(redis_srv: RedisServer) -> None:
    """The visibility timeout as a lease: a message held past it by a live worker (a long countdown) stays
    with that worker; one whose holder is gone goes back on its queue at the next sweep. kombu alone hands
    back both, which is why its timeout had to outlast every countdown (25 minutes here)."""
    import time

    queue = kombu.Queue("lease", kombu.Exchange("lease", type="direct"), routing_key="lease")
    _publish(redis_srv, queue, {"n": 1}, {"n": 2})
    options = {"visibility_timeout": 60}
    client = redis.Redis.from_url(redis_srv.url)
    with kombu.Connection(redis_srv.url, transport=TRANSPORT, transport_options=options) as live, \
            kombu.Connection(redis_srv.url, transport_options=options) as gone:  # kombu's: another process
        channel = live.default_channel
        held = queue(channel).get(no_ack=False)
        orphan = queue(gone.default_channel).get(no_ack=False)
        assert held is not None and orphan is not None and client.hlen("unacked") == 2
        # Both taken well over the timeout ago; the one process still alive renews its own at the sweep.
        client.zadd("unacked_index", {held.delivery_tag: time.time() - 600, orphan.delivery_tag: time.time() - 600})
        gone.default_channel.qos._delivered.clear()  # its process died: nothing renews or restores it
        assert LEASES.renew() == 1  # what the worker's timer does (worker.app)
        channel.qos.restore_visible(num=10, interval=1)  # kombu's sweep, in any worker
        assert client.hkeys("unacked") == [held.delivery_tag.encode()]
        back = queue(channel).get(no_ack=True)
        assert back is not None and back.payload == orphan.payload
        held.ack()
        assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0


def test_a_lease_lapses_when_its_channel_closed_or_its_holder_kept_it_too_long(redis_srv: RedisServer) -> None:
    """Renewal must not keep a message from the rest of the workers for ever: not one held by a channel that
    closed (its restore refused by a full Redis, so the message is still in `unacked`), nor one held past
    the longest legitimate hold (a hung thread)."""
    queue = kombu.Queue("lapse", kombu.Exchange("lapse", type="direct"), routing_key="lapse")
    _publish(redis_srv, queue, {"n": 1}, {"n": 2})
    client = redis.Redis.from_url(redis_srv.url)
    closed = kombu.Connection(redis_srv.url, transport=TRANSPORT)
    kept = queue(closed.default_channel).get(no_ack=False)
    assert kept is not None
    with redis_full(client):
        closed.default_channel.close()  # the restore is refused; the close still completes
    assert client.hlen("unacked") == 1
    with kombu.Connection(redis_srv.url, transport=TRANSPORT) as live:
        hung = queue(live.default_channel).get(no_ack=False)
        assert hung is not None
        assert LEASES.renew(longest=600) == 1  # only the live channel's
        LEASES._since[hung.delivery_tag] -= 601  # as if held for ten minutes
        assert LEASES.renew(longest=600) == 0
        assert LEASES.renew() == 1  # without a bound it would be renewed for ever
    closed.release()
