"""The RE2 scanner must find exactly what Python's `re` finds, whatever the text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.engine.matcher import Offsets, Scanner

FLAGS = re.IGNORECASE | re.MULTILINE
PATTERNS = [
    r"\bsorry\b",
    r"\b(?:our|my)\s+(?:mistake|error|fault)\b",
    r"\b(?:i|we)\s+(?:\w+\s+){0,2}(?:understand|see)\s+(?:how|why)\b",
    r"\byou\s+should(?:'ve|\s+have)\s+\w+",
    r"[!?]{2,}",
    r"\bregret\b(?!\s+(?:nothing|it\b))",  # a lookahead: RE2 cannot run it, `re` does
    r"(?<![\w-])caf[eé]\s+\w+",
    # Lookarounds after a leading alternation: `re` runs only where RE2 finds the pattern without them.
    r"(?:^|[.!?]\s*|\bplease\s+)(?:try|read)\b(?!\s+it\b)",
    r"\b(?:our|my)\s+(?!mistake\b)(?<=\bour\s)\w+",
]
WORDS = ["sorry", "our", "my", "mistake", "error", "fault", "i", "we", "really", "understand", "see", "how",
         "why", "you", "should", "have", "read", "it", "!!", "?", "the", "Sorry", "OUR", "Mistake", "regret",
         "nothing", "café", "Zoë", "naïve", "😀", "—", "cafe", "please", "try", ".", "Try"]


def _scanner() -> tuple[Scanner, int]:
    scanner = Scanner()
    set_id = scanner.add("t", PATTERNS, FLAGS)
    scanner.build()
    return scanner, set_id


def _expected(text: str) -> list[str]:
    spans = sorted({m.span() for p in PATTERNS for m in re.finditer(p, text, FLAGS) if m.end() > m.start()},
                   key=lambda s: (s[0], -s[1]))
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if not out or start >= out[-1][1]:
            out.append((start, end))
    return [text[a:b] for a, b in out]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=0, max_size=25))
def test_scanner_finds_what_python_re_finds(words: list[str]) -> None:
    text = " ".join(words)  # one clause: the window covers it all
    scanner, set_id = _scanner()
    got = scanner.find(set_id, text, scanner.scan(text), lambda pos: (0, len(text)))
    assert [text[a:b] for a, b in got] == _expected(text)
    assert scanner.exists(set_id, text, scanner.scan(text), lambda pos: (0, len(text))) == bool(got)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=40, max_size=160))
def test_many_matches_in_a_long_non_ascii_text_keep_character_offsets(words: list[str]) -> None:
    # Past a few conversions a non-ASCII text's offsets come from a table instead of decoding each prefix.
    text = " ".join(["Zoë", *words])
    scanner, set_id = _scanner()
    got = scanner.find(set_id, text, scanner.scan(text), lambda pos: (0, len(text)))
    assert [text[a:b] for a, b in got] == _expected(text)


def test_offset_maps_agree_with_decoding_in_both_modes() -> None:
    text = "Zoë — naïve 😀 café" * 5
    data = text.encode()
    boundaries = [len(text[:i].encode()) for i in range(len(text) + 1)]
    decoding, table = Offsets(data, text), Offsets(data, text)
    for _ in range(Offsets._DIRECT + 1):
        table.chars(0)  # enough calls to switch to the table
    for index, offset in enumerate(boundaries):
        assert decoding.chars(offset) == table.chars(offset) == index
        assert decoding.byte(index) == table.byte(index) == offset
        decoding = Offsets(data, text)  # stays below the switch


def test_offsets_are_characters_not_bytes_in_non_ascii_text() -> None:
    text = "Zoë — naïve café owner here. We are so sorry, it was our mistake 😀"
    scanner, set_id = _scanner()
    got = [text[a:b] for a, b in scanner.find(set_id, text, scanner.scan(text))]
    assert got == ["café owner", "sorry", "our mistake"]


def test_word_classes_are_unicode_as_in_python() -> None:
    text = "i naïvely understand how"  # RE2's own \w would stop at the ï
    scanner, set_id = _scanner()
    assert [text[a:b] for a, b in scanner.find(set_id, text, scanner.scan(text))] == [text]


def test_a_negated_word_class_finds_what_python_finds_past_ascii() -> None:
    """The set's loose \\w (any non-ASCII character) inside [^...] excluded the emoji, so the set missed a
    pattern Python's re matches: "fixed now 👍" was read as no solution."""
    scanner = Scanner()
    set_id = scanner.add("done", [r"\bfixed now\s*[^\w\s]"], re.IGNORECASE)
    scanner.build()
    for text in ("fixed now \U0001F44D", "fixed now \u2014 thanks", "fixed now!"):
        assert [text[a:b] for a, b in scanner.find(set_id, text, scanner.scan(text))] == \
            [m.group() for m in re.finditer(r"\bfixed now\s*[^\w\s]", text, re.IGNORECASE)] != []
    assert scanner.find(set_id, "fixed now café", scanner.scan("fixed now café")) == []


def test_a_long_text_is_scanned_to_its_end() -> None:
    text = ("Nothing to see in this line at all.\n" * 3000) + "It was our fault."
    scanner, set_id = _scanner()
    assert [text[a:b] for a, b in scanner.find(set_id, text, scanner.scan(text))] == ["our fault"]


def test_a_match_may_not_join_words_from_distant_clauses() -> None:
    text = "Thanks, we\nhad\nit\nsee how. And I really see how it went."
    bounds = [i + 1 for i, c in enumerate(text) if c in "\n."]

    def window(pos: int) -> tuple[int, int]:
        start = max([0, *(b for b in bounds if b <= pos)])
        end = min([len(text), *(b for b in bounds if b > pos)])
        return start, end

    scanner, set_id = _scanner()
    assert re.search(PATTERNS[2], text, FLAGS).group() == "we\nhad\nit\nsee how"  # across four lines
    got = [text[a:b] for a, b in scanner.find(set_id, text, scanner.scan(text), window)]
    assert got == ["I really see how"]
