"""The HTML page: escaped, self-contained, and the CLI that writes it from verdict and history files."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from tests.support.histories import write_history, write_verdicts
from tests.support.verdicts import finding, verdict
from worker.cli import main
from worker.engine import Policy
from worker.report.aggregate import ReportBuilder
from worker.report.html import render_html
from worker.report.sources import ReplyFacts

HOSTILE = '<script>alert("x")</script><img src="https://evil.example/p.png">'


def hostile_report() -> str:
    builder = ReportBuilder(with_history=True)
    builder.add(verdict("T<1>", agent='agent "<b>"', findings=(finding("generic-apology", excerpt=HOSTILE,
                                                                        suggestion=HOSTILE),),
                        score=40, action="escalate"), ReplyFacts("team <i>", "2026-W47", 0.9))
    return render_html(builder.result(), title="Report & <title>")


def test_text_from_the_data_is_escaped() -> None:
    page = hostile_report()
    assert "<script" not in page and "<img" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "T&lt;1&gt;" in page and "agent &quot;&lt;b&gt;&quot;" in page and "team &lt;i&gt;" in page
    assert "<title>Report &amp; &lt;title&gt;</title>" in page


def external_references(page: str) -> list[str]:
    refs = re.findall(r'(?:src|href|xlink:href)\s*=\s*["\']?([^"\'\s>]+)', page, re.I)
    refs += re.findall(r"url\(\s*['\"]?([^'\")]+)", page, re.I)
    refs += re.findall(r"@import\s+['\"]?([^'\";]+)", page, re.I)
    return [r for r in refs if re.match(r"(?:https?:)?//", r)]


def test_page_is_self_contained(tmp_path: Path, policy: Policy) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=60)
    verdicts = write_verdicts(history, policy, tmp_path / "v.jsonl")
    out = tmp_path / "r.html"
    args = ["report", str(verdicts), "--history", str(history), "--compare", str(verdicts),
            "--html", str(out)]
    assert main(args) == 0
    page = out.read_text()
    assert external_references(page) == []
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert page.count("<svg") >= 6  # trends, outcome, escalations


def test_cli_reads_gzip_and_counts_unreadable_lines(tmp_path: Path, policy: Policy,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    history = write_history(tmp_path / "h.jsonl", tickets=30)
    verdicts = write_verdicts(history, policy, tmp_path / "v.jsonl")
    packed = tmp_path / "v.jsonl.gz"
    packed.write_bytes(gzip.compress(verdicts.read_bytes() + b"{oops\n"))
    out = tmp_path / "r.html"
    assert main(["report", str(packed), "--history", str(history), "--html", str(out)]) == 3
    page = out.read_text()
    assert f"{packed}:" in page and "skipped" in page  # the bad line is named in the data notes
    replies = sum(1 for _ in verdicts.open())
    assert f"{replies} replies" in capsys.readouterr().out


def test_cli_names_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope.jsonl"), "--html", str(tmp_path / "r.html")]) == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err


def test_report_joins_verdicts_with_the_history(tmp_path: Path, policy: Policy) -> None:
    from worker.report.build import build_report

    history = write_history(tmp_path / "h.jsonl", tickets=80)
    verdicts = write_verdicts(history, policy, tmp_path / "v.jsonl")
    built = build_report([str(verdicts)], policy=policy, histories=[str(history)])
    report = built.report
    assert report.unmatched == 0 and built.unreadable == 0
    assert set(report.teams) <= {"returns", "billing", "delivery", "tech"}
    assert sum(t.replies for t in report.teams.values()) == report.overall.replies
    assert report.outcome is not None and report.outcome.answered > 0


def test_cli_names_a_missing_folder_for_the_page_before_building_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It built the whole report, then crashed with a FileNotFoundError traceback."""
    verdicts = tmp_path / "v.jsonl"
    verdicts.write_text("")
    assert main(["report", str(verdicts), "--html", str(tmp_path / "no" / "dir" / "r.html")]) == 2
    assert "no such folder to write the page into" in capsys.readouterr().err
