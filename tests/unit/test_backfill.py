"""Backfill planning: deterministic chunks of whole tickets, compact payloads, atomic shards, job ids, and a
chunk judged with its unreadable lines and failed tickets named."""

from __future__ import annotations

import gzip
import json
import os
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import worker.backfill as backfill
from tests.support.histories import write_history
from worker.backfill import (
    BackfillError,
    BadLine,
    Chunk,
    RawTicket,
    chunks,
    job_id,
    judge_chunk,
    read_tickets,
    shard_path,
    write_shard,
)
from worker.engine import Policy, review_history
from worker.models import TicketHistory


def _chunks(path: Path, policy: Policy, size: int) -> list[Chunk | BadLine]:
    return list(chunks(read_tickets([str(path)], policy), size))


def _exact(history: Path, policy: Policy) -> int:
    return sum(1 for line in history.read_text().splitlines()
               for _ in review_history(TicketHistory.model_validate_json(line), policy))


def test_chunks_hold_whole_tickets_and_every_reply_once(tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=300)
    items = _chunks(history, policy, 50)
    got = [c for c in items if isinstance(c, Chunk)]
    assert [c.index for c in got] == list(range(len(got)))
    assert all(c.replies >= 50 for c in got[:-1])
    assert all(c.replies < 50 + 3 for c in got)  # cut at the first ticket boundary past the size
    tickets = [json.loads(t)["ticket"]["id"] for c in got for t in c.tickets]
    expected = [json.loads(line)["ticket"]["id"] for line in history.read_text().splitlines()]
    assert tickets == expected
    assert got[0].first == f"{history}:1" and got[-1].last == f"{history}:300"
    assert sum(c.replies for c in got) == _exact(history, policy)  # the estimate is exact on plain replies


def test_canonical_lines_go_to_the_worker_as_read(tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=5)
    raw = list(read_tickets([str(history)], policy))
    assert [t.data for t in raw if isinstance(t, RawTicket)] == history.read_bytes().splitlines()


def test_keys_the_canonical_shape_ignores_are_named_once(tmp_path: Path, policy: Policy,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=80)
    lines = history.read_text().splitlines()
    typo = json.loads(lines[2])
    typo["messages"][0]["sent_at"] = "2026-01-01T00:00:00Z"
    lines[2] = json.dumps(typo)
    history.write_text("\n".join(lines) + "\n")
    assert len(list(read_tickets([str(history)], policy))) == 80  # every ticket still goes to the workers
    assert capsys.readouterr().err.splitlines() == [
        f"{history}: note: ignored keys the canonical history shape does not have: messages[].sent_at (line 3)"]


def test_chunking_is_deterministic(tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=120)
    first = [c.encode() for c in _chunks(history, policy, 40) if isinstance(c, Chunk)]
    again = [c.encode() for c in _chunks(history, policy, 40) if isinstance(c, Chunk)]
    assert first == again


def test_unreadable_lines_are_named_by_the_worker_where_they_occur(tmp_path: Path, policy: Policy) -> None:
    good = write_history(tmp_path / "g.jsonl", 1).read_text().strip()
    path = tmp_path / "mixed.jsonl"
    path.write_text(f"{good}\n{{not json\n\n{good}\n{{\"ticket\": {{}}}}\n[1]\n")
    items = _chunks(path, policy, 1000)
    assert all(isinstance(c, Chunk) for c in items)  # the producer does not parse canonical JSONL
    result = judge_chunk(items[0], policy)  # type: ignore[arg-type]
    assert [b.location for b in result.unreadable] == [f"{path}:2", f"{path}:5", f"{path}:6"]
    assert result.unreadable[0].reason.startswith("not valid JSON (")
    assert result.unreadable[1].reason == "ticket.id: Field required; messages: Field required"
    assert result.replies == result.verdicts == 2 * _exact(tmp_path / "g.jsonl", policy)
    assert result.failures == []


def test_gzip_a_bom_and_invalid_utf8_read_as_the_text_readers_do(tmp_path: Path, policy: Policy) -> None:
    line = write_history(tmp_path / "g.jsonl", 1).read_bytes().strip()
    broken = line.replace(b"Best,", b"Best \xff\xfe,", 1)
    assert broken != line
    path = tmp_path / "h.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"\xef\xbb\xbf" + line + b"\r\n" + broken + b"\n")
    items = _chunks(path, policy, 1000)
    assert isinstance(items[0], Chunk) and [items[0].first, items[0].last] == [f"{path}:1", f"{path}:2"]
    result = judge_chunk(items[0], policy)
    assert result.unreadable == [] and result.verdicts == result.replies == 2 * _exact(tmp_path / "g.jsonl", policy)


def test_csv_and_zendesk_are_parsed_by_the_producer_with_exact_counts(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "m.csv"
    path.write_text("ticket_id,message_id,role,author_id,created_at,body,public\n"
                    "t1,m1,customer,u1,2026-01-01T10:00:00Z,My order is late,\n"
                    "t1,m2,agent,a1,2026-01-01T10:30:00Z,Sorry about the delay on your order.,\n"
                    "t1,m3,agent,a1,2026-01-01T10:31:00Z,\"internal: \"\"agent\"\" note\",false\n"
                    "t2,m4,wizard,u2,2026-01-01T11:00:00Z,Hello,\n")
    items = list(read_tickets([str(path)], policy))
    assert isinstance(items[0], RawTicket) and items[0].replies == 1 and items[0].location == f"{path}:2"
    assert TicketHistory.model_validate_json(items[0].data).ticket.id == "t1"
    assert isinstance(items[1], BadLine) and items[1].location == f"{path}:5" and "wizard" in items[1].reason


def test_chunk_payload_round_trips_as_json_lines(tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=40)
    other = write_history(tmp_path / "other:name.jsonl", tickets=3, seed=2)
    chunk = next(c for c in chunks(read_tickets([str(history), str(other)], policy), 500) if isinstance(c, Chunk))
    raw = chunk.encode()
    assert Chunk.decode(raw) == chunk
    assert chunk.last == f"{other}:3"
    head, *lines = raw.split(b"\n")
    assert json.loads(head)["files"] == [str(history), str(other)]
    assert lines == history.read_bytes().splitlines() + other.read_bytes().splitlines()
    with pytest.raises(BackfillError, match="damaged"):
        Chunk.decode(raw.rsplit(b"\n", 1)[0])
    with pytest.raises(BackfillError, match="earlier version"):
        Chunk.decode(zlib.compress(b'{"index": 0, "tickets": []}'))


def test_judge_chunk_gives_the_same_verdicts_as_review(tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=60)
    chunk = next(c for c in _chunks(history, policy, 10_000) if isinstance(c, Chunk))
    result = judge_chunk(chunk, policy)
    expected = [v.to_json() for line in history.read_text().splitlines()
                for v in review_history(TicketHistory.model_validate_json(line), policy)]
    assert [line.decode() for line in result.lines] == expected
    assert result.verdicts == result.replies == chunk.replies
    assert result.failures == [] and result.unreadable == []
    assert result.cpu["engine"] > 0 and set(result.cpu) == set(backfill.PHASES)


def test_a_ticket_the_engine_fails_on_costs_only_itself(tmp_path: Path, policy: Policy,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=3)
    chunk = next(c for c in _chunks(history, policy, 10_000) if isinstance(c, Chunk))
    doomed = json.loads(chunk.tickets[1])["ticket"]["id"]

    def flaky(h: TicketHistory, p: Policy) -> Iterator[object]:
        for verdict in review_history(h, p):
            yield verdict
            if h.ticket.id == doomed:
                raise RuntimeError("boom")  # after a first verdict: none of the ticket's verdicts is kept

    monkeypatch.setattr(backfill, "review_history", flaky)
    result = judge_chunk(chunk, policy, keep=True)
    assert [b.location for b in result.failures] == [f"chunk {chunk.index} ticket {doomed}"]
    assert "engine error: RuntimeError: boom" in result.failures[0].reason
    assert {t.id for t, _ in result.judged} == {json.loads(t)["ticket"]["id"] for t in chunk.tickets} - {doomed}
    assert result.replies == chunk.replies  # counted, so the job cannot look complete
    assert [line.decode() for line in result.lines] == [v.to_json() for _, v in result.judged]


def test_shards_are_replaced_not_appended(tmp_path: Path) -> None:
    write_shard(tmp_path, 7, ["a", "b"])
    write_shard(tmp_path, 7, [b"a", b"b"])
    assert shard_path(tmp_path, 7).read_text() == "a\nb\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-000007.jsonl"]  # no temp files left
    write_shard(tmp_path, 8, [])
    assert shard_path(tmp_path, 8).read_text() == ""


def test_job_id_follows_content_policy_and_chunk_size(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    a.write_text("one\n")
    b = tmp_path / "b.jsonl"
    b.write_text("one\n")
    assert job_id([str(a)], "v1", 500) == job_id([str(b)], "v1", 500)
    assert job_id([str(a)], "v1", 500) != job_id([str(a)], "v2", 500)
    assert job_id([str(a)], "v1", 500) != job_id([str(a)], "v1", 100)
    assert job_id([str(a)], "v1", 500) != job_id([str(a), str(b)], "v1", 500)
    with pytest.raises(BackfillError, match="standard input"):
        job_id(["-"], "v1", 500)


def test_shards_get_the_permissions_of_any_new_file(tmp_path: Path) -> None:
    """Shards were 0600 (mkstemp's) next to a 0644 `_job.json`: both now follow the umask."""
    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        old = os.umask(umask)
        try:
            shard = write_shard(tmp_path / oct(umask), 0, ["a"])
            plain = tmp_path / oct(umask) / "_job.json"
            plain.write_text("{}")
        finally:
            os.umask(old)
        assert stat.S_IMODE(shard.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == mode
        assert sorted(p.name for p in shard.parent.iterdir()) == ["_job.json", "part-000000.jsonl"]
