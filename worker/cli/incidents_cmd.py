"""`apology-worker incidents train CORPUS... [--dev-only CORPUS...] [--output FILE]`: fit the incident model.

The model (worker.engine.signals.incident_model) learns which words customers use for each incident kind
from labelled conversations; a team that labels its own tickets can fit one to its own vocabulary and name
it in its policy (`lexicon: {incident: {model: FILE}}`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker.corpus import CorpusError, incident_example, training_items
from worker.engine.signals.incident_model import KINDS, train


def add_training_arguments(parser: Any) -> None:
    """The corpus arguments every model's `train` verb takes."""
    parser.add_argument("corpus", nargs="+", type=Path, help="labelled corpus files or folders (tests/corpus format)")
    parser.add_argument("--dev-only", nargs="*", type=Path, default=[], metavar="CORPUS",
                        help="corpora of which only the dev half (odd ids) is used: their test half stays unseen")
    parser.add_argument("--output", "-o", type=Path, help="model file to write (default: standard output)")


def write_model(model: dict[str, Any], output: Path | None) -> None:
    """A model as canonical JSON (the same examples give the same bytes)."""
    text = json.dumps(model, sort_keys=True, separators=(",", ":")) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def register_training(sub: Any, command: str, about: str, train_help: str,
                      run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """`apology-worker COMMAND train CORPUS... [--dev-only CORPUS...] [--output FILE]`; the `train` parser,
    for options of one command's own."""
    verbs = sub.add_parser(command, help=about).add_subparsers(dest="verb", required=True, metavar="VERB")
    t: argparse.ArgumentParser = verbs.add_parser("train", help=train_help)
    add_training_arguments(t)
    t.set_defaults(run=run)
    return t


def register(sub: Any) -> None:
    register_training(sub, "incidents", "fit the incident model to labelled conversations",
                      "write the model as JSON (the shipped one: scripts/train-incident-model)", run)


def run(args: argparse.Namespace) -> int:
    items, trained_on = training_items(args.corpus, args.dev_only)
    for item in items:
        if item.labels.get("incident") not in KINDS:
            raise CorpusError(f"{item.where}: item {item.id}: incident label {item.labels.get('incident')!r} is "
                              f"not one of {', '.join(sorted(KINDS))}")
    examples = [incident_example(item) for item in items]
    model = train(examples, trained_on=trained_on)
    write_model(model, args.output)
    counts = ", ".join(f"{k} {n}" for k, n in model["examples"].items())
    print(f"incident model: {len(examples)} conversations ({counts}), {len(model['features'])} features"
          + (f" -> {args.output}" if args.output else ""), file=sys.stderr)
    return 0
