"""The engine's one entry: an agent reply, the conversation before it and a policy in; a verdict out.

Pure: no I/O, no clocks, no queues. Everything here is a function of its arguments, so the CLI, the
workers, the gateway and backfills all give the same verdict for the same conversation.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.engine.lexicon import CUED_KINDS
from worker.engine.policy import Policy, Profile, Rule
from worker.engine.rules import score_and_action
from worker.engine.signals.apology import read_apology
from worker.engine.signals.care import read_empathy
from worker.engine.signals.conduct import read_blame, read_liability, read_responsibility
from worker.engine.signals.language import language
from worker.engine.signals.remedy import read_prevention, read_solution
from worker.engine.signals.situation import CustomerReading, combine, read_customer_message
from worker.engine.text import Prepared, prepare
from worker.models import Action, Context, Finding, Message, PolicyRef, Signals, Ticket, TicketHistory, Verdict

MAX_CONTEXT_MESSAGES = 8
UNREAD_LANGUAGE = "unsupported-language"  # the finding of a reply in a language the policy does not read
# The finding of a reply whose customer wrote last in a language the policy does not read.
UNREAD_CUSTOMER_LANGUAGE = "unsupported-customer-language"

# How a suggestion names the customer's problem, by incident kind. Each names the failure or the thing
# affected (DESIGN's test of a specific apology), so a suggestion never fails the rule that made it: `{}` is
# the thing as the customer named it ("your blender"); without one, a bracketed slot the agent fills in.
PROBLEMS = {
    "defect": ("the problem with {}", "[what broke or stopped working]"),
    "delay": ("the delay with {}", "the delay"),
    "misinformation": ("the wrong information you were given", "the wrong information you were given"),
    "staff_conduct": ("how you were treated", "how you were treated"),
    "billing": ("the problem with {}", "the billing error"),
    "beyond_control": ("the disruption to {}", "[what went wrong for them]"),
    "other": ("the problem with {}", "[what went wrong]"),
    "none": ("the problem with {}", "[what went wrong]"),
}
# `{next_step}`: the fix, as an example sentence with bracketed slots for what only the agent knows.
NEXT_STEPS = {
    "defect": "I've arranged [a fix, a replacement or a repair], and [when it's done].",
    "delay": "I've chased the courier, and it arrives [day].",
    "misinformation": "I've honoured what you were told: [what that means for you].",
    "staff_conduct": "I've arranged for [the manager] to call you [today].",
    "billing": "I've refunded [the extra charge], and it reaches your account in [3 to 5 days].",
    "beyond_control": "Here's how I can help: [the next step].",
    "other": "Here's how I can help: [the next step].",
    "none": "Here's how I can help: [the next step].",
}
# `{responsible_team}`: who can stop this kind of failure happening again.
RESPONSIBLE_TEAMS = {
    "defect": "our product team", "delay": "our delivery team",
    "misinformation": "the team that keeps our information up to date", "staff_conduct": "the team's manager",
    "billing": "our billing team", "beyond_control": "the team responsible", "other": "the team responsible",
    "none": "the team responsible",
}
# The thing affected, as the customer names it: "my blender", "my credit card", else a support noun they
# mention ("still no refund"). People, body parts and abstractions are not the thing that failed.
_MY = re.compile(r"\b(?:my|our)[ \t]+([A-Za-z][\w'-]*(?:[ \t]+[A-Za-z][\w'-]*){0,3})", re.IGNORECASE)
_SUPPORT_NOUN = re.compile(r"\b(order|parcel|package|delivery|refund|account|subscription|payment|invoice|"
                           r"booking|reservation|flight)\b", re.IGNORECASE)
_BILLING_NOUN = re.compile(r"\b(refund|subscription|payment|invoice|bill)\b", re.IGNORECASE)
_THING_LEAD = frozenset({"new", "old", "brand", "recent", "latest", "last", "first", "second", "whole", "entire",
                         "own", "current", "online", "only", "very", "poor", "little", "favourite", "favorite"})
_THING_END = frozenset({"number", "no", "id", "ref", "reference", "details", "info", "information"})
_NOT_A_THING = frozenset({
    "lawyer", "lawyers", "solicitor", "attorney", "wife", "husband", "partner", "kids", "children", "child", "son",
    "daughter", "family", "mum", "mom", "dad", "mother", "father", "friend", "friends", "boss", "colleague",
    "neighbour", "neighbor", "god", "goodness", "gosh", "time", "money", "mind", "patience", "life", "day", "days",
    "week", "weekend", "head", "hand", "hands", "arm", "leg", "face", "eyes", "back", "opinion", "question",
    "questions", "email", "emails", "message", "messages", "ticket", "name", "side", "case", "complaint",
    "experience", "issue", "problem", "self", "home", "house", "door", "address", "fault", "mistake", "end",
    "way", "part", "turn", "best", "bad", "money's", "trip", "holiday", "customers", "customer", "business",
    "company", "bank", "job", "work", "staff", "team", "manager", "sister", "brother", "grandma", "grandmother",
    "grandad", "grandfather", "nan", "baby", "girlfriend", "boyfriend", "parents", "employer", "client",
    "clients", "accountant", "gp", "doctor", "host", "landlord", "agent", "tenant", "rights", "accent", "one",
    "records", "mouth", "shoulder", "wrist", "knee", "foot", "feet", "neck", "skin", "teeth", "tooth", "lower",
    "two", "weight", "stuff",
})
_THING_STOPS = frozenset({
    "is", "was", "are", "were", "has", "had", "have", "hasn't", "hadn't", "haven't", "isn't", "wasn't", "aren't",
    "weren't", "does", "did", "doesn't", "didn't", "do", "don't", "will", "won't", "would", "can", "can't", "could",
    "couldn't", "should", "still", "just", "now", "never", "again", "also", "already", "today", "yesterday",
    "keeps", "kept", "stopped", "broke", "came", "went", "got", "gets", "and", "or", "but", "to", "for",
    "from", "with", "at", "in", "on", "of", "by", "that", "this", "which", "who", "it", "i", "you", "they",
    "we", "so", "because", "after", "before", "since", "when", "as", "a", "an", "the", "not", "no", "yet",
    "arrived", "broken", "cracked", "late", "back", "being", "been", "be", "here", "there", "out", "up", "off",
    "over", "about", "under", "into", "onto", "through", "during", "until", "twice", "tonight", "tomorrow", "ever",
    "even", "only", "really", "all", "last", "while", "straight", "she", "he", "her", "his", "their", "them",
})

# Keyed by the message's id *and* a hash of its text: a reading is a function of the text alone, so two
# helpdesks' tickets that share ids, or a message edited since it was read, never get another text's reading.
CustomerCache = MutableMapping[tuple[str, str, str, int], CustomerReading]


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
    lang = language(doc.text) if policy.languages else None
    if not policy.reads(lang):
        return ReplyReading(_unread(lang, response_minutes), {}, doc)
    lex = policy.lexicon
    liability = read_liability(doc, lex)
    responsibility = read_responsibility(doc, lex)
    third_party = lex.has("third_party", doc)
    apology = read_apology(doc, lex, company_at_fault=bool(liability or responsibility), incident=incident,
                           third_party=third_party)
    blame = read_blame(doc, lex)
    evidence = {
        "apology": apology.spans(),
        "generic_apology": apology.spans(generic_only=True),
        "liability_admission": liability,
        "blame": blame,
        "empathy": read_empathy(doc, lex),
        "solution": read_solution(doc, lex),
        "prevention": read_prevention(doc, lex),
    }
    if lex.reply_model is not None:  # second opinions where the lexicon found nothing
        memo: dict[str, frozenset[str]] = {}
        # A blame phrase the reply negates ("it was not your fault") is the phrases reading a reassurance,
        # not a silence: the model may not overrule it.
        reassured = not blame and lex.has("blame", doc)
        for name in lex.reply_model.signals:
            if not (reassured and name == "blame"):
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
        language=lang,
    )
    return ReplyReading(signals, evidence, doc)


def _unread(lang: str | None, response_minutes: float | None) -> Signals:
    """The neutral signals of a reply in a language the policy does not read: nothing was found in it."""
    return Signals(apology="none", apology_stance=None, apology_count=0, liability_admission=False, blame=False,
                   empathy=False, solution=False, prevention=False, response_minutes=response_minutes,
                   language=lang)


def read_context(earlier: Sequence[Message], policy: Policy, cache: CustomerCache | None = None,
                 ticket_id: str = "") -> Context:
    """The situation the reply answers, read from the customer's messages before it."""
    customers = context_messages(earlier)
    readings = []
    for m in customers:
        key = (ticket_id, m.id, m.format, hash(m.body))
        reading = cache.get(key) if cache is not None else None
        if reading is None:
            reading = _read_customer(prepare(m.body, m.format), policy)
            if cache is not None:
                cache[key] = reading
        readings.append(reading)
    # A message in a language the lexicon cannot read would read as calm and about nothing: it is left out,
    # and the messages the policy does read (an earlier one in English) make the context alone.
    read = [r for r in readings if policy.reads(r.language)]
    incident, frustration, legal = combine(read, CUED_KINDS, policy.lexicon.incident_model)
    return Context(incident=incident, frustration=frustration, legal_risk=legal,
                   customer_message_id=customers[-1].id if customers else None,
                   language=readings[-1].language if readings else None)


def _read_customer(doc: Prepared, policy: Policy) -> CustomerReading:
    """One customer message, and its language when that is in doubt: a message whose words the lexicon read
    (an incident kind, trouble, legal risk) is in the lexicon's language, and asking the language model of
    every message cost the engine 7%; one it found nothing in may be in another."""
    reading = read_customer_message(doc, policy.lexicon)
    if not policy.languages or reading.kind_scores or reading.trouble or reading.legal_risk:
        return reading
    return dataclasses.replace(reading, language=language(doc.text))  # read_context leaves out what it can't read


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
    if not policy.reads(reading.signals.language):
        return _verdict(reply, ticket, policy, profile, context, reading, [_not_read(reading, policy)], 100, "none")
    facts = _facts(reading.signals, context, ticket, profile, reply, earlier, reading.doc)
    exempt = policy.exempt_rules(reply.body)
    fired = [r for r in profile.rules if (exempt != "all" and r.id not in exempt) and r.condition(facts)]
    problem = _problem(context.incident, earlier) if any(_names_problem(r) for r in fired) else ""
    findings = [_finding(r, reading, context, ticket, profile, earlier, problem) for r in fired]
    if not policy.reads(context.language):
        findings.append(_customer_not_read(reading, policy, context.language))
    outcome = score_and_action(
        [f.severity for f in findings], policy.weights,
        profile.actions.escalate.min_severity, profile.actions.escalate.score_below,
        profile.actions.annotate.min_severity, profile.actions.annotate.score_below,
    )
    return _verdict(reply, ticket, policy, profile, context, reading, findings, outcome.score, outcome.action)


def _verdict(reply: Message, ticket: Ticket, policy: Policy, profile: Profile, context: Context,
             reading: ReplyReading, findings: list[Finding], score: int, action: Action) -> Verdict:
    return Verdict(
        ticket_id=ticket.id, message_id=reply.id, agent_id=reply.author.id if reply.author else None,
        policy=PolicyRef(name=policy.name, version=policy.version, override=profile.override),
        context=context, signals=reading.signals, findings=findings, score=score, action=action,
    )


def _not_read(reading: ReplyReading, policy: Policy) -> Finding:
    """The one finding of a reply in a language the policy does not read: it says so, so a report or a
    lead sees the reply went unjudged instead of mistaking it for a clean one."""
    return _language_finding(reading, UNREAD_LANGUAGE, (
        f"Not reviewed: the reply reads as language '{reading.signals.language}', and this policy reads "
        f"{_read_languages(policy)} only (policy `languages`)."))


def _customer_not_read(reading: ReplyReading, policy: Policy, lang: str | None) -> Finding:
    """Says the reply was judged without what the customer last wrote, so a lead does not take the quiet
    context (no incident, no frustration, no legal risk from that message) for a calm customer."""
    return _language_finding(reading, UNREAD_CUSTOMER_LANGUAGE, (
        f"The customer's latest message reads as language '{lang}', and this policy reads "
        f"{_read_languages(policy)} only (policy `languages`): the reply was judged without it, so rules "
        "about the customer's situation may not have fired."))


def _read_languages(policy: Policy) -> str:
    return ", ".join(repr(code) for code in policy.languages)


def _language_finding(reading: ReplyReading, rule: str, message: str) -> Finding:
    """An info finding about a language the policy does not read, on the reply's first sentence."""
    doc = reading.doc
    start, end = doc.span(*_first_sentence(doc))
    return Finding(rule=rule, severity="info", message=message, span=(start, end), excerpt=doc.body[start:end])


def reviewable(message: Message, policy: Policy) -> bool:
    """Agent replies the customer sees (and private notes only if the policy asks for them)."""
    return message.role == "agent" and (message.public or policy.review_private_notes)


def review_history(history: TicketHistory, policy: Policy) -> Iterator[Verdict]:
    """A verdict for every reviewable agent reply, each judged on the messages before it."""
    cache: CustomerCache = {}
    for i, message in enumerate(history.messages):
        if reviewable(message, policy):
            yield review_reply(message, history.messages[:i], history.ticket, policy, cache)


def _facts(signals: Signals, context: Context, ticket: Ticket, profile: Profile, reply: Message,
           earlier: Sequence[Message], doc: Prepared) -> dict[str, Any]:
    facts: dict[str, Any] = signals.model_dump()
    facts.update(incident=context.incident, frustration=context.frustration, legal_risk=context.legal_risk,
                 customer_language=context.language)
    sla = profile.sla.response_minutes
    facts["sla_breached"] = bool(sla is not None and signals.response_minutes is not None
                                 and signals.response_minutes > sla)
    facts["first_reply"] = not any(m.role == "agent" and m.public for m in earlier)
    facts["reply_words"] = len(doc.text.split())
    facts.update(channel=ticket.channel, team=ticket.team, tags=list(ticket.tags))
    return facts


def _finding(rule: Rule, reading: ReplyReading, context: Context, ticket: Ticket, profile: Profile,
             earlier: Sequence[Message], problem: str) -> Finding:
    doc = reading.doc
    spans = reading.evidence.get(rule.highlight) or []
    start, end = spans[0] if spans else _first_sentence(doc)
    body_start, body_end = doc.span(start, end)
    visible = " ".join(doc.text[start:end].split())
    customer = next((m for m in reversed(earlier) if m.role == "customer"), None)
    values = {
        "excerpt": visible, "incident": context.incident, "problem": problem,
        "next_step": NEXT_STEPS[context.incident], "responsible_team": RESPONSIBLE_TEAMS[context.incident],
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


def _names_problem(rule: Rule) -> bool:
    return "{problem}" in rule.message or "{problem}" in (rule.suggestion or "")


def _problem(incident: str, earlier: Sequence[Message]) -> str:
    """`{problem}`: the failure, or the thing affected, in words a specific apology can use."""
    named, slot = PROBLEMS[incident]
    if "{}" not in named:
        return named
    thing = _thing([prepare(m.body, m.format).text for m in reversed(context_messages(earlier))],
                   _BILLING_NOUN if incident == "billing" else _SUPPORT_NOUN)
    return named.format(thing) if thing else slot


def _thing(texts: Sequence[str], nouns: re.Pattern[str] = _SUPPORT_NOUN) -> str | None:
    """The thing affected as the customer named it, newest message first: "my blender" is "your blender"."""
    for text in texts:
        for match in _MY.finditer(text):
            words = match.group(1).split()
            while words and words[0].lower() in _THING_LEAD:
                words.pop(0)
            kept: list[str] = []
            for word in words[:2]:
                lowered = word.lower()
                if lowered in _THING_STOPS or (len(lowered) > 4 and lowered.endswith("ed")):
                    break
                if kept and ((lowered.endswith("s") and not lowered.endswith("ss"))
                             or (word[:1].isupper() and kept[0].islower())):
                    break  # "my bank shows", "my son Ethan": not a compound noun
                kept.append(word)
            while kept and kept[-1].lower() in _THING_END:
                kept.pop()
            if kept and "'" not in kept[-1] and not any(w.lower() in _NOT_A_THING for w in kept):
                phrase = " ".join(kept)
                return "your " + (phrase.lower() if phrase.isupper() else phrase)
    for text in texts:
        noun = nouns.search(text)
        if noun:
            return "your " + noun.group(1).lower()
    return None


# A salutation on its own ("Hi Jo,", "Dear Mr Shah,", "@dana_k"): not what a finding about the reply points at.
_GREETING = re.compile(
    r"(?:(?:hi|hello|hey|hiya|dear|greetings|good\s+(?:morning|afternoon|evening|day))\b[^.!?\n]{0,40}"
    r"|@\w+|[A-Z][a-z]+)\s*+(?:[,!:]\s*+)?$", re.IGNORECASE)  # `*+`: linear on a long run of spaces


def _first_sentence(doc: Prepared) -> tuple[int, int]:
    """Where a finding about something missing points: the reply's first sentence after the salutation."""
    first = None
    for start, end in doc.sentences():
        chunk = doc.text[start:end]
        lead = len(chunk) - len(chunk.lstrip())
        trail = len(chunk.rstrip())
        if trail <= lead:
            continue
        span = (start + lead, start + trail)
        if not _GREETING.match(chunk.strip()):
            return span
        first = first or span
    return first or (0, 0)


def _minutes(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value >= 120:
        return f"{value / 60:.1f} hours"
    return f"{value:.0f} minutes"
