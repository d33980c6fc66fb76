"""Values read back from Redis: the clients here return bytes (chunks and Lua replies stay binary)."""

from __future__ import annotations

from typing import Any


def as_text(value: Any) -> str:
    """A key, member or field as text, whether the client returned bytes or str."""
    return value.decode() if isinstance(value, bytes) else str(value)
