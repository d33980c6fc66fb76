"""`apology-worker review FILE...`: judge ticket history files in process (no broker needed).

Exit codes: 0 reviewed; 1 a finding reached --fail-on; 2 usage or policy error; 3 some lines unreadable.
Unreadable lines win over --fail-on: a lint that could not read its whole input has not passed or failed
on its findings alone, and CI should say so.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.text import Text

from worker.cli import options
from worker.engine import load_policy, review_history
from worker.engine.text import prepare
from worker.exports import readable_histories
from worker.history import Skipped
from worker.models import SEVERITY_RANK, Message, TicketHistory, Verdict

_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}
_ACTION_STYLE = {"none": "green", "annotate": "yellow", "escalate": "bold red"}
_MAX_SHOWN = 1500
_SEVERITY_NAMES = {rank: name for name, rank in SEVERITY_RANK.items()}


def register(sub: Any) -> None:
    p = sub.add_parser("review", help="review ticket history files in process (no broker)")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="history files: canonical JSONL (.gz), message CSV or Zendesk export; - for stdin")
    options.add_policy(p)
    p.add_argument("--format", choices=["text", "jsonl"], default="text")
    p.add_argument("--fail-on", choices=["info", "warning", "critical"], default=None,
                   help="exit 1 when any finding is at least this severe (lint macros in CI)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    policy = load_policy(options.policy_spec(args))
    # Piped or redirected, lines are not wrapped at 80 columns: whoever reads the file wraps it.
    console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    worst = 0
    replies = unread = 0
    skipped = Skipped()
    for history in readable_histories(args.files, skipped):
        for verdict in review_history(history, policy):
            replies += 1
            unread += not policy.reads(verdict.signals.language)
            worst = max([worst, *(SEVERITY_RANK[f.severity] for f in verdict.findings)])
            if args.format == "jsonl":
                sys.stdout.write(verdict.to_json() + "\n")
            else:
                _print_verdict(console, verdict, history)
    bad_lines = len(skipped)
    if not replies:
        print("apology-worker: warning: no public agent reply in the input: nothing was reviewed", file=sys.stderr)
    if args.format == "text":
        console.print(f"[bold]{replies}[/] {'reply' if replies == 1 else 'replies'} reviewed under "
                      f"[bold]{policy.name}[/] {policy.version}"
                      + (f"; {unread} not read (in a language the policy does not read)" if unread else "")
                      + (f"; [red]{bad_lines} unreadable {'line' if bad_lines == 1 else 'lines'}[/]"
                         if bad_lines else ""))
    if bad_lines:
        return 3
    return 1 if args.fail_on and worst >= SEVERITY_RANK[args.fail_on] else 0


def _print_verdict(console: Console, verdict: Verdict, history: TicketHistory) -> None:
    reply = _message(history.messages, verdict.message_id)
    head = Text.assemble(
        ("ticket ", "dim"), (verdict.ticket_id, "bold"), ("  message ", "dim"), verdict.message_id,
        ("  agent ", "dim"), verdict.agent_id or "-", ("  score ", "dim"), (str(verdict.score), "bold"),
        "  ", (verdict.action.upper(), _ACTION_STYLE[verdict.action]),
    )
    if verdict.policy.override:
        head.append(f"  override {verdict.policy.override}", "dim")
    ctx = verdict.context
    sig = verdict.signals
    facts = (f"incident {ctx.incident} · frustration {ctx.frustration:.2f}"
             f"{' · LEGAL RISK' if ctx.legal_risk else ''} · apology {sig.apology}"
             f"{f' ({sig.apology_stance}, x{sig.apology_count})' if sig.apology_count else ''}"
             f" · empathy {_yn(sig.empathy)} · solution {_yn(sig.solution)} · prevention {_yn(sig.prevention)}"
             f" · liability {_yn(sig.liability_admission)} · blame {_yn(sig.blame)}"
             f"{f' · answered after {sig.response_minutes:g} min' if sig.response_minutes is not None else ''}")
    console.print(head)
    console.print(Text(facts, "dim"))
    if reply is not None:
        console.print(_highlighted(reply.body, reply.format, verdict, marks=console.color_system is None))
    for f in verdict.findings:
        line = Text.assemble(("  ● ", _STYLE[f.severity]), (f"{f.rule} ", "bold"),
                             (f"[{f.severity}] ", _STYLE[f.severity]), f.message)
        console.print(line)
        if f.suggestion:
            console.print(Text.assemble(("    → ", "green"), (f.suggestion, "green")))
    if not verdict.findings:
        console.print(Text("  ✓ follows the policy", "green"))
    console.print()


def _highlighted(body: str, fmt: str, verdict: Verdict, *, marks: bool = False) -> Text:
    """The reply as a reader sees it: flagged spans reversed, quoted mail and signatures dimmed; with
    `marks` (no colours: a pipe, a file, NO_COLOR) flagged spans are bracketed [[like this]] instead.

    HTML is shown as its visible text; spans stay in body offsets and are mapped through the engine's
    offset map, so what is highlighted is exactly what the finding points at.
    """
    doc = prepare(body, fmt)
    if fmt == "html" and doc.starts is not None:
        shown, origin = doc.text, doc.starts
        dimmed = [False] * len(shown)
    else:
        shown, origin = body, list(range(len(body)))
        dimmed = [doc.text[i] == " " and not body[i].isspace() for i in range(min(len(body), len(doc.text)))]
    shown = shown[:_MAX_SHOWN]
    worst: list[int] = [0] * len(shown)  # the most severe finding over each character, 0 for none
    for f in verdict.findings:
        rank = SEVERITY_RANK[f.severity]  # 1 and up
        for i in range(len(shown)):
            if f.span[0] <= origin[i] < f.span[1]:
                worst[i] = max(worst[i], rank)
    text = Text()
    for start, end, rank in _runs(worst):
        part = shown[start:end]
        if rank and marks:
            text.append(f"[[{part}]]")
        elif rank:
            text.append(part, f"reverse {_STYLE[_SEVERITY_NAMES[rank]]}")
        else:
            piece = Text(part)
            for s0, e0, dim in _runs([int(d) for d in dimmed[start:end]]):
                if dim and not marks:
                    piece.stylize("dim", s0, e0)
            text.append(piece)
    if len(body if fmt != "html" else doc.text) > _MAX_SHOWN:
        text.append(f" … (+{len(body if fmt != 'html' else doc.text) - _MAX_SHOWN} characters)", "dim")
    lines = text.split("\n")
    while lines and not lines[0].plain.strip():
        lines.pop(0)
    while lines and not lines[-1].plain.strip():
        lines.pop()
    return Text("\n").join(Text("    ") + line if line.plain.strip() else Text() for line in lines)


def _runs(values: list[int]) -> Iterable[tuple[int, int, int]]:
    """(start, end, value) for each stretch of equal values."""
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            yield start, i, values[start]
            start = i


def _message(messages: Iterable[Message], message_id: str) -> Message | None:
    return next((m for m in messages if m.id == message_id), None)


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"
