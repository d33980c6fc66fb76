"""How the reply treats fault: admitting liability, or blaming and arguing with the customer."""

from __future__ import annotations

from worker.engine.lexicon import Lexicon
from worker.engine.signals._matching import affirmed_matches
from worker.engine.text import Prepared


def read_liability(doc: Prepared, lex: Lexicon) -> list[tuple[int, int]]:
    """Explicit fault or mistake wording ("our mistake"); "this was not our fault" does not count."""
    return affirmed_matches(doc, lex, "liability", lex.liability_negated_before, window=32)


def read_blame(doc: Prepared, lex: Lexicon) -> list[tuple[int, int]]:
    """Defending, arguing, or putting the fault on the customer; "it's not your fault" reassures."""
    return affirmed_matches(doc, lex, "blame", lex.blame_negated_before, window=32)


def read_responsibility(doc: Prepared, lex: Lexicon) -> list[tuple[int, int]]:
    """Cues that the company, its staff or product caused the problem (drives apology stance)."""
    return affirmed_matches(doc, lex, "responsibility", lex.liability_negated_before, window=24)
