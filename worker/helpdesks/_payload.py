"""Path-aware reads from a decoded webhook body, so every adapter fails the same way: a PayloadError that
names the key (`detail.comment.author.id: missing`) and nothing else.

Helpdesk templates render every placeholder as a string ("true", "5158", "vip returns"), while their
native event payloads use JSON types; the readers here accept both spellings of the same value.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import ValidationError

from worker.errors import PayloadError
from worker.models import TicketEvent

MAX_ID_CHARS = 256
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
_TAG_SPLIT = re.compile(r"[\s,]+")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever case the server or test used for its keys."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def decode(source: str, payload: bytes | str | Mapping[str, Any]) -> Fields:
    """The body as a JSON object, or a PayloadError on `(body)`."""
    if isinstance(payload, Mapping):
        return Fields(source, dict(payload))
    if not isinstance(payload, bytes | str):  # an already-decoded JSON value that is not an object
        raise PayloadError(source, [("(body)", f"expected a JSON object, got {_kind(payload)}")])
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        data = json.loads(text)
    except UnicodeDecodeError:
        raise PayloadError(source, [("(body)", "not UTF-8 text")]) from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, over-long integers, absurd nesting
        raise PayloadError(source, [("(body)", f"not valid JSON ({_short(exc)})")]) from None
    if not isinstance(data, dict):
        raise PayloadError(source, [("(body)", f"expected a JSON object, got {_kind(data)}")])
    return Fields(source, data)


class Fields:
    """A JSON object with the key path that led to it; readers raise PayloadError naming the full path."""

    __slots__ = ("data", "path", "source")

    def __init__(self, source: str, data: dict[str, Any], path: str = "") -> None:
        self.source = source
        self.data = data
        self.path = path

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, reason: str) -> PayloadError:
        return PayloadError(self.source, [(self.where(key), reason)])

    def has(self, key: str) -> bool:
        return self.data.get(key) not in (None, "")

    def obj(self, key: str) -> Fields:
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise self.fail(key, "missing" if value is None else f"expected an object, got {_kind(value)}")
        return Fields(self.source, value, self.where(key))

    def opt_obj(self, key: str) -> Fields | None:
        return self.obj(key) if self.data.get(key) is not None else None

    def objs(self, key: str) -> list[Fields]:
        """A list of objects; absent means empty."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {_kind(value)}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.fail(f"{key}[{i}]", f"expected an object, got {_kind(item)}")
            out.append(Fields(self.source, item, f"{self.where(key)}[{i}]"))
        return out

    def id(self, key: str) -> str:
        """A required identifier: a non-empty string or an integer, as text."""
        value = self.opt_id(key)
        if value is None:
            raise self.fail(key, "missing")
        return value

    def opt_id(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.fail(key, f"expected an id (string or integer), got {_kind(value)}")
        if isinstance(value, int) and abs(value) >= 10**MAX_ID_CHARS:
            raise self.fail(key, "id is too long")
        text = str(value).strip()
        if not text:
            return None
        if len(text) > MAX_ID_CHARS:
            raise self.fail(key, f"id is longer than {MAX_ID_CHARS} characters")
        return text

    def text(self, key: str) -> str:
        """A required string (it may be empty)."""
        value = self.data.get(key)
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_kind(value)}")
        return value

    def opt_text(self, key: str) -> str | None:
        """An optional string; blank counts as absent (an unrendered placeholder)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_kind(value)}")
        return value.strip() or None

    def flag(self, key: str, default: bool | None = None) -> bool | None:
        """A boolean, or its rendered spelling ("true", "false"); `default` when absent or blank."""
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise self.fail(key, f"expected true or false, got {_kind(value)}")

    def time(self, key: str) -> datetime | None:
        """An optional timestamp: ISO 8601 (any precision) or RFC 2822; naive times are taken as UTC."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"expected a timestamp string, got {_kind(value)}")
        parsed = parse_time(value)
        if parsed is None:
            raise self.fail(key, f"not a timestamp: {value[:40]!r}")
        return parsed

    def tags(self, key: str) -> list[str]:
        """Tags as a list of strings, a list of {"tag": ...} objects, or one space/comma separated string."""
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [t for t in _TAG_SPLIT.split(value) if t]
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of tags, got {_kind(value)}")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                item = item.get("tag", item.get("name"))
            if not isinstance(item, str):
                raise self.fail(f"{key}[{i}]", f"expected a tag string, got {_kind(item)}")
            if item.strip():
                out.append(item.strip())
        return out


def parse_time(value: str) -> datetime | None:
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def content_id(*parts: str) -> str:
    """A stable id for a message the helpdesk sends without one: the same reply gives the same id."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def build_event(source: str, *, event_id: str, occurred_at: datetime | None, ticket: dict[str, Any],
                message: dict[str, Any], history: list[dict[str, Any]] | None = None) -> TicketEvent:
    """The canonical event from an adapter's parts."""
    return validate_event(source, {"event_id": event_id, "occurred_at": occurred_at, "ticket": ticket,
                                   "message": message, "history": history or []})


def validate_event(source: str, data: dict[str, Any]) -> TicketEvent:
    """A value the contract refuses (an over-long body, a bad role...) becomes a field-level PayloadError."""
    try:
        return TicketEvent.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise PayloadError(source, [(".".join(str(p) for p in err["loc"]) or "(event)", err["msg"])
                                    for err in exc.errors()[:5]]) from None


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _short(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:80]
