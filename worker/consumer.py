"""The worker's consumer: Celery's, with its task events sent in batches.

Celery buffers task events (received, started, succeeded...) and sends the buffer on the next turn of the
worker's event loop: under load that is one Redis PUBLISH, a synchronous round trip in the main process,
for nearly every event. Waiting a few milliseconds gathers a loop's worth of events into one message
(Celery's own `task.multi` batch, which Flower and `celery events` read as they read single events), at
the price of the events reaching Flower that much later. The dispatcher still sends at once whenever its
buffer holds `buffer_limit` (24) events.
"""

from __future__ import annotations

from celery.worker.consumer import Consumer as CeleryConsumer

EVENT_FLUSH_SECONDS = 0.05


class Consumer(CeleryConsumer):  # type: ignore[misc]
    _flush_due = False

    def on_send_event_buffered(self) -> None:
        if self.hub is not None and not self._flush_due:
            self._flush_due = True
            self.hub.call_later(EVENT_FLUSH_SECONDS, self._flush_batch)

    def _flush_batch(self) -> None:
        self._flush_due = False
        self._flush_events()
