"""`apology-worker schema event|history|verdict|policy`: print a contract shape's JSON Schema."""

from __future__ import annotations

import argparse
from typing import Any

from worker.models import SCHEMAS, dumps_schema


def register(sub: Any) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of a contract shape")
    p.add_argument("name", choices=[*SCHEMAS, "policy"])
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(dumps_schema(args.name))
    return 0
