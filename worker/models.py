"""The product contract: canonical ticket events in, verdicts out (see DESIGN.md).

Every helpdesk payload is translated into these shapes, so the engine, the workers and the CLI speak one
language. Field names are fixed by the contract; new fields may be added, none renamed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

Role = Literal["agent", "customer", "system"]
BodyFormat = Literal["text", "html"]
Incident = Literal[
    "defect", "delay", "misinformation", "staff_conduct", "billing", "beyond_control", "other", "none"
]
ApologyKind = Literal["none", "generic", "specific"]
Stance = Literal["empathy", "responsibility"]
Severity = Literal["info", "warning", "critical"]
Action = Literal["none", "annotate", "escalate"]


def _whole_number_as_text(value: Any) -> Any:
    """Helpdesks number their tickets, messages and users, and their exports write the ids as JSON numbers
    (Zendesk's `"id": 5158`): read a whole number as its digits. Other types are left to fail as before."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[str, BeforeValidator(_whole_number_as_text), StringConstraints(min_length=1, max_length=256)]

SEVERITY_RANK: dict[str, int] = {"info": 1, "warning": 2, "critical": 3}
ACTION_RANK: dict[str, int] = {"none": 0, "annotate": 1, "escalate": 2}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Author(_Model):
    id: Id
    name: str | None = None


class Message(_Model):
    """One message of a ticket's conversation, as the helpdesk sent it."""

    id: Id
    role: Role
    author: Author | None = None
    body: str = Field(max_length=1_000_000)
    format: BodyFormat = "text"
    public: bool = True
    created_at: datetime | None = None


class Ticket(_Model):
    id: Id
    subject: str | None = None
    channel: str | None = None
    tags: list[str] = Field(default_factory=list)
    team: str | None = None


class TicketEvent(_Model):
    """The canonical ticket event every helpdesk adapter produces."""

    event_id: Id
    source: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
    type: str = "message.created"
    occurred_at: datetime | None = None
    ticket: Ticket
    message: Message
    history: list[Message] = Field(default_factory=list, max_length=500)


class TicketHistory(_Model):
    """One line of a ticket history file: a ticket and its messages in time order."""

    ticket: Ticket
    messages: list[Message] = Field(min_length=1)


class PolicyRef(_Model):
    name: str
    version: str
    override: str | None = None


class Context(_Model):
    """What the customer's messages so far are about: the situation the reply answers."""

    incident: Incident
    frustration: float = Field(ge=0.0, le=1.0)
    legal_risk: bool
    customer_message_id: str | None = None
    # The newest customer message's language, when the policy checks languages and had to ask (the lexicon
    # read nothing in it) and the text was long enough to tell; a language the policy does not read adds
    # nothing to the three readings above.
    language: str | None = None


class Signals(_Model):
    apology: ApologyKind
    apology_stance: Stance | None
    apology_count: int = Field(ge=0)
    liability_admission: bool
    blame: bool
    empathy: bool
    solution: bool
    prevention: bool
    response_minutes: float | None
    # The ISO 639 code the reply reads as, when the text is long enough to tell; a reply in a language the
    # policy does not read (policy `languages`) is not judged: its signals stay neutral, with one finding.
    language: str | None = None


class Finding(_Model):
    rule: str
    severity: Severity
    message: str
    span: tuple[int, int]
    excerpt: str
    suggestion: str | None = None


class Verdict(_Model):
    ticket_id: str
    message_id: str
    agent_id: str | None
    policy: PolicyRef
    context: Context
    signals: Signals
    findings: list[Finding]
    score: int = Field(ge=0, le=100)
    action: Action

    def to_json(self) -> str:
        """One line of JSON Lines, whatever the reply held (see `one_line`)."""
        return one_line(self.model_dump_json().encode()).decode()


# Characters JSON may leave raw that line readers (Python's str.splitlines, JavaScript's parsers) take for
# line breaks: a reply holding one split its verdict's JSONL line in two for them. Escaped, they are the same
# JSON string.
_LINE_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def one_line(data: bytes) -> bytes:
    """UTF-8 JSON with U+0085, U+2028 and U+2029 escaped, so it is one line to every reader."""
    for raw, escaped in _LINE_BREAKS:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


SCHEMAS: dict[str, type[BaseModel]] = {
    "event": TicketEvent,
    "history": TicketHistory,
    "verdict": Verdict,
}


def json_schema(name: str) -> dict[str, Any]:
    """The exported JSON Schema of one contract shape, for helpdesk integrators."""
    if name == "policy":
        from worker.engine.policy import PolicyFile

        return PolicyFile.model_json_schema()
    return SCHEMAS[name].model_json_schema()


def dumps_schema(name: str) -> str:
    return json.dumps(json_schema(name), indent=2, sort_keys=True)
