"""Gateway latency under a fixed offered load: POST /v1/review against the same app's /healthz.

    python bench/gateway.py [--rate 200] [--seconds 20] [--port 0]

Starts `apology-worker serve` (uvicorn, one process), then offers requests at a fixed rate from an
open-loop generator (asyncio, a pool of keep-alive connections): request i is due at start + i/rate
whether or not earlier ones have answered, so a slow server is not hidden by a slowed-down client.
Latency runs from the request's due time to its answer. /v1/review bodies are the ticket histories of
config/examples/tickets.jsonl and the corpus, signed per Standard Webhooks as a sidebar app would sign
them. Prints p50/p99 latency and achieved requests/s for each endpoint, and the ratio of their p99s.
Target: p99 <= 20 ms at 200 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from standardwebhooks import Webhook

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + base64.b64encode(b"bench-gateway-inbound-secret-32b").decode()
CONNECTIONS = 32
BODIES = [ROOT / "config" / "examples" / "tickets.jsonl", *sorted((ROOT / "tests" / "corpus").glob("*.jsonl"))]


@dataclass
class Result:
    name: str
    latencies: list[float]
    errors: int
    seconds: float

    def line(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
        return (f"{self.name:12s} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   {len(lat) / self.seconds:7.1f} req/s "
                f"achieved   {self.errors} errors")

    def p99(self) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def requests(limit: int = 200) -> list[tuple[bytes, dict[str, str]]]:
    signer = Webhook(SECRET)
    now = datetime.now(UTC)
    out = []
    for path in BODIES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and '"agent"' in line and len(out) < limit:
                msg_id = f"msg_bench_{len(out)}"
                out.append((line.encode(), {"content-type": "application/json", "webhook-id": msg_id,
                                            "webhook-timestamp": str(int(now.timestamp())),
                                            "webhook-signature": signer.sign(msg_id, now, line)}))
    return out


class Connection:
    """A minimal keep-alive HTTP/1.1 client connection: far lighter than a full client library, so on a
    small machine the load generator does not steal the CPU the server is being measured on."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readuntil(b"\r\n")
        length = 0
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


async def drive(name: str, host: str, port: int, method: str, path: str,
                bodies: list[tuple[bytes, dict[str, str]]], rate: float, seconds: float) -> Result:
    """Open loop: request i is due at start + i/rate; a free connection from the pool sends it."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(Connection(host, port))
    start = time.perf_counter() + 0.05

    async def one(i: int, due: float) -> None:
        nonlocal errors
        conn = await pool.get()
        body, headers = bodies[i % len(bodies)] if bodies else (b"", {})
        try:
            ok = await conn.request(method, path, body, headers) == 200
        except (OSError, asyncio.IncompleteReadError, ValueError):
            conn.writer = None
            ok = False
        pool.put_nowait(conn)
        if ok:
            latencies.append(time.perf_counter() - due)
        else:
            errors += 1

    tasks = []
    for i in range(total):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return Result(name, latencies, errors, time.perf_counter() - start)


async def run(port: int, rate: float, seconds: float) -> tuple[Result, Result]:
    bodies = requests()
    host = "127.0.0.1"
    await drive("warm-up", host, port, "POST", "/v1/review", bodies, rate, 2)  # imports, caches, connections
    review = await drive("/v1/review", host, port, "POST", "/v1/review", bodies, rate, seconds)
    health = await drive("/healthz", host, port, "GET", "/healthz", [], rate, seconds)
    return review, health


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="offered requests per second (default 200)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration per endpoint (default 20)")
    parser.add_argument("--port", type=int, default=0, help="port for the gateway (default: a free one)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.support.processes import free_port

    port = args.port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APOLOGY_")}
    env.update(APOLOGY_INBOUND_SECRET=SECRET, APOLOGY_LOG_FORMAT="json", APOLOGY_LOG_LEVEL="WARNING")
    exe = Path(sys.executable).with_name("apology-worker")
    server = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the gateway did not start")
            time.sleep(0.1)
        review, health = asyncio.run(run(port, args.rate, args.seconds))
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"offered {args.rate:.0f} req/s for {args.seconds:.0f} s per endpoint, one uvicorn process")
    print(review.line())
    print(health.line())
    ratio = review.p99() / health.p99() if health.latencies else float("nan")
    print(f"p99 ratio /v1/review : /healthz = {ratio:.2f}   target p99 <= 20 ms: "
          f"{'met' if review.p99() <= 0.020 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
