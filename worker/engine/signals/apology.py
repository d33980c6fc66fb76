"""Apology signals: is there an apology, is it generic or specific, empathy or responsibility, how many."""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.engine.lexicon import Lexicon
from worker.engine.text import Prepared

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_PARDON_CUES = frozenset({"sorry", "sry", "soz"})
# "Sorry we sent the wrong size", "sorry for our delay": the apology itself says who caused it.
_OWN_FAILURE = re.compile(
    r"\b(?:we|i)(?:'ve|\s+have|'d|\s+had)?\s+(?:\w+ly\s+)?(?:\w+ed|sent|made|got|gave|lost|took|forgot|"
    r"missed|kept|left|let|didn't|did\s+not|haven't|have\s+not|hadn't|weren't|wasn't|couldn't|failed|"
    r"overlooked|mixed|messed|dropped|put)\b"
    r"|\b(?:our|my)\s+(?!(?:policy|policies|terms|customers?|records|website\s+says|side\s+of)\b)\w+",
    re.IGNORECASE,
)
# "I regret to inform you that ...": what follows is the news, not the failure apologised for.
_BAD_NEWS = re.compile(r"(?:\w+\s+)?regret\s+to\s+(?:inform|say|tell|advise|let|report)")
# A colon or dash straight after the apology introduces what it is for.
_EXPLANATION = re.compile(r"\s*(?:[:;]|\s-+|-+\s)\s*(?=\w)")
_REFUSAL = re.compile(
    r"\b(?:can't|cannot|can\s+not|unable|not\s+able|no\s+longer|only|not\s+possible|(?:isn't|aren't|not)\s+"
    r"(?:available|possible|covered|eligible)|out\s+of\s+stock|no\s+(?:\w+\s+){1,3}(?:yet|available)|don't|doesn't|won't"
    r"|we\s+(?:do|can)\s+not)\b", re.IGNORECASE)
# "Sorry, but the damage charge stands", "sorry, but lockouts aren't covered", "Sorry, but we can't refund an
# App Store charge": a refusal after the apology that names what is refused makes it specific (DESIGN: the
# thing affected); "Sorry, but we can't extend that" names nothing.
_NAMED_REFUSAL = re.compile(
    r"[ \t]*(?:,[ \t]*)?but\s+(?:"
    r"(?!(?:we|i|you|it|that|this|they|there|he|she|unfortunately|sadly|as|if|since|because|what|everyone|everybody"
    r"|anyone|anybody|nobody|at|in|for|right|currently|our\s+(?:policy|policies|terms|system|rules)"
    r"|the\s+(?:policy|rules|system|terms))\b)"
    r"[\w'-]+(?:\s+[\w'-]+){0,5}?\s+(?:can't|cannot|can\s+not|won't|isn't|aren't|is\s+not|are\s+not|wasn't|weren't"
    r"|don't|doesn't|stands|still\s+stands|remains?|has\s+to|have\s+to|must|only)\b"
    r"|(?:we|i)(?:'re|\s+are|'m|\s+am)?\s+(?:can't|cannot|can\s+not|won't|don't|do\s+not|unable\s+to|not\s+able\s+to"
    r"|no\s+longer)\s+(?:[\w'-]+\s+){1,2}(?:the|your|an?|our|these|those)\s+[\w'-]+)",
    re.IGNORECASE)
# "Sorry, we don't price match online-only shops", "Sorry Dave, we can't say whether microbore will work":
# a refusal right after the apology that names what it refuses (a word beyond these and the lexicon's
# generic words) makes it specific; "Sorry, we can't do that one" names nothing.
_REFUSAL_CLAUSE_END = re.compile(r"[;:]|\s-+\s|[.!?](?:\s|$)")
_REFUSAL_LEAD = 50  # the refusal must open the clause: not "sorry, I know ..., but our system can't ..."
_REFUSAL_WORDS = frozenset({
    "but", "unfortunately", "afraid", "can't", "cannot", "won't", "don't", "doesn't", "aren't", "only",
    "unable", "able", "longer", "they", "do", "does", "did", "make", "give", "change", "offer", "provide",
    "accept", "allow", "agree", "refund", "extend", "process", "arrange", "honour", "honor", "guarantee",
    "promise", "promises", "exception", "exceptions", "currently", "moment", "policy", "policies", "terms",
    "conditions", "rules", "rule", "requirement", "requirements", "system", "side", "stage", "case", "that's", "we're",
    "i'm", "we'll", "i'll", "let", "us", "them",
})
# The words of the news itself that name nothing: "I regret to inform you that the decision stands".
_NEWS_VERBS = frozenset({"inform", "advise", "tell", "let", "report", "decision", "decisions", "stands", "stand",
                         "remains", "final"})
_SELF_BLAME = re.compile(r"(?:my|our)\s+bad|mea\s+culpa")
# "my bad, fixed now 👍", "My bad! Sorted it": the clause after is the fix, not the failure it names.
_DONE_CLAUSE = re.compile(
    r"[\W_]*+(?:(?:it'?s|it\s+is|that'?s|all|now|just)\s+)?(?:fixed|sorted|done|resolved|corrected|updated|changed|"
    r"amended|sent|resent|resending|sending|refunded)\b(?:\s+(?:it|that|now|up|for\s+you|again))*+[\W_]*+$",
    re.IGNORECASE)
# Possessive runs (`*+`) and no lookahead that rescans a run: a long run of spaces (a blanked HTML quote is
# one) must cost one pass, not one per position (bench/shapes.py).
_VOCATIVE = re.compile(r"(?<!\s)\s*+(?:,\s*+)?(?:[A-Z][a-z]+|@\w+)(?:\s++[A-Z][a-z]+)?"
                       r"(?:\s*+(?=[,!.:;])|\s*?(?=\s[^\w\s]))")
_LATE_COMMA = re.compile(r"(?<=\w)[^\w\n]*,")
# "Sent from my phone, sorry for any typos": a sign-off about the message itself, not an apology to the customer.
_SIGN_OFF = re.compile(r"\bsent\s+from\s+my\s+\w+|\breceived\s+(?:this|it)\s+(?:e-?mail\s+|message\s+)?in\s+error\b",
                       re.IGNORECASE)
# "Our office is closed from 24 to 28 December. We apologise for any inconvenience": a notice to everyone.
_CLOSED_NOTICE = re.compile(r"\b(?:is|are|will\s+be)\s+closed\s+(?:from|between|over\s+the|for\s+the|on\s+(?:\w+days|"
                            r"weekends|bank\s+holidays|public\s+holidays))\b", re.IGNORECASE)
# "My colleague gave you the wrong information, and I apologise for that": a pronoun object points back at a
# failure named earlier in the same sentence.
# The words that name what went wrong, and the admissions that name only whose fault it was.
_FAILURE_WORDS = (r"wrong|wrongly|incorrect|incorrectly|inaccurate|late|delayed|missed|forgot|forgotten|broken|damaged|"
                  r"faulty|defective|double-charged|"
                  r"overcharged|charged\s+twice|lost|rude|failed|didn't\s+turn\s+up|never\s+arrived|should\s+have|"
                  r"should've|(?:shouldn't|should\s+not|should\s+never)\s+have(?!\s+(?:happened|occurred|been\s+the\s+case))|out\s+of\s+date|outdated|inappropriate|bug|glitch")
_ADMISSION_WORDS = r"mistake|mistaken|error|oversight|unacceptable|fault"
_NAMED_BEFORE = re.compile(rf"\b(?:{_FAILURE_WORDS}|{_ADMISSION_WORDS})\b", re.IGNORECASE)
# ... or an ellipsis does: "We should have kept you informed, and I'm sorry we didn't."
_PRONOUN_OBJECT = re.compile(
    r"^\W*(?:(?:for|about)\s+(?:that|this|it)|that|this|it|(?:that\s+)?(?:we|i)\s+(?:didn't|did\s+not|weren't|wasn't|"
    r"haven't|hadn't|couldn't)(?:\s+do\s+(?:that|this|it|so))?)\W*$", re.IGNORECASE)
# What was wrong, after the apology; not the bare admission ("that was our mistake"), which names nothing.
_NAMED_AFTER = re.compile(rf"\b(?:{_FAILURE_WORDS})\b", re.IGNORECASE)
_BUT_OR_YOU = re.compile(r"[\W]*(?:but\b|(?:[\w'-]+\s+){0,3}?you(?:'ve|'d)?\s)", re.IGNORECASE)
# "Sorry about that Mike.", "Sorry for the mix-up Gavin": a name closing the object, straight after a noun
# (not "the issue with Outlook"), is the person addressed, not what was wrong.
_TRAILING_NAME = re.compile(r"(?<!\bwith)(?<!\bon)(?<!\bin)(?<!\bat)(?<!\bfrom)(?<!\bto)(?<!\bby)(?<!\bof)"
                            r"(?<!\bthe)(?<!\byour)(?<!\bour)(?<!\bmy)\s+(?-i:[A-Z][a-z]+|@\w+)\W*$")
# "Apologies in advance for the long email": an apology for the message itself.
_IN_ADVANCE = re.compile(r"\s*in\s+advance\b", re.IGNORECASE)
# A bare apology closing a clause that named the failure: "that's a bug on my end, sorry!", "5 days is far too
# long, and I'm sorry", "we don't deliver to Leh, sorry" (the seventh to seventeenth authors: specific).
_FAILURE_BEFORE = re.compile(
    rf"\b(?:{_FAILURE_WORDS}|{_ADMISSION_WORDS}|mistakes|errors|typo|outage|too\s+long|shouldn't\s+have|"
    # ... and what a refusal says cannot be had: "we don't deliver to Leh, sorry".
    r"didn't|did\s+not|don't|do\s+not|doesn't|can't|cannot|won't|wasn't|weren't|isn't|aren't|hasn't|haven't|"
    r"no\s+longer|out\s+of\s+stock|sold\s+out|non-refundable)\b",
    re.IGNORECASE)
_BARE_TAIL = re.compile(r"[ \t]*+(?:(?:again|too|though|about\s+(?:that|this)|for\s+(?:that|this))[ \t]*+)?"
                        r"(?:[.!?,;:)]|$)", re.IGNORECASE)
# "Sorry, but tickets are non-refundable once the bus departs", "I'm sorry, but the Standard plan's SLA is next
# business day": a statement after "but" whose subject names a thing (not "it", "that", "the answer").
_BUT_STATEMENT = re.compile(
    r"[ \t]*+(?:,[ \t]*+)?but\s+((?:[\w'-]+\s+){1,5}?)(?:is|are|was|were|has|have|need|needs|require|requires|"
    r"close|closes|start|starts|run|runs|apply|applies|cover|covers)\b", re.IGNORECASE)
_SUBJECT_FILLERS = frozenset({"the", "a", "an", "our", "your", "this", "that", "these", "those", "it", "its",
                              "all", "any", "some", "each", "every", "their", "his", "her", "my", "we", "i",
                              "you", "they", "there", "he", "she", "what", "which", "unfortunately",
                              "sadly", "currently", "still", "only", "just"})
# ... after a greeting or a sender's label ("Brackenford Council: Sorry, which permit do you have?").
_OPENERS = re.compile(r"^\W*(?:(?-i:[A-Z][\w&'-]*)(?:\s+(?-i:[A-Z][\w&'-]*)){0,3}:\s*)?"
                      r"(?:(?:oh|oops|ah|um|hmm|hi|hey|hello|and|but|so)\b\W*){0,2}(?:\w+\W*)?$", re.I)


@dataclass(frozen=True, slots=True)
class ApologyExpression:
    start: int
    end: int
    specific: bool
    responsibility: bool
    refusal: bool = False  # specific only because a refusal after it names the thing refused


@dataclass(frozen=True, slots=True)
class ApologyReading:
    kind: str  # none | generic | specific
    stance: str | None
    expressions: tuple[ApologyExpression, ...]

    @property
    def count(self) -> int:
        return len(self.expressions)

    def spans(self, *, generic_only: bool = False) -> list[tuple[int, int]]:
        return [(e.start, e.end) for e in self.expressions if not (generic_only and e.specific)]


MAX_EXPRESSIONS = 100
# Failures that are the company's by their nature: a specific apology for one implies responsibility.
COMPANY_FAILURES = frozenset({"defect", "staff_conduct", "misinformation"})


def read_apology(doc: Prepared, lex: Lexicon, *, company_at_fault: bool, incident: str | None = None,
                 third_party: bool = False) -> ApologyReading:
    """Find every apology expression that is not negated, quoted or a "sorry?" meaning pardon.

    Stance is responsibility when the reply says the company caused the problem, or when it apologises
    specifically for a failure that is the company's by nature (a faulty product, staff conduct, wrong
    information) and blames no third party.
    """
    text = doc.text
    found: list[ApologyExpression] = []
    for start, stop in lex.find("apology", doc):
        if len(found) >= MAX_EXPRESSIONS:
            break  # a reply that apologises a hundred times is over-apologising already
        s_start, s_end = doc.sentence(start)
        if _negated(text, start, stop, s_start, s_end, lex):
            continue
        if _SIGN_OFF.search(text, max(s_start, start - 40), min(s_end, stop + 40)):
            continue
        cue = text[start:stop].lower()
        obj = _object(text, stop, s_end, lex)
        if _is_pardon(text, start, stop, s_start, s_end, obj, lex):
            continue
        if _TRAILING_NAME.search(obj) and _WORD.search(_TRAILING_NAME.sub("", obj)):
            obj = _TRAILING_NAME.sub("", obj)
        if _IN_ADVANCE.match(obj):
            obj = ""
        if _SELF_BLAME.match(cue):
            if _DONE_CLAUSE.match(text, stop, s_end):
                obj = ""
            elif not _WORD.search(obj):
                obj = text[stop:s_end]  # "my bad, I sent you the wrong link": the clause after is the object
        words = _WORD.findall(obj.lower())
        bad_news = bool(_BAD_NEWS.match(text[start:stop + 40].lower()))
        own = bool(_OWN_FAILURE.search(obj))
        # A sorry that softens a refusal or a limit is generic ("Sorry, we can't do that one") unless the
        # refusal names what it refuses ("Sorry, the Aria only comes in grey": `_refusal_names`).
        softener = obj.lstrip().startswith(",") and bool(_REFUSAL.search(obj)) and not own
        if bad_news:  # "I regret to inform you that your claim has been declined": the news names the thing
            content = [w for w in words if _stem(w) not in lex.generic_words and w not in _NEWS_VERBS]
        else:
            content = [] if softener else [w for w in words if _stem(w) not in lex.generic_words]
        named = bool(content) or bool(_PRONOUN_OBJECT.match(obj) and _NAMED_BEFORE.search(text, s_start, start))
        refusal = False
        # Bare, or bare but for a name ("Sorry Oliver, that fee shouldn't have been applied": the name is blanked).
        if not named and not words and not bad_news and (
                _BARE_TAIL.match(text, stop) or (obj and not obj.strip() and _BARE_TAIL.match(text, stop + len(obj)))):
            # Named before the apology, in the same sentence: "that's a bug on my end, sorry!".
            lead = text[s_start:start]
            named = bool(_FAILURE_BEFORE.search(lead)) and any(
                _stem(w) not in lex.generic_words and w not in _REFUSAL_WORDS and w not in _SUBJECT_FILLERS
                for w in _WORD.findall(_VOCATIVE.sub(" ", lead, count=1).lower()) if len(w) > 2)
            # ... or named in the rest of its sentence.
            named = named or _named_after(doc, stop)
        if not named and not bad_news:
            statement = _BUT_STATEMENT.match(text, stop + len(obj) if not softener else stop, s_end)
            if statement is not None:
                subject = [w for w in _WORD.findall(statement.group(1).lower()) if w not in _SUBJECT_FILLERS]
                refusal = named = bool(subject) and all(_stem(w) not in lex.generic_words for w in subject[-1:])
        if not named and (softener or (not words and not bad_news)):
            # Bounded: the refusal is read in the clause after the apology, not the rest of a long sentence.
            after = stop if softener else stop + len(obj)
            refusal = named = (bool(_NAMED_REFUSAL.match(text, after, min(s_end, after + 200)))
                               or _refusal_names(text, after, s_end, lex))
        if not named and _CLOSED_NOTICE.search(text, max(0, start - 80), start):
            continue
        end = stop + len(obj.rstrip(" \t\n,.!?;:-\"'"))
        found.append(ApologyExpression(start, max(end, stop), specific=named, responsibility=own, refusal=refusal))
    if not found:
        return ApologyReading("none", None, ())
    kind = "specific" if any(e.specific for e in found) else "generic"
    # A refusal names what is refused, not a failure of ours: it implies no responsibility.
    implied = (any(e.specific and not e.refusal for e in found) and incident in COMPANY_FAILURES
               and not third_party)
    responsible = company_at_fault or implied or any(e.responsibility for e in found)
    return ApologyReading(kind, "responsibility" if responsible else "empathy", tuple(found))


def _named_after(doc: Prepared, stop: int) -> bool:
    """Whether the rest of a bare apology's sentence names the failure: "Sorry, that timetable should have been
    taken down", "I'm sorry, that's our mistake and it's why you got the wrong size" (not the next sentence: "My
    apologies. Entering your room was a failure by our team" the first six authors read as generic; nor a bare
    "Sorry, that was our mistake", which names no failure to the twenty-first)."""
    _, s_end = doc.sentence(stop - 1)
    # Not "Sorry, but you should have read the terms": a failure the reply puts on the customer.
    return not _BUT_OR_YOU.match(doc.text, stop, s_end) and bool(_NAMED_AFTER.search(doc.text, stop, s_end))


def _refusal_names(text: str, start: int, s_end: int, lex: Lexicon) -> bool:
    """Whether the clause after an apology opens with a refusal that names what it refuses."""
    end = min(s_end, start + 200)
    stop = _REFUSAL_CLAUSE_END.search(text, start, end)
    clause = text[start:stop.start() if stop else end]
    cue = _REFUSAL.search(clause)
    if cue is None or cue.start() > _REFUSAL_LEAD:
        return False
    words = _WORD.findall(_VOCATIVE.sub(" ", clause, count=1).lower())
    return any(_stem(w) not in lex.generic_words and w not in _REFUSAL_WORDS for w in words)


def _stem(word: str) -> str:
    return word[:-2] if word.endswith("'s") else word


def _negated(text: str, start: int, end: int, s_start: int, s_end: int, lex: Lexicon) -> bool:
    window_start = max(s_start, start - 48)
    around = text[window_start:min(s_end, end + 24)]
    if lex.apology_affirmed.search(around):
        return False
    if lex.apology_negated_before.search(text[window_start:start]):
        return True
    return bool(lex.apology_negated_after.search(text[end:min(s_end, end + 32)]))


def _object(text: str, start: int, s_end: int, lex: Lexicon) -> str:
    """The words after the apology that say what it is for, up to the end of the clause.

    A name right after the apology ("Sorry Dev, ...") is the person addressed, not the object; once the
    object has words, a comma ends it ("sorry for the trouble, the restaurant is running late").
    """
    rest = text[start:min(s_end, start + 160)]
    vocative = _VOCATIVE.match(rest)
    offset = vocative.end() if vocative else 0
    lead = _EXPLANATION.match(rest, offset)  # "I'm so sorry: the fee was wrong", "sorry - our driver ..."
    if lead:
        offset = lead.end()
    rest = rest[offset:]
    stop = lex.object_stops.search(rest)
    if stop:
        rest = rest[: stop.start()]
    comma = _LATE_COMMA.search(rest)
    if comma:
        rest = rest[: comma.start()]
    return " " * offset + rest


def _is_pardon(text: str, start: int, end: int, s_start: int, s_end: int, obj: str, lex: Lexicon) -> bool:
    """"Sorry, which order was that?": an objectless sorry that opens a clarifying question."""
    if text[start:end].lower() not in _PARDON_CUES:
        return False
    if not _OPENERS.match(text[s_start:start]):
        return False
    follow = text[end:s_end]
    if not lex.pardon_followers.search(follow[:48]):
        return False
    words = _WORD.findall(obj.lower())
    if words and words[0] in ("for", "about", "to", "that", "if"):
        return False
    return "?" in text[end:s_end + 1] or bool(re.match(r"\W*i\s+(?:didn't|did not|don't)\b", follow, re.I))
