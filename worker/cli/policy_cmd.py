"""`apology-worker policy check|test PATH`: validate a policy file; run the examples its rules carry."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from worker.engine.examples import run_examples
from worker.engine.policy import load_policy
from worker.errors import PolicyError


def register(sub: Any) -> None:
    p = sub.add_parser("policy", help="validate a policy file or run its examples")
    p.add_argument("action", choices=["check", "test"],
                   help="check: validate the file (every error with file, line and key); test: also run the "
                        "flag: and pass: examples each rule carries")
    p.add_argument("path", help="policy file, or a preset name (liability-aware, empathy-first, no-apology)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.path)
    except PolicyError as exc:  # one line per mistake, each with its file, line and key
        problems = str(exc).splitlines()
        for problem in problems:
            print(f"apology-worker: error: {problem}", file=sys.stderr)
        if len(problems) > 1:
            print(f"apology-worker: {len(problems)} errors", file=sys.stderr)
        return 2
    rules = len(policy.base.rules)
    if args.action == "check":
        print(f"ok: {policy.source}: policy {policy.name!r} {policy.version}, {rules} rules, "
              f"{len(policy.overrides)} overrides")
        return 0
    results = run_examples(policy)
    failures = [r for r in results if not r.ok]
    for r in failures:
        fired = ", ".join(r.fired) or "nothing"
        verb = "should flag" if r.expect == "flag" else "should pass"
        print(f"FAIL {r.rule}: {r.expect}[{r.index}] {verb} but fired: {fired}\n     reply: {r.reply!r}")
    print(f"{policy.name}: {len(results) - len(failures)} passed, {len(failures)} failed "
          f"({len(results)} examples over {rules} rules)")
    return 1 if failures or not results else 0
