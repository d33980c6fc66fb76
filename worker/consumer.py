"""The worker's consumer: Celery's, with its task events sent in batches.

Celery buffers task events (received, started, succeeded...) and sends the buffer on the next turn of the
worker's event loop: under load that is one Redis PUBLISH, a synchronous round trip in the main process,
for nearly every event. Waiting a few milliseconds gathers a loop's worth of events into one message
(Celery's own `task.multi` batch, which Flower and `celery events` read as they read single events), at
the price of the events reaching Flower that much later. The dispatcher still sends at once whenever its
buffer holds `buffer_limit` (24) events, and `FlushEventsOnShutdown` sends what is left when the worker
stops (Celery itself drops its buffer then).
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.events import Events
from kombu.common import ignore_errors


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


class FlushEventsOnShutdown(bootsteps.StartStopStep):  # type: ignore[misc]
    """Send the batched task events before the dispatcher closes (steps stop in reverse order of their
    requirements, so this runs while the event connection is still open)."""

    requires = (Events,)

    def shutdown(self, c: Any) -> None:
        if c.event_dispatcher is not None:
            ignore_errors(c, c.event_dispatcher.flush)  # type: ignore[no-untyped-call]
