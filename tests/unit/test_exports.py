"""The export readers: canonical JSONL, message-per-row CSV and Zendesk, streamed in constant memory."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import tracemalloc
from pathlib import Path

import pytest

from worker.exports import detect_format, read_export
from worker.exports.messages_csv import MAX_MESSAGES_PER_TICKET

HEADER = ["ticket_id", "message_id", "role", "author_id", "created_at", "body", "team", "tags", "public"]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def history_line(tid: str, team: str = "returns") -> str:
    return json.dumps({"ticket": {"id": tid, "team": team}, "messages": [
        {"id": f"{tid}-c", "role": "customer", "body": "My parcel is late",
         "created_at": "2026-11-20T09:00:00Z"},
        {"id": f"{tid}-a", "role": "agent", "author": {"id": "a-1"}, "body": "Sorry about the delay.",
         "created_at": "2026-11-20T09:30:00Z"}]})


# --- canonical JSONL ---------------------------------------------------------------------------------

def test_canonical_jsonl_plain_and_gzip_read_alike(tmp_path: Path) -> None:
    text = history_line("T1") + "\n\n" + history_line("T2") + "\n"
    plain = tmp_path / "h.jsonl"
    plain.write_text(text)
    packed = tmp_path / "h.jsonl.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        lines = list(read_export(str(path)))
        found = [(line.location.rsplit(":", 1)[1], line.history and line.history.ticket.id) for line in lines]
        assert found == [("1", "T1"), ("3", "T2")]


def test_canonical_bad_lines_are_named_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join([history_line("T1"), "{not json", '{"ticket": {"id": "x"}, "messages": []}',
                               history_line("T4")]) + "\n")
    lines = list(read_export(str(path)))
    assert [line.history.ticket.id for line in lines if line.history] == ["T1", "T4"]
    errors = {line.location: line.error for line in lines if line.error}
    assert set(errors) == {f"{path}:2", f"{path}:3"}
    assert "not valid JSON" in errors[f"{path}:2"]
    assert "messages" in errors[f"{path}:3"]


def test_a_cut_short_line_names_its_column_as_every_reader_does(tmp_path: Path) -> None:
    line = history_line("T1")
    cut = line[:57]
    jsonl = tmp_path / "h.jsonl"
    jsonl.write_text(f"{cut}\n{line}\n")
    zendesk = tmp_path / "z.json"
    zendesk.write_text('{"ticket": {"id": 1, "requester_id": 2}, "comments": []}\n' + cut + "\n")
    canonical = [x.error for x in read_export(str(jsonl)) if x.error]
    from_zendesk = [x.error for x in read_export(str(zendesk), "zendesk") if x.location.endswith(":2")]
    assert canonical == from_zendesk == [f"not valid JSON (EOF while parsing a list at column {len(cut)})"]


def test_ids_written_as_json_numbers_are_read_as_their_digits(tmp_path: Path) -> None:
    """Helpdesk exports number tickets, messages and users (Zendesk's "id": 5158); true is no id."""
    path = tmp_path / "h.jsonl"
    numbered = {"ticket": {"id": 5158}, "messages": [
        {"id": 1, "role": "customer", "author": {"id": 77}, "body": "Broken"},
        {"id": 2, "role": "agent", "body": "Sorry about that."}]}
    path.write_text(json.dumps(numbered) + "\n" + json.dumps({**numbered, "ticket": {"id": True}}) + "\n")
    first, second = list(read_export(str(path)))
    assert first.history is not None and first.history.ticket.id == "5158"
    assert [m.id for m in first.history.messages] == ["1", "2"]
    assert first.history.messages[0].author is not None and first.history.messages[0].author.id == "77"
    assert second.history is None and "ticket.id" in (second.error or "")


def test_a_byte_order_mark_does_not_spoil_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (history_line("T1") + "\n" + history_line("T2") + "\n").encode())
    assert [(x.history and x.history.ticket.id, x.error) for x in read_export(str(path))] == [
        ("T1", None), ("T2", None)]


def test_an_unreadable_file_is_named_after_what_it_gave(tmp_path: Path) -> None:
    good = (history_line("T1") + "\n") * 3
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(good.encode() * 400)[:-200])
    not_gzip = tmp_path / "plain.jsonl.gz"
    not_gzip.write_text(good)
    cases = {str(tmp_path / "missing.jsonl"): "no such file", str(tmp_path): "directory",
             str(not_gzip): "not a gzip file", str(truncated): "ends early"}
    for path, reason in cases.items():
        lines = list(read_export(path))
        assert lines[-1].location == path and lines[-1].history is None, path
        assert reason in (lines[-1].error or ""), (path, lines[-1].error)
    assert sum(1 for x in read_export(str(truncated)) if x.history) > 100  # what came before the fault


def test_stdin_is_read_and_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (history_line("S1") + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    lines = list(read_export("-"))
    assert [(line.location, line.history.ticket.id if line.history else None) for line in lines] == [
        ("<stdin>:1", "S1")]


# --- CSV ---------------------------------------------------------------------------------------------

def test_csv_rows_are_grouped_into_tickets_in_time_order(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [
        ["T1", "m2", "agent", "a-1", "2026-11-20T09:30:00+00:00", "Sorry, refund issued.", "", "", ""],
        ["T1", "m1", "customer", "u-1", "2026-11-20T09:00:00+00:00", "Charged twice,\nplease fix", "billing",
         "vip, urgent", ""],
        ["T2", "m3", "end-user", "u-2", "2026-11-21T10:00:00Z", "Hi", "", "", ""],
        ["T2", "m4", "agent", "a-2", "2026-11-21T10:05:00Z", "Internal note", "", "", "false"],
    ])
    lines = list(read_export(str(path)))
    assert all(line.error is None for line in lines)
    t1, t2 = (line.history for line in lines)
    assert t1 is not None and t2 is not None
    assert [m.id for m in t1.messages] == ["m1", "m2"]
    assert t1.messages[0].body == "Charged twice,\nplease fix"
    assert (t1.ticket.team, t1.ticket.tags) == ("billing", ["vip", "urgent"])
    assert [m.role for m in t2.messages] == ["customer", "agent"]
    assert t2.messages[1].public is False
    assert [line.location for line in lines] == [f"{path}:2", f"{path}:5"]  # row 2 spans lines 3-4


def test_csv_bad_rows_are_named_and_the_rest_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [
        ["T1", "m1", "customer", "u-1", "2026-11-20T09:00:00Z", "late", "", "", ""],
        ["T1", "m2", "robot", "a-1", "2026-11-20T09:10:00Z", "hello", "", "", ""],
        ["T1", "m3", "agent", "a-1", "yesterday", "hello", "", "", ""],
        ["T1", "m4", "agent", "a-1", "2026-11-20T09:20:00Z", "Sorry for the delay.", "", "", ""],
    ])
    lines = list(read_export(str(path)))
    errors = {line.location: line.error for line in lines if line.error}
    assert set(errors) == {f"{path}:3", f"{path}:4"}
    assert "role 'robot'" in (errors[f"{path}:3"] or "")
    assert "created_at 'yesterday'" in (errors[f"{path}:4"] or "")
    [ticket] = [line.history for line in lines if line.history]
    assert [m.id for m in ticket.messages] == ["m1", "m4"]


def test_csv_missing_columns_are_reported_once(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [["T1", "hello"]], header=["ticket_id", "body"])
    [line] = list(read_export(str(path)))
    assert line.location == f"{path}:1" and line.history is None
    assert "author_id" in (line.error or "") and "created_at" in (line.error or "")


@pytest.mark.parametrize(("delimiter", "header"), [
    (",", ["Ticket ID", "Message ID", "Role", "Author ID", "Created At", "Body"]),
    (";", ["ticketId", "messageId", "authorType", "userId", "timestamp", "text"]),
    ("\t", ["conversation-id", "comment_id", "sender_role", "sender_id", "created", "content"]),
])
def test_csv_headers_as_exports_write_them_are_read(tmp_path: Path, delimiter: str, header: list[str]) -> None:
    """Real exports title-case or camelCase their headers, rename columns, and Excel in most of Europe writes
    semicolons: the columns are still found, by name, in any order."""
    path = tmp_path / "export.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerow(["T1", "m1", "contact", "u-1", "2026-11-20T09:00:00Z", "Late; again"])
        w.writerow(["T1", "m2", "teammate", "a-1", "2026-11-20T09:30:00Z", "Sorry, it ships today."])
    [line] = list(read_export(str(path)))
    assert line.error is None and line.history is not None
    assert [(m.role, m.body) for m in line.history.messages] == [
        ("customer", "Late; again"), ("agent", "Sorry, it ships today.")]
    head = path.read_text(encoding="utf-8").splitlines(keepends=True)[:1]
    assert detect_format("-", head) == "csv"


def test_csv_epoch_timestamps_are_read_in_seconds_or_milliseconds(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [
        ["T1", "m1", "customer", "u-1", "1795165200", "late", "", "", ""],
        ["T1", "m2", "agent", "a-1", "1795167000000", "sorry", "", "", ""],
        ["T2", "m3", "agent", "a-1", "20/11/2026 09:00", "sorry", "", "", ""]])
    first, *rest = list(read_export(str(path)))
    assert first.history is not None
    assert [m.created_at.isoformat() for m in first.history.messages if m.created_at] == [
        "2026-11-20T09:00:00+00:00", "2026-11-20T09:30:00+00:00"]
    assert rest[0].location == f"{path}:4" and "'20/11/2026 09:00' is not an ISO 8601" in (rest[0].error or "")


def test_csv_two_aliases_for_one_column_are_not_guessed_between(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [["T1", "m1", "agent", "a-1", "2026-11-20T09:00:00Z", "a", "b"]],
                     header=["ticket_id", "message_id", "role", "author_id", "created_at", "text", "content"])
    [line] = list(read_export(str(path)))
    assert line.history is None and "body" in (line.error or "")


def test_csv_non_contiguous_ticket_is_reported_not_merged(tmp_path: Path) -> None:
    row = ["customer", "u", "2026-11-20T09:00:00Z", "hi", "", "", ""]
    path = write_csv(tmp_path / "m.csv", [["T1", "m1", *row], ["T2", "m2", *row], ["T1", "m3", *row]])
    lines = list(read_export(str(path)))
    assert [line.history.ticket.id for line in lines if line.history] == ["T1", "T2"]
    [bad] = [line for line in lines if line.error]
    assert bad.location == f"{path}:4" and "not contiguous" in (bad.error or "")


def test_csv_ticket_size_is_capped(tmp_path: Path) -> None:
    rows = [["T1", f"m{i}", "customer", "u", "", "hi", "", "", ""]
            for i in range(MAX_MESSAGES_PER_TICKET + 3)]
    lines = list(read_export(str(write_csv(tmp_path / "m.csv", rows))))
    [ticket] = [line.history for line in lines if line.history]
    assert len(ticket.messages) == MAX_MESSAGES_PER_TICKET
    assert sum(1 for line in lines if line.error) == 1


# --- Zendesk -----------------------------------------------------------------------------------------

ZD_USERS = [{"id": 901, "name": "Dana", "role": "end-user"}, {"id": 17, "name": "Sam", "role": "agent"},
            {"id": 55, "name": "Kim", "role": "end-user"}]


def zd_ticket(tid: int, **extra: object) -> dict[str, object]:
    return {"id": tid, "subject": "Blender cracked", "raw_subject": "Blender cracked", "requester_id": 901,
            "submitter_id": 901, "assignee_id": 17, "group_id": 360, "tags": ["vip"],
            "via": {"channel": "email"}, "status": "open", **extra}


def zd_comments() -> list[dict[str, object]]:
    return [
        {"id": 2, "type": "Comment", "author_id": 17, "body": "Sorry!", "html_body": "<p>I'm sorry the jug "
         "cracked.</p>", "public": True, "created_at": "2026-11-20T10:04:00Z"},
        {"id": 1, "type": "Comment", "author_id": 901, "body": "The jug arrived cracked!!", "public": True,
         "created_at": "2026-11-20T09:23:00Z"},
        {"id": 3, "type": "Comment", "author_id": 55, "body": "cc: same here", "public": True,
         "created_at": "2026-11-20T10:10:00Z"},
        {"id": 4, "type": "Comment", "author_id": 77, "body": "check stock", "public": False,
         "created_at": "2026-11-20T10:11:00Z"},
        {"id": 5, "type": "Comment", "author_id": -1, "body": "Ticket merged", "public": False,
         "created_at": "2026-11-20T10:12:00Z"},
    ]


def test_zendesk_ticket_lines_map_to_canonical_messages(tmp_path: Path) -> None:
    path = tmp_path / "zd.jsonl"
    path.write_text("\n".join([
        json.dumps({"ticket": zd_ticket(5158), "comments": zd_comments(), "users": ZD_USERS,
                    "groups": [{"id": 360, "name": "returns"}]}),
        json.dumps(zd_ticket(5159, comments=zd_comments()[:2])),
        "[1, 2]",
    ]) + "\n")
    lines = list(read_export(str(path)))
    first, second, third = lines
    assert first.history is not None and second.history is not None
    h = first.history
    assert (h.ticket.id, h.ticket.team, h.ticket.channel, h.ticket.tags) == (
        "5158", "returns", "email", ["vip"])
    assert [(m.id, m.role) for m in h.messages] == [("1", "customer"), ("2", "agent"), ("3", "customer"),
                                                    ("4", "agent"), ("5", "system")]
    reply = h.messages[1]
    assert (reply.format, reply.body, reply.author and reply.author.name) == (
        "html", "<p>I'm sorry the jug cracked.</p>", "Sam")
    assert second.history.ticket.team == "group-360"  # no groups side-loaded
    assert third.history is None and third.location == f"{path}:3"


def test_zendesk_export_page_yields_each_ticket(tmp_path: Path) -> None:
    tickets = [zd_ticket(1, comments=zd_comments()), zd_ticket(2), zd_ticket(3, comments=[{"id": 9}])]
    page = {"tickets": tickets, "users": ZD_USERS, "after_cursor": "abc", "end_of_stream": True}
    path = tmp_path / "zd.json"
    path.write_text(json.dumps(page) + "\n")
    lines = list(read_export(str(path)))
    assert [line.location for line in lines] == [f"{path}:1#0", f"{path}:1#1", f"{path}:1#2"]
    assert lines[0].history is not None
    assert "no `comments`" in (lines[1].error or "")
    assert lines[2].history is None and lines[2].error


# --- detection ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "head", "expected"), [
    ("x.csv", ["anything"], "csv"),
    ("x.csv.gz", [], "csv"),
    ("-", ["ticket_id,message_id,role,author_id,created_at,body\n"], "csv"),
    ("x.jsonl", ["\n", history_line("T1")], "jsonl"),
    ("x.jsonl", [json.dumps({"ticket": zd_ticket(1), "comments": []})], "zendesk"),
    ("x.jsonl", [json.dumps({"tickets": [], "end_of_stream": True})], "zendesk"),
    ("x.jsonl", ["{broken"], "jsonl"),
])
def test_format_detection(path: str, head: list[str], expected: str) -> None:
    assert detect_format(path, head) == expected


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_text(json.dumps({"ticket": zd_ticket(7), "comments": zd_comments()}) + "\n")
    assert next(read_export(str(path), "zendesk")).history is not None
    assert next(read_export(str(path), "jsonl")).history is None


# --- constant memory ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_memory_stays_flat_on_a_large_file(tmp_path: Path, fmt: str) -> None:
    tickets = 6000
    padding = "The parcel still has not arrived and nobody answers. " * 20
    path = tmp_path / f"big.{fmt}"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if fmt == "csv":
            w.writerow(HEADER)
        for t in range(tickets):
            for i, role in enumerate(("customer", "agent", "customer", "agent")):
                row = [f"T{t}", f"m{t}-{i}", role, f"{role[0]}-{t % 40}", f"2026-11-20T09:{i:02d}:00Z",
                       f"{padding}{t}", "returns", "", ""]
                if fmt == "csv":
                    w.writerow(row)
            if fmt == "jsonl":
                fh.write(json.dumps({"ticket": {"id": f"T{t}"}, "messages": [
                    {"id": f"m{t}-{i}", "role": role, "body": f"{padding}{t}"}
                    for i, role in enumerate(("customer", "agent", "customer", "agent"))]}) + "\n")
    size = path.stat().st_size
    assert size > 20_000_000
    tracemalloc.start()
    try:
        count = sum(1 for line in read_export(str(path)) if line.history is not None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == tickets
    assert peak < size / 20, f"peak {peak} bytes for a {size}-byte file"
