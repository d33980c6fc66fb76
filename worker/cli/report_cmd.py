"""`apology-worker report VERDICTS... --html FILE`: a self-contained HTML report and a terminal summary.

Exit codes: 0 written; 2 usage or policy error; 3 written, but some input lines were unreadable.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from worker.cli import options
from worker.engine import load_policy
from worker.errors import ApologyWorkerError
from worker.exports import FORMATS
from worker.report.build import build_report
from worker.report.html import render_html
from worker.report.terminal import print_summary


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="summarise verdict files as an HTML page and a terminal table")
    p.add_argument("verdicts", nargs="+", metavar="VERDICTS",
                   help="verdict JSON Lines files (as `review --format jsonl` prints), .gz or - for stdin")
    p.add_argument("--html", required=True, metavar="FILE", help="where to write the HTML page")
    p.add_argument("--history", nargs="+", default=[], metavar="FILE",
                   help="the history the verdicts were made from: adds team, week and the outcome section")
    p.add_argument("--history-format", choices=FORMATS, default=None,
                   help="format of the history files (default: detected)")
    p.add_argument("--compare", nargs="+", default=[], metavar="VERDICTS",
                   help="a second verdict set over the same history (e.g. another preset) to compare with")
    options.add_policy(p, "the policy whose lexicon reads the customers' frustration")
    p.add_argument("--title", default="Apology policy report")
    p.add_argument("--worst", type=int, default=12, help="how many worst replies to show (default 12)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for path in [*args.verdicts, *args.history, *args.compare]:
        if path != "-" and not Path(path).is_file():
            raise ApologyWorkerError(f"{path}: no such file")
    if not Path(args.html).resolve().parent.is_dir():  # before the report is built, not after
        raise ApologyWorkerError(f"{args.html}: no such folder to write the page into")
    policy = load_policy(options.policy_spec(args))
    built = build_report(args.verdicts, policy=policy, histories=args.history, compare=args.compare,
                         history_format=args.history_format, worst=args.worst)
    page = render_html(built.report, built.comparison, title=args.title,
                       sources=[Path(p).name for p in args.verdicts])
    Path(args.html).write_text(page, encoding="utf-8")
    console = Console(highlight=False, stderr=False)
    print_summary(console, built.report, built.comparison)
    console.print(f"wrote [bold]{args.html}[/]")
    return 3 if built.unreadable else 0
