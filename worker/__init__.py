"""apology-worker: reviews outgoing customer-service replies against a configurable apology policy."""

__version__ = "0.1.0"
