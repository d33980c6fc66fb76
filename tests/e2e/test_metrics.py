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

