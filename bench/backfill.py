"""Backfill throughput: N replies through P worker processes on a real redis-server, against the engine.

    python bench/backfill.py [--replies 1000000] [--chunk-replies 2000] [--processes 2] [--null-engine]

Generates a history file of varied conversations (tests/corpus with fresh numbers and names in every
copy, as bench/engine.py does) and measures the engine in process on a sample of that same file (replies
per CPU second on one core, judged in batches as the chunk task judges them). Then starts its own
redis-server and `celery -A worker.app worker --concurrency P`, primes the workers with a small job (pool
processes up, policy loaded, as long-running workers are), and times `apology-worker backfill start FILE
--output DIR --wait` from start to the last verdict.

Prints the end-to-end rate, its ratio to (engine rate per core x P), and where the CPU went per reply:
the producer (and its fixed start-up), redis-server, and the workers split into the engine, each phase of
the chunk task around it (the job records them), Celery's main process and the rest. The engine's rate
inside the workers, over every reply of the run, is printed next to the in-process figure as a check on
the sample. From the overhead it projects the ratio on otherwise idle cores.

`--null-engine` runs the same workers with the engine swapped for canned verdicts (bench/null_engine.py):
the rate is then the most the path around the engine can carry, its overhead per reply is the one a fast
engine will see, and the projection for an engine of 10,000 replies/s per core follows from it.
Not part of the test suite. Shares the machine: the load average is printed with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.accuracy import load_corpus  # noqa: E402
from bench.engine import varied  # noqa: E402
from bench.machine import load, process_cpu  # noqa: E402
from tests.support.processes import celery_worker, python_env, redis_server, venv_bin  # noqa: E402
from worker.backfill import PHASES, job_id  # noqa: E402
from worker.engine import load_policy, review_history  # noqa: E402
from worker.jobs import Job, JobStore  # noqa: E402
from worker.models import TicketHistory  # noqa: E402

FAST_ENGINE = 10_000  # replies per second per core: the engine's target
BATCH = 64


def generate(path: Path, replies: int) -> int:
    corpus = [item.history for item in load_corpus(ROOT / "tests" / "corpus")]
    tickets = 0
    with path.open("w", encoding="utf-8") as fh:
        for history in varied(corpus, replies):
            fh.write(history.model_dump_json(exclude_defaults=True) + "\n")
            tickets += 1
    return tickets


def engine_rate(path: Path, policy_name: str, sample: int, warm: int) -> tuple[float, float, int]:
    """Replies per CPU second and per wall second of the warm engine alone, on `sample` tickets of the file.

    Validated and judged in batches of 64 tickets, as the chunk task does, with only the judging timed:
    the same texts under the same conditions (a handful of tickets alive at a time), so the ratio compares
    the engine with itself. The first `warm` tickets are judged untimed: RE2 builds its automata's states
    as texts need them, and over the first few thousand replies that made the engine look 40% slower than
    the same engine inside workers that have judged a million (the rate a long job sees).
    """
    policy = load_policy(policy_name)
    with path.open("rb") as fh:
        lines = list(islice(fh, warm + sample))
    for line in lines[:warm]:
        list(review_history(TicketHistory.model_validate_json(line), policy))
    lines = lines[warm:]
    cpu = wall = 0.0
    replies = 0
    for start in range(0, len(lines), BATCH):
        batch = [TicketHistory.model_validate_json(line) for line in lines[start:start + BATCH]]
        c, w = time.process_time(), time.perf_counter()
        replies += sum(1 for h in batch for _ in review_history(h, policy))
        cpu += time.process_time() - c
        wall += time.perf_counter() - w
    return replies / cpu, replies / wall, replies


def cpu_seconds(pid: int, children: bool = True) -> float:
    """CPU time (user + system) of a process and (unless not asked) its children still alive, from /proc."""
    pids = [pid]
    if children:
        with contextlib.suppress(OSError):
            pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0.0
    for p in pids:
        with contextlib.suppress(OSError):
            total += process_cpu(p)[2]
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replies", type=int, default=1_000_000)
    ap.add_argument("--chunk-replies", type=int, default=2000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--policy", default="liability-aware")
    ap.add_argument("--sample-tickets", type=int, default=4000)
    ap.add_argument("--warm-tickets", type=int, default=4000, help="judged untimed before the engine's sample")
    ap.add_argument("--null-engine", action="store_true",
                    help="run the workers with the engine swapped for canned verdicts (bench/null_engine.py): "
                         "measures everything around the engine at full speed")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, {load()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        work = Path(tmp)
        history = work / "history.jsonl"
        started = time.perf_counter()
        tickets = generate(history, args.replies)
        print(f"input: {tickets:,} tickets, {history.stat().st_size / 1e6:,.0f} MB, generated in "
              f"{time.perf_counter() - started:,.0f}s", flush=True)
        per_core, per_wall, sampled = engine_rate(history, args.policy, args.sample_tickets, args.warm_tickets)
        print(f"engine in process: {per_core:,.0f} replies per CPU second on one core, {per_wall:,.0f} per wall "
              f"second on this machine now ({sampled:,} replies of the same file after {args.warm_tickets:,} tickets "
              f"untimed; {load()})", flush=True)

        with redis_server(work) as server:
            env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_POLICY": args.policy, "APOLOGY_LOG_FORMAT": "json"}
            app = "bench.null_engine" if args.null_engine else "worker.app"
            with celery_worker(env, concurrency=args.processes, name="bench", cwd=ROOT, app=app) as worker:
                # Prime the workers as long-running ones are (pool processes up, policy loaded) with a small
                # job of single-reply chunks; its producer's CPU is the producer's fixed start-up cost.
                primer = work / "primer.jsonl"
                with history.open("rb") as src:
                    primer.write_bytes(b"".join(islice(src, 4 * args.processes)))
                code, _, _, startup = backfill(primer, work / "primer-out", 1, env)
                if code != 0:
                    print(f"priming the workers failed (exit {code})")
                    return 1
                cpu_before = cpu_seconds(worker.popen.pid)
                main_before = cpu_seconds(worker.popen.pid, children=False)
                redis_before = cpu_seconds(server.proc.popen.pid)
                load_before = load()
                code, output, wall, producer_cpu = backfill(history, work / "out", args.chunk_replies, env)
                load_after = load()
                worker_cpu = cpu_seconds(worker.popen.pid) - cpu_before
                main_cpu = cpu_seconds(worker.popen.pid, children=False) - main_before
                redis_cpu = cpu_seconds(server.proc.popen.pid) - redis_before
                client = redis.Redis.from_url(server.url)
                job = JobStore(client).get(job_id([str(history)], load_policy(args.policy).version,
                                                  args.chunk_replies))
                client.close()
            if code != 0 or job is None:
                print(output)
                print(f"backfill failed (exit {code})")
                return 1
        verdicts = sum(1 for p in (work / "out").glob("part-*.jsonl") for _ in p.open(encoding="utf-8"))
    report(args, job, verdicts, wall, per_core, per_wall, (producer_cpu, startup), (worker_cpu, main_cpu),
           redis_cpu, f"{load_before} at the start, {load_after} at the end")
    return 0


def backfill(history: Path, out: Path, chunk_replies: int, env: dict[str, str]) -> tuple[int, str, float, float]:
    """`apology-worker backfill start --wait`: exit code, output, wall seconds, the producer's CPU seconds."""
    before = children_cpu()
    started = time.perf_counter()
    run = subprocess.run(
        [venv_bin("apology-worker"), "backfill", "start", str(history), "--output", str(out),
         "--chunk-replies", str(chunk_replies), "--wait", "--interval", "30"],
        env=python_env(**env), cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    return run.returncode, run.stdout + run.stderr, wall, children_cpu() - before

def report(args: argparse.Namespace, job: Job, verdicts: int, wall: float, per_core: float, per_wall: float,
           producer: tuple[float, float], workers: tuple[float, float], redis_cpu: float, loads: str) -> None:
    producer_cpu, startup = producer
    worker_cpu, main_cpu = workers
    p = args.processes
    rate = verdicts / wall
    target = per_core * p
    us = 1e6 / verdicts
    engine_cpu = job.cpu.get("engine", 0.0)
    phases = {name: job.cpu.get(name, 0.0) for name in PHASES if name != "engine"}
    rest = worker_cpu - main_cpu - engine_cpu - sum(phases.values())
    overhead = producer_cpu + redis_cpu + worker_cpu - engine_cpu
    steady = overhead - startup  # what grows with the replies
    print(f"backfill: {verdicts:,} verdicts in {wall:,.1f}s wall = {rate:,.0f} replies/s with {p} worker processes "
          f"(chunks of {args.chunk_replies}; {loads})")
    print("CPU per reply, microseconds:")
    print(f"  producer                             {producer_cpu * us:7.1f}  (of which start-up "
          f"{startup * us:.1f}: {startup:.1f}s whatever the size)")
    print(f"  redis-server                         {redis_cpu * us:7.1f}")
    print(f"  workers                              {worker_cpu * us:7.1f}")
    print(f"    engine                             {engine_cpu * us:7.1f}")
    for name, seconds in phases.items():
        print(f"    {name:34} {seconds * us:7.1f}")
    print(f"    celery main process                {main_cpu * us:7.1f}")
    print(f"    pool processes outside the phases  {rest * us:7.1f}  (celery, job state, logs)")
    print(f"  overhead outside the engine          {overhead * us:7.1f}  ({steady * us:.1f} without the "
          "producer's start-up)")
    if args.null_engine:
        print(f"null engine: {verdicts / max(engine_cpu, 1e-9):,.0f} canned verdicts per CPU second; the rate "
              f"above is the most this path gives {p} worker processes on this machine now")
    else:
        print(f"engine inside the workers: {verdicts / engine_cpu:,.0f} replies per CPU second over all "
              f"{verdicts:,} (in process, on the sample: {per_core:,.0f})")
        met = "met" if rate / target >= 0.7 else "NOT met"
        print(f"ratio to engine x {p}: {rate / target:.2f}  (target >= 0.70: {met}); "
              f"absolute target 5,000 replies/s: {'met' if rate >= 5000 else 'NOT met'}")
        print(f"ratio to the engine's wall-clock rate x {p} (same load on a shared machine): "
              f"{rate / (per_wall * p):.2f}")
    # Projections take the overhead per reply as measured; part of it (polling, Celery's own loop) grows with
    # the run's duration, so a slow run overstates it for a fast engine: project those from --null-engine.
    engines = [(1e6 / per_core, "this engine")]
    if args.null_engine:
        engines.append((1e6 / FAST_ENGINE, f"an engine of {FAST_ENGINE:,}/s/core"))
    for engine_us, label in engines:
        cost = engine_us + steady * us
        print(f"projected for a long job with {label} ({engine_us:,.0f} us/reply) and {steady * us:,.1f} us of "
              f"overhead, on {p} otherwise idle cores: ratio {engine_us / cost:.2f}, {p * 1e6 / cost:,.0f} replies/s")

if __name__ == "__main__":
    sys.exit(main())
