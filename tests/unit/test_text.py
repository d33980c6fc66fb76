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


def test_an_agents_own_blockquote_followed_by_more_of_the_reply_is_read() -> None:
    own = prepare("<p>Hi Jo,</p><blockquote>1. Open Settings<br>2. Tap Reset password</blockquote>"
                  "<p>Sorry for the trouble!</p>", "html").text
    assert "Open Settings" in own and "Tap Reset password" in own and "Sorry for the trouble" in own


@pytest.mark.parametrize("body", [
    "<p>Refund sent today.</p><p>Thanks,<br>Sam</p><blockquote>I'm sorry to chase again.</blockquote>",
    "<p>Jo wrote:</p><blockquote>I'm sorry to chase again.</blockquote><p>No need, your refund went out today.</p>",
    "<blockquote>Jo Lee wrote:<br>I'm sorry to chase again.</blockquote><p>No need, your refund went out today.</p>",
    '<blockquote type="cite">I\'m sorry to chase again.</blockquote><p>No need, your refund went out today.</p>',
    "<p>Refund sent today.</p><blockquote>I'm sorry to chase again.</blockquote><p>Thanks,<br>Sam</p>",
    # An agent answering inline quotes the customer's words: not a list of steps, so still quoted.
    "<blockquote>I'm sorry but you should have refunded me</blockquote><p>I've issued the refund now.</p>",
])
def test_a_blockquote_that_is_quoted_mail_stays_unread(body: str) -> None:
    assert "sorry" not in prepare(body, "html").text


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


@pytest.mark.parametrize("header", [
    "Am Di., 3. M\u00e4rz 2026 um 10:14 Uhr schrieb Jo Bloggs <jo@example.com>:",
    "Le mar. 3 mars 2026 \u00e0 10:14, Jo Bloggs <jo@example.com> a \u00e9crit\u00a0:",
    "El mar, 3 mar 2026 a las 10:14, Jo Bloggs (<jo@example.com>) escribi\u00f3:",
    "Il giorno mar 3 mar 2026 alle ore 10:14 Jo Bloggs <jo@example.com> ha scritto:",
    "Op di 3 mrt 2026 om 10:14 schreef Jo Bloggs <jo@example.com>:",
    "Von: Jo Bloggs <jo@example.com>\nGesendet: Dienstag, 3. M\u00e4rz 2026 10:14",
    "De : Jo Bloggs <jo@example.com>\nEnvoy\u00e9 : mardi 3 mars 2026 10:14",
    "-----Urspr\u00fcngliche Nachricht-----",
    "*From:* Jo Bloggs <jo@example.com>\n*Sent:* Tuesday, March 3, 2026 10:14 AM",
    "2026-03-03 10:14 GMT+00:00 Jo Bloggs <jo@example.com>:",
])
def test_quote_headers_in_other_languages_and_old_formats_start_the_quoted_email(header: str) -> None:
    """A customer's mail client may quote in its own language, under the English reply."""
    body = (f"Hi Jo,\n\nI'm sorry your order is late. I've booked a redelivery.\n\nSam\n\n{header}\n\n"
            "You should have read the returns policy. That is not our fault.\n")
    text = prepare(body).text
    assert "I've booked a redelivery." in text
    assert "should have read" not in text and "fault" not in text


@pytest.mark.parametrize("body", [
    "Hi Jo,\n\nOn Monday we wrote to the courier.\nThey replied the same day; I'm sorry it took so long.",
    "Hi Jo,\n\nOn Monday I wrote to the courier:\n- the parcel number\n- that I'm sorry it's late",
])
def test_a_line_that_only_starts_like_a_header_is_the_reply(body: str) -> None:
    assert prepare(body).text == body


@pytest.mark.parametrize("footer", [
    "How did we do? Rate this reply:\nGreat  |  Okay  |  Not good\nWe're sorry if we fell short: "
    "https://survey.example.com/r/88123",
    "Don't want these emails? Unsubscribe: https://mail.example.com/unsubscribe?u=8812",
    "Lumina Home Ltd accepts no liability for loss or damage arising from this email. We are not responsible "
    "for errors, and any fault in transmission is not our fault.",
])
def test_survey_mailing_and_liability_footers_are_not_the_writers_words(footer: str) -> None:
    body = f"Hi Jo,\n\nYour refund has been issued today.\n\nMark\n\n{footer}"
    text = prepare(body).text
    assert "Your refund has been issued today." in text
    assert "sorry" not in text and "fault" not in text and "nsubscribe" not in text


def test_a_notice_that_opens_like_a_mailing_footer_keeps_its_words() -> None:
    """Only the last few lines can be a mailing footer: a recall notice may open with the same words."""
    body = ("Dear Customer,\n\nYou are receiving this email because you registered a PowerCell 10.\n\n"
            + "Please stop using it and return it to us; we will send a prepaid pack and a replacement. " * 6
            + "\n\nWe apologise for the inconvenience.")
    assert prepare(body).text == body


def test_a_short_last_line_typed_without_a_full_stop_is_not_a_signature() -> None:
    body = ("Hi Jo\n\nYour refund is on its way\n"
            "This email and any attachments are confidential and intended solely for you.")
    text = prepare(body).text
    assert "Your refund is on its way" in text and "confidential" not in text


def test_a_customers_professional_signature_is_not_their_words() -> None:
    body = ("Hi, where is my parcel OR-7731? It was due last Tuesday.\n\nJo Bloggs\n"
            "Senior Associate | Bloggs & Partners Solicitors\n"
            "Authorised and regulated by the Solicitors Regulation Authority")
    text = prepare(body).text
    assert "where is my parcel OR-7731?" in text
    assert "Solicitors" not in text and "Jo Bloggs" not in text


def test_an_apology_in_single_quotes_is_someone_elses_words() -> None:
    body = "The courier left a \u2018Sorry we missed you\u2019 card, so it's at the depot. I've booked Thursday."
    text = prepare(body).text
    assert "Sorry" not in text and "I've booked Thursday." in text
    kept = "The easiest way is to choose 'Pet Friendly' when you book; we'll sort the customers' orders."
    assert prepare(kept).text == kept


def test_words_in_a_links_path_are_not_read() -> None:
    body = "We apologise for any inconvenience. https://help.example.com/hc/articles/4410-sorry-your-parcel-is-late."
    doc = prepare(body)
    assert "sorry" not in doc.text
    assert doc.text.endswith("_.") and "https://help.example.com_" in doc.text  # still one token, stop kept
    assert len(doc.text) == len(body)


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


def test_a_notification_opened_by_the_delimiter_is_read_to_its_first_comment_only() -> None:
    """A helpdesk's notification email as an agent's message (a mailbox export): the newest comment is what
    was written; the thread's history under it (a customer's insult, an older apology) is not."""
    rule = "-" * 46
    text = prepare(f"##- Please type your reply above this line -##\n\nYour request (48213) has been updated.\n"
                   f"{rule}\n\nSam (Support)\n\nYour refund has been processed.\n\n{rule}\n\nJo\n\n"
                   f"I'm sorry but you are useless.\n\n{rule}\n\nSam\n\nWe apologise for any inconvenience.").text
    assert "refund has been processed" in text
    assert "sorry" not in text and "apologise" not in text
    html = prepare('<div>##- Please type your reply above this line -##</div><div class="zd-comment"><p>Sam</p>'
                   '<p>Your refund has been processed.</p></div><div class="zd-comment"><p>Jo</p>'
                   "<p>I&#39;m sorry but you are useless.</p></div>", "html").text
    assert "refund has been processed" in html and "sorry" not in html


@pytest.mark.parametrize("after", ["I'm sorry your refund is late, I've reissued it today.",
                                   "I've checked with finance and it went out this morning."])
def test_a_bare_dash_line_between_two_parts_of_the_reply_is_no_signature(after: str) -> None:
    body = f"Hi Jo,\n\nThanks for waiting while I checked.\n\n--\n\n{after}\n\nKind regards,\nSam"
    text = prepare(body).text
    assert after in text and "Sam" not in text.split("Hi Jo")[1]


@pytest.mark.parametrize("signature", ["--\nSam Lee\nCustomer Care | Acme", "-- \nSent from my iPhone",
                                       "--\nAcme Ltd, 1 High St. Sorry, we can't take calls on Sundays.",
                                       "--\nI'm out on Fridays, so sorry if my reply is slow.\nSam Lee | Care"])
def test_a_bare_dash_line_before_a_signature_still_ends_the_reply(signature: str) -> None:
    text = prepare(f"Hi Jo,\n\nYour refund went out today.\n\n{signature}").text
    assert "refund went out" in text
    assert "Sam" not in text and "iPhone" not in text and "Sorry" not in text


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


@pytest.mark.parametrize("br", ["\u2028", "\u2029", "\x85"])
def test_unicode_line_separators_end_sentences_like_line_breaks(br: str) -> None:
    doc = prepare(f"Hi Jo,{br}{br}I'm sorry your lamp arrived cracked.")
    assert [doc.text[a:b].strip() for a, b in doc.sentences()] == ["Hi Jo,", "I'm sorry your lamp arrived cracked."]


def test_sentences_split_on_punctuation_and_line_breaks() -> None:
    doc = prepare("First one. Second one!\nThird")
    assert [doc.text[a:b].strip() for a, b in doc.sentences()] == ["First one.", "Second one!", "Third"]
