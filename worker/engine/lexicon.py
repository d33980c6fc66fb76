"""The detection lexicon: the words each signal is read from, compiled once per policy.

The lexicon is data (`config/lexicon.yaml`, extended by a policy's `lexicon:` section) so a support lead can
teach the engine a phrase without touching code. This module turns that data into compiled patterns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from worker.engine.matcher import Scan, Scanner
from worker.engine.signals.incident_model import IncidentModel
from worker.engine.signals.reply_model import SIGNALS as MODEL_SIGNALS
from worker.engine.signals.reply_model import ReplyModel

if TYPE_CHECKING:
    from worker.engine.text import Prepared

M = TypeVar("M")
FLAGS = re.IGNORECASE | re.MULTILINE
_MACRO = re.compile(r"\{(\w+)\}")

# Kinds read from cues, in the order ties are broken (the one that most changes a good reply first).
CUED_KINDS = ("staff_conduct", "misinformation", "beyond_control", "billing", "defect", "delay", "other")
# Contractions people type without the apostrophe ("cant", "doesnt", "im"): matched either way.
_LOOSE_APOSTROPHE = re.compile(r"(?<=\wn)'(?=t)|(?<=\bi)'(?=m|ve)|(?<=you)'(?=re)|(?<=that)'(?=s)|(?<=we)'(?=ve)")
# A bare "n't" (any contraction) cannot simply lose its apostrophe: "nt" ends "payment" and "agent". Without
# the apostrophe it is read only after the verbs that take it ("isnt", "dont", "wouldnt").
_BARE_NT = re.compile(r"(?<![A-Za-z])n't")
_NT_LOOSE = ("(?:n't|(?:(?<=\\bis)|(?<=\\bdo)|(?<=\\bca)|(?<=\\bwo)|(?<=\\bai)|(?<=\\bwas)|(?<=\\bare)|(?<=\\bdid)"
             "|(?<=\\bhas)|(?<=\\bhad)|(?<=\\bwere)|(?<=\\bdoes)|(?<=\\bhave)|(?<=\\bneed)|(?<=\\bmust)"
             "|(?<=\\bcould)|(?<=\\bwould)|(?<=\\bshould))nt)")


def _loosen(source: str) -> str:
    """Contractions typed without the apostrophe ("cant", "im") match too."""
    return _LOOSE_APOSTROPHE.sub("'?", _BARE_NT.sub(lambda _: _NT_LOOSE, source))


class LexiconError(ValueError):
    """A lexicon entry is not usable; `path` says which entry set and item."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


# Entry sets matched through the RE2 scanners (the large ones); the rest are small window patterns applied
# to a few characters around a match.
SCANNED = {
    "apology": "apology.expressions", "responsibility": "apology.responsibility",
    "third_party": "apology.third_party", "liability": "liability_admission", "blame": "blame",
    "empathy": "empathy", "solution": "solution", "solution_weak": "solution.weak",
    "prevention": "prevention", "legal_risk": "legal_risk", "frustration_cues": "frustration.cues",
    "trouble": "incident.trouble",
    **{f"incident.{kind}": f"incident.{kind}" for kind in CUED_KINDS},
    **{f"incident.{kind}.weak": f"incident.{kind}#weak" for kind in CUED_KINDS},
}
# The sets read from the customer's messages; every other scanned set is read from the agent's reply. Each
# side has its own RE2 set: one automaton over every pattern outgrew RE2's memory budget once the lexicon
# reached ~300 patterns (its cache was rebuilt on nearly every text: 1 ms per pass instead of 16 us), and
# a text is only ever asked about one side's sets.
CUSTOMER_SIDE = frozenset(name for name in SCANNED
                          if name in ("legal_risk", "frustration_cues", "trouble") or name.startswith("incident."))


@dataclass(frozen=True, slots=True)
class Lexicon:
    scanners: tuple[Scanner, Scanner]  # the reply side's, the customer side's
    set_ids: Mapping[str, tuple[int, int]]  # entry set name -> (scanner, set id in it)
    apology_negated_before: re.Pattern[str]
    apology_negated_after: re.Pattern[str]
    apology_affirmed: re.Pattern[str]
    pardon_followers: re.Pattern[str]
    object_stops: re.Pattern[str]
    generic_words: frozenset[str]
    liability_negated_before: re.Pattern[str]
    blame_negated_before: re.Pattern[str]
    empathy_negated_within: re.Pattern[str]
    solution_excluded: re.Pattern[str]
    prevention_excluded: re.Pattern[str]
    closing: re.Pattern[str]
    closing_unless: re.Pattern[str]
    incident_model: IncidentModel | None = None  # `incident.model`: the statistical second opinion
    reply_model: ReplyModel | None = None  # `reply_model`: second opinions on solution, prevention, blame

    def _hits(self, side: int, doc: Prepared) -> Scan:
        key = "scan.customer" if side else "scan.reply"
        scan = doc.memo.get(key)
        if not isinstance(scan, Scan):
            scan = self.scanners[side].scan(doc.text)
            doc.memo[key] = scan
        return scan

    def find(self, name: str, doc: Prepared) -> list[tuple[int, int]]:
        """Spans of the visible text where the named entry set matches (non-overlapping)."""
        side, set_id = self.set_ids[name]
        return self.scanners[side].find(set_id, doc.text, self._hits(side, doc), doc.clause_window)

    def has(self, name: str, doc: Prepared) -> bool:
        side, set_id = self.set_ids[name]
        return self.scanners[side].exists(set_id, doc.text, self._hits(side, doc), doc.clause_window)


def merge(base: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge a policy's lexicon additions into the shipped lexicon (lists are appended)."""
    out: dict[str, Any] = dict(base)
    for key, value in (extra or {}).items():
        if key in out and isinstance(out[key], Mapping) and isinstance(value, Mapping):
            out[key] = merge(out[key], value)
        elif key in out and isinstance(out[key], list) and isinstance(value, list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def compile_lexicon(data: Mapping[str, Any], incident_model: Mapping[str, Any] | None = None,
                    reply_model: Mapping[str, Any] | None = None) -> Lexicon:
    """Compile lexicon data (and the models its `incident.model` and `reply_model` name, already read);
    raises LexiconError naming the entry that does not compile."""
    macros = {str(k): str(v) for k, v in (data.get("macros") or {}).items()}

    def pat(path: str) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{a})" for a in _alternatives(path, _entry_set(data, path), macros))
                          or r"(?!x)x", FLAGS)

    scanners = (Scanner(), Scanner())
    set_ids: dict[str, tuple[int, int]] = {}
    for name, path in SCANNED.items():
        if path.endswith("#weak"):  # an incident kind's weak cues: a plain list under its entry set
            entries: Mapping[str, Any] = {"patterns": _weak_list(data, path.removesuffix("#weak"))}
        else:
            entries = _entry_set(data, path)
        side = int(name in CUSTOMER_SIDE)
        set_ids[name] = (side, scanners[side].add(name, _alternatives(path, entries, macros), FLAGS))
    for scanner in scanners:
        scanner.build()
    generic = _entry_set(data, "apology.generic_words")
    return Lexicon(
        scanners=scanners,
        set_ids=set_ids,
        apology_negated_before=pat("apology.negated_before"),
        apology_negated_after=pat("apology.negated_after"),
        apology_affirmed=pat("apology.affirmed"),
        pardon_followers=pat("apology.pardon_followers"),
        object_stops=pat("apology.object_stops"),
        generic_words=_words(path="apology.generic_words", items=generic.get("phrases") or ()),
        liability_negated_before=pat("liability_admission.negated_before"),
        blame_negated_before=pat("blame.negated_before"),
        empathy_negated_within=pat("empathy.negated_within"),
        solution_excluded=pat("solution.excluded"),
        prevention_excluded=pat("prevention.excluded"),
        closing=pat("incident.closing"),
        closing_unless=pat("incident.closing.unless"),
        incident_model=_model(incident_model, IncidentModel.from_data, "incident.model"),
        reply_model=_switched(_model(reply_model, ReplyModel.from_data, "reply_model"),
                              data.get("reply_model_signals")),
    )


def _switched(model: ReplyModel | None, switches: Any) -> ReplyModel | None:
    """`reply_model_signals: {blame: false}`: the signals a policy keeps to its phrases alone (a team that
    wants every blame finding to quote a phrase a lead wrote). A mapping, so a policy that extends another
    turns a signal back on by name."""
    if switches is None:
        return model
    key = "reply_model_signals"
    if not isinstance(switches, Mapping):
        raise LexiconError(key, "must map signal names to true or false, e.g. {blame: false}")
    for name, on in switches.items():
        if name not in MODEL_SIGNALS:
            raise LexiconError(f"{key}.{name}", f"unknown signal; the models read {', '.join(MODEL_SIGNALS)}")
        if not isinstance(on, bool):
            raise LexiconError(f"{key}.{name}", "must be true or false")
    if model is None:
        return None
    kept = {name: m for name, m in model.signals.items() if switches.get(name, True)}
    return ReplyModel(kept) if kept else None


def _model(data: Mapping[str, Any] | None, build: Callable[[Mapping[str, Any]], M], key: str) -> M | None:
    """A model from the JSON the lexicon's `key` named (None: it names none); a LexiconError at `key`."""
    if data is None:
        return None
    try:
        return build(data)
    except ValueError as exc:
        raise LexiconError(key, str(exc)) from None


def _weak_list(data: Mapping[str, Any], path: str) -> list[Any]:
    weak = _entry_set(data, path).get("weak") or []
    if not isinstance(weak, list):
        raise LexiconError(f"{path}.weak", "must be a list of patterns")
    return weak


def _entry_set(data: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise LexiconError(path, "missing from the lexicon")
        node = node[part]
    if not isinstance(node, Mapping):
        raise LexiconError(path, "must be a mapping with `phrases:` and/or `patterns:` lists")
    for key in ("phrases", "patterns"):
        if key in node and not isinstance(node[key], list):
            raise LexiconError(f"{path}.{key}", "must be a list")
    return node


def _alternatives(path: str, entries: Mapping[str, Any], macros: Mapping[str, str]) -> list[str]:
    """Each phrase and pattern of an entry set as a checked regular expression source."""
    alternatives: list[str] = []
    for i, phrase in enumerate(entries.get("phrases") or ()):
        if not isinstance(phrase, str) or not phrase.strip():
            raise LexiconError(f"{path}.phrases[{i}]", "must be a non-empty string")
        words = [re.escape(w) for w in phrase.replace("\u2019", "'").split()]
        alternatives.append(_loosen(r"\b" + r"\s+".join(words) + r"\b"))
    for i, pattern in enumerate(entries.get("patterns") or ()):
        if not isinstance(pattern, str) or not pattern:
            raise LexiconError(f"{path}.patterns[{i}]", "must be a non-empty string")
        expanded = _loosen(_expand(pattern, macros, f"{path}.patterns[{i}]"))
        try:
            re.compile(expanded, FLAGS)
        except re.error as exc:
            raise LexiconError(f"{path}.patterns[{i}]", f"not a valid regular expression: {exc}") from exc
        alternatives.append(expanded)
    return alternatives


def _expand(pattern: str, macros: Mapping[str, str], path: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.isdigit() or "," in name:
            return m.group(0)
        if name not in macros:
            raise LexiconError(path, f"unknown macro {{{name}}}; known: {', '.join(sorted(macros))}")
        return macros[name]

    return _MACRO.sub(sub, pattern)


def _words(path: str, items: Any) -> frozenset[str]:
    """A word list; YAML reads bare no/yes/on/off as booleans, so those must be quoted."""
    out = set()
    for i, word in enumerate(items):
        if not isinstance(word, str):
            raise LexiconError(f"{path}.phrases[{i}]", f"{word!r} is not text; quote it (YAML reads no/yes/on/off "
                                                       "as true/false)")
        out.add(word.lower())
    return frozenset(out)
