"""`apology-worker backfill start|status|resume|cancel`: fan a history export out over the workers.

Exit codes: 0 every reply of the input has a verdict (or, without --wait, every chunk is enqueued);
1 the job was cancelled or is not finished; 2 usage, policy or settings error, Redis unreachable for longer
than the producer waits for it (`OUTAGE_PATIENCE`), or `start` asked for an --output (or --deliver) other
than the existing job's for the same input and policy; 3 finished, but some
lines were unreadable or some tickets could not be judged (see `backfill status JOB`); 130 interrupted
(resume it with `backfill resume JOB`). `cancel` exits 0 when the job is not running afterwards, also when
it was already done or cancelled (it says which), and 2 when there is no such job.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import redis
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from worker import bootstrap
from worker.backfill import CHUNK_REPLIES, BackfillError, BadLine, Chunk, chunks, job_id, read_tickets
from worker.cli import options
from worker.engine import Policy, load_policy
from worker.jobs import Job, JobStore
from worker.journal import Journal, chunk_key

MAX_PENDING = 16  # chunks stored and queued but not done: bounds Redis memory and the queue
DELIVERY_HORIZON = 300.0  # seconds of rate-limited deliveries scheduled ahead, at most
BAD_BATCH = 200
ROOM_POLL_MIN, ROOM_POLL_MAX = 0.05, 0.5  # seconds between looks at the job while --max-pending is reached
# Seconds the producer and its progress wait for Redis to come back (a restart replaying its append-only file,
# a failover) before giving up with exit 2; the workers wait for ever (broker_connection_max_retries=None).
OUTAGE_PATIENCE = 300.0
STALL_NOTICE = 120.0  # seconds without a finished chunk before the progress says the job looks stuck
T = TypeVar("T")


def register(sub: Any) -> None:
    p = sub.add_parser("backfill", help="judge a history export on the workers (resumable)")
    bsub = p.add_subparsers(dest="backfill_command", required=True, metavar="ACTION")

    s = bsub.add_parser("start", help="start (or continue) a backfill of history exports")
    s.add_argument("files", nargs="+", metavar="FILE", help="canonical JSONL (.gz), message CSV or Zendesk export")
    options.add_policy(s, "policy file or preset, which every worker must be able to load")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--output", default=None, metavar="DIR",
                       help="directory for the verdict shards, part-NNNNNN.jsonl (default: backfill/JOB); "
                            "workers on other machines need it on a shared file system")
    where.add_argument("--deliver", action="store_true", help="route verdicts to the configured targets")
    s.add_argument("--rate", type=_rate, default=None, metavar="N/min",
                   help="with --deliver: at most N deliveries a minute over all workers")
    s.add_argument("--chunk-replies", type=int, default=CHUNK_REPLIES, metavar="N",
                   help=f"replies per chunk task, about (default {CHUNK_REPLIES})")
    _wait_args(s)
    s.set_defaults(run=run_start)

    st = bsub.add_parser("status", help="show a backfill job (or list recent jobs without JOB)")
    st.add_argument("job", nargs="?", metavar="JOB")
    st.add_argument("--json", action="store_true", help="print the job as JSON")
    st.set_defaults(run=run_status)

    r = bsub.add_parser("resume", help="re-send unfinished chunks and read on where the producer stopped")
    r.add_argument("job", metavar="JOB")
    _wait_args(r)
    r.set_defaults(run=run_resume)

    c = bsub.add_parser("cancel", help="stop a job: queued chunks are skipped, the producer stops")
    c.add_argument("job", metavar="JOB")
    c.set_defaults(run=run_cancel)


def _wait_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true", help="block until done with a progress display; exit 0 "
                                                       "only when every reply has a verdict")
    p.add_argument("--max-pending", type=int, default=MAX_PENDING, metavar="N",
                   help=f"chunks enqueued but not done at most (default {MAX_PENDING})")
    p.add_argument("--interval", type=float, default=10.0, metavar="S",
                   help="seconds between progress lines when not on a terminal (default 10)")


def _rate(value: str) -> float:
    number = value.removesuffix("/min")
    try:
        rate = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected N/min, e.g. 120/min") from None
    if rate <= 0:
        raise argparse.ArgumentTypeError("the rate must be positive")
    return rate


def _store() -> JobStore:
    return JobStore(redis.Redis.from_url(bootstrap.settings().redis_url))


@cache
def _journal() -> Journal:
    cfg = bootstrap.settings()
    return Journal(redis.Redis.from_url(cfg.redis_url), ttl=cfg.journal_ttl_seconds)


def _send_chunk(job: str, index: int) -> None:
    """Journal the chunk task (worker.journal), then publish it."""
    _journal().record([("chunk", chunk_key(job, index), [job, index])])
    bootstrap.publish("chunk", [job, index])


# -- commands ---------------------------------------------------------------------------------------------
def run_start(args: argparse.Namespace) -> int:
    if args.rate is not None and not args.deliver:
        raise BackfillError("--rate limits deliveries: use it with --deliver")
    if args.chunk_replies < 1:
        raise BackfillError("--chunk-replies must be at least 1")
    spec = options.policy_spec(args)
    if spec is not None and Path(spec).exists():
        spec = str(Path(spec).resolve())  # workers started elsewhere find the same file
    policy = load_policy(spec)
    files = [str(Path(f).resolve()) if f != "-" else f for f in args.files]
    for f in files:
        if f != "-" and not Path(f).is_file():
            raise BackfillError(f"{f}: no such file")
    jid = job_id(files, policy.version, args.chunk_replies)
    asked = str(Path(args.output).resolve()) if args.output else None
    output = None if args.deliver else asked or str((Path("backfill") / jid).resolve())
    store = _store()
    created = store.create(jid, files=files, policy=spec, policy_version=policy.version, output=output,
                           deliver=args.deliver, rate=args.rate, chunk_replies=args.chunk_replies)
    job = store.get(jid)
    assert job is not None
    if not created and (conflict := job.elsewhere(asked, args.deliver)) is not None:
        raise BackfillError(conflict)  # before anything is written where the user asked
    if job.output is not None:
        _manifest(job.output, job)
    if not created:
        if job.state == "done":
            where = job.output if job.output is not None else "the configured targets"
            print(f"job {jid} is already done under policy {policy.version}: nothing new to do; its verdicts "
                  f"are in {where}")
            _print_status(job, store)
            return _exit_code(job)
        if job.state == "cancelled":  # cancelled on purpose: only an explicit resume runs it again
            print(f"job {jid} was cancelled: nothing done. `apology-worker backfill resume {jid}` continues it "
                  "where it stopped")
            return _exit_code(job)
        print(f"job {jid} exists ({job.state}): continuing it")
    else:
        print(f"job {jid}: {len(files)} file(s) under {policy.name} {policy.version} -> "
              f"{output if output else 'deliveries'}")
    return _drive(jid, store, policy, args)


def run_resume(args: argparse.Namespace) -> int:
    store = _store()
    job = store.get(args.job)
    if job is None:
        raise BackfillError(f"no backfill job {args.job}: `apology-worker backfill status` lists the jobs")
    policy = load_policy(job.policy)
    if policy.version != job.policy_version:
        raise BackfillError(f"the policy {job.policy or '(default)'} changed since job {job.id} started "
                            f"({job.policy_version}, now {policy.version}): start a new job instead")
    store.resume(job.id)
    return _drive(job.id, store, policy, args)


def run_status(args: argparse.Namespace) -> int:
    store = _store()
    if args.job is None:
        for jid in store.jobs():
            job = store.get(jid)
            if job is not None:
                total = f"{job.replies:,}" if job.reading_done else f"{job.replies:,}+"  # more to read
                print(f"{jid}  {job.state:9}  {job.replies_done:,}/{total} replies  "
                      f"{', '.join(Path(f).name for f in job.files)}")
        return 0
    job = store.get(args.job)
    if job is None:
        raise BackfillError(f"no backfill job {args.job}")
    if args.json:
        data = job.to_dict()
        data["bad"] = [{"location": b.location, "reason": b.reason} for b in store.bad_lines(job.id, 100)]
        print(json.dumps(data, indent=2))
    else:
        _print_status(job, store)
    return _exit_code(job) if job.state in ("done", "cancelled") else 0


def run_cancel(args: argparse.Namespace) -> int:
    """Exit 0 whenever the job is not running afterwards, including one already done or cancelled (the
    message says which): cancelling is idempotent, like stopping a stopped service."""
    store = _store()
    before = store.cancel(args.job)
    if before is None:
        raise BackfillError(f"no backfill job {args.job}")
    if before == "done":
        job = store.get(args.job)
        where = job.output if job is not None and job.output is not None else "the configured targets"
        print(f"job {args.job} is already done: nothing to cancel; its verdicts are in {where}")
    elif before == "cancelled":
        print(f"job {args.job} is already cancelled; `backfill resume {args.job}` continues it")
    else:
        print(f"job {args.job} cancelled: queued chunks will be skipped; `backfill resume {args.job}` "
              "continues it")
    return 0


# -- producing ----------------------------------------------------------------------------------------------
def _drive(jid: str, store: JobStore, policy: Policy, args: argparse.Namespace) -> int:
    """Produce (re-sending unfinished chunks first), while showing progress when asked to wait."""
    failure: list[BaseException] = []

    def produce_safely() -> None:
        try:
            producing(None)  # the progress below tells the user about an outage
        except BaseException as exc:
            failure.append(exc)

    def producing(say: Callable[[str], None] | None) -> None:
        _riding_out(lambda: produce(jid, store, policy, max_pending=args.max_pending), store, jid, say)

    if not args.wait:
        producing(_say)
        job = store.get(jid)
        assert job is not None
        print(f"job {jid}: {job.enqueued} chunks, {job.replies:,} replies enqueued; "
              f"`apology-worker backfill status {jid}` shows progress")
        return 1 if job.state == "cancelled" else 0

    producer = threading.Thread(target=produce_safely, name="backfill-producer", daemon=True)
    producer.start()
    try:
        job = _riding_out(lambda: watch(jid, store, lambda: bool(failure), interval=args.interval), store, jid,
                          _say)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the job keeps its state; `apology-worker backfill resume {jid} --wait` "
              "continues it", file=sys.stderr)
        return 130
    if failure:
        raise failure[0]
    _print_status(job, store)
    return _exit_code(job)


def produce(jid: str, store: JobStore, policy: Policy, *, max_pending: int = MAX_PENDING,
            send: Callable[[str, int], None] | None = None) -> None:
    """Stream the job's input into chunks; skip those enqueued before, re-send those not done."""
    send = send or _send_chunk
    job = store.get(jid)
    if job is None or job.state in ("cancelled", "done"):
        return
    for index in store.pending_chunks(jid):  # enqueued by an earlier producer, maybe lost with a worker
        send(jid, index)
    if job.reading_done:
        return
    already = job.enqueued
    bad: list[BadLine] = []
    total = 0
    for item in chunks(read_tickets(job.files, policy), job.chunk_replies):
        if isinstance(item, BadLine):
            bad.append(item)
            if len(bad) >= BAD_BATCH:
                store.add_bad_lines(jid, bad)
                bad.clear()
            continue
        total = item.index + 1
        if item.index < already:
            continue
        if not _room_for(jid, store, item, max_pending):
            store.add_bad_lines(jid, bad)
            return  # cancelled
        store.add_chunk(jid, item.index, item.replies, item.encode(), item.last)
        send(jid, item.index)
    store.add_bad_lines(jid, bad)
    store.end_reading(jid, total)


def _riding_out(run: Callable[[], T], store: JobStore, jid: str, say: Callable[[str], None] | None, *,
                patience: float = OUTAGE_PATIENCE) -> T:
    """`bootstrap.riding_out` for a job: running `produce` again is what `backfill resume` does (chunks
    enqueued before are skipped, those not done are sent again, and a chunk runs once whatever the number
    of its copies)."""
    return bootstrap.riding_out(run, store.redis, say, what=f"backfill {jid}", patience=patience,
                                later=f"the job keeps its state: `apology-worker backfill resume {jid}` continues "
                                      "it later")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _room_for(jid: str, store: JobStore, chunk: Chunk, max_pending: int) -> bool:
    """Wait until the workers have caught up enough for one more chunk; False if the job is cancelled.

    The wait between looks doubles up to `ROOM_POLL_MAX`: a producer that is far ahead of the workers
    (the usual case) costs their shared CPU a look or two a second, not twenty.
    """
    pause = threading.Event()
    wait = ROOM_POLL_MIN
    while True:
        job = store.get(jid)
        if job is None or job.state == "cancelled":
            return False
        ahead = job.deliver and job.rate and store.delivery_backlog(jid) > DELIVERY_HORIZON
        if chunk.index - job.done < max_pending and not ahead:
            return True
        pause.wait(wait)
        wait = min(wait * 2, ROOM_POLL_MAX)


# -- progress -----------------------------------------------------------------------------------------------
class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text("-- replies/s" if speed is None else f"{speed:,.0f} replies/s", style="cyan")


def watch(jid: str, store: JobStore, stop: Any = lambda: False, *, interval: float = 10.0,
          console: Console | None = None, stall: float = STALL_NOTICE, say: Callable[[str], None] | None = None) -> Job:
    """Show the job's progress until it is done or cancelled (or `stop()`); return its final state.

    A job on which no chunk has finished for `stall` seconds gets one line saying what to do: a chunk whose
    message was lost (a worker killed between taking it off the queue and recording it) is sent again by the
    workers' journal sweep only after its safe age, and with no worker running nothing moves at all.
    """
    console = console or Console(stderr=True)
    pause = threading.Event()
    job = store.get(jid)
    assert job is not None
    stalled = _Stall(jid, stall, say or _say)
    if console.is_terminal:
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TaskProgressColumn(), _RateColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                   TimeRemainingColumn())
        with Progress(*columns, console=console, speed_estimate_period=30) as bar:
            task = bar.add_task(jid, total=None, completed=job.replies_done)
            while True:
                job = store.get(jid)
                assert job is not None
                bar.update(task, completed=job.replies_done, total=job.replies if job.reading_done else None,
                           description=f"{jid} {job.state}")
                if job.state in ("done", "cancelled") or stop():
                    return job
                stalled.check(job)
                pause.wait(0.25)
    started, last = time.monotonic(), 0.0
    first_done = job.replies_done
    while True:
        job = store.get(jid)
        assert job is not None
        finished = job.state in ("done", "cancelled") or stop()
        now = time.monotonic()
        if finished or now - last >= interval:
            last = now
            rate = (job.replies_done - first_done) / max(now - started, 1e-9)
            total = f"{job.replies:,}" if job.reading_done else f"{job.replies:,}+"
            left = job.replies - job.replies_done
            eta = f"{left / rate:,.0f}s" if rate > 0 and job.reading_done else "?"
            print(f"backfill {jid}: {job.state}: {job.replies_done:,}/{total} replies, "
                  f"{job.done}/{job.chunks if job.chunks is not None else str(job.enqueued) + '+'} chunks, "
                  f"{rate:,.0f} replies/s, ETA {eta}", file=sys.stderr, flush=True)
        if finished:
            return job
        stalled.check(job)
        pause.wait(0.25)


class _Stall:
    """Says once, while no chunk finishes for `after` seconds, that the job is stuck and what to do."""

    def __init__(self, jid: str, after: float, say: Callable[[str], None]) -> None:
        self.jid, self.after, self.say = jid, after, say
        self.done, self.since, self.said = -1, time.monotonic(), False

    def check(self, job: Job) -> None:
        now = time.monotonic()
        if job.done != self.done:
            self.done, self.since, self.said = job.done, now, False
            return
        if (self.said or now - self.since < self.after or job.state in ("done", "cancelled")
                or job.enqueued <= job.done):
            return
        self.said = True
        sweep = bootstrap.settings().reconcile_after / 60
        self.say(f"backfill {self.jid}: no chunk has finished for {now - self.since:.0f} s; {job.enqueued - job.done} "
                 f"sent are not done. With no worker running (`celery -A worker.app worker`), start one. If the "
                 f"workers are idle, a chunk's message was lost (a worker killed as it took it): the workers send "
                 f"it again {sweep:.0f} minutes after it was due, or `apology-worker backfill resume {self.jid}` "
                 "sends the unfinished chunks now.")


def _print_status(job: Job, store: JobStore) -> None:
    total_chunks = job.chunks if job.chunks is not None else f"{job.enqueued}+ (input not read to the end)"
    print(f"job {job.id}: {job.state}")
    if job.state == "reading":  # only a producer reads on; an interrupted one left the job here
        print(f"  (the input is read by `backfill start` or `resume`: if neither is running for it, "
              f"`apology-worker backfill resume {job.id}` continues)")
    print(f"  input:    {', '.join(job.files)}")
    print(f"  policy:   {job.policy or '(default)'} {job.policy_version}")
    print(f"  output:   {'deliveries' + (f' at {job.rate:g}/min' if job.rate else '') if job.deliver else job.output}")
    print(f"  chunks:   {job.done} done of {total_chunks} ({job.chunk_replies} replies each)")
    about = "" if job.state == "done" else " (estimated until every chunk is judged)"
    print(f"  replies:  {job.replies_done:,} judged of {job.replies:,}{about}; {job.verdicts:,} verdicts")
    if job.deliver and job.state == "done":  # judged is not delivered: the deliveries drain at their own pace
        pace = f" at {job.rate:g}/min" if job.rate else ""
        print(f"  delivery: every verdict is judged and its deliveries queued; they go out{pace} on the deliverer "
              "(failures: `apology-worker dead-letters list`)")
    if job.position:
        print(f"  read to:  {job.position}")
    if job.failed:
        print(f"  failed:   {job.failed} tickets the engine could not judge")
    if job.bad_lines:
        print(f"  skipped:  {job.bad_lines} unreadable lines")
    for b in store.bad_lines(job.id, 10):
        print(f"    {b.location}: {b.reason}")
    if job.finished_at is not None:
        print(f"  took:     {job.finished_at - job.created_at:,.1f}s")


def _exit_code(job: Job) -> int:
    if job.complete:
        return 0
    if job.state == "done":
        return 3
    return 1


def _manifest(output: str, job: Job) -> None:
    """`_job.json` next to the shards says what produced them (not a shard: it starts with `_`)."""
    path = Path(output)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"job": job.id, "files": job.files, "policy": job.policy, "policy_version": job.policy_version,
            "chunk_replies": job.chunk_replies, "shards": "part-*.jsonl"}
    (path / "_job.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
