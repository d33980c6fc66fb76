"""Shared matching helper: lexicon matches that no negation in their own sentence cancels."""

from __future__ import annotations

import re

from worker.engine.lexicon import Lexicon
from worker.engine.text import Prepared


def affirmed_matches(doc: Prepared, lex: Lexicon, name: str, negation: re.Pattern[str] | None = None,
                     *, window: int = 40) -> list[tuple[int, int]]:
    """Spans of entry set `name` whose preceding words (same sentence) are not a negation."""
    spans: list[tuple[int, int]] = []
    text = doc.text
    for start, end in lex.find(name, doc):
        if negation is not None:
            s_start, _ = doc.sentence(start)
            if negation.search(text[max(s_start, start - window):start]):
                continue
        spans.append((start, end))
    return spans
