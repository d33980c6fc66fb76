"""Backfill planning: job ids, chunking an export into tasks of many replies, and judging one chunk.

Nothing here touches Redis or Celery. The producer (`worker.cli.backfill_cmd`) streams an export through
`read_tickets()` and `chunks()`, the job store (`worker.jobs`) keeps the state, and the chunk task
(`worker.backfill_tasks`) hands a stored chunk to `judge_chunk()` and its verdicts to `write_shard()` or
the deliveries.

The producer shares the machine with the workers, so it does as little per ticket as it can: a canonical
JSONL line travels to the worker as the bytes that were read, unparsed, with an estimate of its replies
(`"agent"` counted in the line); the worker validates it once, straight from JSON, counts the replies
exactly and reports a line it cannot read under its `file:line`. CSV and Zendesk exports have to be
parsed to be grouped into tickets, so the producer sends their tickets as canonical JSON with exact counts.

Chunking is deterministic: the same files under the same policy and chunk size always give the same chunks
in the same order, so a resumed producer can skip what it enqueued before and a retried chunk writes the
same shard again.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from worker.engine import Policy, review_history, reviewable
from worker.errors import ApologyWorkerError
from worker.exports import detect_format, read_export
from worker.history import IgnoredKeys, describe_json_error
from worker.models import Ticket, TicketHistory, Verdict, one_line

CHUNK_REPLIES = 2000
_HASH_BLOCK = 1 << 20
_PEEK_LINES = 50
_AGENT = b'"agent"'
_BOM = b"\xef\xbb\xbf"
_BATCH = 64  # tickets validated, judged and serialised together
_VERDICT_JSON = Verdict.__pydantic_serializer__


class BackfillError(ApologyWorkerError):
    """A backfill cannot start or go on; the message says what to do."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of the input that could not be read, or a ticket that could not be judged: recorded, skipped."""

    location: str
    reason: str


class RawTicket(NamedTuple):
    """One ticket as JSON bytes, where it was read (`file`, `at` a line or `line#index`), and its replies
    (an estimate for canonical JSONL, which is not parsed before the worker; exact for other formats).
    A tuple: the producer makes one per line, and a tuple is the cheapest object Python makes."""

    file: str
    at: str
    data: bytes
    replies: int

    @property
    def location(self) -> str:
        return f"{self.file}:{self.at}"


@dataclass(frozen=True, slots=True)
class Chunk:
    """Whole tickets holding about `CHUNK_REPLIES` replies: one task's work."""

    index: int
    tickets: list[bytes]  # one ticket history as JSON each, in input order
    files: list[str]  # the input files the tickets come from
    file_of: list[int]  # per ticket, its file (an index into `files`)...
    at: list[str]  # ...and its line there (`line`, or `line#index` in a Zendesk export page)
    replies: int  # as estimated by the producer; the worker counts them exactly

    def location(self, n: int) -> str:
        """`file:line` of the n-th ticket."""
        return f"{self.files[self.file_of[n]]}:{self.at[n]}"

    @property
    def first(self) -> str:
        return self.location(0) if self.tickets else ""

    @property
    def last(self) -> str:
        return self.location(len(self.tickets) - 1) if self.tickets else ""

    def encode(self) -> bytes:
        """JSON lines (never a format that rebuilds objects): a header, then one ticket per line, as read.

        Not compressed: compressing costs the producer more per reply than validating costs the worker,
        and the producer keeps at most `--max-pending` chunks in Redis.
        """
        header = {"index": self.index, "replies": self.replies, "files": self.files, "file_of": self.file_of,
                  "at": self.at}
        return b"\n".join([json.dumps(header, separators=(",", ":")).encode(), *self.tickets])

    @classmethod
    def decode(cls, raw: bytes) -> Chunk:
        if not raw.startswith(b'{"index":'):
            raise BackfillError("a chunk stored by an earlier version of apology-worker (compressed): cancel "
                                "the job and start it again with this version")
        head, _, body = raw.partition(b"\n")
        h = json.loads(head)
        tickets = body.split(b"\n") if h["at"] else []
        if not len(tickets) == len(h["at"]) == len(h["file_of"]):
            raise BackfillError(f"chunk {h['index']} is damaged: {len(tickets)} tickets for "
                                f"{len(h['at'])} locations")
        return cls(int(h["index"]), tickets, h["files"], h["file_of"], h["at"], int(h["replies"]))


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


def read_tickets(files: Iterable[str], policy: Policy) -> Iterator[RawTicket | BadLine]:
    """Every ticket of the files in turn, as JSON bytes; lines the producer can already tell are unreadable
    (in CSV and Zendesk exports) as `BadLine`s where they occur."""
    for path in files:
        with _open_binary(path) as fh:
            head = list(itertools.islice(fh, _PEEK_LINES))
            fmt = detect_format(path, [line.decode("utf-8", "replace") for line in head])
        if fmt == "jsonl":
            yield from _canonical_lines(path)
        else:
            yield from _parsed(path, policy)


def _open_binary(path: str) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.endswith(".gz") else Path(path).open("rb")


def _canonical_lines(path: str) -> Iterator[RawTicket]:
    keys = IgnoredKeys(path)
    with _open_binary(path) as fh:
        for n, line in enumerate(fh, start=1):
            if n == 1:
                line = line.removeprefix(_BOM)
            line = line.strip()
            if line:
                keys.see(n, line)
                yield RawTicket(path, str(n), line, line.count(_AGENT))
    keys.report()


def _parsed(path: str, policy: Policy) -> Iterator[RawTicket | BadLine]:
    prefix = len(path) + 1
    for line in read_export(path):
        if line.history is None:
            yield BadLine(line.location, line.error or "unreadable")
        else:
            yield RawTicket(path, line.location[prefix:], line.history.model_dump_json(exclude_defaults=True).encode(),
                            count_replies(line.history, policy))


def chunks(tickets: Iterable[RawTicket | BadLine], chunk_replies: int = CHUNK_REPLIES) -> Iterator[Chunk | BadLine]:
    """Whole tickets grouped into chunks of at least `chunk_replies` (estimated) replies; the last may hold
    fewer. Tickets without a reply ride along with the next chunk; a chunk is only cut between tickets, so
    every reply is judged with its whole conversation. Bad lines are yielded where they occur."""
    data: list[bytes] = []
    files: dict[str, int] = {}
    file_of: list[int] = []
    at: list[str] = []
    replies = 0
    index = 0
    for item in tickets:
        if isinstance(item, BadLine):
            yield item
            continue
        data.append(item.data)
        file_of.append(files.setdefault(item.file, len(files)))
        at.append(item.at)
        replies += item.replies
        if replies >= chunk_replies:
            yield Chunk(index, data, list(files), file_of, at, replies)
            index += 1
            data, files, file_of, at, replies = [], {}, [], [], 0
    if data:
        yield Chunk(index, data, list(files), file_of, at, replies)


# Where a chunk task's CPU goes: fetching and decoding the chunk, loading the job's policy (once per
# process), validating its tickets, the engine, serialising the verdicts, writing the shard (or queueing
# the deliveries).
PHASES = ("read", "policy", "parse", "engine", "serialise", "write")


@dataclass
class ChunkResult:
    """A chunk's verdicts as JSON lines (and as objects when asked), its exact reply count, what could not
    be read or judged, and where the CPU went."""

    lines: list[bytes] = field(default_factory=list)  # one verdict as JSON each, in input order
    judged: list[tuple[Ticket, Verdict]] = field(default_factory=list)  # only with judge_chunk(keep=True)
    replies: int = 0
    unreadable: list[BadLine] = field(default_factory=list)  # input lines that are no ticket history
    failures: list[BadLine] = field(default_factory=list)  # tickets the engine could not judge
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @property
    def verdicts(self) -> int:
        return len(self.lines)


def judge_chunk(chunk: Chunk, policy: Policy, *, keep: bool = False) -> ChunkResult:
    """Every reply of the chunk judged, in input order; `keep` also keeps the verdict objects (to route
    them). A bad line or a ticket that fails is reported, not fatal.

    Tickets go through in batches, each validated, then judged, then serialised: the clock is read per
    batch rather than per ticket, and only one batch of tickets is alive at a time, which keeps the
    cyclic garbage collector from walking a whole chunk's objects again and again.
    """
    result = ChunkResult()
    clock = time.process_time
    cpu = result.cpu
    for start in range(0, len(chunk.tickets), _BATCH):
        started = clock()
        histories = []
        for n in range(start, min(start + _BATCH, len(chunk.tickets))):
            history = _validate(chunk, n, result)
            if history is not None:
                histories.append(history)
        parsed = clock()
        batch: list[Verdict] = []
        for history in histories:
            result.replies += count_replies(history, policy)
            try:
                verdicts = list(review_history(history, policy))
            except Exception as exc:  # an engine bug must cost one ticket, not the whole backfill
                result.failures.append(BadLine(f"chunk {chunk.index} ticket {history.ticket.id}",
                                               f"engine error: {type(exc).__name__}: {exc}"))
                continue
            batch += verdicts
            if keep:
                result.judged.extend((history.ticket, v) for v in verdicts)
        del histories
        engine = clock()
        result.lines.extend(one_line(_VERDICT_JSON.to_json(v)) for v in batch)
        del batch
        done = clock()
        cpu["parse"] += parsed - started
        cpu["engine"] += engine - parsed
        cpu["serialise"] += done - engine
    return result


def _validate(chunk: Chunk, n: int, result: ChunkResult) -> TicketHistory | None:
    data = chunk.tickets[n]
    try:
        return TicketHistory.model_validate_json(data)
    except ValidationError as exc:
        error = exc
    if error.errors()[0]["type"] == "json_invalid":
        try:
            data.decode()
        except UnicodeDecodeError:  # read it as the text readers do, with U+FFFD for the bad bytes
            try:
                return TicketHistory.model_validate_json(data.decode("utf-8", "replace"))
            except ValidationError as exc:
                error = exc
    result.unreadable.append(BadLine(chunk.location(n), describe_json_error(error)))
    return None


def shard_path(output: str | os.PathLike[str], index: int) -> Path:
    return Path(output) / f"part-{index:06d}.jsonl"


def write_shard(output: str | os.PathLike[str], index: int, lines: Sequence[bytes | str]) -> Path:
    """Write one chunk's verdicts atomically in one write: a temp file renamed over the shard, so a retried
    chunk replaces its shard instead of adding to it, and a reader never sees half a shard.

    The shard gets the permissions of any file the worker creates (0666 less its umask, like `_job.json`),
    not mkstemp's private 0600: the verdicts are meant to be read by whoever runs the report.
    """
    target = shard_path(output, index)
    target.parent.mkdir(parents=True, exist_ok=True)
    encoded = [line.encode() if isinstance(line, str) else line for line in lines]
    body = b"\n".join(encoded) + b"\n" if encoded else b""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target

