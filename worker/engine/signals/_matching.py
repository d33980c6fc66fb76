"""Shared matching helper: find lexicon matches that no negation in their own sentence cancels."""

from __future__ import annotations

import re

from worker.engine.text import Prepared


def affirmed_matches(doc: Prepared, pattern: re.Pattern[str], negation: re.Pattern[str] | None = None,
                     *, window: int = 40) -> list[tuple[int, int]]:
    """Spans of `pattern` in the visible text whose preceding words (same sentence) are not a negation."""
    spans: list[tuple[int, int]] = []
    text = doc.text
    for m in pattern.finditer(text):
        if m.end() == m.start():
            continue
        if negation is not None:
            s_start, _ = doc.sentence(m.start())
            if negation.search(text[max(s_start, m.start() - window):m.start()]):
                continue
        spans.append((m.start(), m.end()))
    return spans
