"""`apology-worker incidents train CORPUS... [--dev-only CORPUS...] [--output FILE]`: fit the incident model.

The model (worker.engine.signals.incident_model) learns which words customers use for each incident kind
from labelled conversations; a team that labels its own tickets can fit one to its own vocabulary and name
it in its policy (`lexicon: {incident: {model: FILE}}`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from worker.corpus import CorpusError, in_split, incident_example, load_corpus
from worker.engine.signals.incident_model import KINDS, train


def register(sub: Any) -> None:
    p = sub.add_parser("incidents", help="fit the incident model to labelled conversations")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    t = verbs.add_parser("train", help="write the model as JSON (the shipped one: scripts/train-incident-model)")
    t.add_argument("corpus", nargs="+", type=Path, help="labelled corpus files or folders (tests/corpus format)")
    t.add_argument("--dev-only", nargs="*", type=Path, default=[], metavar="CORPUS",
                   help="corpora of which only the dev half (odd ids) is used: their test half stays unseen")
    t.add_argument("--output", "-o", type=Path, help="model file to write (default: standard output)")
    t.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    sources = [(path, None) for path in args.corpus] + [(path, "dev") for path in args.dev_only]
    examples = []
    for path, split in sources:
        for item in load_corpus(path):
            if split is None or in_split(item.id, split):
                if item.labels.get("incident") not in KINDS:
                    raise CorpusError(f"{path}: item {item.id}: incident label {item.labels.get('incident')!r} is "
                                      f"not one of {', '.join(sorted(KINDS))}")
                examples.append(incident_example(item))
    model = train(examples, trained_on=[str(p) + (' (dev half)' if split else '') for p, split in sources])
    text = json.dumps(model, sort_keys=True, separators=(",", ":")) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    counts = ", ".join(f"{k} {n}" for k, n in model["examples"].items())
    print(f"incident model: {len(examples)} conversations ({counts}), {len(model['features'])} features"
          + (f" -> {args.output}" if args.output else ""), file=sys.stderr)
    return 0
