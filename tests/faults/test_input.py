"""Poison events and duplicates: each bad one rejected with a reason or handled, the rest processed."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import free_port, python_env, venv_bin, wait_until
from worker import bootstrap
from worker.models import Message, TicketEvent

from .conftest import Cluster, assert_exactly_once, counts, events

pytestmark = pytest.mark.faults


def _event(base: TicketEvent, event_id: str, **message: Any) -> dict[str, Any]:
    data = base.model_dump(mode="json")
    data["event_id"] = event_id
    data["ticket"]["id"] = data["message"]["id"] = event_id
    data["message"].update(message)
    return data


def test_poison_events_are_dead_lettered_with_a_reason_or_handled_and_the_rest_processed(
        cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory()
    good, expected = events(200, "good")
    base = good[0]
    rejected: dict[str, Any] = {
        "invalid JSON": '{"event_id": "x", "source": ',
        "wrong types": {**_event(base, "types"), "ticket": "5158", "history": {"a": 1}},
        "5 MB body": json.dumps(_event(base, "big", body="sorry " * 900_000)),
        "5 MB of garbage": "\x00" * 5_000_000,
        "invalid UTF-8": b'{"event_id": "\xff\xfe", "source": "faults"}'.decode("utf-8", "surrogateescape"),
        "invalid UTF-8 in a body": _event(base, "surrogates", body="sorry \udcff\ud800 for the delay"),
        "deep nesting": "[" * 200_000 + "]" * 200_000,
        "deep nesting in a field": json.dumps({**_event(base, "nest"), "history": [[[[[[[[]]]]]]]]}),
    }
    handled = {
        "HTML bomb": _event(base, "html-bomb", format="html",
                            body="<div>" * 50_000 + "sorry for any inconvenience" + "</div>" * 50_000),
        "HTML entity flood": _event(base, "html-entities", format="html", body="&amp;" * 100_000 + "<p>sorry"),
        "50,000-character reply": _event(base, "long", body=("Sorry for any inconvenience. " * 1800)[:50_000]),
    }
    # Task messages that do not fit the event task's (payload[, busy]), as a producer in another language
    # might send them: dead-lettered like a malformed event, not failed inside Celery and lost.
    miscalls: dict[str, dict[str, Any]] = {
        "a named argument": {"kwargs": {"event": _event(base, "named")}},
        "no argument": {"args": []},
        "three arguments": {"args": [_event(base, "three"), 0, "extra"]},
        "a busy count that is no number": {"args": [_event(base, "busy")], "kwargs": {"busy": "zero"}},
    }
    with cluster.worker("w") as worker:
        for payload in rejected.values():
            cluster.send_event(payload)
        for call in miscalls.values():
            cluster.producer.send_task(bootstrap.HANDLE_EVENT, **call)
        for payload in handled.values():
            cluster.send_event(payload)
        cluster.submit(good)
        wait_until(lambda: cluster.stores.dead_letter_count() >= len(rejected) + len(miscalls), timeout=120,
                   what="every poison event dead-lettered")
        cluster.settle(expected)
        done = {name: bool(cluster.stores.redis.exists(f"aw:done:faults:{p['event_id']}"))
                for name, p in handled.items()}
        assert worker.popen.poll() is None
    letters = cluster.stores.dead_letters(limit=100)
    assert len(letters) == len(rejected) + len(miscalls), [letter.reason for letter in letters]
    assert all(letter.kind == "event" and letter.reason for letter in letters)
    reasons = Counter(letter.reason.split(":")[0] for letter in letters)
    print("\n" + "\n".join(f"  rejected: {letter.reason[:110]}" for letter in letters))
    assert set(reasons) <= {"not valid JSON", "not a canonical ticket event", "wrong task arguments"}
    assert reasons["wrong task arguments"] == len(miscalls)
    assert all(done.values()), done  # handled, not crashed: each marked done
    judged = {d.data["message_id"] for d in cluster.receiver.deliveries} - {m.id for m in _replies(good)}
    c = counts(cluster, len(good) + len(rejected) + len(miscalls) + len(handled), expected | _ids(cluster, judged))
    c.report(f"{len(rejected)} poison events rejected, {len(handled)} hostile ones handled")
    assert expected <= {d.id for d in cluster.receiver.deliveries}
    assert c.duplicates == 0 and c.per_message == 1


def test_the_same_event_sent_five_times_is_processed_once(cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory()
    stream, expected = events(100, "dup")
    with cluster.worker("w"):
        for _ in range(5):
            cluster.submit(stream)
        cluster.settle(expected)
    c = counts(cluster, 5 * len(stream), expected)
    c.report("every event sent five times")
    assert_exactly_once(c, cluster, expected)
    assert c.duplicates == 0 and c.dead_letters == 0
    assert cluster.receiver.requests == len(expected)  # not one request more


def _replies(stream: list[TicketEvent]) -> list[Message]:
    return [e.message for e in stream]


def _ids(cluster: Cluster, message_ids: set[str]) -> set[str]:
    return {d.id for d in cluster.receiver.deliveries if d.data["message_id"] in message_ids}


@pytest.mark.parametrize(("variable", "text", "expected"), [
    ("APOLOGY_POLICY", "name: broken\nrules:\n  - id: x\n    when: {bogus: 1}\n",
     ":4: rules.0.when.bogus: unknown field"),
    ("APOLOGY_ROUTES", "targets:\n  - type: nosuch\n", ": targets: Input should be a valid dictionary"),
])
def test_a_worker_refuses_to_start_on_a_bad_policy_or_routes_file(tmp_path: Path, variable: str, text: str,
                                                                  expected: str) -> None:
    """Not a worker that says it is ready and fails every task until its events are dead-lettered: it exits
    before taking any, naming the file, line and field (no broker is reachable: it never gets that far)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [venv_bin("celery"), "-A", "worker.app", "worker", "--pool", "solo", "--without-mingle"],
        env=python_env(APOLOGY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0", **{variable: str(bad)}),
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "apology-worker: cannot start the worker: " in done.stderr and f"{bad}{expected}" in done.stderr


def test_a_worker_refuses_to_start_on_a_bad_setting_in_one_line_not_a_traceback() -> None:
    """An operator's review (session 18): a setting Settings refuses (here a webhook URL without its signing
    secret) stopped the worker inside Celery's import of the app, under 30 lines of traceback."""
    done = subprocess.run(
        [venv_bin("celery"), "-A", "worker.app", "worker", "--pool", "solo", "--without-mingle"],
        env=python_env(APOLOGY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
                       APOLOGY_WEBHOOK_URL="https://hooks.example.com/in"),
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("apology-worker: cannot start the worker: invalid settings: "
                                  "APOLOGY_WEBHOOK_URL is set but APOLOGY_WEBHOOK_SECRET is not")
    assert "Traceback" not in done.stderr
