"""Invented ticket histories for report tests and demos: teams, agents, weeks and customer follow-ups.

Everything is made up; a seeded random generator makes the same file every time. Replies follow a few
styles (no apology, generic, specific with empathy or responsibility, blame) whose mix differs by team and
drifts over the weeks, and the customer's follow-up is calmer after some styles than others, so every part
of the report has something to show.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from worker.engine import Policy, review_history
from worker.models import TicketHistory

START = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)  # a Monday

OPENERS = {
    "returns": ["My {item} arrived broken and I need a replacement.",
                "THIS IS THE SECOND TIME the {item} came damaged!!! Unacceptable.",
                "The {item} I ordered doesn't work at all. Really disappointed."],
    "billing": ["You charged my card twice for order {order}. Please reverse it.",
                "I was billed after cancelling my subscription. This is the third time I'm writing!!",
                "Why is there an extra fee on my invoice for order {order}?"],
    "delivery": ["My parcel for order {order} is a week late. Where is it?",
                 "Still no delivery after 10 days!!! I'm furious, nobody answers.",
                 "The tracking for order {order} hasn't moved since Monday."],
    "tech": ["I can't sign in to my account since the update.",
             "The app keeps crashing and I've lost my data AGAIN. This is ridiculous.",
             "Password reset emails never arrive."],
}
PROBLEMS = {"returns": "the broken {item}", "billing": "the double charge", "delivery": "the late delivery",
            "tech": "the sign-in problem"}
REPLIES = {
    "none": "Hi {name},\n\nI've arranged a replacement {item}; it ships tomorrow by tracked delivery."
            "\n\nBest,\n{agent}",
    "generic": "Hi {name},\n\nSorry for any inconvenience. Please send us your order number and we will look "
               "into it.\n\nRegards,\n{agent}",
    "empathy": "Hi {name},\n\nI'm sorry about {problem}. I understand how frustrating that is. I've sent a "
               "replacement by express delivery today.\n\nBest,\n{agent}",
    "responsibility": "Hi {name},\n\nI'm sorry about {problem}, that was our mistake. I've refunded you in "
                      "full and passed this to the team so it doesn't happen again.\n\nBest,\n{agent}",
    "blame": "Hello,\n\nAs I already told you, you should have read the instructions before contacting us. "
             "<b>Nothing</b> we can do.\n\n{agent}",
}
FOLLOW_UPS = {
    "calm": ["Thank you so much, that's perfect!", "Great, thanks for sorting it so quickly.",
             "Appreciate the help, all good now."],
    "neutral": ["OK. I'll wait then.", "Order number is {order}.", "Fine, let me know."],
    "angry": ["This is ridiculous!!! You still haven't fixed anything. I want a manager NOW.",
              "Useless. I've waited two weeks and this is the answer?? Terrible service.",
              "Are you serious? This is the worst support I have ever had!!!"],
}
# P(calm, neutral, angry) of the customer's next message after each reply style.
REACTIONS = {"none": (0.45, 0.4, 0.15), "generic": (0.15, 0.45, 0.4), "empathy": (0.55, 0.35, 0.1),
             "responsibility": (0.6, 0.3, 0.1), "blame": (0.03, 0.17, 0.8)}
TEAM_STYLE = {  # style weights per team at week 0; generic apologies fade over the weeks in "returns"
    "returns": {"none": 2, "generic": 5, "empathy": 2, "responsibility": 1, "blame": 1},
    "billing": {"none": 2, "generic": 2, "empathy": 2, "responsibility": 3, "blame": 0.5},
    "delivery": {"none": 3, "generic": 3, "empathy": 3, "responsibility": 1, "blame": 1.5},
    "tech": {"none": 4, "generic": 2, "empathy": 1, "responsibility": 1, "blame": 2},
}
AGENTS = {"returns": ["Sam", "Lee", "Ana"], "billing": ["Priya", "Tom"], "delivery": ["Jo", "Mo", "Kit"],
          "tech": ["Ravi", "Eve"]}
ITEMS = ["blender", "kettle", "jacket", "router", "lamp"]
NAMES = ["Dana", "Raj", "Chris", "Marta", "Kim", "Alex", "Noor", "Ivan"]


def generate(tickets: int = 400, weeks: int = 8, seed: int = 7) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)
    for t in range(tickets):
        team = rng.choice(list(TEAM_STYLE))
        week = t * weeks // tickets
        when = START + timedelta(days=7 * week + rng.randrange(5), hours=rng.randrange(8))
        name, item, order = rng.choice(NAMES), rng.choice(ITEMS), f"#{40000 + t}"
        agent = rng.choice(AGENTS[team])
        values = {"name": name, "item": item, "order": order, "agent": agent,
                  "problem": PROBLEMS[team].format(item=item)}
        messages: list[dict[str, object]] = [_msg(f"{t}-c1", "customer", f"u-{t}", name,
                                                  rng.choice(OPENERS[team]).format(**values), when)]
        for turn in range(rng.choice((1, 1, 2))):
            weights = dict(TEAM_STYLE[team])
            if team == "returns":
                weights["generic"] = max(0.5, weights["generic"] - 0.6 * week)
                weights["empathy"] += 0.4 * week
            style = rng.choices(list(weights), list(weights.values()))[0]
            when += timedelta(minutes=rng.randrange(10, 300))
            fmt = "html" if style == "blame" else "text"
            messages.append(_msg(f"{t}-a{turn}", "agent", f"agent-{agent.lower()}", agent,
                                 REPLIES[style].format(**values), when, fmt))
            if rng.random() < 0.8:
                mood = rng.choices(list(FOLLOW_UPS), REACTIONS[style])[0]
                when += timedelta(minutes=rng.randrange(5, 600))
                messages.append(_msg(f"{t}-c{turn + 2}", "customer", f"u-{t}", name,
                                     rng.choice(FOLLOW_UPS[mood]).format(**values), when))
        yield {"ticket": {"id": f"T-{1000 + t}", "subject": f"About {item}", "channel": "email", "tags": [],
                          "team": team}, "messages": messages}


def _msg(mid: str, role: str, author: str, name: str, body: str, when: datetime,
         fmt: str = "text") -> dict[str, object]:
    if fmt == "html":
        body = "".join(f"<p>{line}</p>" for line in body.split("\n\n"))
    return {"id": mid, "role": role, "author": {"id": author, "name": name}, "body": body, "format": fmt,
            "public": True, "created_at": when.isoformat().replace("+00:00", "Z")}


def write_history(path: Path, tickets: int = 400, weeks: int = 8, seed: int = 7) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for line in generate(tickets, weeks, seed):
            fh.write(json.dumps(line) + "\n")
    return path


def write_verdicts(history: Path, policy: Policy, path: Path) -> Path:
    """What `apology-worker review --format jsonl` prints for the history, written in process."""
    with history.open(encoding="utf-8") as src, path.open("w", encoding="utf-8") as out:
        for line in src:
            for verdict in review_history(TicketHistory.model_validate_json(line), policy):
                out.write(verdict.to_json() + "\n")
    return path
