"""The evaluation report's arithmetic: counts, rates, ROC summaries, per-category and
per-source tables, from hand-built outcomes (no model)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.evaluation import EvalReport, LabelledPrompt, Outcome, read_labelled


def _outcome(label: int, action: str, score: float, *, source: str = "", category: str = ""):
    row = LabelledPrompt(text="x", label=label, category=category, source=source)
    return Outcome(row=row, action=action, score=score, stage="fusion", latency_us=100)


# label, final action, fused score, source, category
ROWS = [
    (1, "BLOCK", 0.99, "a", "override"),
    (1, "ESCALATE", 0.80, "a", "override"),
    (1, "ALLOW", 0.30, "b", "exfil"),
    (1, "ALLOW", 0.20, "b", "exfil"),
    (0, "ALLOW", 0.10, "a", ""),
    (0, "ALLOW", 0.25, "b", ""),
    (0, "BLOCK", 0.97, "b", ""),
    (0, "ALLOW", 0.05, "c", ""),
]


@pytest.fixture()
def report() -> EvalReport:
    outcomes = tuple(_outcome(y, a, s, source=src, category=c) for y, a, s, src, c in ROWS)
    return EvalReport(name="t", outcomes=outcomes, model_version="fusion-test")


def test_counts_and_rates(report: EvalReport) -> None:
    assert (report.tp, report.fn, report.fp, report.tn) == (2, 2, 1, 3)
    assert report.recall == pytest.approx(0.5)
    assert report.fpr == pytest.approx(0.25)
    assert report.precision == pytest.approx(2 / 3)
    assert report.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert report.escalated_share == pytest.approx(1 / 8)


def test_recall_at_fpr_reads_the_roc(report: EvalReport) -> None:
    # benign scores 0.97, 0.25, 0.10, 0.05: no benign above 0.97 -> 0.99 alone (1 of 4);
    # one benign allowed (25%) -> every attack above 0.25 (0.99, 0.80, 0.30)
    points = report.recall_at_fpr((0.0, 0.25, 1.0))
    assert points == {0.0: 0.25, 0.25: 0.75, 1.0: 1.0}


def test_per_category_recall(report: EvalReport) -> None:
    assert report.per_category_recall() == {"exfil": (2, 0.0), "override": (2, 1.0)}


@pytest.mark.parametrize(
    ("source", "attacks", "recall", "benign", "fpr", "blocked"),
    [
        ("a", 2, 1.0, 1, 0.0, 0),
        ("b", 2, 0.0, 2, 0.5, 1),
        ("c", 0, 0.0, 1, 0.0, 0),
    ],
)
def test_per_source(
    report: EvalReport,
    source: str,
    attacks: int,
    recall: float,
    benign: int,
    fpr: float,
    blocked: int,
) -> None:
    got = report.per_source()[source]
    assert (got.attacks, got.benign, got.blocked_benign) == (attacks, benign, blocked)
    assert got.recall == pytest.approx(recall)
    assert got.fpr == pytest.approx(fpr)


def test_markdown_has_a_source_table_only_for_several_sources(report: EvalReport) -> None:
    text = report.markdown()
    assert "| b | 2 | 0.00% | 2 | 50.00% | 1 |" in text
    assert "| c | 0 | - | 1 | 0.00% | 0 |" in text
    single = EvalReport(
        name="one", outcomes=tuple(o for o in report.outcomes if o.row.source == "a")
    )
    assert "| source |" not in single.markdown()
    assert report.to_dict()["per_source"]["b"]["fpr"] == pytest.approx(0.5)


def test_read_labelled_keeps_source_and_samples(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [{"text": f"t{i}", "label": i % 2, "source": "s", "category": "c"} for i in range(10)]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n\n")
    read = read_labelled(path)
    assert [r.text for r in read] == [f"t{i}" for i in range(10)]
    assert {r.source for r in read} == {"s"}
    sample = read_labelled(path, limit=4, seed=1)
    assert len(sample) == 4 and len({r.text for r in sample}) == 4
    assert sample == read_labelled(path, limit=4, seed=1)
