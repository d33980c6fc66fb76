"""`apology-worker signals train CORPUS... [--dev-only CORPUS...] [--output FILE]`: fit the reply models.

The reply models (worker.engine.signals.reply_model) learn how agents word a solution, prevention and blame
from labelled replies; a team that labels its own replies can fit them to its own wording and name the file
in its policy (`lexicon: {reply_model: FILE}`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from worker.cli.incidents_cmd import register_training, write_model
from worker.corpus import CorpusError, reply_example, training_items
from worker.engine.signals.reply_model import SIGNALS, train


def register(sub: Any) -> None:
    t = register_training(sub, "signals", "fit the reply models (solution, prevention, blame) to labelled replies",
                          "write the models as JSON (the shipped ones: scripts/train-reply-model)", run)
    t.add_argument("--signals", default=",".join(SIGNALS), type=_signal_list, metavar="NAME,...",
                   help=f"the signals to fit a model for (default: {','.join(SIGNALS)}); a corpus needs replies "
                        "with and without each, and labels for these only")


def _signal_list(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in SIGNALS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown) or value!r}: the models read {', '.join(SIGNALS)}")
    return names


def run(args: argparse.Namespace) -> int:
    items, trained_on = training_items(args.corpus, args.dev_only)
    for item in items:
        missing = [name for name in args.signals if not isinstance(item.labels.get(name), bool)]
        if missing:
            raise CorpusError(f"{item.where}: item {item.id}: labels need true or false for {', '.join(missing)}")
    try:
        model = train((reply_example(item) for item in items), signals=args.signals, trained_on=trained_on)
    except ValueError as exc:
        raise CorpusError(str(exc)) from None
    write_model(model, args.output)
    counts = "; ".join(f"{name}: {m['examples'].get('present', 0)} of {sum(m['examples'].values())}, "
                       f"{len(m['features'])} features" for name, m in model["signals"].items())
    print(f"reply models: {len(items)} replies ({counts})" + (f" -> {args.output}" if args.output else ""),
          file=sys.stderr)
    return 0
