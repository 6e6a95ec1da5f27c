"""The AIMDS exception tree: every error the core raises derives from `AimdsError`.

AimdsError
├── ConfigError            invalid settings or artifacts; stops start-up
├── ParseError             a wire record that cannot become a Prompt (dead-lettered)
│   ├── InvalidEncoding    bytes that are not UTF-8
│   ├── InvalidJson        not a JSON object
│   ├── SchemaViolation    missing or wrong-typed fields
│   ├── EmptyText          text empty or only whitespace
│   ├── TextTooLarge       text above the configured limit
│   ├── DuplicatePrompt    a prompt id already seen for this session
│   ├── TimestampOutOfRange  a time ahead of this worker's clock (beyond the allowed skew)
│   └── FeedbackRefused    a feedback record that may not become a pattern
├── DetectorError          a detector failed; the caller fails closed (ESCALATE)
├── PatternStoreError      pattern store load/save/index problems
├── UpdateRefused          a pattern update with a missing, unknown or bad signature
├── PolicyError            a policy file that does not load or type-check (file, line)
├── ProverError            a prover that could not run
│   └── ProverTimeout      an obligation that ran out of time
└── BrokerError            the local Kafka / Redis runtime could not start or stop
"""

from __future__ import annotations


class AimdsError(Exception):
    """Base class of every error raised by AIMDS."""


class ConfigError(AimdsError):
    """Invalid configuration: raised at start-up, never while serving."""


class ParseError(AimdsError):
    """A wire record that cannot be turned into a valid prompt."""

    #: short machine-readable reason written into dead-letter records
    reason: str = "parse_error"


class InvalidEncoding(ParseError):
    """The record's bytes are not valid UTF-8."""

    reason = "invalid_encoding"


class InvalidJson(ParseError):
    """The record is not a JSON object."""

    reason = "invalid_json"


class SchemaViolation(ParseError):
    """The record misses a required field or has a field of the wrong type."""

    reason = "schema_violation"


class EmptyText(ParseError):
    """The prompt text is empty or only whitespace."""

    reason = "empty_text"


class TextTooLarge(ParseError):
    """The prompt text is larger than the configured limit."""

    reason = "text_too_large"


class DuplicatePrompt(ParseError):
    """A prompt id that was already screened for the same session."""

    reason = "duplicate_prompt"


class TimestampOutOfRange(ParseError):
    """A prompt or Kafka record time ahead of the worker's clock by more than the allowed skew.

    Event time orders a session's history and Faust's windows: a far-future time would
    blind the session's temporal checks, and a Kafka time far ahead makes Faust's windowed
    tables allocate without bound.
    """

    reason = "timestamp_out_of_range"


class FeedbackRefused(ParseError):
    """A valid feedback record that must not become a pattern (e.g. it reads as benign)."""

    reason = "feedback_refused"


class DetectorError(AimdsError):
    """A detector could not reach a result; callers must fail closed."""


class PatternStoreError(AimdsError):
    """The pattern store could not load, save or query its index."""


class UpdateRefused(AimdsError):
    """A record on the patterns topic that is not signed by a trusted key (not applied)."""


class PolicyError(AimdsError):
    """A policy file that does not parse or type-check."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(where + message)
        self.file = file
        self.line = line


class ProverError(AimdsError):
    """A prover that failed to run or returned an unusable answer."""


class ProverTimeout(ProverError):
    """A proof obligation that was not discharged within its time budget."""


class BrokerError(AimdsError):
    """The local Kafka or Redis runtime could not be started, reached or stopped."""
