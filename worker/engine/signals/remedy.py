"""What the reply does about the problem: a concrete fix or next step, and a promise it won't recur."""

from __future__ import annotations

from worker.engine.lexicon import Lexicon
from worker.engine.text import Prepared


def read_solution(doc: Prepared, lex: Lexicon) -> list[tuple[int, int]]:
    """Actions taken, instructions, channels. A link counts unless it backs a policy refusal."""
    spans = lex.find("solution", doc)
    excluded: dict[tuple[int, int], bool] = {}  # per sentence: a reply of many links is one long sentence
    for start, end in lex.find("solution_weak", doc):
        sentence = doc.sentence(start)
        if sentence not in excluded:
            excluded[sentence] = lex.solution_excluded.search(doc.text, *sentence) is not None
        if not excluded[sentence]:
            spans.append((start, end))
    return sorted(spans)


def read_prevention(doc: Prepared, lex: Lexicon) -> list[tuple[int, int]]:
    """Commitments that it won't recur, and feedback passed to those who can stop it (not praise passed on)."""
    return [(start, end) for start, end in lex.find("prevention", doc)
            if not lex.prevention_excluded.search(doc.text, start, end)]
