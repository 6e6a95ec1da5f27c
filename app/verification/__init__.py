"""The verification stage: policy facts, the policy language, provers and the verifier.

Public surface (the verify agent and the CLI use only these):

    Subject, VerificationOutcome, Verifier          decide one undecided prompt
    load_policies, check_policy_file, PolicySet     load/analyse a policy file
    ProofCache, MemoryProofCache, RedisProofCache   proof caches
    LeanBackend                                     optional Lean 4 re-check
"""

from app.verification.analysis import AnalysisReport, Finding, check_policy_file, load_policies
from app.verification.cache import MemoryProofCache, ProofCache, RedisProofCache
from app.verification.facts import CATALOG, FactSet, Subject, extract_facts
from app.verification.lean_backend import LeanBackend, render_obligation
from app.verification.policy import Policy, PolicySet, parse_policy_text
from app.verification.verifier import PolicyCheck, VerificationOutcome, Verifier

__all__ = [
    "CATALOG",
    "AnalysisReport",
    "FactSet",
    "Finding",
    "LeanBackend",
    "MemoryProofCache",
    "Policy",
    "PolicyCheck",
    "PolicySet",
    "ProofCache",
    "RedisProofCache",
    "Subject",
    "VerificationOutcome",
    "Verifier",
    "check_policy_file",
    "extract_facts",
    "load_policies",
    "parse_policy_text",
    "render_obligation",
]
