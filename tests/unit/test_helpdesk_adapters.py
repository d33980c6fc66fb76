"""Every adapter: the registry the gateway dispatches through, and the promise that a bad payload only
ever raises EventError (the gateway's 422), never anything else (which would be a 500)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.payloads import fixture
from worker.errors import ConfigError, EventError, SignatureError
from worker.helpdesks import ADAPTERS
from worker.models import TicketEvent

SAMPLES = {
    "zendesk": ["zendesk-comment-added.json", "zendesk-trigger.json", "zendesk-status-changed.json"],
    "freshdesk": ["freshdesk-reply.json"],
    "helpscout": ["helpscout-agent-reply.json"],
    "intercom": ["intercom-admin-replied.json", "intercom-user-created.json"],
    "generic": ["generic-event.json"],
}
EVENTS = ["convo.agent.reply.created", "convo.customer.reply.created", "convo.created", "convo.note.created",
          "convo.assigned", ""]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Values shaped like what helpdesks really send, so mutations reach past the first type check.
LIKELY = st.sampled_from(["", "true", "false", "0", "-1", "2026-11-20T10:04:00Z", "<p>x</p>", "user",
                          "customer", "note", "message", "End-user", " ", "\ud800", "x" * 300,
                          "admin", "bot", "lead", "comment", "close", "1795172640", 1795172640, 10**20,
                          "conversation.user.replied", "conversation.admin.noted"]) | JSON


def test_registry_covers_each_source_with_its_secret() -> None:
    assert {name: a.secret_env for name, a in ADAPTERS.items()} == {
        "zendesk": "APOLOGY_ZENDESK_SIGNING_SECRET", "freshdesk": "APOLOGY_FRESHDESK_INBOUND_TOKEN",
        "helpscout": "APOLOGY_HELPSCOUT_SIGNING_SECRET", "intercom": "APOLOGY_INTERCOM_CLIENT_SECRET",
        "generic": "APOLOGY_INBOUND_SECRET"}
    assert all(a.source == name for name, a in ADAPTERS.items())


@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_every_sample_is_read(source: str) -> None:
    for name in SAMPLES[source]:
        result = ADAPTERS[source].to_event(fixture(name), {"X-HelpScout-Event": EVENTS[0]})
        assert result is None or isinstance(result, TicketEvent)
        assert result is None or result.source == source


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return doc


def _only_event_errors(source: str, payload: Any, event: str) -> None:
    try:
        result = ADAPTERS[source].to_event(payload, {"X-HelpScout-Event": event})
    except EventError:
        return
    assert result is None or isinstance(result, TicketEvent)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_payloads_only_raise_event_errors(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(sorted(SAMPLES)))
    doc = copy.deepcopy(fixture(data.draw(st.sampled_from(SAMPLES[source]))))
    for _ in range(data.draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        if path and data.draw(st.booleans()) and isinstance(doc, dict | list):
            parent = doc
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent, dict):
                del parent[path[-1]]
                continue
        doc = _replace(doc, path, data.draw(LIKELY))
    as_bytes = data.draw(st.booleans())
    payload = json.dumps(doc).encode("utf-8", "surrogatepass") if as_bytes else doc
    _only_event_errors(source, payload, data.draw(st.sampled_from(EVENTS)))


@settings(max_examples=200, deadline=None)
@given(source=st.sampled_from(sorted(SAMPLES)), body=st.binary(max_size=200) | JSON.map(
    lambda v: json.dumps(v).encode()), event=st.sampled_from(EVENTS))
def test_arbitrary_bodies_only_raise_event_errors(source: str, body: bytes, event: str) -> None:
    _only_event_errors(source, body, event)


@settings(max_examples=200, deadline=None)
@given(source=st.sampled_from(sorted(SAMPLES)), body=st.binary(max_size=100),
       headers=st.dictionaries(st.sampled_from([
           "X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp", "X-HelpScout-Signature",
           "X-Hub-Signature", "Authorization", "X-Apology-Token", "webhook-id", "webhook-timestamp",
           "webhook-signature"]),
           st.text(max_size=60), max_size=8))
def test_authentication_only_raises_signature_errors(source: str, body: bytes,
                                                     headers: dict[str, str]) -> None:
    secret = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=" if source == "generic" else "s3cret"
    try:
        ADAPTERS[source].authenticate(body, headers, secret, datetime(2026, 11, 20, tzinfo=UTC))
    except SignatureError:
        return
    pytest.fail("a random request was accepted")


@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_no_secret_is_a_configuration_error_not_an_open_door(source: str) -> None:
    with pytest.raises(ConfigError):
        ADAPTERS[source].authenticate(b"{}", {}, "", datetime(2026, 11, 20, tzinfo=UTC))
