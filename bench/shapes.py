"""Does the engine stay linear on pathological mail? Times `review` on odd shapes at size n and 4n.

    python bench/shapes.py [--n 200]

Real traffic holds long `>`-quoted histories, walls of links, emoji and blank lines; a regular expression
that backtracks on one of them turns a reply into minutes of CPU and a stuck worker (session 6 found three).
For each shape, in the reply and in the customer's message, this prints the time at n and 4n and their
ratio (about 4 when linear); a ratio above 8 on a shape taking over 50 ms is flagged, and the exit status
is 1 if any is.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.engine import Policy, load_policy, review_history  # noqa: E402
from worker.models import TicketHistory  # noqa: E402

SHAPES: dict[str, Callable[[int], str]] = {
    "quoted lines": lambda n: "\n".join(["> quoted sorry"] * n),
    "blank lines": lambda n: "Sorry." + "\n" * n + "x",
    "space lines": lambda n: "Sorry.\n" + "   \n" * n + "Regards",
    "regards lines": lambda n: "\n".join(["Kind regards"] * n),
    "spaces": lambda n: "sorry" + " " * (n * 10) + "sorry",
    "spaced words": lambda n: "you" + " " * (n * 10) + "should have",
    "spaced name": lambda n: "Sorry Dana" + " " * (n * 10) + "- ok",
    "words": lambda n: " ".join(["word"] * (n * 3)),
    "sorry words": lambda n: " ".join(["sorry"] * (n * 3)),
    "you words": lambda n: " ".join(["you should have"] * n),
    "long sentence": lambda n: "We are sorry " + "and " * (n * 3) + "done.",
    "dots": lambda n: "." * (n * 10),
    "bangs": lambda n: "!" * (n * 10),
    "qmarks": lambda n: "sorry?" * (n * 2),
    "dashes": lambda n: "-" * (n * 10),
    "bullets": lambda n: "\n".join(["- item sorry"] * n),
    "numbered": lambda n: "\n".join([f"{i}. item" for i in range(n)]),
    "on wrote": lambda n: "\n".join(["On Monday Bob wrote:"] * n),
    "from sent": lambda n: "\n".join(["From: a", "Sent: b"] * n),
    "quotes": lambda n: '"' * (n * 10),
    "quote pairs": lambda n: ' "sorry" ' * n,
    "caps": lambda n: "I AM ANGRY " * n,
    "emoji": lambda n: "\U0001F644" * (n * 5),
    "html divs": lambda n: "<div>" * n + "sorry" + "</div>" * n,
    "html p": lambda n: "<p>sorry</p>" * n,
    "html quote": lambda n: '<blockquote class="gmail_quote">' * n + "x" + "</blockquote>" * n,
    # A quoted thread in one HTML block: blanked, it is one long line of spaces after the reply.
    "html long quote": lambda n: "<p>Sorry about that, Dana.</p><div class='gmail_quote'>" + "word " * (n * 10)
    + "</div>",
    # Bare blockquotes, plain and of steps, each followed by words: every one is looked at (session 17).
    "html bare quotes": lambda n: "<blockquote>ab cd</blockquote>" * (n * 5) + "<p>one two three four</p>",
    "html step quotes": lambda n: "<blockquote>1. ab cd</blockquote><p>one two three</p>" * (n * 5),
    "html entities": lambda n: "&amp;" * (n * 5),
    "urls": lambda n: " ".join(["https://example.com/a/b?c=d"] * n),
    "apostrophes": lambda n: "'" * (n * 10),
    "commas": lambda n: "sorry," * (n * 3),
    "mixed sig": lambda n: "Thanks,\n" * n,
    "newline words": lambda n: "\n".join(["sorry"] * n),
}


def run(policy: Policy, shape: str, n: int, side: str) -> float:
    body = SHAPES[shape](n)
    fmt = "html" if shape.startswith("html") else "text"
    cust, agent = ("help", body) if side == "agent" else (body, "Sorry about that.")
    h = TicketHistory.model_validate({"ticket": {"id": "t"}, "messages": [
        {"id": "c", "role": "customer", "body": cust, "format": fmt if side == "customer" else "text"},
        {"id": "a", "role": "agent", "body": agent, "format": fmt if side == "agent" else "text"}]})
    start = time.perf_counter()
    list(review_history(h, policy))
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="the smaller size (the larger is 4n)")
    args = ap.parse_args()
    policy = load_policy(None)
    run(policy, "words", 10, "agent")  # load and warm the engine outside the timings
    flagged = 0
    for side in ("agent", "customer"):
        for shape in SHAPES:
            small, large = run(policy, shape, args.n, side), run(policy, shape, args.n * 4, side)
            ratio = large / max(small, 1e-4)
            bad = large > 0.05 and ratio > 8
            flagged += bad
            print(f"{side:8s} {shape:15s} {len(SHAPES[shape](args.n * 4)):7d} chars  {small * 1e3:8.1f} ms -> "
                  f"{large * 1e3:8.1f} ms  x{ratio:5.1f}{'  <-- super-linear' if bad else ''}", flush=True)
    print(f"{flagged} super-linear shape(s)")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
