"""Every suggestion, filled as the engine fills it, follows the rule that made it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from tests.conftest import PRESETS, ROOT, agent, customer, ticket
from worker.engine import review_reply
from worker.engine.policy import Example, Policy
from worker.engine.policy import load_policy as _load_policy
from worker.engine.review import _thing
from worker.models import Author, Message, Ticket, Verdict

SHIPPED = [*PRESETS, str(ROOT / "config" / "policy.yaml")]
_T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_QUOTED = re.compile(r"\"([^\"]+)\"")

# Rules whose suggestion cannot be checked by reviewing its wording as the reply, and why. None today:
# every shipped suggestion quotes the wording it proposes. A rule added here needs a reason a reader accepts.
NOT_CHECKABLE: dict[str, str] = {}


@cache
def load_policy(name: str) -> Policy:
    return _load_policy(name)


def _review(policy: Policy, example: Example, reply: str) -> Verdict:
    earlier = []
    if example.customer is not None:
        earlier.append(Message(id="c", role="customer", body=example.customer, author=Author(id="customer"),
                               created_at=_T0))
    minutes = example.response_minutes if example.response_minutes is not None else 5.0
    message = Message(id="r", role="agent", body=reply, format=example.format, author=Author(id="agent"),
                      created_at=_T0 + timedelta(minutes=minutes))
    return review_reply(message, earlier, Ticket(id="t", team=example.team, channel=example.channel,
                                                 tags=example.tags), policy)


def _cases() -> list[tuple[str, str, int]]:
    cases = []
    for name in SHIPPED:
        for spec in load_policy(name).spec.rules:
            if spec.suggestion and spec.examples and spec.id not in NOT_CHECKABLE:
                cases.extend((name, spec.id, i) for i in range(len(spec.examples.flag)))
    return cases


def _label(case: tuple[str, str, int]) -> str:
    name, rule, i = case
    return f"{name.rsplit('/', 1)[-1]}:{rule}:flag[{i}]"


@pytest.mark.parametrize("case", _cases(), ids=_label)
def test_a_suggestion_passes_the_rule_that_made_it(case: tuple[str, str, int]) -> None:
    name, rule_id, index = case
    policy = load_policy(name)
    spec = next(s for s in policy.spec.rules if s.id == rule_id)
    assert spec.examples is not None
    item = spec.examples.flag[index]
    example = Example(reply=item) if isinstance(item, str) else item
    finding = next(f for f in _review(policy, example, example.reply).findings if f.rule == rule_id)
    assert finding.suggestion is not None
    rewrites = _QUOTED.findall(finding.suggestion)
    assert rewrites, f"{rule_id}: the suggestion quotes no wording to check: {finding.suggestion!r}"
    for rewrite in rewrites:
        fired = [f.rule for f in _review(policy, example, rewrite).findings]
        assert rule_id not in fired, f"{rule_id} fires on its own suggestion {rewrite!r}"
        # No suggestion teaches the vague apology a policy with `generic-apology` warns about.
        assert "generic-apology" not in fired, f"{rule_id}: {rewrite!r} is a generic apology"


def test_every_rule_with_a_suggestion_is_checked_or_explained() -> None:
    for name in SHIPPED:
        for spec in load_policy(name).spec.rules:
            if spec.suggestion:
                assert spec.id in NOT_CHECKABLE or (spec.examples and spec.examples.flag), (name, spec.id)


@pytest.mark.parametrize(("said", "rule", "suggested"), [
    ("My blender arrived with a cracked jug.", "generic-apology", "I'm sorry about the problem with your blender."),
    ("My order is a week late.", "generic-apology", "I'm sorry about the delay with your order."),
    ("Still no refund after three weeks.", "generic-apology", "I'm sorry about the problem with your refund."),
    ("You charged me twice for order 4411.", "generic-apology", "I'm sorry about the billing error."),
    ("The snowstorm cancelled my flight to Oslo.", "generic-apology",
     "I'm sorry about the disruption to your flight."),
    ("The app keeps crashing.", "generic-apology", "I'm sorry about [what broke or stopped working]."),
])
def test_problem_names_the_thing_affected_or_leaves_a_slot(said: str, rule: str, suggested: str) -> None:
    verdict = review_reply(agent("Sorry for the inconvenience."), [customer(said)], ticket(),
                           load_policy("liability-aware"))
    finding = next(f for f in verdict.findings if f.rule == rule)
    assert finding.suggestion is not None and suggested in finding.suggestion


@pytest.mark.parametrize(("said", "team"), [
    ("You charged me twice.", "our billing team"),
    ("The toaster you sold me is broken.", "our product team"),
    ("Your store manager shouted at me.", "the team's manager"),
])
def test_no_prevention_names_the_team_for_the_incident(said: str, team: str) -> None:
    policy = load_policy("liability-aware")
    verdict = review_reply(agent("I'm sorry, that was our error. I've fixed it and refunded you."),
                           [customer(said)], ticket(), policy)
    finding = next(f for f in verdict.findings if f.rule == "no-prevention")
    assert finding.suggestion is not None
    assert team in finding.suggestion and "warehouse" not in finding.suggestion


@pytest.mark.parametrize("said", ["The lamp you sold me is broken.", "Your store manager shouted at me."])
def test_empathy_first_owning_it_reads_naturally(said: str) -> None:
    verdict = review_reply(agent("I'm sorry to hear that. I've sent a replacement."), [customer(said)], ticket(),
                           load_policy("empathy-first"))
    finding = next(f for f in verdict.findings if f.rule == "no-responsibility")
    assert finding.suggestion is not None
    assert "let you down with" not in finding.suggestion
    assert "I'm sorry about" in finding.suggestion


@pytest.mark.parametrize(("texts", "thing"), [
    (["My blender arrived with a cracked jug."], "your blender"),
    (["I can't log in to my account."], "your account"),
    (["My credit card was charged twice."], "your credit card"),
    (["MY PARCEL IS LATE AGAIN"], "your parcel"),
    (["Oh my god. My new laptop won't boot."], "your laptop"),
    (["My bank shows two charges.", "Still no refund after three weeks."], "your refund"),
    (["The kettle burned my hand. I'm speaking to my lawyer."], None),
    (["My order 4411 is late.", "Hello, my router is dead."], "your order"),
])
def test_the_thing_affected_is_what_the_customer_calls_theirs(texts: list[str], thing: str | None) -> None:
    assert _thing(texts) == thing
