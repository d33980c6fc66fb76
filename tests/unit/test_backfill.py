"""Backfill planning: deterministic chunks of whole tickets, compact payloads, atomic shards, job ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.histories import write_history
from worker.backfill import BackfillError, BadLine, Chunk, chunks, job_id, judge_chunk, shard_path, write_shard
from worker.engine import Policy, review_history
from worker.exports import read_export
from worker.models import TicketHistory


def _chunks(path: Path, policy: Policy, size: int) -> list[Chunk | BadLine]:
    return list(chunks(read_export(str(path)), policy, size))


def test_chunks_hold_whole_tickets_and_every_reply_once(tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=300)
    items = _chunks(history, policy, 50)
    got = [c for c in items if isinstance(c, Chunk)]
    assert [c.index for c in got] == list(range(len(got)))
    assert all(c.replies >= 50 for c in got[:-1])
    assert all(c.replies < 50 + 3 for c in got)  # cut at the first ticket boundary past the size
    tickets = [t["ticket"]["id"] for c in got for t in c.tickets]
    expected = [json.loads(line)["ticket"]["id"] for line in history.read_text().splitlines()]
    assert tickets == expected
    assert got[0].first == f"{history}:1" and got[-1].last == f"{history}:300"
    assert sum(c.replies for c in got) == sum(
        1 for line in history.read_text().splitlines()
        for _ in review_history(TicketHistory.model_validate_json(line), policy))


def test_chunking_is_deterministic(tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=120)
    first = [c.encode() for c in _chunks(history, policy, 40) if isinstance(c, Chunk)]
    again = [c.encode() for c in _chunks(history, policy, 40) if isinstance(c, Chunk)]
    assert first == again


def test_bad_lines_are_reported_where_they_occur(tmp_path: Path, policy: Policy) -> None:
    good = json.dumps(next(iter(json.loads(line) for line in
                                write_history(tmp_path / "g.jsonl", 1).read_text().splitlines())))
    path = tmp_path / "mixed.jsonl"
    path.write_text(f"{good}\n{{not json\n{good}\n{{\"ticket\": {{}}}}\n")
    items = _chunks(path, policy, 1000)
    bad = [i for i in items if isinstance(i, BadLine)]
    assert [b.location for b in bad] == [f"{path}:2", f"{path}:4"]
    assert "not valid JSON" in bad[0].reason
    assert sum(len(c.tickets) for c in items if isinstance(c, Chunk)) == 2


def test_chunk_payload_round_trips_as_compressed_json(tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=40)
    chunk = next(c for c in _chunks(history, policy, 500) if isinstance(c, Chunk))
    raw = chunk.encode()
    assert Chunk.decode(raw) == chunk
    assert len(raw) < history.stat().st_size / 3


def test_judge_chunk_gives_the_same_verdicts_as_review(tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=60)
    chunk = next(c for c in _chunks(history, policy, 10_000) if isinstance(c, Chunk))
    result = judge_chunk(chunk, policy)
    expected = [v.to_json() for line in history.read_text().splitlines()
                for v in review_history(TicketHistory.model_validate_json(line), policy)]
    assert result.lines() == expected
    assert result.verdicts == chunk.replies
    assert result.failures == []


def test_a_ticket_that_fails_costs_only_itself(policy: Policy) -> None:
    chunk = Chunk(3, [{"ticket": {"id": "x"}, "messages": "nope"}], 1, "f:1", "f:1")
    result = judge_chunk(chunk, policy)
    assert result.verdicts == 0
    assert result.failures[0].location == "chunk 3 ticket 0"


def test_shards_are_replaced_not_appended(tmp_path: Path) -> None:
    write_shard(tmp_path, 7, ["a", "b"])
    write_shard(tmp_path, 7, ["a", "b"])
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
