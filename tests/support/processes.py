"""Start real redis-server and celery worker processes for tests, and wait on what they print.

Readiness is read from the process's own output ("Ready to accept connections", "ready."), never
guessed with a sleep.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.broker import QUEUES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A child process whose output lines are collected by a reader thread."""

    popen: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    history: list[str] = field(default_factory=list)

    def start_reader(self) -> None:
        def pump() -> None:
            assert self.popen.stdout is not None
            for line in self.popen.stdout:
                self.history.append(line)
                self.lines.put(line)
            self.lines.put("")  # EOF marker

        threading.Thread(target=pump, daemon=True).start()

    def wait_for_line(self, needle: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line containing {needle!r} within {timeout}s:\n{self.output()}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line == "" and self.popen.poll() is not None:
                raise RuntimeError(f"process exited ({self.popen.returncode}) before {needle!r}:\n"
                                   f"{self.output()}")
            if needle in line:
                return line

    def output(self) -> str:
        return "".join(self.history[-80:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def spawn(args: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None) -> Proc:
    popen = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env, cwd=cwd, start_new_session=True)
    proc = Proc(popen)
    proc.start_reader()
    return proc


@dataclass
class RedisServer:
    port: int
    proc: Proc
    data_dir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def restart(self) -> None:
        """Stop and start again on the same port and data (append-only file on): a broker restart."""
        self.stop()
        self.start()

    def stop(self) -> None:
        """An outage that lasts until `start` (SIGTERM: Redis writes its append-only file and exits)."""
        self.proc.stop()

    def start(self) -> None:
        self.proc = _start_redis(self.port, self.data_dir)


def redis_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError("redis-server is not installed: run `bash scripts/test` (it installs it) "
                           "or `apt-get install -y redis-server`")
    return path


def _start_redis(port: int, data_dir: Path) -> Proc:
    proc = spawn([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(data_dir),
                  "--logfile", "", "--protected-mode", "no"])
    proc.wait_for_line("Ready to accept connections", timeout=30)
    return proc


@contextmanager
def redis_server(data_dir: Path) -> Iterator[RedisServer]:
    port = free_port()
    server = RedisServer(port, _start_redis(port, data_dir), data_dir)
    try:
        yield server
    finally:
        server.proc.stop()


@contextmanager
def redis_full(client: Any) -> Iterator[None]:
    """Redis at its memory limit (`maxmemory` 1 under `noeviction`): it refuses every write inside the block,
    and has room again after it."""
    client.config_set("maxmemory", "1")
    try:
        yield
    finally:
        client.config_set("maxmemory", "0")


def python_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APOLOGY_")}
    env.update(extra)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def venv_bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@contextmanager
def celery_worker(env: dict[str, str], *, concurrency: int = 2, pool: str = "prefork",
                  extra: Sequence[str] = (), name: str = "worker1", cwd: str | Path | None = None,
                  timeout: float = 60.0, app: str = "worker.app", gossip: bool = False) -> Iterator[Proc]:
    """A real `celery -A worker.app worker` subprocess, ready once it prints its "ready." line. Without gossip
    and mingle unless asked (they slow a start; the Procfile's workers run with both)."""
    quiet = () if gossip else ("--without-gossip", "--without-mingle")
    args = [venv_bin("celery"), "-A", app, "worker", "--loglevel", "INFO", "--pool", pool,
            "--concurrency", str(concurrency), "--hostname", f"{name}@%h", *quiet, *extra]
    proc = spawn(args, env=python_env(**env), cwd=cwd or Path(__file__).resolve().parents[2])
    try:
        proc.wait_for_line("ready.", timeout=timeout)
        yield proc
    finally:
        proc.stop(signal.SIGTERM)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05,
               what: str = "condition") -> None:
    """Check `condition` until it holds or the deadline passes (for state only another process changes)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        pause.wait(interval)


def broker_idle(client: Any, queues: Sequence[str] = QUEUES) -> bool:
    """Nothing queued and nothing reserved (kombu's Redis transport keeps reserved messages in `unacked`).

    Not proof that a task just sent is done: between the worker's BRPOP taking a message off its list and
    its HSET into `unacked` (a millisecond or more on a loaded machine) the message is in neither place.
    Wait for a sign that the worker has reserved it first (its "received" log line) when that matters."""
    return bool(all(client.llen(q) == 0 for q in queues) and client.hlen("unacked") == 0)
