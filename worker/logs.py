"""Structured logs: JSON lines for machines, a console renderer on a terminal, personal data redacted.

Context (task_id, event_id, ticket_id, message_id) is bound through contextvars, so every line a task
writes carries it. Celery's own records go through the same processors. Message bodies and secrets are
never logged at INFO: keys that would carry them are dropped unless the level is DEBUG.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

CONTEXT_KEYS = ("task_id", "event_id", "ticket_id", "message_id")
SENSITIVE_KEYS = frozenset({"body", "bodies", "secret", "authorization", "payload", "raw", "text"})

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Card numbers: 13-19 digits, optionally grouped by spaces or dashes.
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
# Phone numbers: an optional +, then 7 or more digits with the usual separators.
_PHONE = re.compile(r"(?<![\w/])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w/])")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def redact_text(text: str) -> str:
    """E-mail addresses, card numbers and phone numbers replaced by placeholders."""
    text = _EMAIL.sub("[email]", text)
    text = _CARD.sub(_card, text)
    return _PHONE.sub(_phone, text)


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card]" if 13 <= len(digits) <= 19 else match.group()


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = re.sub(r"\D", "", text)
    if len(digits) < 7 or _DATE.fullmatch(text.strip()):
        return text
    # A bare run of digits is more often an order or ticket number than a phone number.
    return "[phone]" if text.startswith("+") or not text.isdigit() else text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A structlog processor: redacts every string value, except the context ids."""
    for key, value in event_dict.items():
        if key not in CONTEXT_KEYS and key not in ("timestamp", "level", "logger"):
            event_dict[key] = _redact(value)
    return event_dict


def drop_sensitive(_: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Message bodies and secrets appear only in DEBUG lines."""
    if method != "debug":
        for key in SENSITIVE_KEYS.intersection(event_dict):
            event_dict[key] = "[dropped]"
    return event_dict


def _processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_sensitive,
        redact,
        structlog.processors.format_exc_info,
    ]


def configure(log_format: str | None = None, level: str = "INFO") -> None:
    """Route structlog and the standard library (Celery's records) through one set of processors."""
    fmt = log_format or ("console" if sys.stderr.isatty() else "json")
    renderer: Processor = (structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()) if fmt == "console"
                           else structlog.processors.JSONRenderer())
    shared = _processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared[:-1],  # format_exc_info runs in the formatter for foreign records
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO with its full URL; our delivery lines say what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


@contextmanager
def task_context(**context: Any) -> Iterator[None]:
    """A fresh logging context for one task: nothing of the previous task's ids leaks into it."""
    structlog.contextvars.clear_contextvars()
    bind(**context)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()


def bind(**context: Any) -> None:
    structlog.contextvars.bind_contextvars(**{k: v for k, v in context.items() if v is not None})


def context() -> MutableMapping[str, Any]:
    return structlog.contextvars.get_contextvars()
