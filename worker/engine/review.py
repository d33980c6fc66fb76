"""The engine's one entry: an agent reply, the conversation before it and a policy in; a verdict out.

Pure: no I/O, no clocks, no queues. Everything here is a function of its arguments, so the CLI, the
workers, the gateway and backfills all give the same verdict for the same conversation.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.engine.lexicon import CUED_KINDS
from worker.engine.policy import Policy, Profile, Rule
from worker.engine.rules import score_and_action
from worker.engine.signals.apology import read_apology
from worker.engine.signals.care import read_empathy
from worker.engine.signals.conduct import read_blame, read_liability, read_responsibility
from worker.engine.signals.remedy import read_prevention, read_solution
from worker.engine.signals.situation import CustomerReading, combine, read_customer_message
from worker.engine.text import Prepared, prepare
from worker.models import Context, Finding, Message, PolicyRef, Signals, Ticket, TicketHistory, Verdict

MAX_CONTEXT_MESSAGES = 8

PROBLEMS = {
    "defect": "the fault", "delay": "the delay", "misinformation": "the wrong information you were given",
    "staff_conduct": "how you were treated", "billing": "the billing error", "beyond_control": "what happened",
    "other": "the trouble", "none": "the trouble",
}

CustomerCache = MutableMapping[tuple[str, str], CustomerReading]


@dataclass(frozen=True, slots=True)
class ReplyReading:
    """Every reply signal with the text spans it was read from."""

    signals: Signals
    evidence: dict[str, list[tuple[int, int]]]
    doc: Prepared


def read_reply(reply: Message, policy: Policy, response_minutes: float | None = None,
               incident: str | None = None) -> ReplyReading:
    """Every reply signal; `incident` (from the customer's side) lets stance read implied fault."""
    doc = prepare(reply.body, reply.format)
    lex = policy.lexicon
    liability = read_liability(doc, lex)
    responsibility = read_responsibility(doc, lex)
    third_party = lex.has("third_party", doc)
    apology = read_apology(doc, lex, company_at_fault=bool(liability or responsibility), incident=incident,
                           third_party=third_party)
    evidence = {
        "apology": apology.spans(),
        "generic_apology": apology.spans(generic_only=True),
        "liability_admission": liability,
        "blame": read_blame(doc, lex),
        "empathy": read_empathy(doc, lex),
        "solution": read_solution(doc, lex),
        "prevention": read_prevention(doc, lex),
    }
    if lex.reply_model is not None:  # second opinions where the lexicon found nothing
        memo: dict[str, frozenset[str]] = {}
        for name in lex.reply_model.signals:
            evidence[name] = lex.reply_model.add(name, doc, evidence[name], memo)
    signals = Signals(
        apology=apology.kind,
        apology_stance=apology.stance,
        apology_count=apology.count,
        liability_admission=bool(liability),
        blame=bool(evidence["blame"]),
        empathy=bool(evidence["empathy"]),
        solution=bool(evidence["solution"]),
        prevention=bool(evidence["prevention"]),
        response_minutes=response_minutes,
    )
    return ReplyReading(signals, evidence, doc)


def read_context(earlier: Sequence[Message], policy: Policy, cache: CustomerCache | None = None,
                 ticket_id: str = "") -> Context:
    """The situation the reply answers, read from the customer's messages before it."""
    customers = context_messages(earlier)
    readings = []
    for m in customers:
        key = (ticket_id, m.id)
        reading = cache.get(key) if cache is not None else None
        if reading is None:
            reading = read_customer_message(prepare(m.body, m.format), policy.lexicon)
            if cache is not None:
                cache[key] = reading
        readings.append(reading)
    incident, frustration, legal = combine(readings, CUED_KINDS, policy.lexicon.incident_model)
    return Context(incident=incident, frustration=frustration, legal_risk=legal,
                   customer_message_id=customers[-1].id if customers else None)


def context_messages(earlier: Sequence[Message]) -> list[Message]:
    """The customer's messages a reply is read against (the latest few), oldest first."""
    return [m for m in earlier if m.role == "customer"][-MAX_CONTEXT_MESSAGES:]


def response_minutes(reply: Message, earlier: Sequence[Message]) -> float | None:
    """Minutes since the oldest customer message this reply answers (the start of the customer's wait)."""
    waiting_since = None
    for m in earlier:
        if m.role == "agent" and m.public:
            waiting_since = None
        elif m.role == "customer" and waiting_since is None:
            waiting_since = m.created_at
    if waiting_since is None or reply.created_at is None:
        return None
    try:
        minutes = (reply.created_at - waiting_since).total_seconds() / 60.0
    except TypeError:  # one timestamp has a zone and the other does not
        return None
    return round(max(0.0, minutes), 1)


def review_reply(reply: Message, earlier: Sequence[Message], ticket: Ticket, policy: Policy,
                 cache: CustomerCache | None = None) -> Verdict:
    """Judge one agent reply against the policy, in the context of the conversation before it."""
    context = read_context(earlier, policy, cache, ticket.id)
    reading = read_reply(reply, policy, response_minutes(reply, earlier), context.incident)
    profile = policy.profile_for(ticket.team, ticket.channel, ticket.tags)
    facts = _facts(reading.signals, context, ticket, profile, reply, earlier, reading.doc)
    exempt = policy.exempt_rules(reply.body)
    fired = [r for r in profile.rules if (exempt != "all" and r.id not in exempt) and r.condition(facts)]
    findings = [_finding(r, reading, context, ticket, profile, earlier) for r in fired]
    outcome = score_and_action(
        [f.severity for f in findings], policy.weights,
        profile.actions.escalate.min_severity, profile.actions.escalate.score_below,
        profile.actions.annotate.min_severity, profile.actions.annotate.score_below,
    )
    return Verdict(
        ticket_id=ticket.id, message_id=reply.id, agent_id=reply.author.id if reply.author else None,
        policy=PolicyRef(name=policy.name, version=policy.version, override=profile.override),
        context=context, signals=reading.signals, findings=findings, score=outcome.score,
        action=outcome.action,
    )


def reviewable(message: Message, policy: Policy) -> bool:
    """Agent replies the customer sees (and private notes only if the policy asks for them)."""
    return message.role == "agent" and (message.public or policy.review_private_notes)


def review_history(history: TicketHistory, policy: Policy) -> Iterator[Verdict]:
    """A verdict for every reviewable agent reply, each judged on the messages before it."""
    cache: dict[tuple[str, str], CustomerReading] = {}
    for i, message in enumerate(history.messages):
        if reviewable(message, policy):
            yield review_reply(message, history.messages[:i], history.ticket, policy, cache)


def _facts(signals: Signals, context: Context, ticket: Ticket, profile: Profile, reply: Message,
           earlier: Sequence[Message], doc: Prepared) -> dict[str, Any]:
    facts: dict[str, Any] = signals.model_dump()
    facts.update(incident=context.incident, frustration=context.frustration, legal_risk=context.legal_risk)
    sla = profile.sla.response_minutes
    facts["sla_breached"] = bool(sla is not None and signals.response_minutes is not None
                                 and signals.response_minutes > sla)
    facts["first_reply"] = not any(m.role == "agent" and m.public for m in earlier)
    facts["reply_words"] = len(doc.text.split())
    facts.update(channel=ticket.channel, team=ticket.team, tags=list(ticket.tags))
    return facts


def _finding(rule: Rule, reading: ReplyReading, context: Context, ticket: Ticket, profile: Profile,
             earlier: Sequence[Message]) -> Finding:
    doc = reading.doc
    spans = reading.evidence.get(rule.highlight) or []
    start, end = spans[0] if spans else _first_sentence(doc)
    body_start, body_end = doc.span(start, end)
    visible = " ".join(doc.text[start:end].split())
    customer = next((m for m in reversed(earlier) if m.role == "customer"), None)
    values = {
        "excerpt": visible, "incident": context.incident, "problem": PROBLEMS[context.incident],
        "frustration": f"{context.frustration:.2f}", "apology_count": reading.signals.apology_count,
        "response_minutes": _minutes(reading.signals.response_minutes),
        "sla_minutes": _minutes(profile.sla.response_minutes), "subject": ticket.subject or "your request",
        "customer_name": (customer.author.name if customer and customer.author and customer.author.name
                          else "there"),
    }
    return Finding(
        rule=rule.id, severity=rule.severity,
        message=rule.message.format_map(values),
        span=(body_start, body_end), excerpt=doc.body[body_start:body_end],
        suggestion=rule.suggestion.format_map(values) if rule.suggestion else None,
    )


def _first_sentence(doc: Prepared) -> tuple[int, int]:
    for start, end in doc.sentences():
        chunk = doc.text[start:end]
        lead = len(chunk) - len(chunk.lstrip())
        trail = len(chunk.rstrip())
        return start + lead, start + trail
    return 0, 0


def _minutes(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value >= 120:
        return f"{value / 60:.1f} hours"
    return f"{value:.0f} minutes"
