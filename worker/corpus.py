"""Labelled corpora (tests/corpus/README.md): conversations whose last message is an agent reply, with the
labels a careful reviewer gave it. Read by `bench/accuracy.py` to score the engine and by
`apology-worker incidents train` and `signals train` (and `bench/incident_cv.py`, `bench/reply_model_cv.py`)
to fit the incident and reply models."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from worker.engine.review import context_messages
from worker.engine.text import Prepared, prepare
from worker.errors import ApologyWorkerError
from worker.history import describe_validation_error
from worker.models import TicketHistory


class CorpusError(ApologyWorkerError):
    """A labelled corpus line that cannot be used; the message names file and line."""


@dataclass
class Item:
    id: str
    history: TicketHistory
    labels: dict[str, Any]
    where: str = ""  # file:line, for messages about the item


def load_corpus(folder: Path) -> Iterator[Item]:
    """Every item of the `*.jsonl` files directly in `folder` (or of `folder` itself, a file)."""
    paths = [folder] if folder.is_file() else sorted(folder.glob("*.jsonl"))
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                yield Item(data.get("id", f"{path.name}:{n}"), TicketHistory.model_validate(data), data["labels"],
                           f"{path}:{n}")
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{n}: not valid JSON: {exc.msg}") from None
            except ValidationError as exc:
                raise CorpusError(f"{path}:{n}: {describe_validation_error(exc)}") from None
            except (KeyError, TypeError, AttributeError):
                raise CorpusError(f"{path}:{n}: an item needs a `labels` object") from None


def labelled_folders(root: Path) -> list[Path]:
    """A corpus root and every set folder under it (tests/corpus and its holdoutN/), root first, then by name:
    what "every labelled reply" means to the language test and to bench/engine.py's first-sight pass."""
    return [root, *sorted(p for p in root.iterdir() if p.is_dir())]


def split_folders(root: Path) -> list[Path]:
    """The held-out sets split into a dev and a test half (`holdoutN/` from the third on), in number order:
    every later set joins them by being added, with no list to edit."""
    numbered = [(int(p.name[7:]), p) for p in root.glob("holdout*") if p.is_dir() and p.name[7:].isdigit()]
    return [p for n, p in sorted(numbered) if n >= 3]


def in_split(item_id: str, split: str) -> bool:
    """Held-out sets are split by the number in their ids: odd ones are `dev` (errors may be read to tune
    the engine), even ones `test` (only ever scored)."""
    digits = "".join(c for c in item_id.rsplit("-", 1)[-1] if c.isdigit())
    return (int(digits or 0) % 2 == 1) == (split == "dev")


def incident_example(item: Item) -> tuple[list[str], str]:
    """What the incident model learns from an item: the customer messages the reply is read against, as the
    engine sees them (quotes and signatures removed), and the labelled kind."""
    earlier = context_messages(item.history.messages[:-1])
    return [prepare(m.body, m.format).text for m in earlier], str(item.labels["incident"])


def reply_example(item: Item) -> tuple[Prepared, dict[str, Any]]:
    """What the reply models learn from an item: the reply as the engine sees it, and its labels."""
    reply = item.history.messages[-1]
    return prepare(reply.body, reply.format), item.labels


def training_items(corpora: Sequence[Path], dev_only: Sequence[Path] = ()) -> tuple[list[Item], list[str]]:
    """The items a model is fitted to: all of `corpora`, and the dev half (odd ids) of `dev_only`, whose
    test half stays unseen; with the sources named as a model's `trained_on` records them."""
    sources = [(path, None) for path in corpora] + [(path, "dev") for path in dev_only]
    items = [item for path, split in sources for item in load_corpus(path) if split is None or in_split(item.id, split)]
    return items, [str(path) + (" (dev half)" if split else "") for path, split in sources]
