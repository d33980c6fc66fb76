"""The reply models: trained reproducibly, wired through the policy, and only adding what the lexicon missed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from worker.cli import main
from worker.corpus import in_split, load_corpus, split_folders
from worker.engine import load_policy, review_reply
from worker.engine.signals.reply_model import ReplyModel, train
from worker.engine.text import Prepared, prepare
from worker.errors import PolicyError
from worker.models import Message, Ticket

SHIPPED = ROOT / "config" / "reply-model.json"
# Replies about a made-up practice the shipped lexicon has no phrase for: only a model can learn it.
PLEDGE = "From the next moon onwards every gryphon handler pledges a double feather audit before each flight"
PLAIN = "Your parcel left our depot this morning and the courier will bring it to the door before noon today"


def _labels(prevention: bool) -> dict[str, Any]:
    return {"solution": True, "prevention": prevention, "blame": False}


def _examples() -> list[tuple[Prepared, dict[str, Any]]]:
    return ([(prepare(f"{PLEDGE} number {n}."), _labels(True)) for n in range(8)]
            + [(prepare(f"{PLAIN} number {n}."), _labels(False)) for n in range(8)]
            + [(prepare("No fix here at all, only words about the weather and the sea today"),
                {"solution": False, "prevention": False, "blame": False})]
            + [(prepare(f"You should have read the terms before you booked trip number {n} with us"),
                {"solution": False, "prevention": False, "blame": True}) for n in range(4)])


def _model(**change: Any) -> dict[str, Any]:
    data = train(_examples())
    for model in data["signals"].values():
        model.update(change)
    return data


def test_the_shipped_models_are_what_the_training_script_writes(tmp_path: Path) -> None:
    script = (ROOT / "scripts" / "train-reply-model").read_text()
    args = script.split("signals train", 1)[1].split("--output")[0].replace("\\\n", " ").split()
    out = tmp_path / "model.json"
    assert main(["signals", "train", *args, "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(SHIPPED.read_text())


def test_the_model_adds_a_signal_only_when_the_lexicon_found_none() -> None:
    model = ReplyModel.from_data(_model(min_features=1))
    doc = prepare(f"Thanks for your patience. {PLEDGE}.")
    [span] = model.add("prevention", doc, [], {})
    assert doc.text[span[0]:span[1]] == f"{PLEDGE}."  # the sentence that made it, not the thanks
    assert model.add("prevention", doc, [(0, 6)], {}) == [(0, 6)]  # the lexicon's reading stands
    assert model.add("prevention", prepare(f"{PLAIN}."), [], {}) == []


def test_an_unsure_or_terse_model_adds_nothing() -> None:
    doc = prepare(f"{PLEDGE}. " * 40)  # evidence enough to round any probability to 1.0: 1.0 still means never
    assert ReplyModel.from_data(_model(present_at=1.0)).add("prevention", doc, [], {}) == []
    assert ReplyModel.from_data(_model(min_features=500)).add("prevention", doc, [], {}) == []


def test_a_question_is_no_solution_whatever_the_model_says() -> None:
    ask = "Could you send us the photos of the box and the label please"
    data = train([(prepare(f"{ask}?"), {"solution": True, "prevention": False}),
                  (prepare(f"{ask}."), {"solution": True, "prevention": False}),
                  (prepare("Thanks for the lovely message, we love it"), {"solution": False, "prevention": False}),
                  (prepare(PLEDGE), {"solution": False, "prevention": True})] * 6, signals=("solution", "prevention"))
    for model in data["signals"].values():
        model.update(min_features=1, present_at=0.5)
    model = ReplyModel.from_data(data)
    assert model.add("solution", prepare(f"{ask}."), [], {})  # an instruction is one
    # Neither the question nor the thanks around it: "Thanks!" is no solution however the reply reads.
    assert model.add("solution", prepare(f"{ask}? Thanks!"), [], {}) == []
    assert model.add("solution", prepare(f'He asked "{ask}?")'), [], {}) == []


@pytest.mark.parametrize("change, error", [
    ({"format": 9}, "format"),
    ({"signals": {"empathy": {}}}, "unknown signals"),
    ({"signals": {}}, "signals"),
])
def test_malformed_models_are_refused(change: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ReplyModel.from_data({**_model(), **change})


@pytest.mark.parametrize("change, error", [({"kinds": ["no", "yes"]}, "kinds"), ({"present_at": 0}, "present_at"),
                                           ({"features": None}, "malformed"), ({"min_features": -1}, "min_features"),
                                           ({"features": {"a": [0.0]}}, "two values"),
                                           ({"features": {"a": [0.0, float("inf")]}}, "finite")])
def test_a_malformed_signal_model_is_refused(change: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ReplyModel.from_data(_model(**change))


def _policy(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text(f"name: team\nextends: liability-aware\nlexicon:\n  reply_model: {model}\n")
    return path


def _prevention(policy_path: Path) -> bool:
    reply = Message(id="a1", role="agent", body=f"I'm sorry the flight was late. {PLEDGE}.")
    earlier = [Message(id="c1", role="customer", body="The flight was late again.")]
    return review_reply(reply, earlier, Ticket(id="t"), load_policy(policy_path)).signals.prevention


def test_a_policy_names_its_own_models_or_none(tmp_path: Path) -> None:
    (tmp_path / "gryphon.json").write_text(json.dumps(_model(min_features=1)))
    assert _prevention(_policy(tmp_path, "gryphon.json"))  # beside the policy file
    assert not _prevention(_policy(tmp_path, "null"))
    assert load_policy(_policy(tmp_path, "null")).lexicon.reply_model is None
    assert load_policy(_policy(tmp_path, "gryphon.json")).version != load_policy(_policy(tmp_path, "null")).version


@pytest.mark.parametrize("reply", ["As explained, it was not your fault; our courier left it in the rain.",
                                   "I'm not saying you should have read the terms."])
def test_the_blame_model_does_not_overrule_a_phrase_the_reply_negates(reply: str) -> None:
    """The phrases read "not your fault" as a reassurance; the model, which sees "your fault", must not
    turn it into an accusation."""
    earlier = [Message(id="c1", role="customer", body="The parcel was soaked when it came.")]
    assert not review_reply(Message(id="a1", role="agent", body=reply), earlier, Ticket(id="t"),
                            load_policy(None)).signals.blame


@pytest.mark.parametrize("reply", ["Your return label is in your order confirmation email.",
                                   "There are picnic areas by the lake and next to the play barn.",
                                   "We have chased them twice and they have not yet sent the funds."])
def test_a_one_line_reply_is_not_blame_on_its_common_words(reply: str) -> None:
    """A linear model over words scored a one-line reply on its few common words ("in", "the", "it" weigh
    towards blame in long replies) without the content words that pull a long reply down: each of these,
    a sentence of a non-blame reply, read as blame alone. The reply's length is now a feature of its own."""
    earlier = [Message(id="c1", role="customer", body="This is ridiculous, I want this sorted now.")]
    assert not review_reply(Message(id="a1", role="agent", body=reply), earlier, Ticket(id="t"),
                            load_policy(None)).signals.blame


def test_a_policy_keeps_one_signal_to_its_phrases(tmp_path: Path) -> None:
    """`reply_model_signals: {blame: false}`: blame findings then always quote a phrase a lead wrote."""
    team = tmp_path / "team.yaml"
    team.write_text("name: team\nextends: liability-aware\nlexicon:\n  reply_model_signals: {blame: false}\n")
    child = tmp_path / "child.yaml"
    child.write_text("name: child\nextends: team.yaml\nlexicon:\n  reply_model_signals: {blame: true}\n")
    assert sorted(load_policy(team).lexicon.reply_model.signals) == ["prevention", "solution"]  # type: ignore[union-attr]
    assert sorted(load_policy(child).lexicon.reply_model.signals) == ["blame", "prevention", "solution"]  # type: ignore[union-attr]
    reply = Message(id="a1", role="agent", body="The donate page is working fine. That message comes from your bank "
                    "declining the payment, so you'd need to take that up with them.")
    earlier = [Message(id="c1", role="customer", body="Your donate page is broken, it won't take my card.")]
    said = {path.name: review_reply(reply, earlier, Ticket(id="t"), load_policy(path)).signals.blame
            for path in (team, child)}
    assert said == {"team.yaml": False, "child.yaml": True}


@pytest.mark.parametrize("switches, error", [("[blame]", "must map signal names"),
                                             ("{empathy: false}", "empathy: unknown signal"),
                                             ("{blame: maybe}", "blame: must be true or false")])
def test_a_bad_model_switch_names_file_line_and_key(tmp_path: Path, switches: str, error: str) -> None:
    team = tmp_path / "team.yaml"
    team.write_text(f"name: team\nextends: liability-aware\nlexicon:\n  reply_model_signals: {switches}\n")
    with pytest.raises(PolicyError, match=rf"team\.yaml:4: lexicon\.reply_model_signals.*{error}"):
        load_policy(team)


def test_a_missing_or_malformed_model_fails_at_load_naming_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"team\.yaml:4: lexicon\.reply_model: .*nope\.json"):
        load_policy(_policy(tmp_path, "nope.json"))
    (tmp_path / "bad.json").write_text(json.dumps({"format": 1, "signals": {"empathy": {}}}))
    with pytest.raises(PolicyError, match=r"lexicon\.reply_model: .*unknown signals"):
        load_policy(_policy(tmp_path, "bad.json"))


def test_the_models_find_more_on_replies_nothing_was_tuned_on_and_blame_stays_as_precise(tmp_path: Path) -> None:
    """The test halves of the held-out sets are in no model's training data and were never tuned on: all of
    them (3,620 replies in session 15), as three alone (260) swing with one reply either way. Blame findings
    accuse an agent, so its model must not buy recall with precision."""
    items = [i for path in split_folders(ROOT / "tests" / "corpus") for i in load_corpus(path)
             if in_split(i.id, "test")]
    assert len(items) >= 3620

    def read(policy_path: Path | None) -> dict[str, list[tuple[bool, bool]]]:
        policy = load_policy(policy_path)
        out: dict[str, list[tuple[bool, bool]]] = {"prevention": [], "blame": []}
        for i in items:
            signals = review_reply(i.history.messages[-1], i.history.messages[:-1], i.history.ticket,
                                   policy).signals
            for name, pairs in out.items():
                pairs.append((bool(getattr(signals, name)), bool(i.labels[name])))
        return out

    def precision(pairs: list[tuple[bool, bool]]) -> float:
        return sum(p and g for p, g in pairs) / sum(p for p, _ in pairs)

    def right(pairs: list[tuple[bool, bool]]) -> int:
        return sum(p == g for p, g in pairs)

    def found(pairs: list[tuple[bool, bool]]) -> int:
        return sum(p and g for p, g in pairs)

    with_models, lexicon_only = read(None), read(_policy(tmp_path, "null"))
    assert right(with_models["prevention"]) > right(lexicon_only["prevention"])
    assert found(with_models["blame"]) >= found(lexicon_only["blame"]) + 30  # 288 -> 338 of 453 at session 15's end
    assert precision(with_models["blame"]) >= precision(lexicon_only["blame"]) - 0.02


def test_blame_is_learned_by_logistic_regression_the_same_way_every_time() -> None:
    """Python's string hashing orders a set's features differently in every process; the weights must not
    depend on it (the shipped file is compared with the training script's output)."""
    script = ("import json, sys; from tests.unit.test_reply_model import _examples; "
              "from worker.engine.signals.reply_model import train; json.dump(train(_examples()), sys.stdout)")
    runs = {seed: subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert runs["1"] == runs["2"]
    first, again = train(_examples()), train(list(reversed(_examples())))
    blame = first["signals"]["blame"]
    assert blame["method"] == "logistic" and first["signals"]["prevention"]["method"] == "naive_bayes"
    assert train(_examples()) == first
    assert again["signals"]["blame"]["features"].keys() == blame["features"].keys()
    # Words only blame replies hold weigh for it, words only the others hold against it.
    assert blame["features"]["should have"][1] > 0 > blame["features"]["parcel"][1]
    model = ReplyModel.from_data(_model())
    doc = prepare("Thanks for writing in. You should have read the terms before you booked the trip with us.")
    [span] = model.add("blame", doc, [], {})
    assert doc.text[span[0]:span[1]].startswith("You should have read the terms")
    assert model.add("blame", prepare(f"{PLAIN}."), [], {}) == []


def test_training_needs_both_labels_on_every_reply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = json.loads((ROOT / "tests" / "corpus" / "email.jsonl").read_text(encoding="utf-8").splitlines()[0])
    del line["labels"]["prevention"]
    corpus = tmp_path / "team.jsonl"
    corpus.write_text(json.dumps(line) + "\n", encoding="utf-8")
    assert main(["signals", "train", str(corpus), "--output", str(tmp_path / "m.json")]) == 2
    assert "team.jsonl:1: item email-001: labels need true or false for prevention" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_a_team_fits_only_the_models_its_labels_support(tmp_path: Path) -> None:
    """A team whose corpus labels no blame (or has none) still fits its solution and prevention models."""
    lines = (ROOT / "tests" / "corpus" / "email.jsonl").read_text(encoding="utf-8").splitlines()
    corpus = tmp_path / "team.jsonl"
    corpus.write_text("".join(json.dumps({**item, "labels": {k: v for k, v in item["labels"].items() if k != "blame"}})
                              + "\n" for item in map(json.loads, lines)), encoding="utf-8")
    out = tmp_path / "m.json"
    assert main(["signals", "train", str(corpus), "--output", str(out)]) == 2  # every model needs its labels
    assert main(["signals", "train", str(corpus), "--signals", "solution,prevention", "--output", str(out)]) == 0
    assert sorted(json.loads(out.read_text())["signals"]) == ["prevention", "solution"]
    with pytest.raises(SystemExit):
        main(["signals", "train", str(corpus), "--signals", "empathy"])
