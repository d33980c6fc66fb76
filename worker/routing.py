"""Which verdicts go to which targets: a routes file (APOLOGY_ROUTES) plus the implicit generic route.

APOLOGY_WEBHOOK_URL with its secret is the simplest route: every verdict whose action is `annotate` or
`escalate` goes to one signed webhook, the target named `webhook`. A routes file adds named targets and
rules by action, worst finding severity, team, channel and tag; see `config/routes.example.yaml`.
A target `type: T` is built by `worker.targets.T.from_config(name, options)`, so new target modules
plug in without touching this file.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.errors import ConfigError
from worker.models import SEVERITY_RANK, Action, Severity, Ticket, Verdict
from worker.ratelimit import Rate
from worker.targets.base import Target
from worker.targets.webhook import WebhookTarget

IMPLICIT_TARGET = "webhook"
DEFAULT_ACTIONS: tuple[Action, ...] = ("annotate", "escalate")
_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteSpec(_Strict):
    name: str | None = None
    targets: list[str] = Field(min_length=1)
    actions: list[Action] = Field(default_factory=lambda: list(DEFAULT_ACTIONS))
    min_severity: Severity | None = None
    teams: list[str] | None = None
    channels: list[str] | None = None
    tags: list[str] | None = None


class RoutesFile(_Strict):
    targets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    routes: list[RouteSpec] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    targets: tuple[str, ...]
    actions: frozenset[str]
    min_severity: str | None = None
    teams: frozenset[str] | None = None
    channels: frozenset[str] | None = None
    tags: frozenset[str] | None = None

    def matches(self, verdict: Verdict, ticket: Ticket) -> bool:
        if verdict.action not in self.actions:
            return False
        if self.min_severity is not None:
            worst = max((SEVERITY_RANK[f.severity] for f in verdict.findings), default=0)
            if worst < SEVERITY_RANK[self.min_severity]:
                return False
        if self.teams is not None and ticket.team not in self.teams:
            return False
        if self.channels is not None and ticket.channel not in self.channels:
            return False
        return self.tags is None or bool(self.tags.intersection(ticket.tags))


_RATE = re.compile(r"^(\d+(?:\.\d+)?)\s*/\s*(s|sec|min|h|hour)$")


class Router:
    """Named targets and the routes over them; the same object serves handle_event and deliver."""

    def __init__(self, targets: Mapping[str, Target], routes: list[Route],
                 rates: Mapping[str, Rate] | None = None) -> None:
        self.targets = dict(targets)
        self.routes = list(routes)
        self.rates = dict(rates or {})  # target name -> its rate limit, shared by every worker
        for route in self.routes:
            for name in route.targets:
                if name not in self.targets:
                    raise ConfigError(f"route {route.name!r} names unknown target {name!r}; known: "
                                      f"{', '.join(sorted(self.targets)) or 'none'}")

    def destinations(self, verdict: Verdict, ticket: Ticket) -> list[str]:
        """Target names for this verdict, each once, in the order the routes name them."""
        names: dict[str, None] = {}
        for route in self.routes:
            if route.matches(verdict, ticket):
                names.update(dict.fromkeys(route.targets))
        return list(names)

    def target(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            raise ConfigError(f"no target named {name!r} is configured (was it removed from the routes "
                              "file while deliveries for it were queued?)") from None


def build_router(webhook_url: str | None = None, webhook_secret: str | None = None,
                 routes_path: Path | None = None) -> Router:
    targets: dict[str, Target] = {}
    routes: list[Route] = []
    rates: dict[str, Rate] = {}
    if webhook_url is not None:
        if not webhook_secret:
            raise ConfigError("APOLOGY_WEBHOOK_URL needs APOLOGY_WEBHOOK_SECRET")
        targets[IMPLICIT_TARGET] = WebhookTarget(IMPLICIT_TARGET, webhook_url, webhook_secret)
        routes.append(Route("APOLOGY_WEBHOOK_URL", (IMPLICIT_TARGET,), frozenset(DEFAULT_ACTIONS)))
    if routes_path is not None:
        spec = _read(routes_path)
        for name, options in spec.targets.items():
            if name in targets:
                raise ConfigError(f"{routes_path}: targets.{name}: the name {name!r} is taken by "
                                  "APOLOGY_WEBHOOK_URL; choose another")
            rate = options.get("rate")
            if rate is not None:
                rates[name] = _rate(routes_path, name, rate)
            targets[name] = _build_target(routes_path, name, {k: v for k, v in options.items() if k != "rate"})
        for i, r in enumerate(spec.routes):
            routes.append(Route(
                r.name or f"routes[{i}]", tuple(r.targets), frozenset(r.actions), r.min_severity,
                _set(r.teams), _set(r.channels), _set(r.tags)))
    return Router(targets, routes, rates)


def _rate(path: Path, name: str, value: Any) -> Rate:
    """`rate: 60/min` (also /s, /h): requests per period this target accepts, bursting to one period's worth."""
    match = _RATE.match(str(value).strip())
    if match is None:
        raise ConfigError(f"{path}: targets.{name}.rate: write it as N/s, N/min or N/h, e.g. '60/min'")
    count = float(match.group(1))
    seconds = {"s": 1, "sec": 1, "min": 60, "h": 3600, "hour": 3600}[match.group(2)]
    if count <= 0:
        raise ConfigError(f"{path}: targets.{name}.rate: must be more than zero")
    return Rate(per_second=count / seconds, burst=max(1, int(count)))


def _set(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def _read(path: Path) -> RoutesFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the routes file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return RoutesFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where}: {err['msg']}") from None


def _build_target(path: Path, name: str, options: Mapping[str, Any]) -> Target:
    kind = options.get("type")
    if not isinstance(kind, str) or not _TYPE.match(kind):
        raise ConfigError(f"{path}: targets.{name}.type: name a target type such as 'webhook'")
    try:
        module = importlib.import_module(f"worker.targets.{kind}")
    except ModuleNotFoundError:
        raise ConfigError(f"{path}: targets.{name}.type: unknown target type {kind!r}") from None
    factory = getattr(module, "from_config", None)
    if factory is None:
        raise ConfigError(f"{path}: targets.{name}.type: {kind!r} cannot be configured from a routes file")
    try:
        target: Target = factory(name, options)
    except ConfigError as exc:
        raise ConfigError(f"{path}: targets.{name}: {exc}") from None
    return target
