"""The pure policy engine: (reply, conversation, policy) -> verdict. No I/O at review time, no Celery."""

from worker.engine.policy import Policy, load_policy
from worker.engine.review import read_context, read_reply, review_history, review_reply, reviewable

__all__ = ["Policy", "load_policy", "read_context", "read_reply", "review_history", "review_reply",
           "reviewable"]
