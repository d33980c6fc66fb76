"""Shared fixtures: the shipped policies, conversation builders, and a real redis-server when asked."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.support.processes import RedisServer, redis_server
from worker import logs
from worker.engine import Policy, load_policy
from worker.models import Author, Message, Ticket

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("liability-aware", "empathy-first", "no-apology")
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy("liability-aware")


@pytest.fixture(scope="session")
def presets() -> dict[str, Policy]:
    return {name: load_policy(name) for name in PRESETS}


def customer(body: str, mid: str = "c1", minutes: float = 0.0, fmt: str = "text") -> Message:
    return Message(id=mid, role="customer", body=body, format=fmt,  # type: ignore[arg-type]
                   author=Author(id="cust-1", name="Dana"), created_at=T0 + timedelta(minutes=minutes))


def agent(body: str, mid: str = "a1", minutes: float = 10.0, fmt: str = "text", public: bool = True) -> Message:
    return Message(id=mid, role="agent", body=body, format=fmt, public=public,  # type: ignore[arg-type]
                   author=Author(id="agent-1", name="Sam"), created_at=T0 + timedelta(minutes=minutes))


def ticket(**kw: object) -> Ticket:
    return Ticket(id=str(kw.pop("id", "T-1")), **kw)  # type: ignore[arg-type]


@pytest.fixture()
def redis_srv(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free port with append-only persistence, stopped after the test."""
    with redis_server(tmp_path) as server:
        yield server


@contextmanager
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The service's JSON log lines at INFO, and a reader of those written so far; the defaults come back after.
    Entered in the test's body: the log handler takes the stderr capsys gives the test's call, not its setup."""
    logs.configure("json", "INFO")
    try:
        yield lambda: [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
