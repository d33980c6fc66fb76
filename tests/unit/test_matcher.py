"""The literal prefilter must find exactly what a plain regular expression finds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.engine.matcher import Scanner, required_literals

FLAGS = re.IGNORECASE | re.MULTILINE
PATTERNS = [
    r"\bsorry\b",
    r"\b(?:our|my)\s+(?:mistake|error|fault)\b",
    r"\b(?:i|we)\s+(?:\w+\s+){0,2}(?:understand|see)\s+(?:how|why)\b",
    r"\byou\s+should(?:'ve|\s+have)\s+\w+",
    r"[!?]{2,}",
]
WORDS = ["sorry", "our", "my", "mistake", "error", "fault", "i", "we", "really", "understand", "see", "how",
         "why", "you", "should", "have", "read", "it", "!!", "?", "the", "Sorry", "OUR", "Mistake"]


def test_required_literals_reads_the_mandatory_alternation() -> None:
    assert required_literals(r"\b(?:our|my)\s+(?:mistake|error)\b", FLAGS) == frozenset({"mistake", "error"})
    assert required_literals(r"(?:foo)?\bbar\b", FLAGS) == frozenset({"bar"})
    assert required_literals(r"[!?]{2,}", FLAGS) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=0, max_size=25))
def test_scanner_finds_what_the_combined_regex_finds(words: list[str]) -> None:
    text = " ".join(words)  # one sentence: the scanner's windows cover it all
    scanner = Scanner()
    set_id = scanner.add("t", PATTERNS, FLAGS)
    scanner.build()
    combined = re.compile("|".join(f"(?:{p})" for p in PATTERNS), FLAGS)
    expected = [m.span() for m in combined.finditer(text) if m.end() > m.start()]
    got = scanner.find(set_id, text, scanner.scan(text), lambda pos: (0, len(text)))
    assert [text[a:b] for a, b in got] == [text[a:b] for a, b in expected]
