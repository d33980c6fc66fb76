"""The customer's side: what the conversation is about, how frustrated they are, whether law is in play.

Frustration combines VADER (a lexicon-and-rules sentiment model tuned for short, informal text: it reads
capitals, "!!!", "but" and negation itself) with cues a sentiment model cannot know about support:
"third time", "still not", threats to leave.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from worker.engine.lexicon import CUED_KINDS, Lexicon
from worker.engine.signals.incident_model import Evidence, IncidentModel, features
from worker.engine.signals.sentiment import compound as sentiment_compound
from worker.engine.text import Prepared

_OTHER_WEIGHT = 0.3  # a question alone says little when a failure is also mentioned
_MAX_SENTIMENT_CHARS = 400  # VADER is linear in words; the opening and the close carry the mood
_PER_CUE = 0.25  # the share of the remaining calm one frustration cue takes (see _frustration)
_UPPER_WORD = re.compile(r"\b[A-Z]{3,}\b")
_WORDS = re.compile(r"\b[A-Za-z]{2,}\b")


@dataclass(frozen=True, slots=True)
class CustomerReading:
    """What one customer message says; computed once per message and reusable across replies."""

    kind_scores: tuple[tuple[str, float], ...]
    trouble: bool
    legal_risk: bool
    frustration: float
    closing: bool = False  # "ok thanks, all sorted": the customer has closed the matter
    incident_evidence: Evidence | None = None  # for the incident model, when the lexicon has one
    language: str | None = None  # as the policy's language check named it (None: not checked or too short)


def read_customer_message(doc: Prepared, lex: Lexicon) -> CustomerReading:
    """Which incident kinds this message mentions (each once, by its strongest cue), and how it feels."""
    evidence = lex.incident_model.evidence(features(doc.text)) if lex.incident_model is not None else None
    if lex.closing.search(doc.text) and not lex.closing_unless.search(doc.text):
        return CustomerReading(kind_scores=(), trouble=False, legal_risk=lex.has("legal_risk", doc),
                               frustration=_frustration(doc, lex), closing=True,
                               incident_evidence=evidence)
    strong_hits: dict[str, bool] = {}
    for kind in CUED_KINDS:
        if lex.has(f"incident.{kind}", doc):
            strong_hits[kind] = True
        elif lex.has(f"incident.{kind}.weak", doc):
            strong_hits[kind] = False
    asking = strong_hits.get("other", False)
    scores = []
    for kind, strong_hit in strong_hits.items():
        if kind == "other":
            scores.append((kind, _OTHER_WEIGHT))
        elif strong_hit:
            scores.append((kind, 1.0))
        elif not asking:  # a request that merely mentions a bill or a wait is a request
            scores.append((kind, 0.5))
    return CustomerReading(
        kind_scores=tuple(scores),
        trouble=lex.has("trouble", doc),
        legal_risk=lex.has("legal_risk", doc),
        frustration=_frustration(doc, lex),
        incident_evidence=evidence,
    )


def _frustration(doc: Prepared, lex: Lexicon) -> float:
    """How upset the message reads, 0-1: VADER's negativity and the lexicon's cues, each cue closing a
    quarter of the gap that remains (a noisy-or), so one "Disgraceful." or "third time" counts, three make a
    customer plainly upset (>= 0.6, where the presets' upset-customer rules start) and none alone reaches 1.

    VADER alone misses most complaint language ("disgraceful", "never turned up", "anyone there?" score 0),
    and the earlier linear mix left 99% of the corpora's customers under 0.6, so those rules never fired.
    """
    sample = doc.text.strip()
    if not sample:
        return 0.0
    if len(sample) > _MAX_SENTIMENT_CHARS:
        sample = sample[:_MAX_SENTIMENT_CHARS // 2] + " " + sample[-_MAX_SENTIMENT_CHARS // 2:]
    negativity = max(0.0, -sentiment_compound(sample))
    cues = min(6, len(lex.find("frustration_cues", doc)))
    words = len(_WORDS.findall(sample))
    shouting = min(0.3, len(_UPPER_WORD.findall(sample)) / words) if words else 0.0
    calm = (1.0 - 0.8 * negativity) * (1.0 - _PER_CUE) ** cues * (1.0 - shouting)
    return round(min(1.0, 1.0 - calm), 2)


def combine(readings: Sequence[CustomerReading], priority: Sequence[str],
            model: IncidentModel | None = None) -> tuple[str, float, bool]:
    """Incident, frustration and legal risk of the customer's messages so far (newest last); the
    incident model, if any, overrules the cues' incident when it is confident of another."""
    if not readings:
        return "none", 0.0, False
    incident, cued, frustration, legal = _combine(readings, priority)
    if model is not None:
        evidence = [r.incident_evidence for r in readings if r.incident_evidence is not None]
        incident = model.overrule(incident, evidence, cued=cued)
    return incident, frustration, legal


def _combine(readings: Sequence[CustomerReading], priority: Sequence[str]) -> tuple[str, bool, float, bool]:
    """Incident (and whether the lexicon read it firmly: a strong cue named it, or the customer closed the
    matter), frustration, legal risk."""
    if readings[-1].closing:  # thanked and done: nothing left to resolve
        return "none", True, readings[-1].frustration, any(r.legal_risk for r in readings)
    scores: dict[str, float] = {}
    for age, reading in enumerate(reversed(readings)):
        weight = 1.0 if age == 0 else 0.6
        for kind, score in reading.kind_scores:
            scores[kind] = scores.get(kind, 0.0) + weight * score
    failures = {k: v for k, v in scores.items() if k != "other"}
    best = 0.0
    if failures:
        best = max(failures.values())
        incident = next(k for k in priority if failures.get(k) == best)
    elif "other" in scores:
        incident = "other"
    elif any(r.trouble for r in readings):
        incident = "defect"  # a complaint that names no more specific failure
    else:
        incident = "none"  # no failure, no question, no request: nothing to resolve yet
    latest = readings[-1].frustration
    earlier = max((r.frustration for r in readings[:-1]), default=0.0)
    frustration = round(max(latest, 0.8 * earlier), 2)
    return incident, best >= 1.0, frustration, any(r.legal_risk for r in readings)
