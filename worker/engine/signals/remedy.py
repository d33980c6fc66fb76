"""What the reply does about the problem: a concrete fix or next step, and a promise it won't recur."""

from __future__ import annotations

from worker.engine.lexicon import Lexicon
from worker.engine.text import Prepared


def read_solution(doc: Prepared, lex: Lexicon) -> list[tuple[int, int]]:
    """Actions taken, instructions, channels. A link counts unless it backs a policy refusal."""
    text = doc.text
    spans = [(m.start(), m.end()) for m in lex.solution.finditer(text) if m.end() > m.start()]
    for m in lex.solution_weak.finditer(text):
        s_start, s_end = doc.sentence(m.start())
        if not lex.solution_excluded.search(text, s_start, s_end):
            spans.append((m.start(), m.end()))
    return sorted(spans)


def read_prevention(doc: Prepared, lex: Lexicon) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in lex.prevention.finditer(doc.text) if m.end() > m.start()]
