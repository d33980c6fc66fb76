"""`apology-worker serve`: the HTTP gateway, an entrypoint that only translates and delegates.

`POST /v1/events/{source}`: read the raw body (size-limited before any parsing), authenticate it the
source's way, translate it with the source's adapter, hand the canonical event to `submit` and answer 202
with the event id only once `submit` returned, i.e. once the broker accepted it (`HEAD` on the same URL
answers 200 for a known source: how Intercom checks a webhook URL). `POST /v1/review`: the
pre-send check, judged in process with the engine (no queue). Dependencies come in through
`create_app`, so tests pass a fake `submit` and need no Redis; `from_env` wires the real ones.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker import logs
from worker.engine import Policy, review_reply
from worker.errors import BrokerUnavailable, ConfigError, PayloadError, SignatureError
from worker.helpdesks import ADAPTERS, Adapter
from worker.helpdesks.generic import SECRET_ENV as INBOUND_SECRET_ENV
from worker.helpdesks.generic import verify_generic
from worker.models import TicketEvent, TicketHistory, Verdict

log = logs.get_logger("worker.gateway")

MAX_BODY_BYTES = 1_000_000
RETRY_AFTER_SECONDS = 5
Submit = Callable[[TicketEvent], None]  # durably enqueue, or raise BrokerUnavailable
Secrets = Callable[[str], str]  # env var name -> its secret ("" when unset)


@dataclass
class GatewayDeps:
    """Everything the gateway touches; `from_env` passes the real ones, tests pass fakes."""

    submit: Submit
    ready: Callable[[], bool]
    policy: Policy
    secrets: Secrets
    max_body: int = MAX_BODY_BYTES
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class _TooLarge(Exception):
    pass


def create_app(deps: GatewayDeps) -> Starlette:
    async def events(request: Request) -> Response:
        adapter = ADAPTERS.get(request.path_params["source"])
        if adapter is None:
            return _problem(404, f"unknown source; known: {', '.join(sorted(ADAPTERS))}")
        try:
            body = await _read_body(request, deps.max_body)
            event = _translate(adapter, body, request.headers, deps)
        except _TooLarge:
            log.info("event refused", source=adapter.source, status=413, limit=deps.max_body)
            return _too_large(deps.max_body)
        except SignatureError as exc:
            log.info("event refused", source=adapter.source, status=401, reason=str(exc))
            return _problem(401, str(exc))
        except ConfigError as exc:
            log.error("source not configured", source=adapter.source, reason=str(exc))
            return _unavailable(str(exc))
        except PayloadError as exc:
            _refused_payload("event refused", exc, source=adapter.source)
            return _problem(422, f"{adapter.source} payload rejected", issues=exc.issues)
        if event is None:
            return JSONResponse({"status": "ignored"}, status_code=200)
        try:
            await run_in_threadpool(deps.submit, event)
        except BrokerUnavailable as exc:
            log.warning("broker unavailable; asked the sender to retry", reason=str(exc))
            return _unavailable("the queue is unreachable; retry later")
        log.info("event accepted", source=event.source, event_id=event.event_id)
        return JSONResponse({"status": "accepted", "event_id": event.event_id}, status_code=202)

    async def probe(request: Request) -> Response:
        """HEAD on a source's URL: Intercom checks the endpoint this way before it saves a webhook. 503, as a
        POST would get, while the source's secret is not set: a webhook saved then would fail every event."""
        adapter = ADAPTERS.get(request.path_params["source"])
        if adapter is None:
            return Response(status_code=404)
        return Response(status_code=200 if deps.secrets(adapter.secret_env) else 503)

    async def review(request: Request) -> Response:
        try:
            body = await _read_body(request, deps.max_body)
            secret = deps.secrets(INBOUND_SECRET_ENV)
            if secret:  # required when set; an unset secret leaves the check open (local sidebar apps)
                verify_generic(body, request.headers, secret)
            verdict = judge_last_reply(body, deps.policy)
        except _TooLarge:
            log.info("review refused", status=413, limit=deps.max_body)
            return _too_large(deps.max_body)
        except SignatureError as exc:
            log.info("review refused", status=401, reason=str(exc))
            return _problem(401, str(exc))
        except ConfigError as exc:
            return _unavailable(str(exc))
        except PayloadError as exc:
            _refused_payload("review refused", exc, source="review")
            return _problem(422, "ticket history rejected", issues=exc.issues)
        return Response(verdict.model_dump_json(), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if await run_in_threadpool(deps.ready):
            return JSONResponse({"status": "ready"})
        return _unavailable("the broker is unreachable or full")

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_schema())

    return Starlette(routes=[
        Route("/v1/events/{source}", events, methods=["POST"]),
        Route("/v1/events/{source}", probe, methods=["HEAD"]),
        Route("/v1/review", review, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ])


def _refused_payload(event: str, exc: PayloadError, **where: str) -> None:
    """A 422 in the log: the fields at fault, never their values (a customer's words may be among them)."""
    log.info(event, **where, status=422, fields=[issue["field"] for issue in exc.issues][:20])


def _translate(adapter: Adapter, body: bytes, headers: Mapping[str, str], deps: GatewayDeps) -> TicketEvent | None:
    adapter.authenticate(body, headers, deps.secrets(adapter.secret_env), deps.clock())
    event = adapter.to_event(body, headers)
    if event is not None and (unfilled := _unfilled_placeholders(event)):
        raise PayloadError(adapter.source, unfilled)
    return event


# A helpdesk placeholder its trigger or automation did not fill: "{{ticket.id}}", "{{ticket.latest_comment}}".
_PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][\w.]*\s*\}\}")


def _unfilled_placeholders(event: TicketEvent) -> list[tuple[str, str]]:
    """A webhook whose template was sent as typed (an operator's review, session 18: "{{ticket.id}}" was queued
    as a ticket id and "{{ticket.latest_public_comment}}" judged as a reply). Ids name the placeholder; a body
    is refused only when it is nothing but one (a reply may quote a template)."""
    issues = [(name, f"{value!r} is an unfilled helpdesk placeholder: fix the webhook's template")
              for name, value in (("event_id", event.event_id), ("ticket.id", event.ticket.id),
                                  ("message.id", event.message.id)) if _PLACEHOLDER.search(value)]
    if _PLACEHOLDER.fullmatch(event.message.body.strip()):
        issues.append(("message.body", "an unfilled helpdesk placeholder: fix the webhook's template"))
    return issues


def judge_last_reply(body: bytes, policy: Policy) -> Verdict:
    """The verdict of the last agent message of one ticket-history object (DESIGN.md), public or not: the
    caller asks for that one, often a draft not sent yet (a private note the policy would not review in the
    live path), and an earlier reply's verdict in its place would pass a draft nobody judged."""
    try:
        history = TicketHistory.model_validate_json(body)
    except ValidationError as exc:
        raise PayloadError("review", _issues(exc)) from None
    for i in range(len(history.messages) - 1, -1, -1):
        message = history.messages[i]
        if message.role == "agent":
            return review_reply(message, history.messages[:i], history.ticket, policy)
    raise PayloadError("review", [("messages", "no agent message to review: the last agent message is what is "
                                               "judged, the ones before it are its context")])


def _issues(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in err["loc"]) or "(body)", err["msg"]) for err in exc.errors()[:20]]


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused as soon as it is known to exceed `limit` (declared length, then as it streams)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise _TooLarge
    return bytes(chunks)


def _problem(status: int, detail: str, *, issues: list[dict[str, str]] | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    content: dict[str, Any] = {"status": status, "detail": detail}
    if issues is not None:
        content["issues"] = issues
    return JSONResponse(content, status_code=status, headers=headers)


def _too_large(limit: int) -> JSONResponse:
    return _problem(413, f"body larger than {limit} bytes")


def _unavailable(detail: str) -> JSONResponse:
    return _problem(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


# -- the published contract ------------------------------------------------------------------------------
def openapi_schema() -> dict[str, Any]:
    """Hand-written OpenAPI 3.1 of the gateway, with the contract's models as components."""
    from pydantic.json_schema import models_json_schema

    _, defs = models_json_schema([(TicketEvent, "validation"), (TicketHistory, "validation"),
                                  (Verdict, "serialization")], ref_template="#/components/schemas/{model}")
    problem = {"$ref": "#/components/schemas/Problem"}

    def answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema or problem}}}

    standard = [{"name": n, "in": "header", "required": False, "schema": {"type": "string"}}
                for n in ("webhook-id", "webhook-timestamp", "webhook-signature")]
    common = {"401": answer("Missing, wrong or stale signature"), "413": answer("Body over the size limit"),
              "422": answer("Malformed body; `issues` names each field at fault"),
              "503": answer("Cannot take it now (queue unreachable, source not configured); retry after "
                            "Retry-After seconds")}
    schemas = dict(defs.get("$defs", {}))
    schemas["Problem"] = {"type": "object", "required": ["status", "detail"], "properties": {
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "issues": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "reason": {"type": "string"}}}}}}
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "apology-worker gateway", "version": "1",
                 "description": "Helpdesk webhooks in (queued), and the synchronous pre-send review."},
        "paths": {
            "/v1/events/{source}": {"post": {
                "summary": "Receive a helpdesk webhook and queue it for review",
                "parameters": [{"name": "source", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": sorted(ADAPTERS)}}, *standard],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "202": answer("Durably queued", {"type": "object", "properties": {
                        "status": {"type": "string"}, "event_id": {"type": "string"}}}),
                    "200": answer("Authenticated but nothing to review (e.g. a status change)", status),
                    "404": answer("Unknown source"), **common},
            }, "head": {
                "summary": "Whether the source exists (Intercom checks a webhook URL this way before saving it)",
                "parameters": [{"name": "source", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "A known source, ready to receive"},
                              "404": {"description": "Unknown source"},
                              "503": {"description": "The source's secret is not set"}},
            }},
            "/v1/review": {"post": {
                "summary": "The verdict of the last agent message of one ticket history, synchronously",
                "description": f"Signed per Standard Webhooks with {INBOUND_SECRET_ENV}, required when set.",
                "parameters": standard,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/TicketHistory"}}}},
                "responses": {"200": answer("The verdict", {"$ref": "#/components/schemas/Verdict"}),
                              **{k: v for k, v in common.items()}},
            }},
            "/healthz": {"get": {"summary": "The process is up", "responses": {"200": answer("Up", status)}}},
            "/readyz": {"get": {"summary": "The broker is reachable and has room for events", "responses": {
                "200": answer("Ready", status), "503": common["503"]}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {}}}}}}},
        },
        "components": {"schemas": schemas},
    }


# -- wiring ------------------------------------------------------------------------------------------------
def env_secrets(cfg: Any) -> Secrets:
    """Secrets by env var name: from the settings when they define it (with its _FILE form), else the env."""

    def lookup(env: str) -> str:
        name = env.removeprefix("APOLOGY_").lower()
        value = getattr(cfg, name, None)
        if value is not None:
            return str(value.get_secret_value())
        if os.environ.get(env):
            return os.environ[env]
        path = os.environ.get(env + "_FILE")
        return Path(path).read_text(encoding="utf-8").strip() if path else ""

    return lookup


def from_env() -> Starlette:
    """The real app (uvicorn factory): settings, Redis stores, the Celery producer, the policy."""
    import kombu.exceptions
    import redis

    from worker import bootstrap
    from worker.pipeline import submit_events

    cfg = bootstrap.settings()
    logs.configure(cfg.log_format, cfg.log_level)
    client = redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=2, socket_timeout=5,
                                  health_check_interval=30)
    stores = bootstrap.stores(cfg, client)
    broker = redis.Redis.from_url(cfg.broker_url, socket_connect_timeout=1, socket_timeout=2)

    def submit(event: TicketEvent) -> None:
        try:
            submit_events([event], stores, bootstrap.send_event)
        except (redis.RedisError, kombu.exceptions.OperationalError, OSError) as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def ready() -> bool:
        """Reachable and taking writes: a Redis at its maxmemory answers a ping but refuses every event."""
        try:
            return bootstrap.has_room(broker)
        except (redis.RedisError, OSError):
            return False

    from worker.engine import load_policy

    policy, secrets, max_body = load_policy(cfg.policy), env_secrets(cfg), max_body_bytes()
    announce(policy, secrets, max_body)
    return create_app(GatewayDeps(submit, ready, policy, secrets, max_body))


def max_body_bytes() -> int:
    """APOLOGY_GATEWAY_MAX_BODY_BYTES, or a ConfigError naming it (`serve` checks it before it binds)."""
    value = os.environ.get("APOLOGY_GATEWAY_MAX_BODY_BYTES", "").strip()
    if not value:
        return MAX_BODY_BYTES
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"APOLOGY_GATEWAY_MAX_BODY_BYTES={value!r}: not a positive whole number of bytes")
    return int(value)


def announce(policy: Policy, secrets: Secrets, max_body: int = MAX_BODY_BYTES) -> None:
    """What this gateway will take, said once at start: the policy, the sources whose secret is set (the rest
    answer 503), and a warning when the pre-send review takes unsigned requests."""
    sources = []
    for name, adapter in sorted(ADAPTERS.items()):
        try:
            if secrets(adapter.secret_env):
                sources.append(name)
        except OSError as exc:  # a _FILE not mounted yet: that source answers 503 until it is, as before
            log.warning("source secret unreadable; the source answers 503", source=name,
                        variable=adapter.secret_env + "_FILE", error=type(exc).__name__)
    log.info("gateway ready", policy=policy.name, policy_version=policy.version, sources=sources,
             max_body_bytes=max_body)
    if "generic" not in sources:  # the generic source and /v1/review share the inbound secret
        log.warning(f"/v1/review takes unsigned requests: set {INBOUND_SECRET_ENV} unless only this host can "
                    "reach the gateway")


def dumps_openapi() -> str:
    return json.dumps(openapi_schema(), indent=2, sort_keys=True)
