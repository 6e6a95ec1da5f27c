"""JSON Schemas (draft 2020-12) of every wire record, loaded by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

NAMES = ("prompt", "decision", "verification", "deadletter", "feedback", "pattern")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema of record `name` (one of `NAMES`)."""
    if name not in NAMES:
        raise KeyError(f"no schema named {name!r}; known: {', '.join(NAMES)}")
    text = resources.files(__package__).joinpath(f"{name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


_BASE = "https://aimds.dev/schemas/"


def _local_ref(uri: str) -> dict[str, Any]:
    """Resolve `$ref`s to our own schemas from the package, never from the network."""
    if not uri.startswith(_BASE):
        raise ValueError(f"refusing to fetch remote schema {uri}")
    return load_schema(uri[len(_BASE) :].removesuffix(".json"))


@cache
def validator(name: str) -> Callable[[Any], Any]:
    """A compiled fastjsonschema validator of record `name` (raises JsonSchemaValueException)."""
    import fastjsonschema

    compiled: Callable[[Any], Any] = fastjsonschema.compile(
        load_schema(name), handlers={"https": _local_ref}
    )
    return compiled
