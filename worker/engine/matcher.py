"""Many regular expressions over one text, fast: literal prefilter, then each pattern near its literal.

Python's `re` tries every alternative of a big alternation at every position, which made the lexicon cost
milliseconds per reply. Instead, each pattern's *required literals* (strings at least one of which must
occur in any match, derived from the parsed pattern) go into one Aho-Corasick automaton
(`pyahocorasick`, C). One pass over the text finds which patterns can match and where; only those run,
and only on the line around the literal. Patterns without a usable literal run on the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

# The stdlib's own regex parser (Python 3.11+): the same tree `re` compiles, so literals read from it are
# exactly the pattern's.
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser as _p  # type: ignore[attr-defined]
from typing import Any

import ahocorasick  # type: ignore[import-not-found]

Hits = dict[int, dict[int, dict[int, list[int]]]]
_WINDOW = 200  # characters either side of a literal hit that a pattern may span
# Literals this common filter almost nothing; a pattern prefers any other literal it requires.
_COMMON = frozenset((
    "the", "that", "this", "was", "with", "have", "has", "not", "can", "our", "get", "got", "were", "what",
    "when", "how", "why", "will", "did", "does", "don", "isn", "wasn", "aren", "didn", "hasn", "won", "been",
    "from", "just", "like", "here", "want", "need", "know", "make", "made", "time", "much", "same", "such",
    "over", "back", "even", "come", "came", "see", "way", "tell", "told", "said", "says", "sent", "send", "let",
    "put", "set", "help", "keep", "kept", "last", "next", "long", "left", "part", "side", "end", "feel", "love",
    "read", "sure", "text", "word", "work", "open", "show", "call", "care", "case", "else", "fine", "hard",
    "must", "went", "took", "used", "able", "down", "turn", "live", "plan", "it's", "i'd", "we'd", "'ll", "you",
    "your", "for", "and", "are", "all", "any", "one", "out", "now", "day", "may", "let", "its",
))


def required_literals(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Lower-cased strings one of which occurs in every match of `pattern`, or None if unknown."""
    try:
        tree = _p.parse(pattern, flags)
    except re.error:
        return None
    atoms = _best(list(tree))
    if atoms is None or any(len(a) < 2 and a.isalnum() for a in atoms):
        return None
    return atoms


def required_groups(pattern: str, flags: int = 0) -> list[frozenset[str]]:
    """Every selective literal group the pattern requires (each must occur), rarest first.

    A pattern runs only where all its groups occur in one sentence, which is far stronger than one
    literal. Groups of common words filter nothing and are left out; so is anything optional.
    """
    try:
        tree = _p.parse(pattern, flags)
    except re.error:
        return []
    groups = [g for g in _mandatory(list(tree)) if _selectivity(g)[0] == 0 and _selectivity(g)[1] >= 3]
    return sorted(set(groups), key=lambda g: (len(g), -min(len(a) for a in g)))


def _mandatory(items: list[tuple[Any, Any]]) -> list[frozenset[str]]:
    out: list[frozenset[str]] = []
    run = ""
    for op, av in items:
        if op is _c.LITERAL:
            run += chr(av).lower()
            continue
        if run:
            out.append(frozenset({run}))
            run = ""
        if op is _c.SUBPATTERN:
            out.extend(_mandatory(list(av[-1])))
        elif op is _c.BRANCH:
            branches = [_best(list(b)) for b in av[1]]
            if branches and all(b is not None for b in branches):
                out.append(frozenset().union(*[b for b in branches if b is not None]))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] >= 1:
            out.extend(_mandatory(list(av[2])))
    if run:
        out.append(frozenset({run}))
    return out


def _best(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    """The single most selective literal group the sequence requires, if any."""
    return max(_mandatory(items), key=_selectivity, default=None)


def _selectivity(atoms: frozenset[str]) -> tuple[int, int, int]:
    """Rarer first: no common word, then the longest shortest literal, then the fewest literals."""
    common = sum(1 for a in atoms if a.strip(" '") in _COMMON or len(a) < 3)
    return (-common, min(len(a) for a in atoms), -len(atoms))


@dataclass
class _Entry:
    pattern: re.Pattern[str]
    always: bool
    groups: int = 1  # literal groups registered for this pattern; all must occur in the window


@dataclass
class PatternSet:
    """The patterns of one lexicon entry set; matched through a shared `Scanner`."""

    name: str
    entries: list[_Entry] = field(default_factory=list)
    always: list[_Entry] = field(default_factory=list)


class Scanner:
    """Holds the automaton of every pattern set's literals; `scan` a text once, then `find` per set."""

    def __init__(self) -> None:
        self._sets: list[PatternSet] = []
        self._automaton = ahocorasick.Automaton()
        self._atoms: dict[str, list[tuple[int, int, int]]] = {}
        self._built = False

    def add(self, name: str, alternatives: Sequence[str], flags: int) -> int:
        """Register a pattern set; returns its id for `find`."""
        set_id = len(self._sets)
        pset = PatternSet(name)
        for alt_id, source in enumerate(alternatives):
            atoms = required_literals(source, flags)
            groups = required_groups(source, flags) if atoms is not None else []
            if atoms is not None and atoms not in groups:
                groups = [atoms, *groups]
            entry = _Entry(re.compile(source, flags), always=atoms is None, groups=max(1, len(groups)))
            pset.entries.append(entry)
            if entry.always:
                pset.always.append(entry)
            for group_id, group in enumerate(groups):
                for atom in group:
                    self._atoms.setdefault(atom, []).append((set_id, alt_id, group_id))
        self._sets.append(pset)
        return set_id

    def build(self) -> None:
        for atom, targets in self._atoms.items():
            self._automaton.add_word(atom, targets)
        if self._atoms:
            self._automaton.make_automaton()
        self._built = True

    def scan(self, text: str) -> Hits:
        """Where each pattern could match: set id -> pattern index -> group -> positions of its literals."""
        assert self._built, "Scanner.build() first"
        hits: Hits = {}
        if not self._atoms:
            return hits
        lowered = text.lower()
        if len(lowered) != len(text):  # a few characters lower-case to two; keep offsets aligned
            lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
        for end, targets in self._automaton.iter(lowered):
            for set_id, alt_id, group_id in targets:
                hits.setdefault(set_id, {}).setdefault(alt_id, {}).setdefault(group_id, []).append(end)
        return hits

    def find(self, set_id: int, text: str, hits: Hits,
             window: Callable[[int], tuple[int, int]] | None = None) -> list[tuple[int, int]]:
        """Non-overlapping (leftmost, then longest) matches of a pattern set in `text`.

        `window(pos)` gives the stretch of text a match around position `pos` can lie in (the sentence);
        by default the line, capped either side.
        """
        pset = self._sets[set_id]
        spans: set[tuple[int, int]] = set()
        for entry in pset.always:
            spans.update(m.span() for m in entry.pattern.finditer(text) if m.end() > m.start())
        for alt_id, groups in hits.get(set_id, {}).items():
            entry = pset.entries[alt_id]
            if len(groups) < entry.groups:
                continue  # some required literal occurs nowhere in the text
            others = [groups[g] for g in range(1, entry.groups)]
            for start, end in _windows(text, groups.get(0, ()), window):
                if all(any(start <= p < end for p in positions) for positions in others):
                    spans.update(m.span() for m in entry.pattern.finditer(text, start, end) if m.end() > m.start())
        return _non_overlapping(spans) if len(spans) > 1 else list(spans)


    def exists(self, set_id: int, text: str, hits: Hits,
               window: Callable[[int], tuple[int, int]] | None = None) -> bool:
        """Whether the pattern set matches anywhere; stops at the first match."""
        pset = self._sets[set_id]
        for alt_id, groups in hits.get(set_id, {}).items():
            entry = pset.entries[alt_id]
            if len(groups) < entry.groups:
                continue
            others = [groups[g] for g in range(1, entry.groups)]
            for start, end in _windows(text, groups.get(0, ()), window):
                if all(any(start <= p < end for p in positions) for positions in others):
                    m = entry.pattern.search(text, start, end)
                    if m is not None and m.end() > m.start():
                        return True
        return any(_nonempty(entry.pattern.finditer(text)) for entry in pset.always)


def _nonempty(matches: Iterable[re.Match[str]]) -> bool:
    return any(m.end() > m.start() for m in matches)


def _windows(text: str, positions: Iterable[int],
             window: Callable[[int], tuple[int, int]] | None) -> list[tuple[int, int]]:
    """The stretch around each literal hit, merged where they overlap."""
    out: list[tuple[int, int]] = []
    for pos in sorted(positions):
        if window is not None:
            lo, hi = window(pos)
        else:
            lo = max(text.rfind("\n", 0, pos) + 1, pos - _WINDOW)
            nl = text.find("\n", pos)
            hi = min(len(text) if nl < 0 else nl, pos + _WINDOW)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _non_overlapping(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        if out and start < out[-1][1]:
            continue
        out.append((start, end))
    return out
