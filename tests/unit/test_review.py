"""The verdict: its shape, its spans, its context, and the `review` and `schema` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, agent, customer, ticket
from worker.cli import main
from worker.engine import Policy, review_history, review_reply
from worker.engine.review import CustomerCache
from worker.models import TicketHistory, Verdict

EXAMPLE = ROOT / "config" / "examples" / "tickets.jsonl"


def test_verdict_carries_context_signals_and_located_findings(policy: Policy) -> None:
    body = "Hi Dana,\n\nSorry for any inconvenience. Please send a photo.\n\nBest regards,\nSam"
    v = review_reply(agent(body, minutes=41), [customer("My blender arrived cracked!!", minutes=0)],
                     ticket(), policy)
    assert v.context.incident == "defect" and v.context.customer_message_id == "c1"
    assert v.signals.apology == "generic" and v.signals.response_minutes == 41.0
    finding = next(f for f in v.findings if f.rule == "generic-apology")
    assert body[finding.span[0]:finding.span[1]] == finding.excerpt == "Sorry for any inconvenience"
    assert finding.suggestion and "sorry" in finding.suggestion.lower()
    assert v.policy.name == "liability-aware" and v.policy.version.startswith("sha256:")
    assert v.action == "annotate" and 0 <= v.score < 100


def test_html_finding_spans_point_into_the_raw_html(policy: Policy) -> None:
    body = "<p>Hi,</p><p>Sorry for <b>any</b> inconvenience.</p>"
    v = review_reply(agent(body, fmt="html"), [customer("It broke.")], ticket(), policy)
    finding = next(f for f in v.findings if f.rule == "generic-apology")
    assert finding.excerpt == body[finding.span[0]:finding.span[1]] == "Sorry for <b>any</b> inconvenience"


def test_response_minutes_counts_from_the_first_unanswered_customer_message(policy: Policy) -> None:
    earlier = [customer("Hello?", "c1", minutes=0), agent("Hi!", "a0", minutes=5),
               customer("Still broken", "c2", minutes=60), customer("Anyone?", "c3", minutes=90)]
    v = review_reply(agent("Sorry for the wait.", "a1", minutes=100), earlier, ticket(), policy)
    assert v.signals.response_minutes == 40.0
    assert v.context.customer_message_id == "c3"


def test_review_history_judges_each_public_agent_reply_on_what_came_before(policy: Policy) -> None:
    history = TicketHistory(ticket=ticket(), messages=[
        customer("My order is late!", "c1", 0), agent("Internal: chase depot", "n1", 2, public=False),
        agent("I'm sorry your order is late. It ships today.", "a1", 5),
        customer("Thanks!", "c2", 10), agent("You're welcome.", "a2", 12)])
    verdicts = list(review_history(history, policy))
    assert [v.message_id for v in verdicts] == ["a1", "a2"]
    assert verdicts[0].context.customer_message_id == "c1"
    assert verdicts[1].context.customer_message_id == "c2"


def test_separate_conversations_never_share_context(policy: Policy) -> None:
    angry = review_reply(agent("Your order ships today."), [customer("THIRD TIME!!! Unacceptable.")],
                         ticket(id="A"), policy)
    calm = review_reply(agent("Your order ships today."), [], ticket(id="B"), policy)
    assert angry.context.frustration > calm.context.frustration == 0.0


def test_the_customer_cache_reuses_a_reading_only_for_the_same_text(policy: Policy) -> None:
    # Two helpdesks (or an edited message) can give the same ticket and message ids to different words.
    cache: CustomerCache = {}
    reply = agent("Your order ships today.")
    angry = review_reply(reply, [customer("THIRD TIME!!! Unacceptable.")], ticket(id="7"), policy, cache)
    calm = review_reply(reply, [customer("Thanks, lovely.")], ticket(id="7"), policy, cache)
    again = review_reply(reply, [customer("THIRD TIME!!! Unacceptable.")], ticket(id="7"), policy, cache)
    assert calm.context.frustration < angry.context.frustration == again.context.frustration
    assert len(cache) == 2


@settings(max_examples=150, deadline=None)
@given(body=st.text(max_size=400), fmt=st.sampled_from(["text", "html"]), said=st.text(max_size=200))
def test_engine_never_raises_and_spans_equal_excerpts(policy: Policy, body: str, fmt: str, said: str) -> None:
    v = review_reply(agent(body, fmt=fmt), [customer(said)], ticket(), policy)
    assert isinstance(v, Verdict)
    for f in v.findings:
        assert 0 <= f.span[0] <= f.span[1] <= len(body)
        assert body[f.span[0]:f.span[1]] == f.excerpt


# Shapes of real mail that once sent a regular expression into catastrophic backtracking: a long `>`-quoted
# history took minutes (500 lines: 79 s), a reply of many links grew with the square of their number. Each
# must be judged on its own words; the timeout fails a regression that would hang a worker.
@pytest.mark.timeout(60)
def test_a_reply_over_a_long_quoted_history_is_judged_on_its_own_words(policy: Policy) -> None:
    quoted = "\n".join(["> sorry, sorry, sorry"] * 2000)
    body = "I'm sorry your order is late. I've refunded the delivery charge.\n\n" + quoted
    v = review_reply(agent(body), [customer("Where is my order?\n" + "> earlier\n" * 2000)], ticket(), policy)
    assert v.signals.apology_count == 1 and v.signals.solution


@pytest.mark.timeout(60)
def test_a_reply_of_many_links_in_one_sentence_is_judged(policy: Policy) -> None:
    body = "These pages explain it " + " ".join(f"https://help.example.com/a/{n}" for n in range(6000))
    v = review_reply(agent(body), [customer("How do I export my data?")], ticket(), policy)
    assert v.signals.solution and v.signals.apology == "none"


def test_review_cli_jsonl_prints_one_verdict_per_reply(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(EXAMPLE), "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    replies = sum(1 for line in EXAMPLE.read_text().splitlines()
                  for m in json.loads(line)["messages"] if m["role"] == "agent")
    assert len(lines) == replies
    for line in lines:
        Verdict.model_validate_json(line)


def test_review_cli_text_report_and_fail_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(EXAMPLE), "--fail-on", "critical"]) == 1
    out = capsys.readouterr().out
    assert "generic-apology" in out and "replies reviewed under liability-aware" in out
    # Piped, there are no colours: the flagged span is bracketed, and no line is padded with spaces.
    assert "[[Sorry for any inconvenience]]" in out
    assert not any(line != line.rstrip(" ") for line in out.splitlines())
    assert main(["review", str(EXAMPLE), "--policy", "empathy-first"]) == 0


def test_review_cli_names_a_malformed_line_and_reviews_the_rest(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    good = EXAMPLE.read_text().splitlines()[0]
    path = tmp_path / "h.jsonl"
    path.write_text(f'{good}\n{{"ticket": {{}}}}\nnot json\n{good}\n')
    assert main(["review", str(path), "--format", "jsonl"]) == 3
    captured = capsys.readouterr()
    assert f"{path}:2: skipped:" in captured.err and f"{path}:3: skipped: not valid JSON" in captured.err
    assert len(captured.out.splitlines()) == 2
    # A lint in CI that could not read all of its input says so, even when a finding reached --fail-on.
    assert main(["review", str(path), "--fail-on", "info"]) == 3


def test_review_names_keys_the_canonical_shape_ignores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An exporter's typo (`created` for `created_at`) loads, and would cost every reply its response time unsaid.
    good = EXAMPLE.read_text().splitlines()[0]
    typo = json.loads(good)
    typo["ticket"]["assignee"] = "lee"
    for message in typo["messages"]:
        message["created"] = message.pop("created_at", None)
        if message.get("author"):
            message["author"]["email"] = "x@example.org"
    path = tmp_path / "h.jsonl"
    path.write_text(f"{good}\n{json.dumps(typo)}\n")
    assert main(["review", str(path), "--format", "jsonl"]) == 0
    captured = capsys.readouterr()
    verdicts = [json.loads(line) for line in captured.out.splitlines()]
    assert len(verdicts) == 2 and verdicts[0]["signals"]["response_minutes"] is not None
    assert verdicts[1]["signals"]["response_minutes"] is None  # what the note is there to explain
    notes = [line for line in captured.err.splitlines() if ": note: " in line]
    assert notes == [f"{path}: note: ignored keys the canonical history shape does not have: ticket.assignee "
                     "(line 2), messages[].created (line 2), messages[].author.email (line 2)"]
    assert main(["review", str(EXAMPLE), "--format", "jsonl"]) == 0
    assert ": note: " not in capsys.readouterr().err


def test_review_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import sys

    data = EXAMPLE.read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["review", "-", "--format", "jsonl"]) == 0
    assert capsys.readouterr().out.count('"ticket_id"') >= 5


@pytest.mark.parametrize("name", ["event", "history", "verdict", "policy"])
def test_schema_command_prints_json_schema(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", name]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["type"] == "object" and schema["properties"]


def test_review_reads_a_message_csv_as_it_reads_the_same_tickets_in_jsonl(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    rows = [
        ["T-1", "c1", "customer", "u-1", "2026-11-20T09:00:00Z", "My blender arrived cracked. Third time asking!"],
        ["T-1", "a1", "agent", "a-7", "2026-11-20T09:40:00Z", "Sorry for any inconvenience."],
        ["T-2", "c2", "customer", "u-2", "2026-11-20T10:00:00Z", "Where is my refund?"],
        ["T-2", "a2", "agent", "a-8", "2026-11-20T10:05:00Z", "You should have read the terms."],
    ]
    with (tmp_path / "m.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["ticket_id", "message_id", "role", "author_id", "created_at", "body"], *rows])
    histories = [{"ticket": {"id": tid}, "messages": [
        {"id": mid, "role": role, "author": {"id": author}, "created_at": at, "body": body}
        for t, mid, role, author, at, body in rows if t == tid]} for tid in ("T-1", "T-2")]
    (tmp_path / "h.jsonl").write_text("".join(json.dumps(h) + "\n" for h in histories))

    assert main(["review", str(tmp_path / "m.csv"), "--format", "jsonl"]) == 0
    from_csv = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["review", str(tmp_path / "h.jsonl"), "--format", "jsonl"]) == 0
    from_jsonl = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [v["message_id"] for v in from_csv] == ["a1", "a2"]
    assert from_csv == from_jsonl
    assert {f["rule"] for f in from_csv[1]["findings"]} >= {"blame"}


def test_review_names_files_it_cannot_read_and_reviews_the_others(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.jsonl"
    assert main(["review", str(missing), str(EXAMPLE), str(tmp_path), "--format", "jsonl"]) == 3
    captured = capsys.readouterr()
    assert f"{missing}: skipped: cannot read the file: no such file" in captured.err
    assert f"{tmp_path}: skipped: cannot read the file: it is a directory" in captured.err
    assert len(captured.out.splitlines()) == sum(
        1 for line in EXAMPLE.read_text().splitlines() for m in json.loads(line)["messages"] if m["role"] == "agent")


def test_review_of_an_input_without_replies_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["review", str(tmp_path / "empty.jsonl")]) == 0
    assert "no public agent reply in the input" in capsys.readouterr().err


def test_a_finding_about_something_missing_points_past_the_salutation(policy: Policy) -> None:
    body = "Hi Jo,\n\nPlease book a repair slot at our site and bring the laptop with your receipt."
    v = review_reply(agent(body), [customer("My laptop screen cracked after two weeks.")], ticket(), policy)
    missing = next(f for f in v.findings if f.rule == "missing-apology")
    assert missing.excerpt.startswith("Please book a repair slot")
    assert body[missing.span[0]:missing.span[1]] == missing.excerpt


def test_every_command_says_what_it_does_and_the_tool_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("apology-worker ")
    for command in (["review"], ["policy"], ["backfill", "start"], ["dead-letters", "list"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        out = capsys.readouterr().out
        described = out.split("\n\n")[1].strip()
        assert not described.startswith(("positional arguments", "options")), f"{command}: no description"


def test_ctrl_c_ends_a_command_with_130_and_no_traceback(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Interrupting `review` (or a backfill while its policy loads) printed a Python traceback."""
    from worker.cli import review_cmd

    def interrupted(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(review_cmd, "load_policy", interrupted)
    assert main(["review", "config/examples/tickets.jsonl"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_a_verdict_is_one_line_whatever_line_separators_the_reply_holds(policy: Policy) -> None:
    """A reply with U+2028 put it raw into the verdict's excerpt: valid JSON, but two lines to str.splitlines
    and to JavaScript, so a JSONL reader split the verdict."""
    from worker.models import Message, Ticket

    body = "I'm sorry your lamp arrived cracked.\u2028A new one ships today.\x85Sam"
    reply = Message(id="m2", role="agent", author={"id": "a"}, body=body, format="text", public=True)
    said = Message(id="m1", role="customer", author={"id": "c"}, body="My lamp arrived cracked", format="text")
    verdict = review_reply(reply, [said], Ticket(id="t"), policy)
    finding = verdict.findings[0]
    verdict = verdict.model_copy(update={"findings": [finding.model_copy(update={"excerpt": body})]})
    line = verdict.to_json()
    assert len(verdict.model_dump_json().splitlines()) == 3  # what pydantic alone writes
    assert len(line.splitlines()) == 1
    assert Verdict.model_validate_json(line) == verdict
