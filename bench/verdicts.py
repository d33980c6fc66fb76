"""Every verdict the engine gives on a fixed input, as canonical JSON lines: the equality check for speed work.

    python bench/verdicts.py [--out verdicts.jsonl] [--varied 20000]

For each preset in config/presets/ it judges every conversation of every corpus under tests/corpus (all
folders) and the first `--varied` replies of bench/engine.py's varied stream (same input and seed). Write
the output before and after a change that must not alter behaviour, and compare the files byte for byte
(the digest is printed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.accuracy import load_corpus  # noqa: E402
from bench.engine import varied  # noqa: E402
from worker.engine import load_policy, review_history  # noqa: E402
from worker.models import TicketHistory  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"
PRESETS = ROOT / "config" / "presets"


def corpus_histories() -> list[tuple[str, TicketHistory]]:
    """Every labelled conversation under tests/corpus, subfolders included, with a stable name."""
    folders = sorted({path.parent for path in CORPUS.rglob("*.jsonl")})
    return [(f"{folder.relative_to(CORPUS)}/{item.id}", item.history)
            for folder in folders for item in load_corpus(folder)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("verdicts.jsonl"))
    ap.add_argument("--varied", type=int, default=20_000, help="replies of the varied stream per preset")
    args = ap.parse_args()
    corpus = corpus_histories()
    bench_input = [item.history for item in load_corpus(CORPUS)]  # what bench/engine.py varies
    stream = [(f"varied/{h.ticket.id}", h) for h in varied(bench_input, args.varied)]
    digest = hashlib.sha256()
    count = 0
    with args.out.open("w", encoding="utf-8") as out:
        for preset in sorted(PRESETS.glob("*.yaml")):
            policy = load_policy(preset.stem)
            for name, history in [*corpus, *stream]:
                for verdict in review_history(history, policy):
                    line = json.dumps({"preset": preset.stem, "source": name,
                                       "verdict": verdict.model_dump(mode="json")},
                                      sort_keys=True, ensure_ascii=False) + "\n"
                    out.write(line)
                    digest.update(line.encode("utf-8"))
                    count += 1
    print(f"{count} verdicts -> {args.out}  sha256 {digest.hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
