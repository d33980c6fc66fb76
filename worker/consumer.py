"""The worker's consumer: Celery's, with its task events sent in batches.

Celery buffers task events (received, started, succeeded...) and sends the buffer on the next turn of the
worker's event loop: under load that is one Redis PUBLISH, a synchronous round trip in the main process,
for nearly every event. Waiting a few milliseconds gathers a loop's worth of events into one message
(Celery's own `task.multi` batch, which Flower and `celery events` read as they read single events), at
the price of the events reaching Flower that much later. The dispatcher still sends at once whenever its
buffer holds `buffer_limit` (24) events, and `FlushEventsOnShutdown` sends what is left when the worker
stops (Celery itself drops its buffer then).

It also keeps message bodies out of the logs: for a message it cannot decode or route (an unknown task
name during a rolling deploy, a body that is not JSON) Celery logs the whole body at ERROR and drops the
message. Here the log names the fault and the size, and the body goes to the dead-letter store. So does a
message in a sound envelope whose body Celery's request cannot read (a JSON object where it wants
`[args, kwargs, embed]`): Celery raises that out of its message handler, which stops the worker and puts the
message back, for the next worker to stop on.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.events import Events
from kombu.common import ignore_errors

from worker import logs
from worker.broker import keep_refused

log = logs.get_logger("worker.consumer")
# What building a task request from a body of the wrong shape raises (Celery's Request unpacks and indexes it).
_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError)


class Consumer(CeleryConsumer):  # type: ignore[misc]
    _flush_due = False

    def on_send_event_buffered(self) -> None:
        if self.hub is not None and not self._flush_due:
            self._flush_due = True
            # APOLOGY_TASK_EVENTS_BATCH_SECONDS, put in the app's conf by worker.app.create_app.
            self.hub.call_later(self.app.conf.apology_task_events_batch_seconds, self._flush_batch)

    def _flush_batch(self) -> None:
        self._flush_due = False
        self._flush_events()

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Any) -> Any:
            try:
                return handle(message)
            except _UNREADABLE as exc:
                if getattr(message, "acknowledged", False) or _taken(message):
                    raise  # a request was made of it: whatever failed, it was not the body
                return self.on_invalid_task(None, message, exc)

        return on_task_received

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        _refuse(message, f"the body cannot be decoded ({type(exc).__name__}: {exc})")
        message.ack()

    def on_unknown_message(self, body: Any, message: Any) -> None:
        _refuse(message, "not a task message (no task name)")
        message.reject_log_error(log, self.connection_errors)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        name = (getattr(message, "headers", None) or {}).get("task", "?")
        _refuse(message, f"unknown task {name!r} (a worker older than its producer?)")
        message.reject_log_error(log, self.connection_errors)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        _refuse(message, f"invalid task message ({type(exc).__name__}: {exc})")
        message.reject_log_error(log, self.connection_errors)


def _taken(message: Any) -> bool:
    """Whether the worker already holds a request for this message (reserved, running or scheduled)."""
    from celery.worker import state

    held = (*state.reserved_requests, *state.active_requests, *state.scheduled_requests)
    return any(getattr(request, "message", None) is message for request in held)


def _refuse(message: Any, reason: str) -> None:
    """Log what is wrong with a message (never its body) and keep the body as a dead letter."""
    raw = getattr(message, "body", b"") or b""
    queue = (getattr(message, "delivery_info", None) or {}).get("routing_key", "?")
    keep_refused("event", f"refused by the worker: {reason}", raw, queue, "message refused and dead-lettered", reason)


class FlushEventsOnShutdown(bootsteps.StartStopStep):  # type: ignore[misc]
    """Send the batched task events before the dispatcher closes (steps stop in reverse order of their
    requirements, so this runs while the event connection is still open)."""

    requires = (Events,)

    def shutdown(self, c: Any) -> None:
        if c.event_dispatcher is not None:
            ignore_errors(c, c.event_dispatcher.flush)  # type: ignore[no-untyped-call]
