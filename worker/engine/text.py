"""What a reader of a message actually sees, with a map back to the body as received.

Detection runs on `Prepared.text`: the visible text of the body, with quoted earlier emails, signatures
and quoted phrases blanked out (replaced by spaces, so every index still points at the same character)
and typographic punctuation folded to ASCII one-for-one. `Prepared.span` maps an index range of that text
back to the exact character range of the body as the helpdesk sent it, HTML included, so findings
highlight what the agent wrote.

Quoted replies and signatures are found by `mail-parser-reply`, a library made for that job; this module
only maps its answer back onto character offsets.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache
from html.entities import name2codepoint
from html.parser import HTMLParser

from mailparser_reply.parser import EmailMessage

# One-for-one folds, so offsets survive: typographic apostrophes and quotes, odd spaces.
_FOLD = str.maketrans({
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u200b": " ", "\t": " ", "\r": " ",
    "\u2013": "-", "\u2014": "-",
    "\u2028": "\n", "\u2029": "\n", "\x85": "\n",  # Unicode's line and paragraph separators, and NEL
})

# Most texts hold none of those characters; finding that out is far cheaper than `translate`.
_FOLDABLE = re.compile("[" + re.escape("".join(map(chr, _FOLD))) + "]")

_WHITESPACE_TO_SPACE = str.maketrans("\n\r\t", "   ")  # HTML source line breaks are not visible breaks
_NOT_NEWLINE = re.compile(r"[^\n]")
_QUOTED_LINE = re.compile(r"^[ \t]*>.*$", re.MULTILINE)
# A phrase in double quotes inside one line: the agent citing someone else's words.
_QUOTED_PHRASE = re.compile(r'"[^"\n]{1,300}"')
# `*+`: a line of spaces (a blanked HTML quote is one long line) must not be rescanned per split.
_MAIL_CUES = re.compile(
    r"^[ \t]*+(?:on\b.{0,200}(?:\n.{0,80})?\bwrote:|from:|sent:|-{2,}|_{5,}|sent from my|get outlook|"
    r"(?:best|kind|warm(?:est)?|many)?[ \t]*regards|thanks,|thank you,|best,|cheers,|sincerely|"
    r"all the best|disclaimer|confidential)",
    re.IGNORECASE | re.MULTILINE,
)
# A mail footer's legal notice, from the line it starts on: "This email and any attachments are
# confidential ...", "CONFIDENTIALITY NOTICE: ...", "If you have received this message in error, we apologise
# ...". mail-parser-reply knows only notices headed "Disclaimer:" or "Confidential:"; the rest were read as
# the agent's words (an apology, a lawyer) in every email they ended.
# ("Important note:" is left alone: agents head their own key point with it.) A helpdesk's reply delimiter
# ("##- Please type your reply above this line -##", in any language) ends the writer's words the same way:
# what follows is the notification the customer answered.
_DELIMITER = r"##-[^\n]*-##[ \t]*$"
_FOOTER_START = re.compile(
    rf"^[ \t]*+{_DELIMITER}|"
    r"^[ \t*_]*+(?:(?:confidentiality|legal|email|e-mail)\s+(?:notice|statement|disclaimer|warning)\b|"
    r"disclaimer[ \t]*(?::|$)|confidential(?:ity)?\s*:|"
    r"(?:this|the\s+information\s+(?:contained\s+)?in\s+this|the\s+contents?\s+of\s+this)\s+"
    r"(?:e-?mail|message|communication|transmission)\b[^\n]{0,80}?\b(?:confidential|privileged|intended\s+"
    r"(?:solely|only|exclusively)\s+for|intended\s+for\s+the\s+(?:named\s+)?(?:addressee|recipient))\b|"
    r"if\s+you\s+(?:have\s+)?(?:received|are\s+not\s+the\s+intended)\b[^\n]{0,60}?\b(?:in\s+error|recipient)\b|"
    # A regulated firm's footer ("Authorised and regulated by the Solicitors Regulation Authority"): a
    # customer's signature is not a legal threat.
    r"(?:authori[sz]ed\s+and\s+)?regulated\s+by\s+the\s+[^\n]{0,80}?\b(?:authority|commission|regulator|board|council)\b)",
    re.IGNORECASE | re.MULTILINE)
# A sender's liability notice about the mail itself, wherever its line starts ("Lumina Home Ltd accepts no
# liability for loss or damage arising from this email"): found anywhere, cut from the start of its line.
_LIABILITY_NOTICE = re.compile(
    r"\b(?:accepts?|shall\s+not\s+accept|cannot\s+accept|can\s+accept)\s+no\s+(?:liability|responsibility)\b"
    r"[^\n]{0,160}?\b(?:this\s+(?:e-?mail|message|communication|transmission)|e-?mail\s+transmission|viruses?)\b",
    re.IGNORECASE)
# A notification opened by a helpdesk's reply delimiter, and the rules of dashes between its comments.
_NOTIFICATION_START = re.compile(rf"\s*+{_DELIMITER}", re.MULTILINE)
_COMMENT_RULE = re.compile(r"^[ \t]*+-{10,}[ \t]*$", re.MULTILINE)
# A survey or mailing footer under the reply ("How did we do? Rate this reply", "Don't want these emails?
# Unsubscribe"): the helpdesk's words, not the agent's; a "We're sorry if we fell short" in it is no apology.
# Only in the last few lines: a recall notice may open "You are receiving this email because ...".
_TAIL_FOOTER_START = re.compile(
    r"^[ \t*_]*+(?:how\s+(?:did\s+we\s+do|would\s+you\s+rate)\b|rate\s+(?:this|our|your)\s+(?:reply|response|support|"
    r"service|experience|conversation|chat)\b|(?:don't|do\s+not)\s+want\s+(?:these|to\s+receive|to\s+get)\b|"
    r"you\s+are\s+receiving\s+this\s+(?:e-?mail|message)\b|unsubscribe\s*:)",
    re.IGNORECASE | re.MULTILINE)
_TAIL_CUES = ("how did we do", "how would you rate", "rate this", "rate our", "rate your", "want these",
              "want to receive", "want to get", "receiving this", "unsubscribe")  # a cheap look first
_TAIL_FOOTER_CHARS = 400  # at most this much text (not counting spaces) from such a footer to the end
# A signature block right above such a footer: up to four short lines after a blank line, with no sentence
# in them and mostly capitalised words ("Jo Bloggs", "Senior Associate | Bloggs & Partners Solicitors",
# "Head of Customer Care"; not "Your refund is on its way", a reply typed without its full stop).
_SIGNATURE_LINE = re.compile(r"[^\n.!?]{1,70}[^\n.!?:]?")
_LINE_WORD = re.compile(r"[^\W\d_][\w'&-]*")
# An apology in single quotes, someone else's words: the courier's 'Sorry we missed you' card, the "three
# 'sorry for the inconvenience' emails" a customer had. Opened after a space or bracket and before a letter,
# closed after a letter or stop and before no letter, so apostrophes ("we'll", "customers' orders") never
# pair. Only apologies: other single-quoted words are what a form or a button says ("choose 'Pet Friendly'
# when you book"), which the reply does mean.
_APOLOGY_WORD = re.compile(r"sorry|apolog", re.IGNORECASE)
_SINGLE_QUOTED_PHRASE = re.compile(
    r"'(?<!\w')(?<!'')(?=[A-Za-z])(?=[^'\n]{0,120}?\b(?:sorry|apolog))[^'\n]{1,120}?(?<=[\w.!?,])'(?![\w'])",
    re.IGNORECASE)
# A link's path and query: words in it ("/articles/4410-sorry-your-parcel-is-late", "?sorry=1") are no one's
# words. Blanked to underscores, not spaces, so the link is still one token (the lexicon reads a link as
# weak evidence of a solution); the trailing stop of a sentence stays outside.
_URL_PATH = re.compile(r"(?:\bhttps?://|\bwww\.)[^\s/<>\"]+(/[^\s<>\"]*?)(?=[.,;:!?)\]]*(?:\s|$))")
_MAIL_PARSER_MAX_CHARS = 20_000
_MAIL_PARSER_MAX_LINES = 300
# The library's sign-offs (its SIGNATURE_REGEX) and what may follow one on its line: nothing, or a name.
_SIGN_OFF = re.compile(r"(?:> ?)*(?:best regards|kind regards|thanks|thank you|best|all the best|regards)\s*,?(.*)",
                       re.IGNORECASE)
_SIGN_OFF_NAME = re.compile(r"(?:(?:[A-Z^@~\-][\w.'\u2019&-]*|the|team|and|from|of|&)[ \t,]*){0,6}")
# A sentence in the writer's own voice: "I" as a word and a full stop, question or exclamation mark after it.
_FIRST_PERSON_SENTENCE = re.compile(r"\bI(?:'m|'ve|'ll|'d)?\b[^\n]*[.!?]")
# A quoted email's header, whatever language the quoting mail client speaks: the customer's German Gmail
# ("Am … schrieb …:"), a French Outlook ("De : … Envoyé : …"), Gmail's plain-text part of a bold Outlook header
# ("*From:* … *Sent:*"), Gmail's older "2026-03-03 10:14 GMT+00:00 Name <address>:". mail-parser-reply is run
# for English only (its other languages' sign-offs would cut English replies), so these are cut here, on every
# message, as the library cuts its own.
_REPLY_HEADER = re.compile(
    r"^[ \t>]*+(?:"
    r"(?:on|le|el|il\s+giorno|em|dne|w\s+dniu)\b[^\n]{0,200}(?:\n[^\n]{0,80})?\b"
    r"(?:wrote|a\s+\u00e9crit|escribi\u00f3|ha\s+scritto|escreveu|napsal\(a\)|napsal|napisa\u0142\(a\)|napisa\u0142)"
    r"[ \t]*:[ \t]*$|"
    # German, Dutch and Scandinavian clients name the writer after the verb: "Am … schrieb Jo <jo@…>:".
    r"(?:am|op|den)\b[^\n]{0,200}\b(?:schrieb|schreef|skrev)[ \t][^\n]{1,120}:[ \t]*$|"
    r"[*_]*(?:from|von|de|da|van|fr\u00e5n|fra|od)[ \t]*:[*_]*[ \t][^\n]*\n[ \t>]*[*_]*"
    r"(?:sent|date|gesendet|datum|envoy\u00e9|enviado|inviato|data|verzonden|verstuurd|skickat|sendt|"
    r"odesl\u00e1no|wys\u0142ano)[ \t]*:|"
    r"-{3,}[ \t]*(?:original\s+message|urspr\u00fcngliche\s+nachricht|message\s+d'origine|mensaje\s+original|"
    r"messaggio\s+originale|oorspronkelijk\s+bericht|originalmeddelande|original\s+meddelelse|forwarded\s+message)|"
    r"\d{4}-\d{2}-\d{2}[ \t]+\d{1,2}:\d{2}[^\n]{0,120}<[^<>\s]+@[^<>\s]+>[ \t]*:[ \t]*$|"
    r"(?:[\w.'@-]+[ \t]+){1,4}wrote\s+on\b[^\n]{1,80}:[ \t]*$|"
    r"quoting\s+[^\n]{1,120}:[ \t]*$)",
    re.IGNORECASE | re.MULTILINE)
# Every alternative starts with one of [.!?\n]; the leading lookahead lets `re` skip other positions fast.
_SENTENCE_END = re.compile(r"(?=[.!?\n])(?:[.!?]+(?=[\s\"')\]]|$)|\n\s*\n|\n(?=\s*(?:[-*\u2022]|\d+[.)])\s)|\n)")

_BLOCK_TAGS = frozenset({
    "p", "br", "div", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "blockquote", "pre", "section", "article", "header", "footer", "dd", "dt",
})
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template"})
_QUOTE_CLASSES = re.compile(r"gmail_quote|gmail_signature|moz-cite-prefix|moz-signature|yahoo_quoted|"
                            r"divRplyFwdMsg|OutlookMessageHeader|zendesk_quote|freshdesk_quote|signature",
                            re.IGNORECASE)
# Outlook's reply header is a block of its own ("From: … Sent: … To: … Subject:") and the quoted email follows
# it as siblings, not inside it: from one of these on, everything to the end of the body is the earlier mail.
_QUOTE_TO_END = re.compile(r"divRplyFwdMsg|OutlookMessageHeader|appendonsend", re.IGNORECASE)
# What introduces quoted words: "Jo wrote:", "You said:" before a blockquote, or "Jo wrote:" opening it.
_ATTRIBUTION = re.compile(r"\b(?:wrote|writes|said|says|a\s+\u00e9crit|schrieb)\s*:\s*$", re.IGNORECASE)
_ATTRIBUTION_INSIDE = re.compile(r"^\s*[^\n]{0,120}\b(?:wrote|writes|said)\s*:", re.IGNORECASE)
# A line of a list: the agent's own steps set off in a blockquote ("1. Open Settings", "- Tap Reset").
_LIST_LINE = re.compile(r"(?m)^[ \t]*+(?:\d{1,2}[.)]|[-*\u2022])[ \t]++\S")
_MAX_BARE_QUOTES = 20
_AFTER_QUOTE_CHARS = 2000
# A helpdesk's notification email lists the ticket's comments newest first, each in one of these: the first is
# what was just written, from the second on it is the thread's history (Zendesk's "zd-comment").
_THREAD_COMMENT = re.compile(r"\bzd-comment\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message body made ready for detection."""

    body: str
    text: str
    # Body offset where each text character starts and ends; None means text and body share offsets.
    starts: list[int] | None = None
    ends: list[int] | None = None
    sentence_bounds: list[int] = field(default_factory=list)
    # Per-text results computed once and shared by the signal readers (the lexicon's literal scan).
    memo: dict[str, object] = field(default_factory=dict, compare=False)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) range of `text` to the same characters of `body`."""
        if self.starts is None or self.ends is None:
            return start, end
        if end <= start:
            pos = self.starts[start] if start < len(self.starts) else len(self.body)
            return pos, pos
        return self.starts[start], self.ends[end - 1]

    def sentence(self, pos: int) -> tuple[int, int]:
        """The [start, end) bounds of the sentence holding text index `pos`."""
        bounds = self.sentence_bounds
        i = bisect_right(bounds, pos)
        start = bounds[i - 1] if i > 0 else 0
        end = bounds[i] if i < len(bounds) else len(self.text)
        return start, end

    def clause_window(self, pos: int) -> tuple[int, int]:
        """Where a lexicon pattern around `pos` may match: its sentence, and the next if it runs on."""
        start, end = self.sentence(pos)
        if end - start < 40 and end < len(self.text):
            end = self.sentence(end)[1]
        return start, end

    def sentences(self) -> list[tuple[int, int]]:
        edges = [0, *self.sentence_bounds, len(self.text)]
        out = []
        for a, b in itertools.pairwise(edges):
            if self.text[a:b].strip():
                out.append((a, b))
        return out

    @property
    def visible(self) -> str:
        return self.text


def prepare(body: str, fmt: str = "text") -> Prepared:
    """Turn a body as received into detection-ready text with an offset map."""
    if fmt == "html":
        text, starts, ends = _html_to_text(body)
    else:
        text, starts, ends = body, None, None
    if _FOLDABLE.search(text):
        text = text.translate(_FOLD)
    text = _blank(text, _QUOTED_LINE)
    text = _cut_quoted_reply_and_signature(text)
    if ":" in text or "---" in text:  # every reply header holds one (most chat replies hold neither)
        text = _cut_at_reply_header(text)
    if "##-" in text:
        text = _cut_notification_history(text)
    text = _cut_footer(text)
    text = _blank(text, _QUOTED_PHRASE)
    if "'" in text and _APOLOGY_WORD.search(text):
        text = _blank(text, _SINGLE_QUOTED_PHRASE)
    text = _blank_url_paths(text)
    bounds = [m.end() for m in _SENTENCE_END.finditer(text)]
    return Prepared(body=body, text=text, starts=starts, ends=ends, sentence_bounds=bounds)


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    if not pattern.search(text):
        return text
    return pattern.sub(lambda m: _spaces(m.group()), text)


def _spaces(s: str) -> str:
    return _NOT_NEWLINE.sub(" ", s)


def _blank_from(text: str, start: int) -> str:
    """The text with everything from `start` on blanked (line breaks kept, so offsets and lines still map)."""
    return text[:start] + _spaces(text[start:])


def _cut_quoted_reply_and_signature(text: str) -> str:
    """Blank everything from the first quoted-reply header or signature onwards.

    mail-parser-reply works on a normalised copy (lines stripped); its cut point is mapped back to the
    line it starts on, which is the same line in our text because normalisation keeps lines one-for-one.
    """
    if text.count("\n") < 1 or not _MAIL_CUES.search(text):
        return text
    if len(text) > _MAIL_PARSER_MAX_CHARS or text.count("\n") > _MAIL_PARSER_MAX_LINES:
        return text  # the library's regexes are super-linear on huge inputs; prepare's header cut serves them
    message = EmailMessage(text=text, languages=["en"], keep_hyphen_lists=True, **_mail_patterns()).read()
    if not message.replies:
        return text
    normalised = message.text
    lines = text.split("\n")
    first = message.replies[0]
    cut = _first_reply_end(normalised, first.content, first.signatures, len(message.replies) > 1)
    if cut is None:
        return text
    # Blank from the line the cut starts: a signature's own line, or the line after the reply's last one
    # (the reply's text ends mid-line, right before its line break, and that line is still the agent's).
    line_no = normalised.count("\n", 0, cut) + (0 if cut == 0 or normalised[cut - 1] == "\n" else 1)
    if line_no == 0:
        return text  # never blank the opening line: a one-line reply is all reply
    if normalised.split("\n", line_no)[:line_no] != [line.strip() for line in lines[:line_no]]:
        return text  # the library re-flowed lines before the cut; keep everything rather than guess
    offset = sum(len(line) + 1 for line in lines[:line_no])
    return _blank_from(text, offset)


def _cut_footer(text: str) -> str:
    """Blank a mail footer's legal notice or a helpdesk's reply delimiter and everything after it (the rest
    of the footer, or the quoted email below). Not when it is where the text starts: then it is what the
    writer chose to say."""
    low = text.lower()
    tail = _TAIL_FOOTER_START.search(text) if any(cue in low for cue in _TAIL_CUES) else None
    starts = [m.start() for m in (_FOOTER_START.search(text), tail)
              if m is not None and (m.re is _FOOTER_START
                                    or len("".join(text[m.start():].split())) <= _TAIL_FOOTER_CHARS)]
    if ("liabilit" in low or "responsibilit" in low) and (notice := _LIABILITY_NOTICE.search(text)) is not None:
        starts.append(text.rfind("\n", 0, notice.start()) + 1)
    if not starts or not text[:min(starts)].strip():
        return text
    return _blank_from(text, _signature_above(text, min(starts)))


def _cut_notification_history(text: str) -> str:
    """A helpdesk's notification email, opened by its reply delimiter, lists the thread's comments newest first
    between rules of dashes: the first comment is what was just written, the rest is the thread's history."""
    delimiter = _NOTIFICATION_START.match(text)
    if delimiter is None:
        return text
    rules = [m.start() for m in _COMMENT_RULE.finditer(text, delimiter.end())]
    return _blank_from(text, rules[1]) if len(rules) > 1 else text


def _signature_above(text: str, start: int) -> int:
    """Where a signature block directly above `start` (a line start) begins, or `start` if there is none."""
    lines = text[:start].split("\n")[:-1]  # the complete lines above
    n = len(lines)
    while n > 0 and len(lines) - n < 4 and _signature_line(lines[n - 1].strip()):
        n -= 1
    if n == len(lines) or n == 0 or lines[n - 1].strip() or not "".join(lines[:n]).strip():
        return start  # no block, or not set off by a blank line, or nothing above it
    return sum(len(line) + 1 for line in lines[:n])


def _signature_line(line: str) -> bool:
    if not line or not _SIGNATURE_LINE.fullmatch(line):
        return False
    words: list[str] = _LINE_WORD.findall(line)
    return 2 * sum(w[0].isupper() for w in words) >= len(words)


def _blank_url_paths(text: str) -> str:
    if "://" not in text and "www." not in text:
        return text
    return _URL_PATH.sub(lambda m: m.group()[:m.start(1) - m.start()] + "_" * len(m.group(1)), text)


@lru_cache(maxsize=1)
def _mail_patterns() -> dict[str, re.Pattern[str]]:
    """The library's three patterns, built once: it rebuilds them for every message it is given, and they
    depend only on the options, which are the same for every message here."""
    model = EmailMessage(text="", languages=["en"], keep_hyphen_lists=True)
    return {"_header_regex": model.HEADER_REGEX, "_disclaimers_regex": model.DISCLAIMERS_REGEX,
            "_signature_regex": model.SIGNATURE_REGEX}


def _cut_at_reply_header(text: str) -> str:
    """Blank from the first quoted email's header line ("On ... wrote:", "Am ... schrieb:", "From: ... Sent:"):
    the headers the library does not know, and every header of inputs too large for the library (which
    skips them), in one pass for every message."""
    m = _REPLY_HEADER.search(text)
    if m is None or m.start() == 0:
        return text
    return _blank_from(text, m.start())


def _first_reply_end(normalised: str, content: str, signature: str, has_quote: bool) -> int | None:
    start = normalised.find(content) if content else -1
    if start < 0:
        return None
    end = start + len(content)
    if signature:
        sig_at = normalised.find(signature, start)
        if sig_at >= 0:
            real = _signature_start(normalised, sig_at)
            if real == sig_at:  # the library's sign-off is one
                end = min(end, sig_at)
            elif real is not None:  # a later line is: all before it is the reply
                end = real
            else:  # none is: what the library took for a signature is the reply
                end = sig_at + len(signature)
    if not has_quote and end >= len(normalised.rstrip()):
        return None
    return end


def _signature_start(normalised: str, pos: int) -> int | None:
    """Where the first real signature at or after `pos` starts, by the library's own pattern.

    The library takes any line that starts "Thanks," or "Best," for a sign-off, and everything after it
    for the signature: "Thanks, got it. For future reference, ..." lost the whole reply. A sign-off line
    holds the sign-off alone or with a name ("Thanks, Ade", "Kind regards, the Pennock team"); a line
    that goes on to say something is the reply, and the search goes on from the next line.
    """
    pattern = _mail_patterns()["_signature_regex"]
    while (m := pattern.search(normalised, pos)) is not None:
        at = m.start() + len(m.group()) - len(m.group().lstrip())  # past the blank lines it takes along
        line_end = normalised.find("\n", at)
        line = normalised[at:] if line_end < 0 else normalised[at:line_end]
        sign_off = _SIGN_OFF.match(line)
        if sign_off is None and line.strip() in ("--", "__") and _writers_prose_after(normalised, line_end):
            pass  # a bare "--" set between two parts of the reply, not before a signature
        elif sign_off is None or _SIGN_OFF_NAME.fullmatch(sign_off.group(1).strip()):
            return at
        if line_end < 0:
            return None
        pos = line_end + 1
    return None


def _writers_prose_after(normalised: str, line_end: int) -> bool:
    """Whether the first line of text after a bare "--" is the writer going on in the first person ("I'm sorry
    your refund is late. I've reissued it today."), which a signature, tagline or notice seldom is, and no
    name or title line follows it."""
    if line_end < 0:
        return False
    rest = normalised[line_end + 1:line_end + 1 + 600].lstrip("\n")
    first, _, after = rest.partition("\n")
    following = after.split("\n", 1)[0].strip()
    # ... and not a signature's own first line, a name or title straight under it: "I'm out on Fridays, so
    # apologies if my reply is slow." then "Sam Lee | Customer Care".
    return (len(first.split()) >= 6 and bool(_FIRST_PERSON_SENTENCE.search(first))
            and not (following and _signature_line(following)))


def _html_to_text(body: str) -> tuple[str, list[int], list[int]]:
    parser = _OffsetHTMLParser(body)
    parser.feed(body)
    parser.close()
    parser.unmask_own_blockquotes()
    return "".join(parser.chars), parser.starts, parser.ends


class _OffsetHTMLParser(HTMLParser):
    """Stdlib HTML tokenizer that remembers where every visible character came from."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=False)
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", body)]
        self.chars: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.skip_depth = 0
        self.mask_tag: str | None = None
        self.mask_depth = 0
        self.mask_rest = False  # an Outlook reply header was seen: the rest is quoted mail
        self.comments = 0  # a notification's thread comments seen so far
        # Bare <blockquote>s (no client's quote class): where each starts and ends in `chars`, its words, and
        # whether it holds a list (<li>).
        self.bare_quotes: list[tuple[int, int, list[tuple[int, str]], bool]] = []
        self.bare: list[tuple[int, str]] | None = None  # the words of the bare blockquote being read
        self.bare_start, self.bare_list = 0, False

    def _pos(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def _emit(self, text: str, start: int, end: int) -> None:
        if self.skip_depth:
            return
        if text == "\n" and self.chars and self.chars[-1] == "\n" and len(self.chars) > 1 and self.chars[-2] == "\n":
            return  # a wall of empty block tags is one paragraph break, not thousands of lines
        if self.mask_depth or self.mask_rest:
            if self.bare is not None and not self.mask_rest:
                self.bare.append((len(self.chars), text))
            text = _spaces(text)
        for c in text:
            self.chars.append(c)
            self.starts.append(start)
            self.ends.append(end)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
            return
        if self.mask_tag is not None and tag == self.mask_tag:
            self.mask_depth += 1
        elif self.mask_tag is None and _is_quote(tag, attrs):
            self.mask_tag, self.mask_depth = tag, 1
            self.bare = [] if tag == "blockquote" and not _marked(attrs, _QUOTE_CLASSES) and not any(
                k == "type" for k, _ in attrs) else None
            self.bare_start, self.bare_list = len(self.chars), False
        elif tag == "li" and self.bare is not None:
            self.bare_list = True
        if _marked(attrs, _QUOTE_TO_END):
            self.mask_rest = True
        elif _marked(attrs, _THREAD_COMMENT):
            self.comments += 1
            self.mask_rest = self.mask_rest or self.comments > 1
        if tag in _BLOCK_TAGS:
            pos = self._pos()
            self._emit("\n", pos, pos)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            pos = self._pos()
            self._emit("\n", pos, pos)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if tag in _BLOCK_TAGS:
            pos = self._pos()
            self._emit("\n", pos, pos)
        if self.mask_tag == tag:
            self.mask_depth -= 1
            if self.mask_depth <= 0:
                self.mask_tag, self.mask_depth = None, 0
                if self.bare is not None:
                    self.bare_quotes.append((self.bare_start, len(self.chars), self.bare, self.bare_list))
                    self.bare = None

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        base = self._pos()
        if self.mask_depth or self.mask_rest:
            if self.bare is not None and not self.mask_rest:
                self.bare.append((len(self.chars), data.translate(_WHITESPACE_TO_SPACE)))
            data = _spaces(data)
        self.chars.extend(data.translate(_WHITESPACE_TO_SPACE))
        self.starts.extend(range(base, base + len(data)))
        self.ends.extend(range(base + 1, base + len(data) + 1))

    def handle_entityref(self, name: str) -> None:
        start = self._pos()
        code = name2codepoint.get(name)
        text = chr(code) if code is not None else f"&{name};"
        self._emit(text, start, start + len(name) + 2)

    def handle_charref(self, name: str) -> None:
        start = self._pos()
        try:
            code = int(name[1:], 16) if name[:1] in "xX" else int(name)
            text = chr(code) if 0 < code < 0x110000 else "\ufffd"
        except ValueError:
            text = "\ufffd"
        self._emit(text, start, start + len(name) + 3)


    def unmask_own_blockquotes(self) -> None:
        """Give back a bare <blockquote> of steps that the writer's own words follow: an editor's quote button
        used to set off instructions ("<blockquote>1. Open Settings ...</blockquote><p>Sorry for the
        trouble!</p>"). Mail clients mark their quotes (gmail_quote, type="cite") or put them last; one
        introduced by "... wrote:" is quoted mail wherever it stands; and one that is not a list stays quoted
        too, since an agent answering inline quotes the customer's own words ("you should have refunded me").
        Each look is bounded, so a message of thousands of blockquotes costs one pass."""
        for start, end, pieces, has_list in self.bare_quotes[:_MAX_BARE_QUOTES]:
            inside = "".join(text for _, text in pieces)
            if not (has_list or _LIST_LINE.search(inside)):
                continue
            after = "".join(self.chars[end:end + _AFTER_QUOTE_CHARS])
            if len(_LINE_WORD.findall(after)) < 3 or _only_sign_off(after):
                continue
            before = "".join(self.chars[max(0, start - 200):start])
            if _ATTRIBUTION.search(before) or _REPLY_HEADER.search(inside) or _ATTRIBUTION_INSIDE.search(inside):
                continue
            for at, text in pieces:
                self.chars[at:at + len(text)] = text


def _only_sign_off(text: str) -> bool:
    sign_off = _SIGN_OFF.match(" ".join(text.split()))
    return sign_off is not None and _SIGN_OFF_NAME.fullmatch(sign_off.group(1).strip()) is not None


def _is_quote(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    return tag == "blockquote" or _marked(attrs, _QUOTE_CLASSES)


def _marked(attrs: list[tuple[str, str | None]], names: re.Pattern[str]) -> bool:
    """Whether an element's class or id names one of `names` (how mail clients label quotes)."""
    return any(key in ("class", "id") and value and names.search(value) for key, value in attrs)
