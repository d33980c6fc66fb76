"""Options more than one command takes, spelled and resolved in one place."""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_policy(parser: Any, purpose: str = "") -> None:
    """`--policy`, whose default is $APOLOGY_POLICY (from the environment or .env), then the default preset."""
    parser.add_argument("--policy", default=None,
                        help=f"{purpose or 'policy file or preset'} (default: $APOLOGY_POLICY or liability-aware)")


def policy_spec(args: argparse.Namespace) -> str | None:
    """The policy a command was asked for: the option, else $APOLOGY_POLICY, else None (the default preset)."""
    return args.policy or os.environ.get("APOLOGY_POLICY") or None
