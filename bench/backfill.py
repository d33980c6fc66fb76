"""Backfill throughput: N replies through two worker processes on a real redis-server, against the engine.

    python bench/backfill.py [--replies 1000000] [--chunk-replies 500] [--processes 2]

Generates a history file of varied conversations (tests/corpus with fresh numbers and names in every
copy, as bench/engine.py does), measures the engine in process on a sample of the same file (replies per
second on one core), then starts its own redis-server and `celery -A worker.app worker --concurrency P`
and times `apology-worker backfill start FILE --output DIR --wait` from start to the last verdict. Prints
the end-to-end rate and its ratio to (engine rate per core x P). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.accuracy import load_corpus  # noqa: E402
from bench.engine import varied  # noqa: E402
from tests.support.processes import celery_worker, python_env, redis_server, venv_bin  # noqa: E402
from worker.engine import load_policy, review_history  # noqa: E402
from worker.models import TicketHistory  # noqa: E402


def generate(path: Path, replies: int) -> int:
    corpus = [item.history for item in load_corpus(ROOT / "tests" / "corpus")]
    tickets = 0
    with path.open("w", encoding="utf-8") as fh:
        for history in varied(corpus, replies):
            fh.write(history.model_dump_json(exclude_defaults=True) + "\n")
            tickets += 1
    return tickets


def engine_rate(path: Path, policy_name: str, sample: int) -> tuple[float, float, int]:
    """Replies per CPU second and per wall second of the engine alone, on the first `sample` tickets."""
    policy = load_policy(policy_name)
    with path.open(encoding="utf-8") as fh:
        histories = [TicketHistory.model_validate_json(line) for line in islice(fh, sample)]
    start, wall = time.process_time(), time.perf_counter()
    replies = sum(1 for h in histories for _ in review_history(h, policy))
    return replies / (time.process_time() - start), replies / (time.perf_counter() - wall), replies


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children still alive, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--replies", type=int, default=1_000_000)
    ap.add_argument("--chunk-replies", type=int, default=500)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--policy", default="liability-aware")
    ap.add_argument("--sample-tickets", type=int, default=4000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        work = Path(tmp)
        history = work / "history.jsonl"
        started = time.perf_counter()
        tickets = generate(history, args.replies)
        print(f"input: {tickets:,} tickets, {history.stat().st_size / 1e6:,.0f} MB, generated in "
              f"{time.perf_counter() - started:,.0f}s", flush=True)
        per_core, per_wall, sampled = engine_rate(history, args.policy, args.sample_tickets)
        print(f"engine in process: {per_core:,.0f} replies per CPU second on one core, {per_wall:,.0f} per wall "
              f"second on this machine now (sample of {sampled:,} replies)", flush=True)

        with redis_server(work) as server:
            env = {"APOLOGY_BROKER_URL": server.url, "APOLOGY_POLICY": args.policy, "APOLOGY_LOG_FORMAT": "json"}
            with celery_worker(env, concurrency=args.processes, name="bench", cwd=ROOT) as worker:
                cpu_before = cpu_seconds(worker.popen.pid)
                started = time.perf_counter()
                run = subprocess.run(
                    [venv_bin("apology-worker"), "backfill", "start", str(history), "--output", str(work / "out"),
                     "--chunk-replies", str(args.chunk_replies), "--wait", "--interval", "30"],
                    env=python_env(**env), cwd=ROOT, capture_output=True, text=True, check=False)
                wall = time.perf_counter() - started
                worker_cpu = cpu_seconds(worker.popen.pid) - cpu_before
                worker_lines = len(worker.history)
            if run.returncode != 0:
                print(run.stdout, run.stderr, sep="\n")
                print(f"backfill failed (exit {run.returncode})")
                return 1
        verdicts = sum(1 for p in (work / "out").glob("part-*.jsonl") for _ in p.open(encoding="utf-8"))
    rate = verdicts / wall
    target = per_core * args.processes
    print(f"backfill: {verdicts:,} verdicts in {wall:,.1f}s wall = {rate:,.0f} replies/s "
          f"with {args.processes} worker processes (chunks of {args.chunk_replies}; {worker_lines} worker log lines)")
    print(f"workers used {worker_cpu:,.1f}s CPU: {verdicts / worker_cpu:,.0f} replies per worker CPU second = "
          f"{verdicts / worker_cpu / per_core:.2f} of the engine's in-process rate (overhead per reply in the "
          f"workers, whatever else runs on the machine)")
    print(f"ratio to engine x {args.processes}: {rate / target:.2f}  (target >= 0.70: "
          f"{'met' if rate / target >= 0.7 else 'NOT met'}); absolute target 5,000 replies/s: "
          f"{'met' if rate >= 5000 else 'NOT met'}")
    print(f"ratio to the engine's wall-clock rate x {args.processes} (same load on a shared machine): "
          f"{rate / (per_wall * args.processes):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
