"""The planner's closed vocabularies as string enums: a member equals, hashes, prints and serialises (JSON,
CSV) exactly as its string, so files, JSON output and comparisons with plain strings are unchanged."""
from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Where a stage sits in the pipeline; it matters only for the embedding (first) and LM head (last)."""
    FIRST = "first"
    MIDDLE = "middle"
    LAST = "last"
    ONLY = "only"


ROLES = (Role.FIRST, Role.MIDDLE, Role.LAST, Role.ONLY)


def holds_embedding(role: str) -> bool:
    """The stage that reads the prompt: the first of several, or the only one."""
    return role in (Role.FIRST, Role.ONLY)


def holds_lm_head(role: str) -> bool:
    """The stage that produces the tokens: the last of several, or the only one."""
    return role in (Role.LAST, Role.ONLY)


class Method(StrEnum):
    """How `solve` searches: exact (proven min $/token), enumeration (the seed's budget grid), weighted
    (the seed's cost-weight objective)."""
    EXACT = "exact"
    ENUMERATION = "enumeration"
    WEIGHTED = "weighted"


METHODS = (Method.EXACT, Method.ENUMERATION, Method.WEIGHTED)
