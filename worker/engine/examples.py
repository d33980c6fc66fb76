"""Each rule's own examples, run through the engine: `policy test` and the test suite both use this."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from worker.engine.policy import Example, Policy
from worker.engine.review import review_reply
from worker.models import Author, Message, Ticket

_T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ExampleResult:
    rule: str
    expect: str  # flag | pass
    index: int
    reply: str
    ok: bool
    fired: tuple[str, ...]


def run_examples(policy: Policy) -> list[ExampleResult]:
    results: list[ExampleResult] = []
    for spec in policy.spec.rules:
        if spec.examples is None:
            continue
        for expect, items in (("flag", spec.examples.flag), ("pass", spec.examples.pass_)):
            for i, item in enumerate(items):
                example = Example(reply=item) if isinstance(item, str) else item
                fired = _fired_rules(policy, example)
                ok = (spec.id in fired) == (expect == "flag")
                results.append(ExampleResult(spec.id, expect, i, example.reply, ok, fired))
    return results


def _fired_rules(policy: Policy, example: Example) -> tuple[str, ...]:
    earlier = []
    if example.customer is not None:
        earlier.append(Message(id="example-customer", role="customer", body=example.customer,
                               author=Author(id="customer"), created_at=_T0))
    minutes = example.response_minutes if example.response_minutes is not None else 5.0
    reply = Message(id="example-reply", role="agent", body=example.reply, format=example.format,
                    author=Author(id="agent"), created_at=_T0 + timedelta(minutes=minutes))
    ticket = Ticket(id="example", team=example.team, channel=example.channel, tags=example.tags)
    verdict = review_reply(reply, earlier, ticket, policy)
    return tuple(f.rule for f in verdict.findings)
