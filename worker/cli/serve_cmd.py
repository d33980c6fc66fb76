"""`apology-worker serve [--host H] [--port P]`: run the HTTP gateway (worker.gateway) under uvicorn."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the HTTP gateway: helpdesk webhooks in, the pre-send review")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1; 0.0.0.0 "
                                                       "in a container)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default: 1)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from worker import bootstrap
    from worker.gateway import max_body_bytes

    bootstrap.settings()  # a bad setting stops here with a message naming the variable, before binding
    max_body_bytes()
    uvicorn.run("worker.gateway:from_env", factory=True, host=args.host, port=args.port, workers=args.workers,
                access_log=False, log_config=None, proxy_headers=True, server_header=False)
    return 0
