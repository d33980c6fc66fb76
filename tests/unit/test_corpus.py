"""The labelled corpus is well formed and the engine keeps meeting the accuracy targets on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.accuracy import TARGETS, evaluate, load_corpus
from tests.conftest import ROOT
from worker.corpus import CorpusError, split_folders
from worker.engine import Policy

CORPUS = ROOT / "tests" / "corpus"
KEYS = {"apology", "apology_stance", "apology_count", "liability_admission", "blame", "empathy", "solution",
        "prevention", "incident", "legal_risk"}


def test_corpus_is_well_formed_and_large_enough() -> None:
    ids = set()
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            assert item["id"] not in ids
            ids.add(item["id"])
            assert set(item["labels"]) == KEYS
            assert item["messages"][-1]["role"] == "agent"
            assert (item["labels"]["apology"] == "none") == (item["labels"]["apology_stance"] is None)
    assert len(ids) >= 400


@pytest.fixture(scope="module")
def summary(policy: Policy) -> dict[str, object]:
    result, _ = evaluate(list(load_corpus(Path(CORPUS))), policy)
    return result


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_accuracy_target(summary: dict[str, object], name: str) -> None:
    counts = summary["counts"]
    value = summary[name] if name in summary else counts[name].prf()[2]  # type: ignore[index]
    assert value >= TARGETS[name], f"{name}: {value:.3f} < {TARGETS[name]}"


def test_a_malformed_corpus_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    good = (CORPUS / "email.jsonl").read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "team.jsonl"
    path.write_text(good + "\n{not json\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"team\.jsonl:2: not valid JSON"):
        list(load_corpus(path))
    path.write_text(good + "\n" + json.dumps({"ticket": {"id": "t"}, "messages": []}) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"team\.jsonl:2: "):
        list(load_corpus(path))


def test_the_split_sets_are_found_in_number_order_from_the_third(tmp_path: Path) -> None:
    for name in ("holdout", "holdout2", "holdout3", "holdout10", "holdout9", "holdoutx"):
        (tmp_path / name).mkdir()
    (tmp_path / "holdout11").write_text("not a folder")
    assert [p.name for p in split_folders(tmp_path)] == ["holdout3", "holdout9", "holdout10"]
