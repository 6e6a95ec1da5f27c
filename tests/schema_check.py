"""Independent validation of emitted records against the published JSON Schemas (jsonschema)."""

from __future__ import annotations

from typing import Any

import jsonschema
from referencing import Registry, Resource

from topics.schemas import NAMES, load_schema

_REGISTRY = Registry().with_resources(
    (load_schema(n)["$id"], Resource.from_contents(load_schema(n))) for n in NAMES
)


def assert_valid(record: Any, name: str) -> None:
    """Fail the test when `record` does not validate against schema `name`."""
    jsonschema.Draft202012Validator(load_schema(name), registry=_REGISTRY).validate(record)
