"""The `promptbench_benign` source: promptbench's task and role instructions, filled."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from app.corpora._rows import PROMPTBENCH_SOURCE, CorpusRow, _capped, _rng
from app.corpora._wheels import _Wheel
from app.errors import ConfigError

_PB_PROMPTS = "promptbench/prompts/"
_PB_CONFIG = "promptbench/config.py"
_PB_DATASETS = "promptbench/dataload/dataset.py"
#: the question/answer scaffold after an instruction; left empty when nothing fills it
_PB_SCAFFOLD = re.compile(r"\s*Question:\s*\{content\}\s*Answer:")
_PB_SLOT = re.compile(r"\{([A-Za-z_]*)\}")
PROMPTBENCH_LIMIT = 300


def _pb_boolean(rng: random.Random, depth: int = 2) -> str:
    # the shape of promptbench's bool_logic inputs: "not ( not False and True ) or not True"
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(["True", "False", "not True", "not False"])
    left, right = _pb_boolean(rng, depth - 1), _pb_boolean(rng, depth - 1)
    inner = f"{left} {rng.choice(['and', 'or'])} {right}"
    return f"( {inner} )" if rng.random() < 0.5 else inner


def _pb_content(dataset: str, rng: random.Random) -> str | None:
    """Input for datasets whose inputs are cheap to make up; None for the others."""
    if dataset == "valid_parentheses":
        return " ".join(rng.choice("()[]{}") for _ in range(rng.randrange(4, 11)))
    if dataset == "bool_logic":
        return f"{_pb_boolean(rng)} is "
    if dataset == "math":
        # promptbench's algebra__linear_1d inputs: "Solve -282*d + 929 - 178 = -1223 for d."
        a, x, b = (
            rng.choice([-1, 1]) * rng.randint(2, 300),
            rng.randint(-20, 20),
            rng.randint(1, 999),
        )
        variable = rng.choice("abcdfghjkmnpqrstuvwxyz")
        return f"Solve {a}*{variable} + {b} = {a * x + b} for {variable}."
    return None


def _pb_fill(
    template: str, dataset: str, pools: Mapping[str, Sequence[str]], rng: random.Random
) -> str:
    content = _pb_content(dataset, rng)
    text = _PB_SCAFFOLD.sub("", template) if content is None else template
    languages = rng.sample(list(pools["languages"]), 2)
    values = {
        "content": content or "",
        "task": rng.choice(list(pools["math" if dataset == "math" else "mmlu"])),
        "soruce_lang": languages[0],
        "target_lang": languages[1],
        "": languages[1],  # a bare "{}" in two iwslt templates stands for the target language
    }
    return _PB_SLOT.sub(lambda m: values.get(m.group(1), m.group(0)), text).strip()


def promptbench_benign_rows(
    wheel_path: str | Path, *, limit: int = PROMPTBENCH_LIMIT
) -> list[CorpusRow]:
    """Rows of `promptbench_benign`: promptbench's task- and role-oriented task instructions.

    Benign look-alikes full of "respond only with", "as a ...", "answer:" phrasing. Slots are
    filled from promptbench's own pools (math topics, MMLU subjects, languages) with a seeded
    generator; a `{content}` slot gets a made-up input where that is cheap (brackets, boolean
    expressions, linear equations), and otherwise its question/answer scaffold is removed.
    """
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        config = wheel.module(_PB_CONFIG)
        pools: dict[str, list[str]] = {
            "languages": sorted({str(v) for v in config.constants["LANGUAGES"].values()}),
            "math": sorted(
                {str(v).strip() for v in config.constants["MATH_QUESTION_TYPES"].values()}
            ),
            "mmlu": sorted(
                str(t).replace("_", " ")
                for t in wheel.module(_PB_DATASETS).local_assignment("MMLU", "tasks")
            ),
        }
        for module, constant in (
            ("task_oriented.py", "TASK_ORIENTED_PROMPTS"),
            ("role_oriented.py", "ROLE_ORIENTED_PROMPTS"),
        ):
            origin = _PB_PROMPTS + module
            prompts = wheel.module(origin).constants.get(constant)
            if not isinstance(prompts, dict):
                raise ConfigError(f"{wheel.path.name}:{origin}: no {constant}")
            for dataset in sorted(prompts):
                rng = _rng(f"promptbench:{constant}:{dataset}")
                for template in prompts[dataset]:
                    text = _pb_fill(str(template), dataset, pools, rng)
                    rows.append(
                        CorpusRow(
                            text, 0, PROMPTBENCH_SOURCE, "benign:lookalike", f"{origin}:{dataset}"
                        )
                    )
    return _capped(rows, limit, 0, "promptbench")
