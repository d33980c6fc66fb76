"""Backfill planning: job ids, chunking an export into tasks of many replies, and judging one chunk.

Nothing here touches Redis or Celery. The producer (`worker.cli.backfill_cmd`) streams an export through
`chunks()`, the job store (`worker.jobs`) keeps the state, and the chunk task (`worker.backfill_tasks`)
hands a stored chunk to `judge_chunk()` and its verdicts to `write_shard()` or the deliveries.

Chunking is deterministic: the same files under the same policy and chunk size always give the same chunks
in the same order, so a resumed producer can skip what it enqueued before and a retried chunk writes the
same shard again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from worker.engine import Policy, review_history, reviewable
from worker.errors import ApologyWorkerError
from worker.history import HistoryLine, describe_validation_error
from worker.models import Ticket, TicketHistory, Verdict

CHUNK_REPLIES = 500
_HASH_BLOCK = 1 << 20


class BackfillError(ApologyWorkerError):
    """A backfill cannot start or go on; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Whole tickets holding about `CHUNK_REPLIES` replies: one task's work."""

    index: int
    tickets: list[dict[str, Any]]
    replies: int
    first: str  # file:line of its first ticket
    last: str  # file:line of its last ticket

    def encode(self) -> bytes:
        """zlib-compressed JSON (never a format that rebuilds objects): what the chunk task reads back from Redis."""
        body = {"index": self.index, "replies": self.replies, "first": self.first, "last": self.last,
                "tickets": self.tickets}
        return zlib.compress(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), 1)

    @classmethod
    def decode(cls, raw: bytes) -> Chunk:
        body = json.loads(zlib.decompress(raw))
        return cls(int(body["index"]), list(body["tickets"]), int(body["replies"]), str(body["first"]),
                   str(body["last"]))


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of the input that could not be read: recorded with the job, skipped."""

    location: str
    reason: str


def job_id(files: Sequence[str], policy_version: str, chunk_replies: int) -> str:
    """The same inputs (by content) under the same policy version and chunk size are the same job."""
    digest = hashlib.sha256(f"{policy_version}|{chunk_replies}".encode())
    for name in files:
        if name == "-":
            raise BackfillError("a backfill cannot read standard input: resuming needs to read the input "
                                "again; save it to a file first")
        digest.update(b"\0file\0")
        try:
            with Path(name).open("rb") as fh:
                while block := fh.read(_HASH_BLOCK):
                    digest.update(block)
        except OSError as exc:
            raise BackfillError(f"cannot read {name}: {exc.strerror}") from None
    return "bf-" + digest.hexdigest()[:16]


def count_replies(history: TicketHistory, policy: Policy) -> int:
    return sum(1 for m in history.messages if reviewable(m, policy))


def chunks(lines: Iterable[HistoryLine], policy: Policy,
           chunk_replies: int = CHUNK_REPLIES) -> Iterator[Chunk | BadLine]:
    """Whole tickets grouped into chunks of at least `chunk_replies` replies (the last may hold fewer).

    Tickets without a reply ride along with the next chunk; a chunk is only cut between tickets, so every
    reply is judged with its whole conversation. Bad lines are yielded where they occur.
    """
    tickets: list[dict[str, Any]] = []
    replies = 0
    first = last = ""
    index = 0
    for line in lines:
        if line.history is None:
            yield BadLine(line.location, line.error or "unreadable")
            continue
        if not tickets:
            first = line.location
        tickets.append(line.history.model_dump(mode="json", exclude_defaults=True))
        replies += count_replies(line.history, policy)
        last = line.location
        if replies >= chunk_replies:
            yield Chunk(index, tickets, replies, first, last)
            index += 1
            tickets, replies = [], 0
    if tickets:
        yield Chunk(index, tickets, replies, first, last)


@dataclass
class ChunkResult:
    """A chunk's verdicts as JSON lines, and the tickets the engine could not judge."""

    judged: list[tuple[Ticket, Verdict]] = field(default_factory=list)
    failures: list[BadLine] = field(default_factory=list)

    @property
    def verdicts(self) -> int:
        return len(self.judged)

    def lines(self) -> list[str]:
        return [v.model_dump_json() for _, v in self.judged]


def judge_chunk(chunk: Chunk, policy: Policy) -> ChunkResult:
    """Every reply of the chunk judged, in input order. A ticket that fails is reported, not fatal."""
    result = ChunkResult()
    for n, raw in enumerate(chunk.tickets):
        try:
            history = TicketHistory.model_validate(raw)
            result.judged.extend((history.ticket, v) for v in review_history(history, policy))
        except ValidationError as exc:  # only a foreign writer could put this in the store
            result.failures.append(BadLine(f"chunk {chunk.index} ticket {n}", describe_validation_error(exc)))
        except Exception as exc:  # an engine bug must cost one ticket, not the whole backfill
            ticket = raw.get("ticket", {}).get("id", n) if isinstance(raw, dict) else n
            result.failures.append(BadLine(f"chunk {chunk.index} ticket {ticket}",
                                           f"engine error: {type(exc).__name__}: {exc}"))
    return result


def shard_path(output: str | os.PathLike[str], index: int) -> Path:
    return Path(output) / f"part-{index:06d}.jsonl"


def write_shard(output: str | os.PathLike[str], index: int, lines: Sequence[str]) -> Path:
    """Write one chunk's verdicts atomically: a temp file renamed over the shard, so a retried chunk
    replaces its shard instead of adding to it, and a reader never sees half a shard."""
    target = shard_path(output, index)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if lines:
                fh.write("\n".join(lines))
                fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
