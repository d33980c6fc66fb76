"""Empathy: an explicit acknowledgement of the customer's feelings or of how bad the situation is."""

from __future__ import annotations

from worker.engine.lexicon import Lexicon
from worker.engine.text import Prepared


def read_empathy(doc: Prepared, lex: Lexicon) -> list[tuple[int, int]]:
    # "I don't understand why you're upset" acknowledges nothing.
    return [(s, e) for s, e in lex.find("empathy", doc) if not lex.empathy_negated_within.search(doc.text, s, e)]
