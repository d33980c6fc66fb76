"""Empathy: an explicit acknowledgement of the customer's feelings or of how bad the situation is."""

from __future__ import annotations

from worker.engine.lexicon import Lexicon
from worker.engine.text import Prepared


def read_empathy(doc: Prepared, lex: Lexicon) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for m in lex.empathy.finditer(doc.text):
        if lex.empathy_negated_within.search(m.group(0)):
            continue  # "I don't understand why you're upset" acknowledges nothing
        spans.append((m.start(), m.end()))
    return spans
