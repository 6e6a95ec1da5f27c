"""Evaluation of the full pipeline on labelled prompts: `aimds eval FILE`.

Input is JSONL with `text`, `label` (1 = attack, 0 = benign) and optional `category`,
`session_id`, `ts`, `source`. Each row runs through the same `LocalScanner` as `aimds scan`
(screening, and verification for uncertain prompts). A prompt is *flagged* when the final
action is BLOCK or ESCALATE; the share of ESCALATE is reported on its own. ROC AUC uses the
fused screening score. Rows without a session id are screened as one-prompt sessions so the
temporal stage does not link unrelated corpus rows.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.pipeline import LocalScanner
from app.records import open_input

FLAGGED = ("BLOCK", "ESCALATE")


@dataclass(frozen=True, slots=True)
class LabelledPrompt:
    """One evaluation row."""

    text: str
    label: int
    category: str = ""
    source: str = ""
    session_id: str | None = None
    ts: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the pipeline decided for one evaluation row."""

    row: LabelledPrompt
    action: str
    score: float
    stage: str
    latency_us: int


@dataclass(frozen=True, slots=True)
class SourceResult:
    """One source's rows in a report: attacks and recall, benign rows and FPR."""

    attacks: int
    recall: float
    benign: int
    fpr: float
    blocked_benign: int


@dataclass(frozen=True)
class EvalReport:
    """Detection quality and latency of the pipeline on a labelled set."""

    name: str
    outcomes: tuple[Outcome, ...]
    model_version: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    # --- counts -------------------------------------------------------------------------
    def _count(self, label: int, flagged: bool) -> int:
        return sum(
            1 for o in self.outcomes if o.row.label == label and (o.action in FLAGGED) == flagged
        )

    @property
    def tp(self) -> int:
        return self._count(1, True)

    @property
    def fn(self) -> int:
        return self._count(1, False)

    @property
    def fp(self) -> int:
        return self._count(0, True)

    @property
    def tn(self) -> int:
        return self._count(0, False)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def fpr(self) -> float:
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def escalated_share(self) -> float:
        """Share of all rows whose final action is ESCALATE."""
        return _ratio(sum(o.action == "ESCALATE" for o in self.outcomes), len(self.outcomes))

    @property
    def verified_share(self) -> float:
        """Share of all rows that went through the verification stage."""
        return _ratio(sum(o.stage == "verification" for o in self.outcomes), len(self.outcomes))

    def actions(self, label: int) -> Counter[str]:
        """Final actions of the rows with this label."""
        return Counter(o.action for o in self.outcomes if o.row.label == label)

    def roc(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """False/true positive rates over score thresholds and the ROC AUC (None: one class)."""
        labels = np.array([o.row.label for o in self.outcomes])
        if labels.min(initial=1) == labels.max(initial=0):
            return None
        from sklearn.metrics import roc_auc_score, roc_curve

        scores = np.array([o.score for o in self.outcomes])
        fpr, tpr, _ = roc_curve(labels, scores)
        return fpr, tpr, float(roc_auc_score(labels, scores))

    def recall_at_fpr(self, budgets: Sequence[float] = (0.01, 0.02, 0.05)) -> dict[float, float]:
        """Best recall of the fused score at each false-positive budget (a ROC summary: the
        shipped thresholds come from training data, not from this)."""
        roc = self.roc()
        if roc is None:
            return {}
        fpr, tpr, _ = roc
        return {b: float(tpr[fpr <= b].max(initial=0.0)) for b in budgets}

    def per_category_recall(self) -> dict[str, tuple[int, float]]:
        """Recall per attack category: (rows, recall)."""
        groups: dict[str, list[Outcome]] = defaultdict(list)
        for o in self.outcomes:
            if o.row.label == 1:
                groups[o.row.category or "(none)"].append(o)
        return {
            cat: (len(rows), _ratio(sum(o.action in FLAGGED for o in rows), len(rows)))
            for cat, rows in sorted(groups.items())
        }

    def per_source(self) -> dict[str, SourceResult]:
        """Flagged share per source: recall over its attacks, FPR over its benign rows."""
        groups: dict[str, list[Outcome]] = defaultdict(list)
        for o in self.outcomes:
            groups[o.row.source or "(none)"].append(o)
        out = {}
        for source, rows in sorted(groups.items()):
            attacks = [o for o in rows if o.row.label == 1]
            benign = [o for o in rows if o.row.label == 0]
            out[source] = SourceResult(
                attacks=len(attacks),
                recall=_ratio(sum(o.action in FLAGGED for o in attacks), len(attacks)),
                benign=len(benign),
                fpr=_ratio(sum(o.action in FLAGGED for o in benign), len(benign)),
                blocked_benign=sum(o.action == "BLOCK" for o in benign),
            )
        return out

    def latency_us(self) -> tuple[float, float]:
        """Median and p99 wall-clock microseconds per prompt (whole pipeline)."""
        lat = np.array([o.latency_us for o in self.outcomes], dtype=float)
        if lat.size == 0:
            return (0.0, 0.0)
        return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-row data)."""
        roc = self.roc()
        p50, p99 = self.latency_us()
        return {
            "name": self.name,
            "model_version": self.model_version,
            "rows": len(self.outcomes),
            "attacks": self.tp + self.fn,
            "benign": self.fp + self.tn,
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
            "recall": self.recall,
            "fpr": self.fpr,
            "precision": self.precision,
            "f1": self.f1,
            "roc_auc": roc[2] if roc else None,
            "recall_at_fpr": {str(k): v for k, v in self.recall_at_fpr().items()},
            "escalated_share": self.escalated_share,
            "verified_share": self.verified_share,
            "latency_p50_us": p50,
            "latency_p99_us": p99,
            "per_category_recall": {
                k: {"n": n, "recall": r} for k, (n, r) in self.per_category_recall().items()
            },
            "per_source": {
                k: {
                    "attacks": v.attacks,
                    "recall": v.recall,
                    "benign": v.benign,
                    "fpr": v.fpr,
                    "blocked_benign": v.blocked_benign,
                }
                for k, v in self.per_source().items()
            },
            **dict(self.extra),
        }

    def _recall_at_fpr_lines(self) -> list[str]:
        points = self.recall_at_fpr()
        if not points:
            return []
        head = " | ".join(f"recall at FPR {_pct(b)}" for b in points)
        row = " | ".join(_pct(v) for v in points.values())
        return [f"| {head} |", "|" + " --- |" * len(points), f"| {row} |", ""]

    def markdown(self) -> str:
        """The report as markdown tables."""
        roc = self.roc()
        p50, p99 = self.latency_us()
        att, ben = self.actions(1), self.actions(0)
        lines = [
            f"### {self.name}",
            "",
            f"model `{self.model_version}`; {len(self.outcomes)} prompts "
            f"({self.tp + self.fn} attacks, {self.fp + self.tn} benign)",
            "",
            "| recall | FPR | precision | F1 | ROC AUC | escalated | via verification "
            "| latency p50 | p99 |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| {_pct(self.recall)} | {_pct(self.fpr)} | {_pct(self.precision)} | "
            f"{self.f1:.3f} | {f'{roc[2]:.4f}' if roc else 'n/a'} | "
            f"{_pct(self.escalated_share)} | {_pct(self.verified_share)} | "
            f"{p50:.0f} µs | {p99:.0f} µs |",
            "",
            *self._recall_at_fpr_lines(),
            "| true \\ final action | ALLOW | BLOCK | ESCALATE |",
            "| --- | --- | --- | --- |",
            f"| attack | {att['ALLOW']} | {att['BLOCK']} | {att['ESCALATE']} |",
            f"| benign | {ben['ALLOW']} | {ben['BLOCK']} | {ben['ESCALATE']} |",
        ]
        sources = self.per_source()
        if len(sources) > 1:
            lines += [
                "",
                "| source | attacks | recall | benign | FPR | benign BLOCKed |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            lines += [
                f"| {s} | {v.attacks} | {_pct(v.recall) if v.attacks else '-'} | {v.benign} "
                f"| {_pct(v.fpr) if v.benign else '-'} | {v.blocked_benign} |"
                for s, v in sources.items()
            ]
        cats = self.per_category_recall()
        if cats:
            lines += ["", "| attack category | n | recall |", "| --- | --- | --- |"]
            lines += [f"| {c} | {n} | {_pct(r)} |" for c, (n, r) in cats.items()]
        return "\n".join(lines) + "\n"


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def read_labelled(
    path: str | Path, *, limit: int | None = None, seed: int = 0
) -> list[LabelledPrompt]:
    """Read labelled JSONL; `limit` takes a seeded random sample."""
    rows: list[LabelledPrompt] = []
    with open_input(path, binary=True) as fh:
        for line in fh:
            if not line.strip():
                continue
            obj = orjson.loads(line)
            rows.append(
                LabelledPrompt(
                    text=str(obj["text"]),
                    label=int(obj["label"]),
                    category=str(obj.get("category") or ""),
                    source=str(obj.get("source") or ""),
                    session_id=obj.get("session_id"),
                    ts=obj.get("ts"),
                )
            )
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


def evaluate(
    name: str,
    scanner: LocalScanner,
    rows: Sequence[LabelledPrompt],
    *,
    progress: bool = True,
    model_version: str = "",
) -> EvalReport:
    """Run every row through the pipeline and collect outcomes."""
    from tqdm import tqdm

    outcomes: list[Outcome] = []
    base_ts = 1_767_225_600.0
    for i, row in enumerate(tqdm(rows, desc=f"eval {name}", unit="prompt", disable=not progress)):
        record = {
            "id": f"eval-{i}",
            "session_id": row.session_id or f"eval-{i}",
            "text": row.text,
            "ts": row.ts if row.ts is not None else base_ts + i,
        }
        raw = orjson.dumps(record)
        started = time.perf_counter_ns()
        topic, result = scanner.process(raw)
        elapsed = (time.perf_counter_ns() - started) // 1000
        if topic != "decisions":  # a row the pipeline refused (e.g. empty text): count as flagged
            outcomes.append(Outcome(row, "ESCALATE", 1.0, "deadletter", elapsed))
            continue
        outcomes.append(
            Outcome(row, result["action"], float(result["score"]), result["stage"], elapsed)
        )
    return EvalReport(name=name, outcomes=tuple(outcomes), model_version=model_version)


def plot_roc(reports: Iterable[EvalReport], path: Path) -> Path | None:
    """ROC curves of the reports that have both classes, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    drawn = False
    for report in reports:
        roc = report.roc()
        if roc is None:
            continue
        fpr, tpr, auc = roc
        ax.plot(fpr, tpr, label=f"{report.name} (AUC {auc:.3f})")
        ax.scatter([report.fpr], [report.recall], marker="o", s=30)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(0, 1)
    ax.set_xlabel("false positive rate (symlog)")
    ax.set_ylabel("recall (true positive rate)")
    ax.set_title("AIMDS ROC (fused score); dots = operating point")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def obfuscation_sweep(
    scanner_factory: Callable[[], LocalScanner],
    attacks: Sequence[LabelledPrompt],
    *,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, tuple[int, float]]:
    """For attacks the plain form catches, the share still caught under each obfuscation."""
    from tqdm import tqdm

    from app.obfuscate import OBFUSCATIONS, obfuscate

    caught_plain = [
        o.row
        for o in evaluate("plain", scanner_factory(), attacks, progress=progress).outcomes
        if o.action in FLAGGED
    ]
    rng = random.Random(seed)
    results: dict[str, tuple[int, float]] = {}
    for name in tqdm(sorted(OBFUSCATIONS), desc="obfuscations", disable=not progress):
        variants = [
            LabelledPrompt(text=obfuscate(row.text, name, rng), label=1, category=row.category)
            for row in caught_plain
        ]
        report = evaluate(name, scanner_factory(), variants, progress=False)
        results[name] = (len(variants), report.recall)
    return results


def summarize_sweep(results: Mapping[str, tuple[int, float]]) -> tuple[str, float]:
    """Markdown table of an obfuscation sweep and the overall share caught."""
    lines = ["| obfuscation | variants | still caught |", "| --- | --- | --- |"]
    total = caught = 0.0
    for name, (n, recall) in results.items():
        lines.append(f"| {name} | {n} | {_pct(recall)} |")
        total += n
        caught += n * recall
    overall = caught / total if total else math.nan
    lines.append(f"| **all** | {int(total)} | **{_pct(overall)}** |")
    return "\n".join(lines) + "\n", overall
