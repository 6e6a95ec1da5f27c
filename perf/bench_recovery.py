"""Model-independent benchmark: how often stage 1 recovers an obfuscated attack.

For every obfuscation in `app.obfuscate` and a fixed-seed sample of dev attacks
(stratified by source, up to `--attacks` rows), the obfuscated prompt goes
through `Normalizer().normalize`; the variant counts as *recovered* when some
view contains the plain prompt's canonical text: at least `--containment`
(default 0.9) of the distinct whitespace tokens of the plain canonical text
occur in that view's tokens. Tokens are compared after stripping
non-ASCII characters when the obfuscation cannot carry them (Unicode tags
hold printable ASCII only).

It also runs the normalizer over every benign row of the dev sources and
counts how often each decoder fired on it (false decodes), and times the
normalizer per prompt on those rows (median / p99, best of `--repeat`).

`--baseline PATH` loads another copy of the normalizer module (for example the
version before a change) and measures it in the same process, so the tables
show before / after side by side.

The held-out source (promptshield) is never read.

    .venv/bin/python -m perf.bench_recovery [--attacks 600] [--baseline /tmp/old_normalize.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tqdm import tqdm  # noqa: E402

import app.normalize  # noqa: E402
from app.obfuscate import OBFUSCATIONS, obfuscate  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
RESULTS = Path(__file__).resolve().parent / "results"
HELD_OUT = frozenset({"promptshield.jsonl"})
DECODERS = ("base64", "hex", "url", "charcode", "rot13", "reversed", "escape", "html_entity")
#: obfuscations that drop characters outside printable ASCII
ASCII_ONLY = frozenset({"unicode_tags"})
SHORT = 200


@dataclass(frozen=True, slots=True)
class Row:
    """One dev prompt."""

    text: str
    label: int
    source: str


@dataclass(frozen=True, slots=True)
class Variant:
    """One obfuscated attack and the token set its plain form normalizes to."""

    transform: str
    source: str
    text: str
    plain_tokens: frozenset[str]
    short: bool  # the plain attack has at most SHORT characters


@dataclass(frozen=True, slots=True)
class Version:
    """A normalizer implementation under test."""

    name: str
    normalize: Callable[[str], Any]


def load_rows(data_dir: Path) -> list[Row]:
    """Every row of the dev JSONL files except the held-out source."""
    rows: list[Row] = []
    for path in sorted(data_dir.glob("*.jsonl")):
        if path.name in HELD_OUT:
            continue
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    r = json.loads(line)
                    rows.append(Row(r["text"], int(r["label"]), r["source"]))
    return rows


def sample_attacks(rows: Sequence[Row], limit: int, seed: int) -> list[Row]:
    """Up to `limit` attacks, an equal share per source (small sources give all they have)."""
    rng = random.Random(seed)
    by_source: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row.label == 1 and row.text.strip():
            by_source[row.source].append(row)
    picked: list[Row] = []
    remaining = limit
    # fill the smallest sources first so the leftover quota flows to the larger ones
    sources = sorted(by_source, key=lambda s: len(by_source[s]))
    for i, source in enumerate(sources):
        quota = remaining // (len(sources) - i)
        items = by_source[source]
        chosen = items if len(items) <= quota else rng.sample(items, quota)
        picked.extend(chosen)
        remaining -= len(chosen)
    return picked


_WORD = re.compile(r"\w+")


def tokens_of(text: str, ascii_only: bool) -> frozenset[str]:
    """Distinct word tokens (punctuation glued to a word does not hide it)."""
    if ascii_only:
        text = "".join(c for c in text if c.isascii())
    return frozenset(_WORD.findall(text))


def make_variants(attacks: Sequence[Row], reference: Version, seed: int) -> list[Variant]:
    """Every obfuscation of every sampled attack, with a fixed-seed generator."""
    rng = random.Random(seed)
    variants: list[Variant] = []
    for name in sorted(OBFUSCATIONS):
        for row in attacks:
            canonical = reference.normalize(row.text).canonical
            if name in ASCII_ONLY:
                # what the carrier can hold: printable ASCII, normalized like the plain text
                carried = "".join(c for c in " ".join(row.text.split()) if " " <= c <= "~")
                canonical = reference.normalize(carried).canonical
            plain = tokens_of(canonical, name in ASCII_ONLY)
            if plain:
                variants.append(
                    Variant(
                        name,
                        row.source,
                        obfuscate(row.text, name, rng),
                        plain,
                        len(row.text) <= SHORT,
                    )
                )
    return variants


def recovered(variant: Variant, views: Sequence[str], containment: float) -> tuple[bool, bool]:
    """Whether some view holds `containment` of the plain tokens; whether one is close to it.

    Close: token-set Jaccard >= 0.8, i.e. the view is the attack itself, not the attack
    diluted by the carrier's other text (what a similarity search sees).
    """
    need = containment * len(variant.plain_tokens)
    ascii_only = variant.transform in ASCII_ONLY
    contained = close = False
    for view in views:
        got = tokens_of(view, ascii_only)
        common = len(variant.plain_tokens & got)
        contained = contained or common >= need
        close = close or common >= 0.8 * len(variant.plain_tokens | got)
    return contained, close


def recovery(
    version: Version, variants: Sequence[Variant], containment: float
) -> tuple[dict[str, list[bool]], dict[str, list[bool]], list[Variant]]:
    """Per transform, whether each variant was recovered (contained, close); the misses."""
    contained: dict[str, list[bool]] = defaultdict(list)
    close: dict[str, list[bool]] = defaultdict(list)
    missed: list[Variant] = []
    for variant in tqdm(variants, desc=f"recovery [{version.name}]", unit="variant"):
        result = version.normalize(variant.text)
        ok, near = recovered(variant, [v.text for v in result.views], containment)
        contained[variant.transform].append(ok)
        if variant.short:
            contained["short:" + variant.transform].append(ok)
        close[variant.transform].append(near)
        if not ok:
            missed.append(variant)
    return contained, close, missed


def false_decodes(
    version: Version, benign: Sequence[Row], repeat: int
) -> tuple[Counter[str], list[float], dict[str, list[str]]]:
    """Decoder fire counts on benign rows, time per prompt (µs) and a few firing examples."""
    fired: Counter[str] = Counter()
    times: list[float] = []
    examples: dict[str, list[str]] = defaultdict(list)
    for row in tqdm(benign, desc=f"benign [{version.name}]", unit="prompt"):
        best = float("inf")
        result = None
        for _ in range(repeat):
            start = time.perf_counter_ns()
            result = version.normalize(row.text)
            best = min(best, time.perf_counter_ns() - start)
        times.append(best / 1000)
        assert result is not None
        for name in DECODERS:
            if name in result.transforms:
                fired[name] += 1
                if len(examples[name]) < 3:
                    examples[name].append(f"[{row.source}] {row.text[:160]!r}")
    return fired, times, examples


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_version(name: str, path: Path | None) -> Version:
    """The current `app.normalize`, or a module file loaded under a private name."""
    module: ModuleType
    if path is None:
        module = app.normalize
    else:
        spec = importlib.util.spec_from_file_location(f"_normalize_{name}", path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
        spec.loader.exec_module(module)
    normalizer = module.Normalizer()
    return Version(name, normalizer.normalize)


def plot(table: dict[str, dict[str, float]], path: Path) -> None:
    names = sorted(OBFUSCATIONS)
    versions = list(table)
    fig, ax = plt.subplots(figsize=(12, 5.5))
    width = 0.8 / len(versions)
    for i, version in enumerate(versions):
        xs = [j + (i - (len(versions) - 1) / 2) * width for j in range(len(names))]
        ax.bar(xs, [100 * table[version][n] for n in names], width, label=version)
    ax.axhline(95, color="red", linestyle="--", linewidth=1, label="95 % target")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right")
    ax.set_ylim(0, 102)
    ax.set_ylabel("variants recovered (%)")
    ax.set_title("Stage 1: obfuscated dev attacks whose plain text a view recovers")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--attacks", type=int, default=600, help="attack rows sampled")
    parser.add_argument("--containment", type=float, default=0.9)
    parser.add_argument("--repeat", type=int, default=2, help="timing runs per benign prompt")
    parser.add_argument("--benign-limit", type=int, default=0, help="0 = every benign row")
    parser.add_argument("--baseline", type=Path, default=None, help="older normalize.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show-missed", type=int, default=0, help="print N misses per transform")
    parser.add_argument("--only", default="", help="comma-separated transforms (default all)")
    args = parser.parse_args()

    rows = load_rows(args.data_dir)
    attacks = sample_attacks(rows, args.attacks, args.seed)
    benign = [r for r in rows if r.label == 0]
    if args.benign_limit:
        benign = random.Random(args.seed).sample(benign, min(args.benign_limit, len(benign)))
    versions = [load_version("after", None)]
    if args.baseline is not None:
        versions.insert(0, load_version("before", args.baseline))
    # the plain canonical text comes from the current normalizer for every version
    variants = make_variants(attacks, versions[-1], args.seed)
    if args.only:
        keep = set(args.only.split(","))
        variants = [v for v in variants if v.transform in keep]
    for version in versions:  # warm-up outside the timings
        for row in benign[:200]:
            version.normalize(row.text)

    rates: dict[str, dict[str, float]] = {}
    close_rates: dict[str, dict[str, float]] = {}
    short_rates: dict[str, dict[str, float]] = {}
    short_counts: dict[str, int] = {}
    fires: dict[str, Counter[str]] = {}
    times: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    all_missed: dict[str, list[Variant]] = {}
    fire_examples: dict[str, dict[str, list[str]]] = {}
    for version in versions:
        hits, near, missed = recovery(version, variants, args.containment)
        short_hits = {n[6:]: h for n, h in hits.items() if n.startswith("short:")}
        hits = {n: h for n, h in hits.items() if not n.startswith("short:")}
        counts = {n: len(h) for n, h in hits.items()}
        total = max(1, sum(counts.values()))
        rates[version.name] = {n: sum(h) / len(h) for n, h in hits.items()}
        rates[version.name]["ALL"] = sum(sum(h) for h in hits.values()) / total
        short_rates[version.name] = {n: sum(h) / len(h) for n, h in short_hits.items()}
        short_counts = {n: len(h) for n, h in short_hits.items()}
        short_rates[version.name]["ALL"] = sum(sum(h) for h in short_hits.values()) / max(
            1, sum(short_counts.values())
        )
        short_counts["ALL"] = sum(short_counts.values())
        close_rates[version.name] = {n: sum(h) / len(h) for n, h in near.items()}
        close_rates[version.name]["ALL"] = sum(sum(h) for h in near.values()) / total
        all_missed[version.name] = missed
        fires[version.name], times[version.name], fire_examples[version.name] = false_decodes(
            version, benign, args.repeat
        )

    by_source = Counter(r.source for r in attacks)
    names = [n for n in sorted(OBFUSCATIONS) if n in counts] + ["ALL"]
    counts["ALL"] = sum(counts.values())
    header = (
        f"{'transform':22s} {'n':>6s}"
        + "".join(f" {v.name + ' %':>10s} {'close %':>8s} {'short %':>8s}" for v in versions)
        + f" {'n short':>8s}"
    )
    lines = [
        f"{len(attacks)} attacks sampled (seed {args.seed}) from {args.data_dir}, held-out "
        f"{', '.join(sorted(HELD_OUT))} excluded; by source: "
        + ", ".join(f"{s} {n}" for s, n in sorted(by_source.items())),
        f"recovered = some view holds >= {args.containment:.0%} of the distinct tokens of the "
        "plain prompt's canonical text (word tokens; ASCII-only for unicode_tags); close = "
        "some view has token-set Jaccard >= 0.8 with it (not diluted by the carrier); short = "
        f"recovered among attacks of <= {SHORT} characters",
        "",
        "Recovery per obfuscation",
        header,
    ]
    for name in names:
        lines.append(
            f"{name:22s} {counts[name]:6d}"
            + "".join(
                f" {100 * rates[v.name][name]:10.1f} {100 * close_rates[v.name][name]:8.1f}"
                f" {100 * short_rates[v.name].get(name, 0.0):8.1f}"
                for v in versions
            )
            + f" {short_counts.get(name, 0):8d}"
        )
    lines += [
        "",
        f"False decodes on {len(benign)} benign dev rows (decoder fired)",
        f"{'decoder':22s}" + "".join(f" {v.name:>10s}" for v in versions),
    ]
    for name in DECODERS:
        lines.append(f"{name:22s}" + "".join(f" {fires[v.name][name]:10d}" for v in versions))
    lines.append(
        f"{'any decoder rows':22s}"
        + "".join(f" {sum(fires[v.name].values()):10d}" for v in versions)
    )
    for version in versions:
        for name, items in fire_examples[version.name].items():
            for item in items:
                lines.append(f"  {version.name} {name}: {item}")
    lines += [
        "",
        f"Normalizer time per benign prompt (µs, best of {args.repeat})",
        f"{'version':12s} {'median':>9s} {'p90':>9s} {'p99':>9s} {'mean':>9s}",
    ]
    for version in versions:
        t = times[version.name]
        lines.append(
            f"{version.name:12s} {statistics.median(t):9.1f} {percentile(t, 0.9):9.1f} "
            f"{percentile(t, 0.99):9.1f} {statistics.mean(t):9.1f}"
        )
    if len(versions) == 2:
        before, after = (times[v.name] for v in versions)
        lines.append(
            f"ratio after/before: median {statistics.median(after) / statistics.median(before):.2f}"
            f"x, p99 {percentile(after, 0.99) / percentile(before, 0.99):.2f}x"
        )
    report = "\n".join(lines)
    print(report)
    if args.show_missed:
        shown: Counter[str] = Counter()
        for variant in all_missed[versions[-1].name]:
            if shown[variant.transform] < args.show_missed:
                shown[variant.transform] += 1
                print(f"MISSED {variant.transform} [{variant.source}] {variant.text[:300]!r}")
    if args.only or args.benign_limit:
        return  # partial runs are for exploring: keep the full results on disk
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recovery.txt").write_text(report + "\n", encoding="utf-8")
    plot(rates, RESULTS / "recovery.png")
    print(f"\nwrote {RESULTS / 'recovery.txt'} and {RESULTS / 'recovery.png'}")


if __name__ == "__main__":
    main()
