"""Backfill job state in Redis: what the producer enqueued, which chunks are done, the counts, bad lines.

Keys (all under `aw:bf:<job>`): the job hash (settings and counters), `:chunk:<i>` (a chunk's input, JSON
lines, until it is done), `:done` (set of done chunk indexes), `:bad` (location -> reason of unreadable
lines and unjudged tickets, so re-reading the input after a resume records each once), `:slot` (the next
free delivery time under --rate). Every counter moves in the same Lua call as the marker it belongs to,
so a producer or chunk repeated after a crash never counts twice.

`replies` is the producer's estimate for the chunks it enqueued (it does not parse canonical JSONL); each
chunk, when done, replaces its estimate with the exact count, so once every chunk is done it is exact.
The job hash also sums the CPU seconds of the chunk tasks by phase (`cpu:engine`, `cpu:parse`, ...).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import redis

from worker.backfill import BadLine
from worker.redis_values import as_text

PREFIX = "aw:bf:"
JOBS = PREFIX + "jobs"
State = Literal["reading", "enqueued", "done", "cancelled"]

# KEYS: job, jobs. ARGV: job id, now, then field, value pairs.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS: job, chunk. ARGV: index, replies, payload, position.
# Stores the chunk's input and counts it once: only the chunk right after the last one counted moves the
# counters, so a resumed producer re-storing chunks it already enqueued changes nothing.
_ADD_CHUNK = """
local enqueued = tonumber(redis.call('HGET', KEYS[1], 'enqueued') or '0')
local index = tonumber(ARGV[1])
if redis.call('SISMEMBER', KEYS[1] .. ':done', ARGV[1]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
if index == enqueued then
  redis.call('HSET', KEYS[1], 'enqueued', index + 1, 'position', ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'replies', ARGV[2])
end
return 1
"""

# KEYS: job, done, chunk, bad. ARGV: index, replies, verdicts, failed, now, estimated replies, the number
# of bad-line pairs, then location, reason pairs, then phase, CPU seconds pairs.
_FINISH_CHUNK = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[3])
redis.call('HINCRBY', KEYS[1], 'replies_done', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'replies', tonumber(ARGV[2]) - tonumber(ARGV[6]))
redis.call('HINCRBY', KEYS[1], 'verdicts', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[4])
local i = 8
for _ = 1, tonumber(ARGV[7]) do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  redis.call('HINCRBYFLOAT', KEYS[1], 'cpu:' .. ARGV[i], ARGV[i + 1])
  i = i + 2
end
local total = redis.call('HGET', KEYS[1], 'chunks')
if total and redis.call('HGET', KEYS[1], 'state') == 'enqueued'
   and redis.call('SCARD', KEYS[2]) >= tonumber(total) then
  redis.call('HSET', KEYS[1], 'state', 'done', 'finished_at', ARGV[5])
end
return 1
"""

# KEYS: job, done. ARGV: chunks, now.
_END_READING = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'cancelled' then return state end
redis.call('HSET', KEYS[1], 'chunks', ARGV[1])
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'state', 'done', 'finished_at', ARGV[2])
  return 'done'
end
redis.call('HSET', KEYS[1], 'state', 'enqueued')
return 'enqueued'
"""

# KEYS: job. Returns the state before (nil: no such job); only a job still reading or enqueued is cancelled,
# in the same call that reads its state, so a job that finishes meanwhile stays done.
_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if state == 'reading' or state == 'enqueued' then redis.call('HSET', KEYS[1], 'state', 'cancelled') end
return state
"""

# KEYS: slot. ARGV: now, interval. Returns the delay before the next delivery may go.
_NEXT_SLOT = """
local now = tonumber(ARGV[1])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], tostring(slot + tonumber(ARGV[2])), 'EX', 86400 * 30)
return tostring(slot - now)
"""

_INTS = ("enqueued", "replies", "replies_done", "verdicts", "failed", "chunk_replies")


@dataclass(frozen=True, slots=True)
class Job:
    """A snapshot of a job's state."""

    id: str
    files: list[str]
    policy: str | None
    policy_version: str
    output: str | None
    deliver: bool
    rate: float | None
    chunk_replies: int
    state: State
    enqueued: int  # chunks stored and sent
    chunks: int | None  # total, once the input is read to the end
    done: int  # chunks done
    replies: int  # replies in the chunks enqueued so far: estimated until a chunk is done, then exact
    replies_done: int
    verdicts: int
    failed: int  # tickets the engine could not judge
    bad_lines: int
    position: str  # file:line of the last ticket enqueued
    created_at: float
    finished_at: float | None
    cpu: dict[str, float]  # CPU seconds of the chunk tasks by phase (engine, parse, ...), summed over workers

    @property
    def reading_done(self) -> bool:
        return self.chunks is not None

    @property
    def complete(self) -> bool:
        """Every reply of the input has a verdict: the only state `--wait` exits 0 on."""
        return (self.state == "done" and self.bad_lines == 0 and self.failed == 0
                and self.verdicts == self.replies)

    def elsewhere(self, output: str | None, deliver: bool) -> str | None:
        """Why `start` cannot send this existing job's verdicts where it is now asked to (None: it can).

        The job id is the input and the policy version, and judging them again does nothing new, so a job's
        destination is fixed when it is created; the message says where its verdicts are and how to get them
        elsewhere. `output` None (and not `deliver`) asks for no particular place: wherever the job writes.
        """
        if deliver == self.deliver and (deliver or output is None or output == self.output):
            return None
        job = f"job {self.id} ({self.state}, policy {self.policy_version})"
        rule = "the same input under the same policy version is not judged twice"
        if self.deliver:
            return (f"{job} already judges this input and delivers its verdicts to the configured targets, "
                    f"writing no shards; {rule}. `apology-worker review FILE... --format jsonl > verdicts.jsonl` "
                    "judges the input in process")
        assert self.output is not None
        if deliver:
            return (f"{job} already judges this input into {self.output}, not to the targets; {rule}. "
                    f"`apology-worker backfill status {self.id}` shows it")
        old, new = shlex.quote(self.output), shlex.quote(output or "")
        copy = f"mkdir -p {new} && cp {old}/_job.json {old}/part-*.jsonl {new}/"
        if self.state == "done":
            return (f"{job} already judged this input: its verdicts are in {self.output}; {rule}. To have "
                    f"them in {output}: {copy}")
        return (f"{job} is already judging this input into {self.output}; {rule}. Continue it there with "
                f"`apology-worker backfill resume {self.id} --wait`, then copy the verdicts: {copy}")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class JobStore:
    """Backfill jobs behind one small interface; works on fakeredis in the unit tests."""

    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.clock = clock
        self._create = client.register_script(_CREATE)
        self._add_chunk = client.register_script(_ADD_CHUNK)
        self._finish_chunk = client.register_script(_FINISH_CHUNK)
        self._end_reading = client.register_script(_END_READING)
        self._next_slot = client.register_script(_NEXT_SLOT)
        self._cancel = client.register_script(_CANCEL)

    # -- the producer's side -------------------------------------------------------------------------------
    def create(self, job_id: str, *, files: list[str], policy: str | None, policy_version: str,
               output: str | None, deliver: bool, rate: float | None, chunk_replies: int) -> bool:
        """Record a new job; False (and nothing changed) when the job already exists."""
        fields = {"files": json.dumps(files), "policy": json.dumps(policy), "policy_version": policy_version,
                  "output": json.dumps(output), "deliver": int(deliver), "rate": json.dumps(rate),
                  "chunk_replies": chunk_replies, "state": "reading", "enqueued": 0, "replies": 0,
                  "replies_done": 0, "verdicts": 0, "failed": 0, "position": "",
                  "created_at": repr(self.clock())}
        args: list[Any] = [job_id, repr(self.clock())]
        for key, value in fields.items():
            args += [key, value]
        return bool(self._create(keys=[_job(job_id), JOBS], args=args))

    def add_chunk(self, job_id: str, index: int, replies: int, payload: bytes, position: str) -> bool:
        """Store a chunk's input (skipped if it is already done); counted the first time only."""
        return bool(self._add_chunk(keys=[_job(job_id), _chunk(job_id, index)],
                                    args=[index, replies, payload, position]))

    def end_reading(self, job_id: str, chunks: int) -> str:
        """The input is read to the end: fix the chunk total; the job is done if they all are."""
        return as_text(self._end_reading(keys=[_job(job_id), _job(job_id) + ":done"],
                                       args=[chunks, repr(self.clock())]))

    def add_bad_lines(self, job_id: str, bad: Iterable[BadLine]) -> None:
        mapping: dict[str | bytes, str | bytes] = {b.location: b.reason for b in bad}
        if mapping:
            self.redis.hset(_job(job_id) + ":bad", mapping=mapping)  # type: ignore[arg-type]

    def resume(self, job_id: str) -> None:
        """Un-cancel a job, and reopen reading if the producer stopped before the end."""
        job = self.get(job_id)
        if job is not None and job.state == "cancelled":
            self.redis.hset(_job(job_id), "state", "enqueued" if job.reading_done else "reading")
            if job.chunks is not None:
                self.end_reading(job_id, job.chunks)  # every chunk may have finished meanwhile

    def cancel(self, job_id: str) -> State | None:
        """Cancel a job still reading or enqueued; the state it was in (None: no such job), so the caller can
        tell a job it stopped from one that was already done or cancelled."""
        state = self._cancel(keys=[_job(job_id)])
        return None if state is None else as_text(state)  # type: ignore[return-value]

    def pending_chunks(self, job_id: str) -> list[int]:
        """Chunks enqueued whose input is still stored, i.e. not done: what `resume` sends again."""
        job = self.get(job_id)
        if job is None:
            return []
        done = {int(as_text(i)) for i in self.redis.smembers(_job(job_id) + ":done")}
        return [i for i in range(job.enqueued) if i not in done]

    # -- the chunk task's side -----------------------------------------------------------------------------
    def chunk_payload(self, job_id: str, index: int) -> bytes | None:
        raw = self.redis.get(_chunk(job_id, index))
        return None if raw is None else raw if isinstance(raw, bytes) else str(raw).encode()

    def is_done(self, job_id: str, index: int) -> bool:
        return bool(self.redis.sismember(_job(job_id) + ":done", str(index)))

    def claim(self, job_id: str, index: int) -> tuple[Job | None, bool, bytes | None]:
        """The job, whether the chunk is done, and its stored input, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        self._read(pipe, job_id)
        pipe.sismember(_job(job_id) + ":done", str(index))
        pipe.get(_chunk(job_id, index))
        raw, done, bad, is_done, payload = pipe.execute()
        return _parse_job(job_id, raw, done, bad), bool(is_done), payload

    def finish_chunk(self, job_id: str, index: int, replies: int, verdicts: int,
                     failures: Iterable[BadLine] = (), *, estimated: int | None = None,
                     unreadable: Iterable[BadLine] = (), cpu: Mapping[str, float] | None = None) -> bool:
        """Mark the chunk done, once, in one call: count its replies (replacing the producer's `estimated`
        count) and verdicts, record its unreadable lines and failed tickets and add up its CPU time by
        phase; drops its stored input."""
        failures = list(failures)
        bad = [*unreadable, *failures]
        args: list[Any] = [index, replies, verdicts, len(failures), repr(self.clock()),
                           replies if estimated is None else estimated, len(bad)]
        for b in bad:
            args += [b.location, b.reason]
        for phase, seconds in (cpu or {}).items():
            args += [phase, repr(seconds)]
        return bool(self._finish_chunk(keys=[_job(job_id), _job(job_id) + ":done", _chunk(job_id, index),
                                             _job(job_id) + ":bad"], args=args))

    def delivery_delay(self, job_id: str, per_minute: float) -> float:
        """Seconds to hold the next delivery so the job's deliveries, over all workers, keep the rate."""
        return float(as_text(self._next_slot(keys=[_job(job_id) + ":slot"],
                                           args=[repr(self.clock()), repr(60.0 / per_minute)])))

    def delivery_backlog(self, job_id: str) -> float:
        """How far ahead of now deliveries are already scheduled."""
        raw = self.redis.get(_job(job_id) + ":slot")
        return 0.0 if raw is None else max(0.0, float(as_text(raw)) - self.clock())

    # -- reading -----------------------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        pipe = self.redis.pipeline(transaction=True)
        self._read(pipe, job_id)
        return _parse_job(job_id, *pipe.execute())

    @staticmethod
    def _read(pipe: Any, job_id: str) -> None:
        pipe.hgetall(_job(job_id))
        pipe.scard(_job(job_id) + ":done")
        pipe.hlen(_job(job_id) + ":bad")

    def bad_lines(self, job_id: str, limit: int = 20) -> list[BadLine]:
        out = []
        for key, value in self.redis.hscan_iter(_job(job_id) + ":bad", count=limit):
            out.append(BadLine(as_text(key), as_text(value)))
            if len(out) >= limit:
                break
        return sorted(out, key=lambda b: b.location)

    def jobs(self, limit: int = 20) -> list[str]:
        return [as_text(j) for j in self.redis.zrevrange(JOBS, 0, limit - 1)]


def _parse_job(job_id: str, raw: dict[bytes, bytes], done: int, bad: int) -> Job | None:
    if not raw or b"state" not in raw:
        return None
    h = {as_text(k): as_text(v) for k, v in raw.items()}
    ints = {k: int(h.get(k, "0")) for k in _INTS}
    return Job(
        id=job_id, files=json.loads(h["files"]), policy=json.loads(h["policy"]),
        policy_version=h["policy_version"], output=json.loads(h["output"]), deliver=h["deliver"] == "1",
        rate=json.loads(h["rate"]), chunk_replies=ints["chunk_replies"], state=h["state"],  # type: ignore[arg-type]
        enqueued=ints["enqueued"], chunks=int(h["chunks"]) if "chunks" in h else None, done=int(done),
        replies=ints["replies"], replies_done=ints["replies_done"], verdicts=ints["verdicts"],
        failed=ints["failed"], bad_lines=int(bad) - ints["failed"], position=h.get("position", ""),
        created_at=float(h["created_at"]),
        finished_at=float(h["finished_at"]) if "finished_at" in h else None,
        cpu={k[4:]: float(v) for k, v in h.items() if k.startswith("cpu:")},
    )


def _job(job_id: str) -> str:
    return PREFIX + job_id


def _chunk(job_id: str, index: int) -> str:
    return f"{PREFIX}{job_id}:chunk:{index}"
