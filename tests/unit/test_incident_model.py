"""The incident model: trained reproducibly, wired through the policy, and only a confident second opinion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from worker.cli import main
from worker.corpus import in_split, load_corpus
from worker.engine import load_policy, review_reply
from worker.engine.signals.incident_model import IncidentModel, features, train
from worker.errors import PolicyError
from worker.models import Message, Ticket

SHIPPED = ROOT / "config" / "incident-model.json"
FLUX = [(["my flux capacitor hums and sparks"], "defect")] * 6 + [(["my invoice shows a double charge"], "billing")] * 6


def test_the_shipped_model_is_what_the_training_script_writes(tmp_path: Path) -> None:
    # The script's own arguments, so a corpus change without retraining fails here rather than drifting.
    script = (ROOT / "scripts" / "train-incident-model").read_text()
    args = script.split("incidents train", 1)[1].split("--output")[0].replace("\\\n", " ").split()
    out = tmp_path / "model.json"
    assert main(["incidents", "train", *args, "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(SHIPPED.read_text())
    assert "tests/corpus/holdout3 (dev half)" in json.loads(SHIPPED.read_text())["trained_on"]


def test_features_are_words_and_word_pairs_with_straight_apostrophes() -> None:
    assert features("The app CAN’T load") == {"the", "app", "can't", "load", "the app", "app can't", "can't load"}


def test_the_model_overrules_the_lexicon_only_when_confident() -> None:
    model = IncidentModel.from_data(train(FLUX, min_count=1, min_features=1))
    sure = [model.evidence(features("the flux capacitor hums"))]
    assert model.overrule("other", sure) == "defect"
    unsure = [model.evidence(features("hello there"))]  # no known word: the prior alone, 50/50
    assert model.overrule("other", unsure) == "other"
    terse = IncidentModel.from_data({**train(FLUX, min_count=1, min_features=1), "min_features": 50})
    assert terse.overrule("other", sure) == "other"  # too few known words to outvote the lexicon
    assert model.overrule("other", []) == "other"
    strict = IncidentModel.from_data({**train(FLUX, min_count=1, min_features=1), "override_at": 1.0})
    assert strict.overrule("other", sure) == "other"
    # A kind a strong lexicon pattern named needs `override_cued_at`.
    wary = IncidentModel.from_data({**train(FLUX, min_count=1, min_features=1), "override_cued_at": 1.0})
    assert wary.overrule("billing", sure) == "defect"
    assert wary.overrule("billing", sure, cued=True) == "billing"


def test_the_latest_message_weighs_more_than_earlier_ones() -> None:
    model = IncidentModel.from_data(train(FLUX, min_count=1, min_features=1))
    older, newer = model.evidence(features("flux capacitor sparks")), model.evidence(features("double charge"))
    assert model.overrule("other", [older, newer]) == "billing"
    assert model.overrule("other", [newer, older]) == "defect"


@pytest.mark.parametrize("change, error", [
    ({"format": 9}, "format"),
    ({"override_at": 0}, "override_at"),
    ({"prior": [0.0]}, "one value per kind"),
    ({"kinds": ["defect", "biling"]}, "unknown kinds"),
])
def test_a_malformed_model_is_refused(change: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        IncidentModel.from_data({**train(FLUX, min_count=1, min_features=1), **change})


def _policy(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text(f"name: team\nextends: liability-aware\nlexicon:\n  incident:\n    model: {model}\n")
    return path


def _incident(policy_path: Path, customer: str) -> str:
    policy = load_policy(policy_path)
    earlier = [Message(id="c1", role="customer", body=customer)]
    reply = Message(id="a1", role="agent", body="Thanks for letting us know, we are looking at it now.")
    return review_reply(reply, earlier, Ticket(id="t"), policy).context.incident


def test_a_policy_names_its_own_model_or_none(tmp_path: Path) -> None:
    model_file = tmp_path / "flux.json"
    model_file.write_text(json.dumps(train(FLUX, min_count=1, min_features=1)))
    words = "The flux capacitor hums."
    assert _incident(_policy(tmp_path, str(model_file)), words) == "defect"
    assert _incident(_policy(tmp_path, "null"), words) != "defect"
    assert load_policy(_policy(tmp_path, "null")).lexicon.incident_model is None
    assert load_policy(_policy(tmp_path, str(model_file))).version != load_policy(_policy(tmp_path, "null")).version
    assert _incident(_policy(tmp_path, "flux.json"), words) == "defect"  # beside the policy file


def test_a_closed_matter_stays_closed_unless_the_model_is_certain(tmp_path: Path) -> None:
    model_file = tmp_path / "flux.json"
    model_file.write_text(json.dumps({**train(FLUX, min_count=1, min_features=1), "override_cued_at": 1.0}))
    policy = load_policy(_policy(tmp_path, str(model_file)))
    earlier = [Message(id="c1", role="customer", body="The flux capacitor hums and sparks."),
               Message(id="a1", role="agent", body="Please try the reset button."),
               Message(id="c2", role="customer", body="Thanks, that's all sorted now!")]
    reply = Message(id="a2", role="agent", body="Glad to hear it!")
    assert review_reply(reply, earlier, Ticket(id="t"), policy).context.incident == "none"


def test_a_missing_model_file_fails_at_load_naming_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"team\.yaml:5: lexicon\.incident\.model: .*nope\.json"):
        load_policy(_policy(tmp_path, "nope.json"))


def test_the_model_finds_more_incidents_on_replies_it_never_saw(tmp_path: Path) -> None:
    """The third held-out set's test half is in no model's training data (and was never tuned on)."""
    items = [i for i in load_corpus(ROOT / "tests" / "corpus" / "holdout3") if in_split(i.id, "test")]

    def right(policy_path: Path | None) -> int:
        policy = load_policy(policy_path)
        return sum(review_reply(i.history.messages[-1], i.history.messages[:-1], i.history.ticket,
                                policy).context.incident == i.labels["incident"] for i in items)

    assert right(None) > right(_policy(tmp_path, "null"))


def test_training_refuses_a_label_that_is_no_incident_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = json.loads((ROOT / "tests" / "corpus" / "email.jsonl").read_text(encoding="utf-8").splitlines()[0])
    line["labels"]["incident"] = "biling"
    corpus = tmp_path / "team.jsonl"
    corpus.write_text(json.dumps(line) + "\n", encoding="utf-8")
    assert main(["incidents", "train", str(corpus), "--output", str(tmp_path / "m.json")]) == 2
    assert "team.jsonl:1: item email-001: incident label 'biling'" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
