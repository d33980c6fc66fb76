"""`apology-worker`: the command line. Each subcommand lives in its own module and only delegates."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from worker.cli import (
    backfill_cmd,
    dead_letters_cmd,
    enqueue_cmd,
    incidents_cmd,
    policy_cmd,
    reconcile_cmd,
    report_cmd,
    review_cmd,
    schema_cmd,
    serve_cmd,
    signals_cmd,
)
from worker.errors import ApologyWorkerError
from worker.settings import read_env_file

COMMANDS = [review_cmd, policy_cmd, schema_cmd, report_cmd, enqueue_cmd, dead_letters_cmd, backfill_cmd, serve_cmd,
            reconcile_cmd, incidents_cmd, signals_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apology-worker",
        description="Review customer-service replies against an apology policy: in process (review), on "
                    "the workers (enqueue, backfill), or behind the HTTP gateway (serve).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Give every (sub)command's `--help` its one-line summary as a description, unless it has its own."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                child = action.choices[choice.dest]
                if child.description is None:
                    child.description = choice.help
                _describe(child)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("apology-worker")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        read_env_file()
        code: int = args.run(args)
    except ApologyWorkerError as exc:
        print(f"apology-worker: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:  # Ctrl-C where a command has nothing to say about it: the shell's code, no traceback
        print("apology-worker: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        outage = _broker_outage(exc)
        if outage is None:
            raise
        print(f"apology-worker: error: {outage}", file=sys.stderr)
        return 2
    return code


def _broker_outage(exc: Exception) -> str | None:
    """What to tell a user whose command could not reach Redis: a sentence and exit 2, not a traceback."""
    from worker.bootstrap import FULL_ERRORS, OUTAGE_ERRORS  # here, not at the top: `review` needs no Redis client

    if isinstance(exc, FULL_ERRORS):
        return (f"Redis is full (APOLOGY_BROKER_URL): {exc}; it refuses writes until memory is freed or its "
                "maxmemory raised")
    if isinstance(exc, OUTAGE_ERRORS):
        return (f"cannot reach Redis (APOLOGY_BROKER_URL): {exc}; is it running, and is the URL right? "
                "(`review` needs no Redis)")
    return None


if __name__ == "__main__":
    sys.exit(main())
