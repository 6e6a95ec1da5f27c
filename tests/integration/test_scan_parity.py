"""`aimds scan` and the worker give the same decisions on the same input."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import orjson

from app.core import build_pipeline
from app.curated_benign import everyday_benign
from app.demo import sample_path
from app.eval_sets import trigger_word_benign
from app.obfuscate import OBFUSCATIONS, obfuscate
from app.pipeline import LocalScanner
from app.replay import load_log, replay
from tests.integration.conftest import collect


def parity_log(path: Path) -> int:
    """The bundled sample plus varied built-in texts spread over a few multi-turn sessions.

    Self-contained on purpose: a CI clone need not sit next to the dev corpora.
    """
    rows = [json.loads(line) for line in sample_path().read_text().split("\n") if line.strip()]
    rng = random.Random(11)
    attacks = [r["text"] for r in rows if r["session_id"] in ("mallory", "dan-fan", "enc")]
    texts = (
        [p.text for p in rng.sample(trigger_word_benign(300), 20)]
        + rng.sample(everyday_benign(), 20)
        + [
            obfuscate(rng.choice(attacks), name, rng)
            for name in rng.sample(sorted(OBFUSCATIONS), 20)
        ]
    )
    rng.shuffle(texts)
    t = 1_767_300_000.0
    for k, text in enumerate(texts):
        t += rng.uniform(0.5, 20)
        rows.append({"id": f"par-{k}", "session_id": f"par-{k % 4}", "text": text, "ts": t})
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    return len(rows)


def test_scan_and_worker_decide_alike(settings, worker, tmp_path: Path) -> None:
    log = tmp_path / "parity.jsonl"
    parity_log(log)
    records = load_log(log)
    asyncio.run(replay(settings, records, speed=None))

    scanner = LocalScanner(build_pipeline(settings.replace(redis_url=""), use_redis=False))
    local: dict[str, dict] = {}
    dead = 0
    for rec in records:
        topic, out = scanner.process(rec.value)
        if topic == "decisions":
            local[out["prompt_id"]] = out
        else:
            dead += 1
    remote = {
        d["prompt_id"]: d
        for d in collect(settings, "decisions", expect=len(local), timeout_s=240, worker=worker)
    }
    assert remote.keys() == local.keys(), worker.log_tail()
    for pid, mine in local.items():
        theirs = remote[pid]
        assert (theirs["action"], theirs["stage"]) == (mine["action"], mine["stage"]), pid
        assert abs(theirs["score"] - mine["score"]) < 1e-6, pid
        assert theirs["violated_policies"] == mine["violated_policies"], pid
        assert theirs["model_version"] == mine["model_version"]
    assert dead == 1  # the sample's malformed line, dead-lettered in both paths
