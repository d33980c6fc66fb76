"""Backfill job state on fakeredis: counted once, done once, resumable, cancellable; and a whole job run
in process (producer and chunk service) including a producer stopped half way and resumed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
from rich.console import Console

from tests.support.histories import write_history
from worker.backfill import BadLine, job_id, shard_path
from worker.backfill_service import ChunkDeps, process_chunk
from worker.cli.backfill_cmd import produce, watch
from worker.engine import Policy, review_history
from worker.jobs import JobStore
from worker.models import TicketHistory


@pytest.fixture()
def store() -> Iterator[JobStore]:
    client = fakeredis.FakeRedis()
    yield JobStore(client, clock=lambda: 1000.0)
    client.flushall()


def _create(store: JobStore, jid: str = "bf-1", output: str | None = "/tmp/out", **kw: object) -> None:
    assert store.create(jid, files=["/data/h.jsonl"], policy=None, policy_version="sha256:x", output=output,
                        deliver=bool(kw.get("deliver", False)), rate=kw.get("rate"),  # type: ignore[arg-type]
                        chunk_replies=10)


def test_create_is_once(store: JobStore) -> None:
    _create(store)
    assert not store.create("bf-1", files=[], policy=None, policy_version="other", output=None, deliver=False,
                            rate=None, chunk_replies=1)
    job = store.get("bf-1")
    assert job is not None and job.policy_version == "sha256:x" and job.state == "reading"
    assert store.jobs() == ["bf-1"]
    assert store.get("nope") is None


def test_chunks_and_verdicts_are_counted_once(store: JobStore) -> None:
    _create(store)
    for _ in range(2):  # a resumed producer stores the same chunks again
        assert store.add_chunk("bf-1", 0, 10, b"c0", "f:3")
        assert store.add_chunk("bf-1", 1, 12, b"c1", "f:7")
    assert store.pending_chunks("bf-1") == [0, 1]
    assert store.finish_chunk("bf-1", 0, 10, 10)
    assert not store.finish_chunk("bf-1", 0, 10, 10)  # a redelivered chunk
    assert not store.add_chunk("bf-1", 0, 10, b"c0", "f:3")  # done: its input is not stored again
    assert store.chunk_payload("bf-1", 0) is None and store.chunk_payload("bf-1", 1) == b"c1"
    job = store.get("bf-1")
    assert job is not None
    assert (job.enqueued, job.replies, job.done, job.replies_done, job.verdicts) == (2, 22, 1, 10, 10)
    assert job.position == "f:7" and not job.reading_done
    assert store.pending_chunks("bf-1") == [1]


def test_done_when_read_to_the_end_and_every_chunk_finished(store: JobStore) -> None:
    _create(store)
    store.add_chunk("bf-1", 0, 10, b"c0", "f:3")
    store.add_chunk("bf-1", 1, 5, b"c1", "f:5")
    store.finish_chunk("bf-1", 1, 5, 5)
    assert store.end_reading("bf-1", 2) == "enqueued"
    store.finish_chunk("bf-1", 0, 10, 10)
    job = store.get("bf-1")
    assert job is not None and job.state == "done" and job.complete and job.finished_at == 1000.0


def test_bad_lines_and_failures_keep_a_job_from_complete(store: JobStore) -> None:
    _create(store)
    store.add_bad_lines("bf-1", [BadLine("f:2", "not valid JSON")] * 2)  # recorded once per location
    store.add_chunk("bf-1", 0, 10, b"c0", "f:3")
    store.finish_chunk("bf-1", 0, 10, 9, [BadLine("chunk 0 ticket T-1", "engine error")])
    assert store.end_reading("bf-1", 1) == "done"
    job = store.get("bf-1")
    assert job is not None and job.bad_lines == 1 and job.failed == 1 and not job.complete
    assert [b.location for b in store.bad_lines("bf-1")] == ["chunk 0 ticket T-1", "f:2"]


def test_a_done_chunk_replaces_the_estimate_and_names_its_bad_lines_in_one_call(store: JobStore) -> None:
    _create(store)
    store.add_chunk("bf-1", 0, 12, b"c0", "f:3")  # the producer estimated 12 replies
    store.add_chunk("bf-1", 1, 5, b"c1", "f:9")
    assert store.get("bf-1").replies == 17  # type: ignore[union-attr]
    job, done, payload = store.claim("bf-1", 0)
    assert job is not None and job.enqueued == 2 and not done and payload == b"c0"
    assert store.finish_chunk("bf-1", 0, 10, 9, [BadLine("chunk 0 ticket T-1", "engine error")], estimated=12,
                              unreadable=[BadLine("f:2", "not valid JSON (x)")],
                              cpu={"engine": 1.5, "parse": 0.25})
    assert not store.finish_chunk("bf-1", 0, 10, 9, estimated=12, cpu={"engine": 1.5})  # once
    store.finish_chunk("bf-1", 1, 5, 5, estimated=5, cpu={"engine": 0.5})
    assert store.end_reading("bf-1", 2) == "done"
    job = store.get("bf-1")
    assert job is not None
    assert (job.replies, job.replies_done, job.verdicts, job.failed, job.bad_lines) == (15, 15, 14, 1, 1)
    assert job.cpu == {"engine": 2.0, "parse": 0.25} and not job.complete
    assert [b.location for b in store.bad_lines("bf-1")] == ["chunk 0 ticket T-1", "f:2"]
    assert store.claim("bf-1", 0) == (job, True, None)
    assert store.claim("nope", 0) == (None, False, None)


def test_cancel_and_resume(store: JobStore) -> None:
    _create(store)
    store.add_chunk("bf-1", 0, 10, b"c0", "f:3")
    store.end_reading("bf-1", 1)
    assert store.cancel("bf-1")
    assert store.end_reading("bf-1", 1) == "cancelled"
    store.finish_chunk("bf-1", 0, 10, 10)  # a chunk already running when cancelled
    job = store.get("bf-1")
    assert job is not None and job.state == "cancelled"
    store.resume("bf-1")
    job = store.get("bf-1")
    assert job is not None and job.state == "done"
    assert store.cancel("bf-1") == "done"  # the caller learns it was done, and it stays done
    assert store.get("bf-1").state == "done"  # type: ignore[union-attr]
    assert store.cancel("nope") is None


def test_cancel_says_what_the_job_was() -> None:
    store = JobStore(fakeredis.FakeRedis())
    _create(store)
    assert store.cancel("bf-1") == "reading"
    assert store.cancel("bf-1") == "cancelled"
    assert store.get("bf-1").state == "cancelled"  # type: ignore[union-attr]


def test_delivery_slots_keep_the_rate_over_all_callers(store: JobStore) -> None:
    delays = [store.delivery_delay("bf-1", 120) for _ in range(4)]
    assert delays == [0.0, 0.5, 1.0, 1.5]
    assert store.delivery_backlog("bf-1") == 2.0


# -- a whole job, in process -------------------------------------------------------------------------------
def _expected(history: Path, policy: Policy) -> list[tuple[str, str]]:
    return sorted((v.ticket_id, v.message_id) for line in history.read_text().splitlines()
                  for v in review_history(TicketHistory.model_validate_json(line), policy))


def _output(out: Path) -> list[tuple[str, str]]:
    import json

    return sorted((d["ticket_id"], d["message_id"]) for p in out.glob("part-*.jsonl")
                  for d in map(json.loads, p.read_text().splitlines()))


def test_a_job_runs_and_resumes_after_the_producer_stops(store: JobStore, tmp_path: Path,
                                                         policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=200)
    out = tmp_path / "out"
    jid = job_id([str(history)], policy.version, 20)
    store.create(jid, files=[str(history)], policy=None, policy_version=policy.version, output=str(out),
                 deliver=False, rate=None, chunk_replies=20)
    deps = ChunkDeps(store, lambda _: policy)
    queue: list[int] = []

    class Crash(Exception):
        pass

    def send_then_crash(job: str, index: int) -> None:
        queue.append(index)
        if index == 4:
            raise Crash  # the producer dies right after sending chunk 4

    with pytest.raises(Crash):
        produce(jid, store, policy, send=send_then_crash)
    # a worker finishes two chunks, and chunk 1 twice (redelivered); the rest of the queue is lost
    assert [process_chunk(jid, i, deps) for i in (0, 1, 1)] == ["done", "done", "duplicate"]
    job = store.get(jid)
    assert job is not None and job.enqueued == 5 and job.state == "reading"

    resent: list[int] = []
    produce(jid, store, policy, send=lambda j, i: resent.append(i))
    assert resent[:3] == [2, 3, 4] and resent[3] == 5  # unfinished first, then reading goes on at 5
    for i in resent:
        assert process_chunk(jid, i, deps) == "done"
    job = store.get(jid)
    assert job is not None and job.state == "done" and job.complete
    assert _output(out) == _expected(history, policy)
    assert len(list(out.glob("part-*.jsonl"))) == job.chunks
    assert shard_path(out, 0).exists()

    produce(jid, store, policy, send=lambda j, i: pytest.fail("a done job sends nothing"))


def test_cancelled_chunks_are_skipped(store: JobStore, tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=30)
    store.create("bf-c", files=[str(history)], policy=None, policy_version=policy.version,
                 output=str(tmp_path / "o"), deliver=False, rate=None, chunk_replies=10)
    sent: list[int] = []
    produce("bf-c", store, policy, send=lambda j, i: sent.append(i))
    store.cancel("bf-c")
    deps = ChunkDeps(store, lambda _: policy)
    assert {process_chunk("bf-c", i, deps) for i in sent} == {"cancelled"}
    assert process_chunk("nope", 0, deps) == "missing"


def test_deliveries_are_routed_under_the_rate(store: JobStore, tmp_path: Path, policy: Policy,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from worker.routing import IMPLICIT_TARGET, build_router

    history = write_history(tmp_path / "h.jsonl", tickets=20)
    store.create("bf-d", files=[str(history)], policy=None, policy_version=policy.version, output=None,
                 deliver=True, rate=600.0, chunk_replies=1000)
    router = build_router("https://example.invalid/hook", "whsec_" + "a" * 32, None)
    sent: list[tuple[dict[str, object], float]] = []
    deps = ChunkDeps(store, lambda _: policy, lambda: router, lambda job, delay: sent.append((job, delay)))
    produce("bf-d", store, policy, send=lambda j, i: process_chunk(j, i, deps))
    job = store.get("bf-d")
    assert job is not None and job.complete
    assert sent and all(j["target"] == IMPLICIT_TARGET for j, _ in sent)
    assert [round(d, 6) for _, d in sent] == [round(i * 0.1, 6) for i in range(len(sent))]
    assert len({j["delivery_id"] for j, _ in sent}) == len(sent)
    # Its status says judged is not delivered (an operator's review, session 18, read "done" as delivered).
    from worker.cli.backfill_cmd import _print_status

    _print_status(job, store)
    assert "delivery: every verdict is judged and its deliveries queued; they go out at 600/min" in \
        capsys.readouterr().out


def test_backfill_deliveries_are_journalled_due_at_their_slot_and_chunks_settled(
        store: JobStore, tmp_path: Path, policy: Policy) -> None:
    from worker.journal import Journal, chunk_key, entry_key
    from worker.routing import build_router

    history = write_history(tmp_path / "h.jsonl", tickets=10)
    store.create("bf-j", files=[str(history)], policy=None, policy_version=policy.version, output=None,
                 deliver=True, rate=60.0, chunk_replies=1000)
    journal = Journal(store.redis, clock=lambda: 1000.0)
    router = build_router("https://example.invalid/hook", "whsec_" + "a" * 32, None)
    sent: list[tuple[dict[str, object], float]] = []
    deps = ChunkDeps(store, lambda _: policy, lambda: router, lambda job, delay: sent.append((job, delay)),
                     journal)
    journal.record([("chunk", chunk_key("bf-j", 0), ["bf-j", 0])])  # what `backfill start` journals
    produce("bf-j", store, policy, send=lambda j, i: process_chunk(j, i, deps))
    assert sent
    due = {k.decode(): score for k, score in store.redis.zrange("aw:journal", 0, -1, withscores=True)}
    assert entry_key("chunk", chunk_key("bf-j", 0)) not in due  # done: settled
    assert due == {entry_key("delivery", str(job["delivery_id"])): 1000.0 + delay for job, delay in sent}
    # Run again (a re-sent chunk): a duplicate, and settled all the same.
    journal.record([("chunk", chunk_key("bf-j", 0), ["bf-j", 0])])
    assert process_chunk("bf-j", 0, deps) == "duplicate"
    assert entry_key("chunk", chunk_key("bf-j", 0)) not in {k.decode() for k in store.redis.zrange("aw:journal", 0, -1)}


# -- `backfill start` and `cancel` on an existing job, through the CLI ---------------------------------------
@pytest.fixture()
def cli(store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI on fakeredis, each chunk judged in process as it is sent; a small history to back fill."""
    from functools import cache

    from worker.cli import backfill_cmd
    from worker.engine import load_policy

    deps = ChunkDeps(store, cache(load_policy))  # as a worker process loads the job's policy
    monkeypatch.setattr(backfill_cmd, "_store", lambda: store)
    monkeypatch.setattr(backfill_cmd, "_send_chunk", lambda job, index: process_chunk(job, index, deps))
    monkeypatch.delenv("APOLOGY_POLICY", raising=False)
    monkeypatch.chdir(tmp_path)
    return write_history(tmp_path / "h.jsonl", tickets=30)


def test_start_into_another_directory_names_where_the_verdicts_are(
        cli: Path, store: JobStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It said "already done" and wrote only a `_job.json` to the new directory, which held no verdicts."""
    import shlex
    import subprocess

    from worker.cli import main

    old, new = tmp_path / "old dir", tmp_path / "new"
    assert main(["backfill", "start", str(cli), "--output", str(old), "--chunk-replies", "20"]) == 0
    verdicts = _output(old)
    assert len(verdicts) > 20 and store.get(store.jobs()[0]).complete  # type: ignore[union-attr]
    capsys.readouterr()

    assert main(["backfill", "start", str(cli), "--output", str(new), "--chunk-replies", "20"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"its verdicts are in {old};" in err and "not judged twice" in err
    assert not new.exists()  # nothing written where the verdicts are not
    copy = err.split(f"To have them in {new}: ", 1)[1]
    assert copy.startswith(f"mkdir -p {shlex.quote(str(new))} && cp ")
    subprocess.run(copy, shell=True, check=True)  # the command it gives does what it says
    assert _output(new) == verdicts

    assert main(["backfill", "start", str(cli), "--chunk-replies", "20"]) == 0  # no --output: the job's own
    assert f"its verdicts are in {old}" in capsys.readouterr().out
    assert not (tmp_path / "backfill").exists()  # no stray default directory
    assert main(["backfill", "start", str(cli), "--deliver", "--chunk-replies", "20"]) == 2
    assert f"into {old}, not to the targets" in capsys.readouterr().err


def test_start_into_another_directory_while_the_job_runs_says_how_to_continue(store: JobStore) -> None:
    _create(store, output="/data/out")
    job = store.get("bf-1")
    assert job is not None and job.state == "reading"
    assert job.elsewhere(None, False) is None and job.elsewhere("/data/out", False) is None
    message = job.elsewhere("/data/other", False)
    assert message is not None and "is already judging this input into /data/out" in message
    assert "`apology-worker backfill resume bf-1 --wait`" in message
    assert "/data/out/part-*.jsonl /data/other/" in message
    _create(store, "bf-d", output=None, deliver=True)
    delivered = store.get("bf-d")
    assert delivered is not None and delivered.elsewhere(None, True) is None
    assert "writing no shards" in (delivered.elsewhere("/data/out", False) or "")


def test_cancel_of_a_done_job_says_it_is_done_and_leaves_it_done(
        cli: Path, store: JobStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It printed "cancelled: queued chunks will be skipped" for a job that was done."""
    from worker.cli import main

    out = tmp_path / "out"
    assert main(["backfill", "start", str(cli), "--output", str(out)]) == 0
    jid = store.jobs()[0]
    capsys.readouterr()
    assert main(["backfill", "cancel", jid]) == 0
    said = capsys.readouterr().out
    assert f"job {jid} is already done: nothing to cancel; its verdicts are in {out}" in said
    assert "cancelled" not in said
    assert store.get(jid).state == "done"  # type: ignore[union-attr]
    assert main(["backfill", "cancel", "bf-nope"]) == 2


def test_the_producer_runs_again_once_redis_is_back_and_gives_up_after_its_patience(store: JobStore) -> None:
    """A Redis outage does not end a backfill (worker.cli.backfill_cmd._riding_out): what it interrupted runs
    again when Redis answers; an outage longer than the patience raises, for the CLI's exit 2."""
    import redis

    from tests.support.processes import free_port
    from worker.cli.backfill_cmd import _riding_out

    said: list[str] = []
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise redis.ConnectionError("Connection refused")
        return "done"

    assert _riding_out(flaky, store, "bf-1", said.append, patience=5) == "done"
    assert len(calls) == 2
    assert [m.split(";")[0] for m in said] == ["backfill bf-1: Redis unreachable (ConnectionError)",
                                                "backfill bf-1: Redis is back"]

    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # Nothing listens there; no retries inside redis-py, whose own (10 by default) would take seconds.
    gone = JobStore(redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)))

    def down() -> str:
        return str(gone.redis.ping())

    with pytest.raises(redis.ConnectionError):
        _riding_out(down, gone, "bf-2", said.append, patience=0.5)
    assert said[-1].startswith("backfill bf-2: Redis unreachable")


def test_the_progress_says_once_when_no_chunk_finishes_and_what_to_do(store: JobStore) -> None:
    """A `--wait` job whose chunk message was lost (or that has no worker) waited in silence."""
    _create(store)
    for index in range(3):
        store.add_chunk("bf-1", index, 10, b"c", f"f:{index}")
    store.finish_chunk("bf-1", 0, 10, 10)
    said: list[str] = []
    rounds: list[int] = []

    def stop() -> bool:  # a few looks after the notice, to see it is said once
        if said:
            rounds.append(1)
        return len(rounds) > 3

    watch("bf-1", store, stop, stall=0.0, say=said.append, console=Console(file=io.StringIO()), interval=3600)
    assert len(said) == 1
    assert "no chunk has finished" in said[0] and "2 sent are not done" in said[0]
    assert "apology-worker backfill resume bf-1" in said[0]

    store.finish_chunk("bf-1", 1, 10, 10)  # progress: a later stall is said again; a finished job says nothing
    store.finish_chunk("bf-1", 2, 10, 10)
    store.end_reading("bf-1", 3)
    watch("bf-1", store, lambda: False, stall=0.0, say=said.append, console=Console(file=io.StringIO()))
    assert len(said) == 1


def test_start_of_a_cancelled_job_says_so_and_leaves_it_to_resume(
        cli: Path, store: JobStore, capsys: pytest.CaptureFixture[str]) -> None:
    """It printed "exists (cancelled): continuing it" and did nothing: only `resume` runs a cancelled job."""
    from worker.cli import main
    from worker.cli.backfill_cmd import CHUNK_REPLIES
    from worker.engine import load_policy

    jid = job_id([str(cli.resolve())], load_policy(None).version, CHUNK_REPLIES)
    assert store.create(jid, files=[str(cli.resolve())], policy=None, policy_version=load_policy(None).version,
                        output=str(cli.parent / "out"), deliver=False, rate=None, chunk_replies=CHUNK_REPLIES)
    assert store.cancel(jid) is not None
    assert main(["backfill", "start", str(cli), "--output", str(cli.parent / "out")]) == 1
    said = capsys.readouterr().out
    assert f"job {jid} was cancelled: nothing done" in said and f"backfill resume {jid}" in said
    assert "continuing" not in said and store.get(jid).state == "cancelled"  # type: ignore[union-attr]


def test_status_of_a_job_whose_producer_stopped_reading_says_there_is_more_and_how_to_go_on(
        cli: Path, store: JobStore, capsys: pytest.CaptureFixture[str]) -> None:
    """An operator's review (session 18): after Ctrl-C the list read "3,200/3,200 replies" for an 8,000-reply
    input and the detail said "reading" with no producer left to read."""
    from worker.cli import main

    _create(store, "bf-cut")
    assert main(["backfill", "status"]) == 0
    assert "bf-cut  reading    0/0+ replies" in capsys.readouterr().out
    assert main(["backfill", "status", "bf-cut"]) == 0
    assert "`apology-worker backfill resume bf-cut` continues" in capsys.readouterr().out
