"""The Celery app: `celery -A worker.app worker`. Configuration only; the tasks live in worker.tasks.

Every setting that is not obvious says why, after the Celery documentation (docs.celeryq.dev, "Tasks",
"Optimizing", "Workers Guide", "Using Redis").
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import billiard.pool  # type: ignore[import-untyped]
from celery import Celery, bootsteps, signals
from kombu.entity import Exchange, Queue

from worker import logs
from worker.broker import BACKFILL_QUEUE, DELIVERY_QUEUE, QUEUE, QUEUES, TRANSPORT
from worker.consumer import FlushEventsOnShutdown
from worker.errors import ConfigError
from worker.settings import Settings, load_settings, read_env_file


def _metrics_dir(cfg: Settings) -> None:
    """prometheus-client picks multiprocess mode at import, so the directory is fixed before that.

    Each process that loads the app with metrics on gets a directory of its own under
    PROMETHEUS_MULTIPROC_DIR, which its pool children inherit: two workers on one host (the Procfile's worker
    and deliverer) share the setting but neither adds the other's counters to its own nor wipes them when it
    starts. A fresh directory per start is also what keeps an earlier run's files out (prometheus-client's
    docs ask for the directory to be wiped between runs); it goes when the process exits, and one left by a
    killed process is removed by the next start on the host.
    """
    if cfg.metrics_port is None:
        return
    base = Path(os.environ.get(_BASE_ENV) or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
                or tempfile.mkdtemp(prefix="apology-metrics-"))
    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob("worker-*"):
        if stale.is_dir() and not _alive(stale.name.split("-")[1]):
            shutil.rmtree(stale, ignore_errors=True)
    own = tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=base)
    os.environ[_BASE_ENV] = str(base)  # a process started from this one makes its own beside it
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = own
    atexit.register(_remove_own, own, os.getpid())


_BASE_ENV = "APOLOGY_METRICS_BASE_DIR"


def _remove_own(path: str, owner: int) -> None:
    if os.getpid() == owner:  # not a forked child that happens to run exit handlers
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: str) -> bool:
    """Whether a process of that id runs on this host (a directory's owner; not ours to judge otherwise)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True
    return True


def create_app(cfg: Settings) -> Celery:
    app = Celery("apology_worker", broker=cfg.broker_url, include=["worker.tasks", "worker.backfill_tasks"])
    app.conf.update(
        # JSON only: a serialiser that rebuilds Python objects would run code from anyone who can write to the broker.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        # Nothing reads task results; effects go to Redis stores and webhooks.
        task_ignore_result=True,
        # "If your task is idempotent you can set acks_late to have the worker acknowledge the message
        # after the task returns" (Tasks guide): ours are (dedup keys, delivery ids), so a worker lost
        # mid-task hands its message to another instead of dropping it...
        task_acks_late=True,
        # ...and a pool child killed by the OOM killer or a signal also leads to redelivery rather than
        # the default ack (the docs warn this can loop on a poison message; our hard time limit and the
        # dead-letter store bound that).
        task_reject_on_worker_lost=True,
        # Prefetch: the Optimizing guide advises a large multiplier for "lots of short tasks" when
        # throughput matters, but what a worker has reserved is handed to its processes in the order it was
        # fetched, so a delivery (which the broker hands out before any event, see task_queues) still waits
        # for every event the worker reserved before it. Measured with bench/pipeline.py's stage trace,
        # that wait was 64-156 ms p50 with 4 per process and 11-18 ms with 1. Two per process is the
        # measured optimum: one ready while the other runs, so a process never waits for the main
        # process's round trips to Redis (live path 130 -> 163 events/s, p99 61 -> 38 ms at 100 events/s,
        # delivery queue wait 4.4 ms p50). With acks_late a lost worker's reserve is redelivered.
        worker_prefetch_multiplier=cfg.worker_prefetch_multiplier,
        worker_concurrency=cfg.worker_concurrency,
        # A stuck HTTP call or a pathological reply must not hold a pool process forever: the soft
        # limit raises inside the task (it is retried), the hard limit replaces the process.
        task_soft_time_limit=cfg.task_soft_time_limit,
        task_time_limit=cfg.task_time_limit,
        # Redis redelivers any message not acknowledged within the visibility timeout, including ones a
        # worker holds for a countdown/ETA, so with kombu's transport it must exceed the longest countdown
        # we schedule or those tasks would run twice ("Using Redis", Caveats). Ours renews what a live
        # worker holds at every sweep (worker.broker), so the timeout need only outlast a few missed
        # sweeps and a killed worker's tasks come back in minutes (`Settings.visibility_timeout`).
        # Workers sweep for such tasks every `restore_sweep_seconds`, under a Redis mutex that a worker
        # killed mid-sweep leaves behind until it expires (kombu: 300 s), so it expires no later than the
        # visibility timeout.
        broker_transport_options={"visibility_timeout": cfg.visibility_timeout,
                                  "unacked_restore_interval": cfg.restore_sweep_seconds,
                                  "unacked_restore_throttle": 1,
                                  "unacked_mutex_expire": min(300, cfg.visibility_timeout),
                                  # BRPOP names the queues in `task_queues` order on every poll instead of
                                  # rotating them, so a waiting delivery is always taken before the next
                                  # event: a verdict already judged is not queued behind every event that
                                  # arrived after its reply ("Using Redis": transport options; kombu's
                                  # `priority_cycle`).
                                  "queue_order_strategy": "priority"},
        # Keep retrying the broker at start-up (the default changes in Celery 6; say it explicitly), and
        # after losing it keep retrying for as long as it takes (the default gives up after 100 attempts,
        # about 45 minutes, and exits): a worker waits out a Redis restart or failover in the same process.
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # On a lost broker connection let running tasks finish (the default; set to silence Celery's
        # warning that 6.0 changes it). Cancelling them would kill a delivery mid-POST; as it is, their
        # acknowledgement is lost with the connection and they run once more after the visibility
        # timeout, which deduplication turns into a skip.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # kombu's Redis transport with the fix that lets the consumer reconnect after a Redis restart
        # instead of exiting (worker.broker); other broker schemes keep kombu's own transport.
        broker_transport=TRANSPORT if cfg.own_transport else None,
        # Soft shutdown (Celery 5.5+): on a cold shutdown, give running tasks this long to finish
        # before they are cancelled and, with acks_late, their messages restored to the queue.
        worker_soft_shutdown_timeout=10.0,
        worker_enable_soft_shutdown_on_idle=True,
        # Task events for Flower and `celery events` (received, started, succeeded...). A "sent" event as
        # well costs every publish a second Redis round trip, the gateway's for each event and the
        # worker's for each delivery, inside the reply's latency; it only adds queued tasks to Flower's
        # view (its queue lengths show them too), so it has its own switch, off by default.
        worker_send_task_events=cfg.task_events,
        # ...sent in batches a few milliseconds apart rather than one Redis round trip each (worker.consumer).
        worker_consumer="worker.consumer:Consumer",
        task_send_sent_event=cfg.task_events and cfg.task_sent_events,
        # Our logs are structlog JSON; Celery must not replace the root handler.
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        task_default_queue=QUEUE,
        # A delivery is the last step of a reply whose verdict is ready; queued behind the events that came
        # after that reply it would wait for all of them, doubling the reply's latency under any backlog.
        # Its own queue, consumed first, lets it overtake them (the Routing guide's "Routing Tasks").
        task_queues=[_queue(name) for name in QUEUES],
        # Backfill chunks come last for the same reason (worker.broker.BACKFILL_QUEUE).
        task_routes={"apology.deliver": {"queue": DELIVERY_QUEUE},
                     "apology.backfill_chunk": {"queue": BACKFILL_QUEUE}},
    )
    app.conf.apology_task_events_batch_seconds = cfg.task_events_batch_seconds  # read by worker.consumer
    return app


def _queue(name: str) -> Queue:
    """A queue as Celery declares one by default: a direct exchange of the same name."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]


# A pool process on its way out waits up to 300 x 0.1 s for the main process to read its last result. In a warm
# shutdown the main process has stopped reading, so a busy worker took 31-33 s to stop (an operator's review,
# session 18): past Kubernetes' default 30 s grace, whose SIGKILL then left the messages it held to the
# visibility timeout. The main process restores those itself once its pool is gone; 2 s still covers a pool
# process recycled while the main process reads, which it does at once.
billiard.pool.GUARANTEE_MESSAGE_CONSUMPTION_RETRY_LIMIT = 20

read_env_file()  # a worker started by `celery -A worker.app` reads .env as the CLI does
try:
    settings = load_settings()
except ConfigError as exc:
    # Raised while Celery imports this module, it would print 30 lines of import traceback around the one
    # line that matters; SystemExit is not an Exception, so Celery lets it through and exits 2.
    sys.stderr.write(f"apology-worker: cannot start the worker: {exc}\n")
    raise SystemExit(2) from None
_metrics_dir(settings)
app = create_app(settings)


class _OnTimer(bootsteps.StartStopStep):  # type: ignore[misc]
    """Work every worker does every interval on its own timer, in its main process, so nothing extra is
    deployed (as celery beat would need) and it runs whatever the consumer is doing."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref: Any = None

    def every(self) -> tuple[float, Callable[[], None]]:
        """The interval and what runs."""
        raise NotImplementedError

    def start(self, parent: Any) -> None:
        self.tref = parent.timer.call_repeatedly(*self.every())

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


class _JournalSweep(_OnTimer):
    """Every worker offers to sweep the journal (`worker.reconcile`) each interval; a Redis lock lets one
    of them do it."""

    def include_if(self, parent: Any) -> bool:
        return settings.reconcile

    def every(self) -> tuple[float, Callable[[], None]]:
        from worker import bootstrap

        return settings.reconcile_interval, bootstrap.sweep_tick(settings)


class _RenewLeases(_OnTimer):
    """Renew what this worker holds unacknowledged every restore sweep period (`worker.broker`), so the
    visibility timeout hands out only a dead or stuck worker's messages. Not in kombu's sweep, which skips
    a worker whose consumer is cancelled while it still holds messages."""

    def include_if(self, parent: Any) -> bool:
        return settings.own_transport

    def every(self) -> tuple[float, Callable[[], None]]:
        from worker import bootstrap

        return settings.restore_sweep_seconds, bootstrap.lease_tick(settings)


app.steps["worker"].add(_JournalSweep)
app.steps["worker"].add(_RenewLeases)
app.steps["consumer"].add(FlushEventsOnShutdown)


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    logs.configure(settings.log_format, settings.log_level)


@signals.worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    if settings.metrics_port is not None:
        from worker import bootstrap, metrics

        try:
            metrics.serve(settings.metrics_port, bootstrap.stores(settings).dead_letter_count)
        except OSError as exc:  # the worker runs on; only its /metrics is missing
            logs.get_logger("worker.metrics").error(
                "metrics port unavailable: give each worker on this host its own APOLOGY_METRICS_PORT (the "
                "Procfile's deliverer takes APOLOGY_DELIVERER_METRICS_PORT)", port=settings.metrics_port,
                error=str(exc))


@signals.worker_process_shutdown.connect
def _child_exited(pid: int | None = None, **_: Any) -> None:
    if settings.metrics_port is not None:
        from worker import metrics

        metrics.process_exited(pid or os.getpid())
