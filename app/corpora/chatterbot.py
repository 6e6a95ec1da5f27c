"""The `chatterbot_chat` source: the user side of chatterbot-corpus's dialogues, 28 languages."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.corpora._rows import CHATTERBOT_SOURCE, CorpusRow, _capped
from app.corpora._wheels import _Wheel
from app.errors import ConfigError

_CB_DATA = "chatterbot_corpus/data/"
CHATTERBOT_LIMIT = 1000


def chatterbot_chat_rows(
    wheel_path: str | Path, *, limit: int = CHATTERBOT_LIMIT
) -> list[CorpusRow]:
    """Rows of `chatterbot_chat`: what people say to a chat bot, as benign.

    Small talk and questions put to the assistant itself ("Who are you?", "Are you
    sentient?", "What is your favorite number"), greetings, tech-support complaints and
    trivia, in 28 languages. None of the benign dev corpora has this register; without it
    short questions about the assistant scored like prompt-extraction attempts. Each
    dialogue's opening turn and every other turn after it are the user's; the replies are
    left out. Duplicates are dropped and the rest sampled to `limit`.
    """
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        files = sorted(n for n in wheel.names if n.startswith(_CB_DATA) and n.endswith(".yml"))
        if not files:
            raise ConfigError(f"{wheel.path.name}: no dialogue files under {_CB_DATA}")
        for name in files:
            try:
                doc = yaml.safe_load(wheel.text(name))
            except yaml.YAMLError as exc:
                raise ConfigError(f"{wheel.path.name}:{name}: not YAML: {exc}") from exc
            dialogues = doc.get("conversations") if isinstance(doc, dict) else None
            if not isinstance(dialogues, list):
                raise ConfigError(f"{wheel.path.name}:{name}: no conversations list")
            origin = name[len(_CB_DATA) :]
            for dialogue in dialogues:
                if not isinstance(dialogue, list):
                    continue
                for turn in dialogue[::2]:
                    if isinstance(turn, str) and turn.strip():
                        rows.append(CorpusRow(turn.strip(), 0, CHATTERBOT_SOURCE, "benign", origin))
    return _capped(rows, limit, 0, "chatterbot")
