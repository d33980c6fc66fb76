"""A live pipeline for end-to-end tests: redis-server, a real celery worker, a verifying receiver."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.support.processes import Proc, RedisServer, broker_idle, celery_worker, redis_server
from worker import bootstrap
from worker.app import create_app
from worker.settings import Settings, load_settings
from worker.stores import Stores
from worker.testing import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"e2e-test-secret-of-32-bytes-long").decode()


@dataclass
class Live:
    redis: RedisServer
    receiver: WebhookReceiver
    worker: Proc
    settings: Settings
    producer: Celery
    stores: Stores

    def send_event(self, payload: Any) -> None:
        self.producer.send_task(bootstrap.HANDLE_EVENT, args=[payload])

    def idle(self) -> bool:
        """Nothing queued, nothing reserved: every task (and every retry) has finished."""
        return broker_idle(self.stores.redis)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("redis")
    with redis_server(data) as server, WebhookReceiver(SECRET) as receiver:
        env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_WEBHOOK_URL": receiver.url,
               "APOLOGY_ALLOW_PRIVATE_TARGETS": "true",  # the receiver is on 127.0.0.1
               "APOLOGY_WEBHOOK_SECRET": SECRET, "APOLOGY_LOG_FORMAT": "json",
               "APOLOGY_DELIVERY_BACKOFF_SECONDS": "0.2"}
        cfg = load_settings(broker_url=server.url, webhook_url=receiver.url, webhook_secret=SECRET)
        with celery_worker(env, concurrency=2, cwd=Path(__file__).resolve().parents[2]) as worker:
            producer = create_app(cfg)
            yield Live(server, receiver, worker, cfg, producer,
                       bootstrap.stores(cfg, redis.Redis.from_url(server.url)))
            producer.close()
