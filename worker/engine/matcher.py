"""Many regular expressions over one text, fast: one RE2 pass says which of them match at all.

Python's `re` tries every alternative of every pattern at every position, which made the lexicon cost
milliseconds per reply, and a literal prefilter still left most patterns to run where their words merely
occur. Instead, every pattern goes into one `re2.Set` (Google's RE2, a linear-time automaton in C): a single
pass over a text returns the few patterns that match anywhere in it. Only those are run for their spans,
again by RE2 where RE2 can express the pattern and by `re` where it cannot (lookarounds); the set holds a
lookaround-free superset of such patterns, so it never misses one.

Two differences from `re` are handled here: RE2's `\\w` is ASCII-only, so it is rewritten to Unicode letter
and digit classes; and a match must lie inside the clause window around it (see `Scanner.find`), as the
signal readers expect.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import re2  # type: ignore[import-untyped]

# The compiled-regex type of RE2's C extension. Its public wrapper re-encodes the whole text on every call
# and decodes every offset in Python, which cost more than the matching itself; here the text is encoded
# once per scan and ASCII offsets (nearly all) are used as they are.
from re2 import _re2

Window = Callable[[int], tuple[int, int]]
_CHUNK = 8_000  # longer texts go through the set in line-aligned pieces, keeping its automaton small
# Patterns per RE2 set. RE2 builds a set's automaton lazily, state by state as the text needs them, within a
# memory budget, and keeps the states it built. Text it has read the like of before reuses them; new text,
# which is what live traffic is, builds them, and on new text building states is most of the set's cost. Big
# sets build big states and, on varied text, outgrow the budget and start again (past a few hundred of our
# patterns a pass took 1 ms instead of 16 us). Session 12, every labelled reply read once by a fresh process
# (6,165 replies, 438 reply-side patterns): three sets of 146, 654 replies/s; eleven of 40, 851/s (+30%);
# one of 438, 470/s. Sets of 20-40 were all within 4% of each other; below that each extra pass costs more
# than it saves.
_SET_PATTERNS = 40


_UNANCHORED = _re2.RE2.Anchor.UNANCHORED


class Offsets:
    """Byte offsets of a non-ASCII text's UTF-8 form to character offsets and back.

    Decoding the prefix before each offset is cheapest for the few matches of an ordinary text, but it is
    linear per match, so a long text with many matches (a wall of emoji, hundreds of links) went
    quadratic: past `_DIRECT` conversions the text's byte offsets are tabulated once instead.
    """

    _DIRECT = 16
    __slots__ = ("_calls", "_starts", "data", "text")

    def __init__(self, data: bytes, text: str) -> None:
        self.data, self.text = data, text
        self._calls = 0
        self._starts: list[int] | None = None  # byte offset where each character starts, and the end

    def _table(self) -> list[int] | None:
        self._calls += 1
        if self._starts is None and self._calls > self._DIRECT:
            self._starts = list(accumulate((len(c.encode("utf-8", "surrogatepass")) for c in self.text),
                                           initial=0))
        return self._starts

    def chars(self, offset: int) -> int:
        """The character that starts at byte `offset` (a character boundary, as RE2 reports them)."""
        starts = self._table()
        if starts is None:
            return len(self.data[:offset].decode("utf-8", "surrogatepass"))
        return bisect_left(starts, offset)

    def byte(self, index: int) -> int:
        starts = self._table()
        if starts is None:
            return len(self.text[:index].encode("utf-8", "surrogatepass"))
        return starts[index]


@dataclass(frozen=True, slots=True)
class Scan:
    """Which patterns match somewhere in one text (set id -> indexes of its matching patterns), and the
    text as UTF-8 for RE2 (with its offset map when the text is not ASCII)."""

    hits: dict[int, list[int]]
    data: bytes
    offsets: Offsets | None  # None: ASCII, byte and character offsets are the same


@dataclass
class _Entry:
    python: re.Pattern[str]
    fast: Any  # the same pattern compiled by RE2 (`_re2.RE2`), when RE2 can express it
    # When it cannot (lookarounds): the pattern without them, by RE2, to find where `python` may match.
    candidates: Any = None


@dataclass
class PatternSet:
    """The patterns of one lexicon entry set."""

    name: str
    entries: list[_Entry] = field(default_factory=list)


class _Automaton:
    """One RE2 set and, for each pattern in it, whose it is: (set id, pattern index)."""

    def __init__(self, options: re2.Options) -> None:
        self.set = re2.Set.SearchSet(options)
        self.owners: list[tuple[int, int]] = []


class Scanner:
    """Holds every pattern set's patterns in a few RE2 sets; `scan` a text once, then `find` per set."""

    def __init__(self) -> None:
        self._sets: list[PatternSet] = []
        self._supersets: list[tuple[str, tuple[int, int]]] = []  # every pattern's RE2 superset, and whose
        self._automata: list[_Automaton] = []
        self._always: list[tuple[int, int]] = []  # patterns RE2 cannot hold at all: always run by `re`
        self._options = _options(case_sensitive=True)
        self._options_nocase = _options(case_sensitive=False)
        self._set_flags: int | None = None

    def add(self, name: str, alternatives: Sequence[str], flags: int) -> int:
        """Register a pattern set; returns its id for `find`."""
        if self._set_flags is None:
            self._set_flags = flags
        elif flags != self._set_flags:
            raise ValueError("all pattern sets of one scanner share their flags")
        set_id = len(self._sets)
        pset = PatternSet(name)
        for alt_id, source in enumerate(alternatives):
            python = re.compile(source, flags)
            fast = _compile(_to_re2(source, flags), self._options_for(flags))
            candidates = (None if fast is not None
                          else _compile(_to_re2(_strip_lookarounds(source), flags), self._options_for(flags)))
            pset.entries.append(_Entry(python, fast, candidates))
            superset = _to_re2(source if fast is not None else _strip_lookarounds(source), flags, loose=True)
            self._supersets.append((superset, (set_id, alt_id)))
        self._sets.append(pset)
        return set_id

    def _options_for(self, flags: int) -> re2.Options:
        return self._options_nocase if flags & re.IGNORECASE else self._options

    def build(self) -> None:
        """Compile the RE2 sets: as few as hold every pattern at most `_SET_PATTERNS` to a set, and the
        patterns shared evenly between them (160 + 160 + 4 paid a whole pass over every text for four)."""
        count = -(-len(self._supersets) // _SET_PATTERNS)
        per_set = -(-len(self._supersets) // count) if count else 0
        options = self._options_for(self._set_flags or 0)
        self._automata = []
        for superset, owner in self._supersets:
            if not self._automata or len(self._automata[-1].owners) >= per_set:
                self._automata.append(_Automaton(options))
            try:
                self._automata[-1].set.Add(superset)
            except re2.error:
                self._always.append(owner)
            else:
                self._automata[-1].owners.append(owner)
        self._automata = [a for a in self._automata if a.owners]
        for automaton in self._automata:
            automaton.set.Compile()

    def scan(self, text: str) -> Scan:
        """Which patterns match somewhere in `text` (one pass per RE2 set and piece of the text)."""
        hits: dict[int, list[int]] = {}
        data = text.encode("utf-8", "surrogatepass")
        pieces = _pieces(data)
        for automaton in self._automata:
            for piece in pieces:
                for index in automaton.set.Match(piece) or ():
                    set_id, alt_id = automaton.owners[index]
                    alts = hits.setdefault(set_id, [])
                    if alt_id not in alts:
                        alts.append(alt_id)
        for set_id, alt_id in self._always:
            hits.setdefault(set_id, []).append(alt_id)
        return Scan(hits, data, None if len(data) == len(text) else Offsets(data, text))

    def find(self, set_id: int, text: str, scan: Scan, window: Window | None = None) -> list[tuple[int, int]]:
        """Non-overlapping (leftmost, then longest) matches of a pattern set in `text`.

        `window(pos)` gives the clause around a position; a match may run from its own clause into the
        next but no further, so a pattern cannot join words from unrelated sentences.
        """
        alt_ids = scan.hits.get(set_id)
        if not alt_ids:
            return []  # the usual case: the set pass found none of this set's patterns
        entries = self._sets[set_id].entries
        found: set[tuple[int, int]] = set()
        for alt_id in alt_ids:
            found.update(_spans(entries[alt_id], text, scan, window))
        return _non_overlapping(found) if len(found) > 1 else list(found)

    def exists(self, set_id: int, text: str, scan: Scan, window: Window | None = None) -> bool:
        """Whether the pattern set matches anywhere."""
        alt_ids = scan.hits.get(set_id)
        if not alt_ids:
            return False
        entries = self._sets[set_id].entries
        return any(_spans(entries[alt_id], text, scan, window, first=True) for alt_id in alt_ids)


def _spans(entry: _Entry, text: str, scan: Scan, window: Window | None,
           *, first: bool = False) -> list[tuple[int, int]]:
    matches = _re2_spans(entry.fast, scan) if entry.fast is not None else _python_spans(entry, text, scan)
    out: list[tuple[int, int]] = []
    for start, end in matches:
        if end <= start:
            continue
        if window is not None and _reach(window, start, len(text)) < end:
            # The match runs on past its clause and the next: read the rest clause by clause instead.
            out.extend(_clause_by_clause(entry.python, text, start, window, first=first))
            break
        out.append((start, end))
        if first:
            break
    return out


def _re2_spans(regexp: Any, scan: Scan) -> Iterator[tuple[int, int]]:
    """Every match of an RE2 pattern, leftmost-first and non-overlapping like `re.finditer`, in characters."""
    data, pos, size = scan.data, 0, len(scan.data)
    while pos <= size:
        start, end = regexp.Match(_UNANCHORED, data, pos, size)[0]
        if start < 0:
            return
        if scan.offsets is None:
            yield start, end
        else:
            yield scan.offsets.chars(start), scan.offsets.chars(end)
        pos = _char_start(data, end if end > start else end + 1)


def _python_spans(entry: _Entry, text: str, scan: Scan) -> Iterator[tuple[int, int]]:
    """`re.finditer`'s non-empty matches of a pattern RE2 cannot express, tried only where RE2 finds its
    lookaround-free superset.

    Dropping lookarounds only removes conditions, so wherever the pattern matches, the superset matches
    starting at the same place: no position RE2 skips can start a match. Running `re` over the whole text
    instead cost more than every other pattern together (these patterns begin with alternatives `re`
    cannot skip ahead on).
    """
    if entry.candidates is None:
        yield from (m.span() for m in entry.python.finditer(text))
        return
    data, pos, size = scan.data, 0, len(scan.data)
    while pos <= size:
        begin = entry.candidates.Match(_UNANCHORED, data, pos, size)[0][0]
        if begin < 0:
            return
        start = begin if scan.offsets is None else scan.offsets.chars(begin)
        m = entry.python.match(text, start)
        if m is not None and m.end() > start:
            yield start, m.end()
            pos = m.end() if scan.offsets is None else scan.offsets.byte(m.end())
        else:
            pos = _char_start(data, begin + 1)


def _char_start(data: bytes, pos: int) -> int:
    """`pos`, or the next offset that starts a character: a search never resumes inside a UTF-8 sequence."""
    while 0 < pos < len(data) and data[pos] & 0xC0 == 0x80:
        pos += 1
    return pos


def _reach(window: Window, pos: int, length: int) -> int:
    """How far a match starting at `pos` may run: to the end of the clause after its own.

    One clause is too strict: a pattern may begin at the full stop before a sentence (". Click ...") or
    compare two short sentences ("the site said X. My invoice says Y").
    """
    end = window(pos)[1]
    return window(end)[1] if end < length else end


def _clause_by_clause(pattern: re.Pattern[str], text: str, pos: int, window: Window,
                      *, first: bool) -> list[tuple[int, int]]:
    out = []
    while pos < len(text):
        hi = max(window(pos)[1], pos + 1)
        for m in pattern.finditer(text, pos, _reach(window, pos, len(text))):
            if m.end() > m.start():
                out.append(m.span())
                if first:
                    return out
        pos = hi
    return out


def _pieces(data: bytes) -> list[bytes]:
    if len(data) <= _CHUNK:
        return [data]
    out, start = [], 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + _CHUNK) if start + _CHUNK < len(data) else len(data)
        if end <= start:
            end = min(len(data), start + _CHUNK)
            while end < len(data) and data[end] & 0xC0 == 0x80:
                end += 1
        out.append(data[start:end])
        start = end
    return out


def _options(*, case_sensitive: bool) -> re2.Options:
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    options.never_capture = True  # only whole-match spans are used
    options.max_mem = 64 << 20  # room for the set's automaton over ~300 patterns
    return options


def _compile(source: str, options: re2.Options) -> Any:
    regexp = _re2.RE2(source.encode(), options)
    return regexp if regexp.ok() else None


_WORD = (r"\p{L}\p{N}_", r"[\p{L}\p{N}_]", r"[^\p{L}\p{N}_]")
# For the set, a cheaper superset of a word character: ASCII word characters or any non-ASCII one. Exact
# Unicode classes multiply the states of the set's automaton over UTF-8 bytes tenfold.
_LOOSE_WORD = (r"0-9A-Za-z_\x{80}-\x{10FFFF}", r"[0-9A-Za-z_\x{80}-\x{10FFFF}]", r"[^0-9A-Za-z_]")


_HEX = {"u": re.compile(r"[0-9a-fA-F]{4}"), "U": re.compile(r"[0-9a-fA-F]{8}")}


def _to_re2(source: str, flags: int, *, loose: bool = False) -> str:
    """The pattern in RE2 syntax: flags inline, `\\w`/`\\W` as Unicode classes (RE2's are ASCII-only)."""
    in_class_word, word, non_word = _LOOSE_WORD if loose else _WORD
    # In a negated class a looser \w would exclude more, so the set would miss matches: there the set gets
    # ASCII word characters, which the exact class includes, so the negation is looser instead.
    negated_word = "0-9A-Za-z_" if loose else in_class_word
    out: list[str] = []
    i, in_class, negated = 0, False, False
    while i < len(source):
        c = source[i]
        if c == "\\" and i + 1 < len(source):
            nxt = source[i + 1]
            if nxt == "w":
                out.append((negated_word if negated else in_class_word) if in_class else word)
            elif nxt == "W" and not in_class:
                out.append(non_word)
            elif nxt in "uU" and _HEX[nxt].fullmatch(digits := source[i + 2:i + 2 + (4 if nxt == "u" else 8)]):
                out.append(f"\\x{{{digits}}}")  # Python's \uXXXX / \UXXXXXXXX in RE2's spelling
                i += len(digits)
            else:
                out.append(source[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
            out.append(c)
            negated = source[i + 1:i + 2] == "^"
            if negated:
                out.append("^")
                i += 1
            if source[i + 1:i + 2] == "]":
                out.append("]")  # a leading ] is a literal
                i += 1
        elif c == "]" and in_class:
            in_class = False
            out.append(c)
        else:
            out.append(c)
        i += 1
    prefix = ("m" if flags & re.MULTILINE else "") + ("s" if flags & re.DOTALL else "")
    return (f"(?{prefix})" if prefix else "") + "".join(out)


def _strip_lookarounds(source: str) -> str:
    """The pattern without its lookaheads and lookbehinds: it matches wherever the original could."""
    out: list[str] = []
    i = 0
    while i < len(source):
        if source[i] == "\\":
            out.append(source[i:i + 2])
            i += 2
            continue
        if source.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            depth, j = 0, i
            while j < len(source):
                if source[j] == "\\":
                    j += 2
                    continue
                if source[j] == "(":
                    depth += 1
                elif source[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            i = j + 1
            continue
        out.append(source[i])
        i += 1
    return "".join(out)


def _non_overlapping(spans: set[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        if out and start < out[-1][1]:
            continue
        out.append((start, end))
    return out
