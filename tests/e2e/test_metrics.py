"""The worker serves Prometheus metrics summed over its pool processes, and the dead-letter depth."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.conftest import SECRET
from tests.support.processes import broker_idle, celery_worker, free_port, redis_server, wait_until
from worker import bootstrap
from worker.app import create_app
from worker.models import TicketHistory
from worker.pipeline import history_events, submit_events
from worker.settings import load_settings
from worker.testing import WebhookReceiver

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples" / "tickets.jsonl"


def test_metrics_count_events_verdicts_deliveries_and_dead_letters(tmp_path: Path) -> None:
    histories = [TicketHistory.model_validate_json(line) for line in EXAMPLES.read_text().splitlines()]
    events = [e for h in histories for e in history_events(h)]
    port = free_port()
    with redis_server(tmp_path) as server, WebhookReceiver(SECRET) as receiver:
        env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_WEBHOOK_URL": receiver.url,
               "APOLOGY_ALLOW_PRIVATE_TARGETS": "true",  # the receiver is on 127.0.0.1
               "APOLOGY_WEBHOOK_SECRET": SECRET, "APOLOGY_METRICS_PORT": str(port),
               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
        cfg = load_settings(broker_url=server.url)
        producer = create_app(cfg)
        stores = bootstrap.stores(cfg, redis.Redis.from_url(server.url))
        with celery_worker(env, concurrency=2):
            submit_events(events, stores, lambda p: producer.send_task(bootstrap.HANDLE_EVENT, args=[p]))
            producer.send_task(bootstrap.HANDLE_EVENT, args=["{not json"])
            wait_until(lambda: stores.dead_letter_count() == 1 and broker_idle(stores.redis), timeout=30,
                       what="idle with one dead letter")
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("apology_")}
    replies = sum(m.role == "agent" for e in events for m in [e.message])
    assert values['apology_events_total{outcome="judged"}'] == replies
    assert values['apology_events_total{outcome="remembered"}'] == len(events) - replies
    assert values['apology_events_total{outcome="rejected"}'] == 1
    assert values["apology_evaluation_seconds_count"] == replies
    delivered = values['apology_deliveries_total{outcome="delivered",target="webhook"}']
    assert delivered == len(receiver.deliveries)
    assert values["apology_dead_letters"] == 1



def _scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("apology_")}


def test_a_worker_and_a_deliverer_on_one_host_keep_their_own_metrics(tmp_path: Path) -> None:
    """The Procfile's two workers on one machine share PROMETHEUS_MULTIPROC_DIR: the deliverer's start must
    not wipe the events worker's counters, and each serves its own on its own port."""
    histories = [TicketHistory.model_validate_json(line) for line in EXAMPLES.read_text().splitlines()]
    events = [e for h in histories for e in history_events(h)]
    replies = sum(e.message.role == "agent" for e in events)
    ports = free_port(), free_port()
    with redis_server(tmp_path) as server, WebhookReceiver(SECRET) as receiver:
        env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_WEBHOOK_URL": receiver.url,
               "APOLOGY_ALLOW_PRIVATE_TARGETS": "true", "APOLOGY_WEBHOOK_SECRET": SECRET,
               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
        cfg = load_settings(broker_url=server.url)
        producer = create_app(cfg)
        stores = bootstrap.stores(cfg, redis.Redis.from_url(server.url))
        with celery_worker({**env, "APOLOGY_METRICS_PORT": str(ports[0])}, name="events",
                           extra=("--queues", "apology,apology.backfill")):
            submit_events(events, stores, lambda p: producer.send_task(bootstrap.HANDLE_EVENT, args=[p]))
            wait_until(lambda: sum(v for k, v in _scrape(ports[0]).items() if k.startswith("apology_events_total"))
                       == len(events), timeout=60, what="every event handled")
            queued = stores.redis.llen("apology.deliveries")
            assert queued > 0, "the example's verdicts should wait for a deliverer"
            with celery_worker({**env, "APOLOGY_METRICS_PORT": str(ports[1])}, name="deliverer", pool="threads",
                               concurrency=4, extra=("--queues", "apology.deliveries")):
                wait_until(lambda: len(receiver.deliveries) >= queued and broker_idle(stores.redis), timeout=60,
                           what="every delivery made")
                events_side, deliverer_side = _scrape(ports[0]), _scrape(ports[1])
    assert events_side['apology_events_total{outcome="judged"}'] == replies  # not wiped by the deliverer's start
    assert not any(k.startswith("apology_deliveries_total") for k in events_side)
    assert deliverer_side['apology_deliveries_total{outcome="delivered",target="webhook"}'] == len(receiver.deliveries)
    assert not any(k.startswith("apology_events_total") for k in deliverer_side)
