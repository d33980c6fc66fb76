"""What the engine reads of a body: visible text, blanked quotes and signatures, offsets back to the body."""

from __future__ import annotations

import pytest

from worker.engine.text import prepare


def test_plain_text_keeps_offsets_and_folds_typographic_apostrophes() -> None:
    body = "I\u2019m sorry your parcel is late."
    doc = prepare(body)
    assert len(doc.text) == len(body)
    assert doc.text.startswith("I'm sorry")
    start = doc.text.index("sorry")
    assert doc.span(start, start + 5) == (start, start + 5)


def test_html_spans_map_back_to_the_raw_body_through_tags_and_entities() -> None:
    body = "<p>Hi Dana,</p><p>I&rsquo;m <b>so sorry</b> your blender arrived cracked.</p>"
    doc = prepare(body, "html")
    assert "I'm so sorry your blender" in doc.text
    start = doc.text.index("so sorry")
    b_start, b_end = doc.span(start, start + len("so sorry"))
    assert body[b_start:b_end] == "so sorry"
    i_start = doc.text.index("I'm")
    assert body[doc.span(i_start, i_start + 3)[0]:doc.span(i_start, i_start + 3)[1]] == "I&rsquo;m"


def test_html_blockquotes_and_gmail_quotes_are_not_read() -> None:
    body = ('<div>Your refund is on its way.</div><div class="gmail_quote">On Mon, Dana wrote:'
            "<blockquote>I'm sorry to bother you</blockquote></div>")
    doc = prepare(body, "html")
    assert "refund is on its way" in doc.text
    assert "sorry" not in doc.text


def test_an_outlook_reply_header_hides_the_quoted_mail_that_follows_it_as_siblings() -> None:
    """Outlook writes the "From: … Sent: …" header as a div of its own and the earlier email after it, not
    inside it: the customer's threat to go to the ombudsman is theirs, not the agent's."""
    body = ('<div><p>Dear Mr Kendrick,</p><p>Your refund of &pound;64 is on its way.</p></div>'
            '<hr><div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Stuart<br><b>Sent:</b> Wednesday<br>'
            '<b>Subject:</b> Extra charges</div><div><p>I am sorry to chase.</p>'
            '<p>If this is not resolved I will take it to the Ombudsman.</p></div>')
    doc = prepare(body, "html")
    assert "refund of £64 is on its way" in doc.text
    assert "sorry" not in doc.text and "Ombudsman" not in doc.text and "From:" not in doc.text
    start = doc.text.index("Your refund")
    assert body[doc.span(start, start + 11)[0]:doc.span(start, start + 11)[1]] == "Your refund"


def test_quoted_earlier_email_and_signature_are_blanked_in_place() -> None:
    body = ("Hi Dana,\n\nYour replacement ships today.\n\nBest regards,\nSam\nAcme Support\n\n"
            "On Tue, 18 Nov 2026 at 09:12, Dana Lee <dana@example.com> wrote:\n> I'm sorry to be a pain.\n")
    doc = prepare(body)
    assert len(doc.text) == len(body)
    assert "replacement ships today" in doc.text
    assert "sorry" not in doc.text
    assert "Acme Support" not in doc.text


@pytest.mark.parametrize("opening", ["Thanks, got it.", "Thank you, I have passed this to billing.",
                                     "Best, I can tell you that"])
def test_a_line_that_starts_like_a_sign_off_and_goes_on_is_the_reply(opening: str) -> None:
    """The library takes any line starting "Thanks," for a sign-off and the rest for the signature: the
    whole reply after the greeting was blanked. A later real sign-off still ends the reply."""
    body = (f"Hi Stuart,\n\n{opening} For future reference, please send documents promptly.\n\n"
            "I've now released the payment.\n\nKind regards,\nAde\nPennock Loss Adjusting Ltd\n\n"
            "On Tue, 18 Nov 2026 at 09:12, Stuart <s@example.com> wrote:\n> Attached, sorry for the wait.\n")
    text = prepare(body).text
    assert opening in text and "please send documents promptly" in text and "released the payment" in text
    assert "Pennock" not in text and "sorry" not in text


@pytest.mark.parametrize("sign_off", ["Thanks,\nAde", "Thanks, Ade", "Best, the Amberline team", "Thank you,\n^LK"])
def test_a_sign_off_alone_or_with_a_name_still_starts_the_signature(sign_off: str) -> None:
    body = f"Sorry about the wait, your refund is done.\n\n{sign_off}\nAmberline Support\n"
    text = prepare(body).text
    assert "your refund is done" in text and "Amberline Support" not in text


def test_the_last_line_of_a_reply_stays_when_a_quoted_email_follows_it() -> None:
    # No signature between the reply and the quoted email: the library's cut falls at the end of the
    # reply's last line, which is still the agent's (it was once blanked with the quote).
    body = ("Hi Dana,\n\nSorry the parcel was late. I have refunded you.\n\n"
            "On 12 Nov 2026, at 10:14, Dana Lee <dana@example.com> wrote:\n\nWhere is it? My lawyer says\n")
    text = prepare(body).text
    assert "Sorry the parcel was late. I have refunded you." in text
    assert "wrote" not in text and "lawyer" not in text


def test_plain_text_outlook_and_wrapped_reply_headers_start_the_quoted_email() -> None:
    outlook = ("Refund done.\n\n-----Original Message-----\nFrom: Dana <d@example.com>\n"
               "Sent: Monday, November 9, 2026 9:00 AM\nTo: Support\nSubject: sorry\n\nSorry, my lawyer says")
    wrapped = ("Refund issued.\n\nOn Mon, 9 Nov 2026 at 09:00, Dana Smith <dana.smith@example.co.uk>\n"
               "wrote:\nsorry, this is my lawyer's letter")
    for body in (outlook, wrapped):
        text = prepare(body).text
        assert text.split() == [body.split()[0], body.split()[1]]  # only "Refund done." / "Refund issued."


def test_a_mail_footers_legal_notice_is_not_the_writers_words() -> None:
    plain = ("We have refunded you.\n\nSam\n\nThis email and any attachments are confidential and intended "
             "solely for the addressee. If received in error, we apologise; please delete it.")
    html = ("<p>We have refunded you.</p><hr><p style='font-size:8pt'>CONFIDENTIALITY NOTICE: if you have "
            "received this message in error we apologise for any inconvenience.</p>")
    for body, fmt in ((plain, "text"), (html, "html")):
        text = prepare(body, fmt).text
        assert "We have refunded you." in text
        assert "apologise" not in text and "confidential" not in text.lower()


def test_a_helpdesk_reply_delimiter_ends_the_writers_words() -> None:
    """A customer answering a helpdesk notification by email: the notification below the delimiter (with
    the agent's earlier apology in it) is not theirs."""
    for marker in ("##- Please type your reply above this line -##",
                   "##- Bitte geben Sie Ihre Antwort über dieser Zeile ein. -##"):
        body = (f"Still broken, and my lawyer is asking.\n\n{marker}\n\nYour request (1234) has been "
                "updated.\n\nSam (Support)\nSorry for the delay, we have refunded you.")
        text = prepare(body).text
        assert "my lawyer is asking" in text
        assert "Sorry" not in text and "refunded" not in text


def test_a_message_that_is_only_a_notice_keeps_its_words() -> None:
    body = "This message is confidential: sorry, I sent it to the wrong customer. Please delete it."
    assert prepare(body).text == body


def test_an_agents_own_notes_are_not_a_footer() -> None:
    for body in ("Thanks Dana.\n\nImportant note: sorry, the refund takes 5 days to reach your card.",
                 "Thanks.\nThis message is intended for customers who ordered before May: sorry for the wait.",
                 "Refunded.\nDisclaimers are not my favourite thing, sorry."):
        assert prepare(body).text == body


def test_single_line_reply_is_never_blanked() -> None:
    body = "Thanks, and sorry again for the wait on your order."
    assert prepare(body).text == body


def test_quoted_phrases_are_not_the_agents_words() -> None:
    doc = prepare('You wrote "sorry is not enough", and I hear you.')
    assert "sorry" not in doc.text
    assert "I hear you" in doc.text


def test_greater_than_quoted_lines_are_blanked() -> None:
    doc = prepare("> I'm sorry to bother you\nYour order ships today.")
    assert "sorry" not in doc.text


def test_sentences_split_on_punctuation_and_line_breaks() -> None:
    doc = prepare("First one. Second one!\nThird")
    assert [doc.text[a:b].strip() for a, b in doc.sentences()] == ["First one.", "Second one!", "Third"]
