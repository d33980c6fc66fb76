"""A reply in a language the policy does not read is not judged: one finding says so, and nothing else. A
customer message in one is left out of the context, and a finding says the reply was judged without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, agent, customer, ticket
from worker.cli import main
from worker.corpus import labelled_folders, load_corpus
from worker.engine import load_policy, read_reply, review_reply
from worker.engine.review import UNREAD_CUSTOMER_LANGUAGE, UNREAD_LANGUAGE, read_context
from worker.engine.signals.language import language
from worker.errors import PolicyError

# Short support replies as agents write them, each long enough to tell.
FOREIGN = {
    "de": "Hallo Frau Becker, es tut uns leid, dass Ihre Bestellung verspätet ist. Wir melden uns morgen.",
    "es": "Hola Ana, lamentamos mucho el retraso con tu pedido. Ya hemos solicitado el reembolso.",
    "fr": "Bonjour Monsieur Martin, nous sommes désolés pour ce désagrément. Votre colis arrive demain.",
    "nl": "Beste meneer de Vries, excuses voor de vertraging. We hebben uw bestelling opnieuw verzonden.",
    "pt": "Olá João, pedimos desculpa pelo atraso. O reembolso será processado em três dias úteis.",
    "it": "Ciao Marco, ci scusiamo per il disagio. Abbiamo già spedito un nuovo prodotto.",
    "sv": "Hej Anna, vi beklagar förseningen med din beställning. Din återbetalning är på väg.",
}
EARLIER = [customer("My order is two weeks late and nobody answers!")]


@pytest.mark.parametrize("code", sorted(FOREIGN))
def test_a_reply_in_another_language_is_named_and_not_judged(code: str) -> None:
    verdict = review_reply(agent(FOREIGN[code]), EARLIER, ticket(), load_policy("liability-aware"))
    assert verdict.signals.language == code
    assert [f.rule for f in verdict.findings] == [UNREAD_LANGUAGE]
    finding = verdict.findings[0]
    assert finding.severity == "info" and f"'{code}'" in finding.message and "'en'" in finding.message
    assert FOREIGN[code][finding.span[0]:finding.span[1]] == finding.excerpt != ""
    assert (verdict.action, verdict.score) == ("none", 100)
    assert verdict.signals.apology == "none" and not verdict.signals.solution


ENGLISH_REPLY = "I'm sorry about that. I've refunded the order today and you'll see it in 3 days."


@pytest.mark.parametrize("code", sorted(FOREIGN))
def test_a_customer_message_in_another_language_is_left_out_and_named(code: str) -> None:
    verdict = review_reply(agent(ENGLISH_REPLY), [customer(FOREIGN[code])], ticket(), load_policy("liability-aware"))
    assert verdict.context.language == code
    assert (verdict.context.incident, verdict.context.frustration, verdict.context.legal_risk) == ("none", 0.0, False)
    finding = next(f for f in verdict.findings if f.rule == UNREAD_CUSTOMER_LANGUAGE)
    assert finding.severity == "info" and f"'{code}'" in finding.message
    assert ENGLISH_REPLY[finding.span[0]:finding.span[1]] == finding.excerpt != ""
    assert verdict.signals.apology != "none" and verdict.signals.solution  # the reply itself is judged


def test_an_earlier_message_the_policy_reads_still_makes_the_context() -> None:
    earlier = [customer("My order is two weeks late and nobody answers!", "c1"),
               customer(FOREIGN["es"], "c2", minutes=1)]
    verdict = review_reply(agent(ENGLISH_REPLY), earlier, ticket(), load_policy("liability-aware"))
    assert verdict.context.incident == "delay" and verdict.context.language == "es"
    assert verdict.context.customer_message_id == "c2"
    assert UNREAD_CUSTOMER_LANGUAGE in {f.rule for f in verdict.findings}


def test_an_english_customer_and_a_policy_reading_every_language_draw_no_such_finding(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("name: every-language\nextends: liability-aware\nlanguages: []\n", encoding="utf-8")
    for policy, earlier in ((load_policy(path), [customer(FOREIGN["de"])]),
                            (load_policy("liability-aware"), EARLIER)):
        verdict = review_reply(agent(ENGLISH_REPLY), earlier, ticket(), policy)
        assert verdict.context.language in (None, "en")
        assert UNREAD_CUSTOMER_LANGUAGE not in {f.rule for f in verdict.findings}


def test_without_the_check_the_same_reply_draws_findings_it_does_not_deserve(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("name: every-reply\nextends: liability-aware\nlanguages: []\n", encoding="utf-8")
    verdict = review_reply(agent(FOREIGN["de"]), EARLIER, ticket(), load_policy(path))
    assert verdict.signals.language is None
    assert verdict.findings and UNREAD_LANGUAGE not in {f.rule for f in verdict.findings}


def test_a_policy_that_reads_the_language_judges_the_reply(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("name: bilingual\nextends: liability-aware\nlanguages: [en, de]\n", encoding="utf-8")
    verdict = review_reply(agent(FOREIGN["de"]), EARLIER, ticket(), load_policy(path))
    assert verdict.signals.language == "de"
    assert UNREAD_LANGUAGE not in {f.rule for f in verdict.findings}


def test_an_html_reply_is_read_on_its_visible_text() -> None:
    body = f"<div dir='ltr'><p>{FOREIGN['fr']}</p><p>Cordialement,<br>Claire</p></div>"
    verdict = review_reply(agent(body, fmt="html"), EARLIER, ticket(), load_policy("liability-aware"))
    assert verdict.signals.language == "fr"
    assert body[verdict.findings[0].span[0]:verdict.findings[0].span[1]] == verdict.findings[0].excerpt


@pytest.mark.parametrize("text", ["Merci !", "Gracias, lo reviso.", "Thanks Ana", "@jo_k ok ^MT", ""])
def test_too_short_to_tell_is_read_in_the_policy_language(text: str) -> None:
    assert language(text) is None


def test_no_labelled_english_reply_or_customer_is_called_foreign() -> None:
    """Every message of every labelled set (13,260 replies by 82 authors, many one-line social replies with
    handles, initials and names, and the customers' messages before them) is English: a reply called
    foreign would go unjudged, a customer's message left out of the context."""
    policy = load_policy("liability-aware")
    corpus = ROOT / "tests" / "corpus"
    called = {}
    replies = 0
    for path in labelled_folders(corpus):
        for item in load_corpus(path):
            replies += 1
            lang = read_reply(item.history.messages[-1], policy).signals.language
            customer_lang = read_context(item.history.messages[:-1], policy).language
            for side, code in (("reply", lang), ("customer", customer_lang)):
                if not policy.reads(code):
                    called[f"{item.id} {side}"] = code
    assert replies >= 13260 and called == {}


def test_a_language_code_that_is_not_one_fails_with_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("name: t\nlanguages:\n  - en\n  - German\n", encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    message = str(err.value)
    assert f"{path}:4" in message and "languages" in message


def test_a_rule_can_test_the_language(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("name: bilingual\nlanguages: [en, de]\nrules:\n  - id: german-reply\n    severity: info\n"
                    "    when: {language: de}\n    message: \"German: {excerpt}\"\n", encoding="utf-8")
    policy = load_policy(path)
    german = review_reply(agent(FOREIGN["de"]), EARLIER, ticket(), policy)
    english = review_reply(agent("Sorry your order is late; a refund is on its way today."), EARLIER, ticket(),
                           policy)
    assert [f.rule for f in german.findings] == ["german-reply"]
    assert english.signals.language == "en" and english.findings == []


def test_a_rule_can_test_the_customers_language(tmp_path: Path) -> None:
    # A team that reads Spanish customers itself routes those tickets to a supervisor.
    path = tmp_path / "policy.yaml"
    path.write_text("name: route-spanish\nrules:\n  - id: spanish-customer\n    severity: critical\n"
                    "    when: {customer_language: {in: [es]}}\n    message: \"Spanish-speaking customer\"\n",
                    encoding="utf-8")
    policy = load_policy(path)
    spanish = review_reply(agent(ENGLISH_REPLY), [customer(FOREIGN["es"])], ticket(), policy)
    german = review_reply(agent(ENGLISH_REPLY), [customer(FOREIGN["de"])], ticket(), policy)
    assert "spanish-customer" in {f.rule for f in spanish.findings} and spanish.action == "escalate"
    assert "spanish-customer" not in {f.rule for f in german.findings}


def test_review_says_how_many_replies_it_could_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def line(tid: str, body: str) -> str:
        return json.dumps({"ticket": {"id": tid}, "messages": [
            {"id": "c1", "role": "customer", "body": "Where is my order?"},
            {"id": "a1", "role": "agent", "body": body}]})

    path = tmp_path / "history.jsonl"
    path.write_text(line("T-1", FOREIGN["de"]) + "\n" + line("T-2", "Sorry for any inconvenience.") + "\n",
                    encoding="utf-8")
    assert main(["review", str(path), "--fail-on", "warning"]) == 1  # the English reply's generic apology
    out = capsys.readouterr().out
    assert "2 replies reviewed under liability-aware" in out and "1 not read" in out
    assert "unsupported-language" in out
