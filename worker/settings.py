"""Settings from the environment (`APOLOGY_` prefix) and a `.env` file, validated once at start.

Names in DESIGN.md's Configuration table are fixed. Every secret can also come from a file
(`APOLOGY_WEBHOOK_SECRET_FILE=/run/secrets/webhook`), the usual way of mounting secrets in containers.
A bad value stops the process at start with a message that names the variable.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.egress import parse_allowlist
from worker.errors import ConfigError

PREFIX = "APOLOGY_"
ENV_FILE = ".env"  # read from the working directory, as pydantic-settings reads it
_SECRETS = ("webhook_secret", "inbound_secret", "zendesk_signing_secret")
_WHSEC = ("webhook_secret", "inbound_secret")


# Where Celery's Redis transport can find Redis, and where redis-py (the stores) can.
_BROKER_SCHEMES = frozenset({"redis", "rediss", "unix", "redis+socket", "sentinel"})
_STORE_SCHEMES = frozenset({"redis", "rediss", "unix"})


def _check_redis_url(name: str, url: str, schemes: frozenset[str]) -> None:
    """A URL Redis clients can use, said at start with the variable's name, not as a client's traceback later."""
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ValueError(f"{_var(name)} must be a Redis URL ({', '.join(s + '://' for s in sorted(schemes))}), "
                         f"got {parts.scheme + '://' if parts.scheme else 'no scheme'}")
    if parts.scheme in {"redis", "rediss", "sentinel"} and not parts.hostname:
        raise ValueError(f"{_var(name)} names no host (expected e.g. redis://localhost:6379/0)")


class Settings(BaseSettings):
    # An empty variable is an unset one (`APOLOGY_METRICS_PORT=` in a .env file, or the Procfile's deliverer
    # line when APOLOGY_DELIVERER_METRICS_PORT is unset): the default, not a parse error.
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=ENV_FILE, env_file_encoding="utf-8",
                                      extra="ignore", frozen=True, env_ignore_empty=True)

    # The contract's names (DESIGN.md, Configuration).
    broker_url: str = "redis://localhost:6379/0"
    policy: str | None = None
    webhook_url: AnyHttpUrl | None = None
    webhook_secret: SecretStr | None = None
    routes: Path | None = None
    log_format: Literal["console", "json"] | None = None
    inbound_secret: SecretStr | None = None
    zendesk_signing_secret: SecretStr | None = None

    # Secrets read from files (containers mount secrets as files).
    webhook_secret_file: Path | None = None
    inbound_secret_file: Path | None = None
    zendesk_signing_secret_file: Path | None = None

    # Where the stores live: the broker's Redis unless told otherwise.
    store_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # 0 is none: an empty value is ignored (env_ignore_empty), so the Procfile's deliverer says 0 to keep the
    # worker's port in .env for the worker alone.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    @field_validator("metrics_port")
    @classmethod
    def _no_port(cls, port: int | None) -> int | None:
        return port or None

    # Conversation memory and deduplication.
    memory_messages: int = Field(default=50, ge=2, le=500)
    memory_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    dedup_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    event_lock_seconds: int = Field(default=120, ge=5)

    # Per-ticket order: how long a reply waits for the earlier messages of its ticket.
    order_wait_attempts: int = Field(default=15, ge=0, le=100)
    order_wait_first_seconds: float = Field(default=0.1, gt=0)
    order_wait_max_seconds: float = Field(default=5.0, gt=0)
    pending_stale_seconds: int = Field(default=600, ge=10)

    # Deliveries.
    delivery_max_attempts: int = Field(default=10, ge=1, le=50)
    delivery_backoff_seconds: float = Field(default=2.0, gt=0)
    delivery_backoff_max_seconds: float = Field(default=600.0, gt=0)
    http_connect_timeout: float = Field(default=5.0, gt=0)
    http_read_timeout: float = Field(default=10.0, gt=0)
    delivered_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    dead_letter_payload_max: int = Field(default=64 * 1024, ge=256)
    # Where deliveries may go (SSRF): private, loopback and link-local addresses are refused unless
    # allowed; a non-empty allow-list (hosts, *.suffixes, addresses or networks, comma-separated) also
    # limits every target to what it names.
    allow_private_targets: bool = False
    target_allowlist: str | None = None

    # The worker.
    worker_concurrency: int | None = Field(default=None, ge=1)
    worker_prefetch_multiplier: int = Field(default=2, ge=1)
    task_soft_time_limit: int = Field(default=30, ge=1)
    task_time_limit: int = Field(default=60, ge=2)
    task_events: bool = True
    task_sent_events: bool = False  # also a "task-sent" event per publish (see worker.app)
    # Task events wait this long to go to Redis together (worker.consumer): Flower sees them that much later.
    task_events_batch_seconds: float = Field(default=0.05, ge=0.0, le=10.0)
    # Redis hands an unacknowledged task (a killed worker's) to another worker after this long unrenewed;
    # unset, it is derived from the task time limit (see `visibility_timeout`).
    visibility_timeout_seconds: int | None = Field(default=None, ge=1)
    # Stage timestamps per event in Redis (worker.tracing), for bench/pipeline.py's latency breakdown.
    trace_stages: bool = False

    # The journal of published messages and its reconciler (worker.journal, worker.reconcile): what the
    # broker lost between the queue and a worker is published again once it is this many seconds overdue;
    # unset, it is derived from the visibility timeout and the longest countdown (see `reconcile_after`).
    reconcile: bool = True  # every worker offers to sweep; false to run `apology-worker reconcile` instead
    reconcile_after_seconds: int | None = Field(default=None, ge=1)
    reconcile_interval_seconds: float | None = Field(default=None, gt=0)
    reconcile_max_sends: int = Field(default=5, ge=1, le=100)  # then dead-lettered
    # ... and, sooner, once its message has been in no queue and held by no worker for this long (see
    # `reconcile_missing`).
    reconcile_missing_seconds: int | None = Field(default=None, ge=1)
    journal_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        for name in _SECRETS:
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            if getattr(self, name) is not None:
                raise ValueError(f"{_var(name)} and {_var(name + '_file')} are both set: keep one")
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{_var(name + '_file')}: cannot read {path}: {exc.strerror}") from None
            object.__setattr__(self, name, SecretStr(secret))
        for name in _WHSEC:
            value: SecretStr | None = getattr(self, name)
            if value is not None:
                _check_whsec(name, value.get_secret_value())
        _check_redis_url("broker_url", self.broker_url, _BROKER_SCHEMES)
        if self.store_url is not None:
            _check_redis_url("store_url", self.store_url, _STORE_SCHEMES)
        elif urlsplit(self.broker_url).scheme not in _STORE_SCHEMES:
            raise ValueError(f"{_var('broker_url')} is a {urlsplit(self.broker_url).scheme}:// URL, which the "
                             f"stores cannot use: set {_var('store_url')} to the same Redis as redis://...")
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError(f"{_var('webhook_url')} is set but {_var('webhook_secret')} is not: every "
                             "outbound webhook is signed; set the whsec_... secret its receiver verifies")
        if self.target_allowlist:
            try:
                parse_allowlist(self.target_allowlist)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if self.task_time_limit <= self.task_soft_time_limit:
            raise ValueError(f"{_var('task_time_limit')} must be longer than {_var('task_soft_time_limit')}")
        floor = self.visibility_timeout + self.restore_sweep_seconds + self.longest_countdown
        if self.reconcile_after_seconds is not None and self.reconcile_after_seconds <= floor:
            raise ValueError(
                f"{_var('reconcile_after_seconds')} must be longer than {floor:g} s (the visibility timeout, its "
                "sweep and the longest countdown): a message still legitimately held by a worker would be "
                "sent again")
        if self.journal_ttl_seconds <= self.reconcile_after * (self.reconcile_max_sends + 1):
            raise ValueError(f"{_var('journal_ttl_seconds')} must outlast every re-send: more than "
                             f"{self.reconcile_after * (self.reconcile_max_sends + 1)} s")
        return self

    @property
    def redis_url(self) -> str:
        return self.store_url or self.broker_url

    @property
    def own_transport(self) -> bool:
        """Whether workers use `worker.broker`'s transport (`redis://` URLs): it rides out Redis restarts and
        renews what a worker holds as a lease. Other schemes keep kombu's own."""
        return urlsplit(self.broker_url).scheme == "redis"

    @property
    def visibility_timeout(self) -> int:
        """How long a message may sit in `unacked` unrenewed before Redis hands it to another worker.

        Workers renew what they hold every restore sweep period (`worker.broker`), so the timeout need only
        outlast a few renewals that a stalled main loop might miss: twice the hard time limit, at least 60 s,
        four sweep periods; a killed worker's tasks are back that soon.
        kombu's own transport (other URL schemes) renews nothing: there it must outlast every countdown a
        worker holds a message for, or a delayed task is handed out twice ("Using Redis", Caveats).
        """
        if self.visibility_timeout_seconds is not None:
            return self.visibility_timeout_seconds
        if self.own_transport:
            return max(60, 2 * self.task_time_limit)
        longest = max(self.delivery_backoff_max_seconds, self.order_wait_max_seconds, self.task_time_limit)
        return int(longest) * 2 + 300

    @property
    def lease_max_seconds(self) -> float:
        """How long a worker keeps renewing one message: its longest countdown, a wait behind the worker's
        other tasks and its own run (a hard time limit each), and a visibility timeout of slack. Past that
        the worker is taken to be stuck with it (a hung thread: the thread pool enforces no time limit) and
        the visibility timeout hands it to another worker."""
        return self.longest_countdown + 2 * self.task_time_limit + self.visibility_timeout

    @property
    def longest_countdown(self) -> float:
        """The longest a task waits before its retry runs: delivery backoff, an order wait, a busy event or
        delivery (`worker.pipeline.BUSY_RETRY_SECONDS`, 2 s)."""
        return max(self.delivery_backoff_max_seconds, self.order_wait_max_seconds, 2.0)

    @property
    def reconcile_after(self) -> int:
        """How long past due a journal entry must be, after the queues were last seen empty, to be re-sent.

        Longer than a message can legitimately stay out of sight: reserved by a worker that was killed (the
        visibility timeout, then the next restore sweep), waiting for its countdown, running (the hard
        time limit). A shorter value only costs re-sends, which deduplication absorbs.
        """
        if self.reconcile_after_seconds is not None:
            return self.reconcile_after_seconds
        return int(self.visibility_timeout + self.restore_sweep_seconds + self.longest_countdown
                   + self.task_time_limit)

    @property
    def reconcile_missing(self) -> int:
        """How long a journalled message must have been in no queue and held by no worker, at every sweep, to
        be published again. It is legitimately out of sight only between a worker's BRPOP and its `unacked`
        record, where a worker holding all its prefetch allows leaves a BRPOP reply unread until some task
        ends: seconds as a rule. Longer costs a re-send, which deduplication absorbs (the test by looking
        never dead-letters)."""
        if self.reconcile_missing_seconds is not None:
            return self.reconcile_missing_seconds
        return self.task_time_limit

    @property
    def reconcile_interval(self) -> float:
        """How often a worker offers to sweep the journal (one of them does, under a Redis lock): often enough
        to look a few times within both ages."""
        if self.reconcile_interval_seconds is not None:
            return self.reconcile_interval_seconds
        return float(max(1, min(60, self.reconcile_after // 10, self.reconcile_missing // 4)))

    @property
    def restore_sweep_seconds(self) -> int:
        """How often a worker renews what it holds and looks for tasks past the visibility timeout to hand
        out again: four times per timeout, so a holder's lease lapses only after four missed renewals.

        kombu's default sweep is every ~100 s (10 s interval x throttle 10); a short visibility timeout
        wants a sweep of the same order, or a killed worker's tasks would wait for the next one.
        """
        return max(1, min(100, self.visibility_timeout // 4))


def _var(field: str) -> str:
    return PREFIX + field.upper()


def _check_whsec(name: str, secret: str) -> None:
    raw = secret.removeprefix("whsec_")
    try:
        ok = bool(base64.b64decode(raw + "==", validate=False)) and secret.startswith("whsec_")
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{_var(name)} must be a Standard Webhooks secret: 'whsec_' followed by base64")


def read_env_file(path: str | Path = ENV_FILE) -> None:
    """Put the `.env` file's APOLOGY_ variables into the environment, where one already set wins.

    DESIGN.md: "a `.env` file is read too", for every variable: not only Settings' fields, which
    pydantic-settings reads from it, but those read where they are used (the CLI's APOLOGY_POLICY, the
    helpdesks' inbound secrets, a routes file's credentials), which saw only the environment. Called where a
    process starts (the CLI, the Celery app), not by `load_settings`, which only reads."""
    for key, value in dotenv_values(path, encoding="utf-8").items():
        if key.startswith(PREFIX) and value is not None and key not in os.environ:
            os.environ[key] = value


def load_settings(**overrides: object) -> Settings:
    """The settings, or a ConfigError naming each variable that is wrong."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{_var(loc[0])}: {msg}" if loc else msg)
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
