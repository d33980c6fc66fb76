"""The service layer on fakeredis: order, deduplication, equivalence with `review`, deliveries."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest

from tests.conftest import agent, customer, ticket
from worker.egress import Egress
from worker.engine import Policy, review_history
from worker.errors import DeliveryError
from worker.models import TicketHistory, Verdict
from worker.pipeline import (
    Deps,
    Limits,
    context_for,
    deliver,
    handle_event,
    history_events,
    reject_call,
    submit_events,
    ticket_key,
)
from worker.routing import build_router
from worker.stores import Stores

SECRET = "whsec_" + base64.b64encode(b"unit-test-secret-unit-test-secret").decode()
CORPUS = Path(__file__).resolve().parents[1] / "corpus"


class Harness:
    """Deps with fakeredis, a list for the delivery queue and an httpx mock transport."""

    def __init__(self, policy: Policy, respond: Callable[[httpx.Request], httpx.Response] | None = None):
        self.queue: list[dict[str, Any]] = []
        self.sent: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            self.sent.append(request)
            return respond(request) if respond else httpx.Response(204)

        client = httpx.Client(transport=httpx.MockTransport(handler))
        self.deps = Deps(Stores(fakeredis.FakeRedis()), policy, build_router("http://hooks.test/x", SECRET),
                         self.queue.append, lambda: client, Limits(order_wait_attempts=3, backoff_base=1.0),
                         egress=Egress(resolve=lambda host, port: ["93.184.216.34"]))

    def submit(self, events: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        submit_events(events, self.deps.stores, out.append)
        return out


def conversation() -> TicketHistory:
    t = ticket(id="T-9", team="returns", channel="email")
    return TicketHistory(ticket=t, messages=[
        customer("My blender arrived with a cracked jug and I'm really disappointed!", "c1", 0),
        agent("Sorry for any inconvenience. Send a photo and we will review it.", "a1", 30),
    ])


def test_a_reply_queued_before_its_customer_message_waits_for_it(policy: Policy) -> None:
    h = Harness(policy)
    history = conversation()
    c_event, a_event = h.submit(history_events(history))
    first = handle_event(a_event, h.deps)  # the queue hands out the reply first
    assert first.status == "waiting"
    assert first.retry_in == pytest.approx(0.1)
    assert handle_event(c_event, h.deps).status == "remembered"
    judged = handle_event(a_event, h.deps, attempt=1)
    assert judged.status == "judged"
    assert judged.verdict == next(review_history(history, policy))
    assert judged.verdict.context.customer_message_id == "c1"


def test_after_bounded_waiting_a_reply_is_judged_anyway(policy: Policy) -> None:
    h = Harness(policy)
    _, a_event = h.submit(history_events(conversation()))
    assert handle_event(a_event, h.deps, attempt=2).status == "waiting"
    outcome = handle_event(a_event, h.deps, attempt=3)
    assert outcome.status == "judged"
    assert outcome.verdict is not None
    assert outcome.verdict.context.customer_message_id is None


@pytest.mark.parametrize("name", ["email.jsonl", "social.jsonl"])
def test_separate_events_give_the_verdicts_of_the_history_file(policy: Policy, name: str) -> None:
    h = Harness(policy)
    for line in (CORPUS / name).read_text().splitlines()[:60]:
        history = TicketHistory.model_validate(json.loads(line))
        verdicts = [o.verdict for e in h.submit(history_events(history))
                    if (o := handle_event(e, h.deps)).verdict is not None]
        assert verdicts == list(review_history(history, policy))


def test_history_in_the_event_counts_as_context(policy: Policy) -> None:
    h = Harness(policy)
    history = conversation()
    event = history_events(history)[1].model_copy(update={"history": [history.messages[0]]})
    outcome = handle_event(event.model_dump(mode="json"), h.deps)
    assert outcome.verdict == next(review_history(history, policy))


def test_a_duplicate_event_enqueues_nothing_new(policy: Policy) -> None:
    h = Harness(policy)
    events = h.submit(history_events(conversation()))
    for e in events:
        handle_event(e, h.deps)
    assert len(h.queue) == 1
    for e in h.submit(history_events(conversation())):
        assert handle_event(e, h.deps).status == "duplicate"
    assert len(h.queue) == 1
    assert h.deps.stores.pending(ticket_key("history", "T-9")) == []


def test_two_helpdesks_numbering_a_ticket_alike_keep_two_conversations(policy: Policy) -> None:
    """A team moving from one helpdesk to another has a ticket 5158 in each: one's customer message is not
    the context of the other's reply."""
    h = Harness(policy)
    upset = TicketHistory(ticket=ticket(id="5158"), messages=[
        customer("Your engineer was rude to me and I want a refund. I am speaking to my solicitor.", "c1", 0)])
    calm = TicketHistory(ticket=ticket(id="5158"), messages=[
        customer("Hi, what time do you open on Saturday?", "c1b", 5),
        agent("We open at 9am on Saturday.", "a1", 30)])
    for e in h.submit(history_events(upset, source="freshdesk")):
        handle_event(e, h.deps)
    outcomes = [handle_event(e, h.deps) for e in h.submit(history_events(calm, source="zendesk"))]
    verdict = outcomes[-1].verdict
    assert verdict is not None and verdict.context.customer_message_id == "c1b"
    assert not verdict.context.legal_risk and verdict.context.incident != "staff_conduct"


def test_a_worker_lost_before_finishing_leaves_the_event_to_be_handled_again(policy: Policy) -> None:
    h = Harness(policy)
    c_event, a_event = h.submit(history_events(conversation()))
    handle_event(c_event, h.deps)
    boom = Deps(**{**h.deps.__dict__, "send_delivery": _explode})
    with pytest.raises(ConnectionError):
        handle_event(a_event, boom)
    again = handle_event(a_event, h.deps)  # the redelivered message (acks_late)
    assert again.status == "judged"
    assert [j["delivery_id"] for j in h.queue] == [again.deliveries[0].delivery_id]


def _explode(job: dict[str, Any]) -> None:
    raise ConnectionError("broker went away")


@pytest.mark.parametrize("payload, reason", [
    ("{not json", "not valid JSON"),
    ({"event_id": "x", "source": "zendesk"}, "not a canonical ticket event"),
    ({"event_id": "x", "source": "Bad Source!", "ticket": {"id": "1"},
      "message": {"id": "m", "role": "agent", "body": "hi"}}, "not a canonical ticket event"),
])
def test_malformed_events_go_to_dead_letters(policy: Policy, payload: Any, reason: str) -> None:
    h = Harness(policy)
    outcome = handle_event(payload, h.deps)
    assert outcome.status == "rejected"
    assert outcome.dead_letter is not None
    letter = h.deps.stores.dead_letter(outcome.dead_letter)
    assert letter is not None
    assert letter.kind == "event"
    assert letter.reason.startswith(reason)


@pytest.mark.parametrize("args, kwargs", [
    ((), {"event": {"event_id": "x", "source": "zendesk"}}),  # a producer naming the argument its own way
    ((), {}),
    (("{}", 0, "extra"), {}),
])
def test_an_event_task_sent_the_wrong_arguments_is_dead_lettered_with_them(
        policy: Policy, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    h = Harness(policy)
    outcome = reject_call(args, kwargs, h.deps)
    assert outcome.status == "rejected" and outcome.dead_letter is not None
    letter = h.deps.stores.dead_letter(outcome.dead_letter)
    assert letter is not None and letter.kind == "event"
    assert letter.reason.startswith("wrong task arguments")
    assert f"{len(args)} positional" in letter.reason
    assert json.loads(letter.payload) == {"args": list(args), "kwargs": kwargs}


def _job(policy: Policy, respond: Callable[[httpx.Request], httpx.Response] | None = None
         ) -> tuple[Harness, dict[str, Any]]:
    h = Harness(policy, respond)
    for e in h.submit(history_events(conversation())):
        handle_event(e, h.deps)
    return h, h.queue[0]


def test_a_delivery_is_sent_signed_once(policy: Policy) -> None:
    h, job = _job(policy)
    assert deliver(job, h.deps).status == "delivered"
    assert deliver(job, h.deps).status == "skipped"
    assert len(h.sent) == 1
    request = h.sent[0]
    assert request.headers["webhook-id"] == job["delivery_id"]
    body = json.loads(request.content)
    assert body["type"] == "reply.annotated"
    assert body["data"] == job["verdict"]


def test_a_throttled_target_waits_without_sending_or_using_the_claim(policy: Policy) -> None:
    h, job = _job(policy)
    waits = iter([1.5, 0.0])
    throttled = Deps(**{**h.deps.__dict__, "throttle": lambda target: next(waits)})
    first = deliver(job, throttled)
    assert (first.status, first.retry_in, h.sent) == ("throttled", 1.5, [])
    assert deliver(job, throttled).status == "delivered"
    assert len(h.sent) == 1


def test_server_errors_are_retried_with_backoff_and_the_same_webhook_id(policy: Policy) -> None:
    answers = iter([httpx.Response(503), httpx.Response(429, headers={"retry-after": "7"}),
                    httpx.Response(200)])
    h, job = _job(policy, lambda r: next(answers))
    first = deliver(job, h.deps, attempt=0)
    assert first.status == "retry"
    assert first.retry_in is not None and 0.5 <= first.retry_in <= 1.0
    second = deliver(job, h.deps, attempt=1)
    assert second.retry_in == 7.0  # Retry-After honoured
    assert deliver(job, h.deps, attempt=2).status == "delivered"
    assert len({r.headers["webhook-id"] for r in h.sent}) == 1


def test_network_errors_are_retried(policy: Policy) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    h, job = _job(policy, refuse)
    assert deliver(job, h.deps).status == "retry"


def test_a_receiver_slower_than_the_read_timeout_is_retried(policy: Policy) -> None:
    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    h, job = _job(policy, stall)
    outcome = deliver(job, h.deps)
    assert outcome.status == "retry" and not h.deps.stores.was_delivered(job["delivery_id"])


def test_a_4xx_is_permanent_and_dead_lettered_with_the_response(policy: Policy) -> None:
    h, job = _job(policy, lambda r: httpx.Response(400, text="unknown ticket"))
    outcome = deliver(job, h.deps)
    assert outcome.status == "dead"
    letter = h.deps.stores.dead_letter(outcome.dead_letter or "")
    assert letter is not None
    assert (letter.kind, letter.details["status"], letter.details["response_body"]) == (
        "delivery", 400, "unknown ticket")
    assert letter.payload == job
    assert not h.deps.stores.was_delivered(job["delivery_id"])


def test_exhausted_retries_are_dead_lettered(policy: Policy) -> None:
    h, job = _job(policy, lambda r: httpx.Response(500, text="down"))
    last = h.deps.limits.delivery_max_attempts - 1
    outcome = deliver(job, h.deps, attempt=last)
    assert outcome.status == "dead"
    letter = h.deps.stores.dead_letter(outcome.dead_letter or "")
    assert letter is not None and letter.reason.startswith(f"gave up after {last + 1} attempts: HTTP 500")


def test_a_delivery_for_a_removed_target_is_dead_lettered(policy: Policy) -> None:
    h, job = _job(policy)
    outcome = deliver({**job, "target": "gone"}, h.deps)
    assert outcome.status == "dead"


class _Unbuildable:
    """A target that cannot address the verdict (as a helpdesk target given a foreign ticket id)."""

    def __init__(self, permanent: bool) -> None:
        self.name, self.permanent = "bad", permanent

    def build(self, verdict: Verdict, delivery_id: str) -> Any:
        raise DeliveryError("bad: ticket id 'x' is not a bad ticket id", permanent=self.permanent)


@pytest.mark.parametrize(("permanent", "status"), [(True, "dead"), (False, "retry")])
def test_a_target_that_cannot_build_the_request_dead_letters_or_retries(policy: Policy, permanent: bool,
                                                                        status: str) -> None:
    h, job = _job(policy)
    h.deps.router.targets["bad"] = _Unbuildable(permanent)
    outcome = deliver({**job, "target": "bad"}, h.deps)
    assert outcome.status == status and h.sent == []
    if permanent:
        letter = h.deps.stores.dead_letter(outcome.dead_letter or "")
        assert letter is not None and letter.reason == "refused: bad: ticket id 'x' is not a bad ticket id"
    assert not h.deps.stores.was_delivered(job["delivery_id"])


def test_a_target_resolving_to_a_private_address_is_dead_lettered_unsent(policy: Policy) -> None:
    h, job = _job(policy)
    h.deps.egress = Egress(resolve=lambda host, port: ["169.254.169.254"])
    outcome = deliver(job, h.deps)
    assert outcome.status == "dead" and h.sent == []
    letter = h.deps.stores.dead_letter(outcome.dead_letter or "")
    assert letter is not None and letter.reason.startswith("refused: refusing to send to hooks.test: it "
                                                           "resolves to 169.254.169.254")


def test_context_merges_memory_and_history_in_time_order() -> None:
    c1, a1, c2 = customer("a", "c1", 0), agent("b", "a1", 5), customer("c", "c2", 8)
    reply = agent("d", "a2", 10)
    later = customer("e", "c3", 20)
    assert [m.id for m in context_for(reply, [c2, later, reply, c1], [a1, c1], 0.0)] == ["c1", "a1", "c2"]


@pytest.mark.parametrize("payload", [{"delivery_id": "msg_bad"}, "junk", {"target": 3}])
def test_a_malformed_delivery_job_is_dead_lettered_not_dropped(policy: Policy, payload: Any) -> None:
    h = Harness(policy)
    outcome = deliver(payload, h.deps)
    assert outcome.status == "dead" and outcome.dead_letter is not None
    letter = h.deps.stores.dead_letters(1)[0]
    assert letter.reason.startswith("not a delivery job") and not h.sent
