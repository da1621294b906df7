"""Use cases: what the deployment is for, and the latency limits that follow from it.

`config/use_cases.csv` holds one row per use case (chat, batch, custom) with its time-to-first-token and
time-per-output-token limits, why, and the public source of the figures. A scenario's `use_case` key (or
`--use-case`) sets the search's latency limits from it; explicit `max_ttft_ms` / `max_tpot_ms` win.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from .csvio import Cells, parse_table, read_text
from .domain import USE_CASE_KEYS
from .errors import InputError, Problem

USE_CASES_FILE = Path(__file__).resolve().parent.parent / "config" / "use_cases.csv"
COLUMNS = ("key", "label", "max_ttft_ms", "max_tpot_ms", "rationale", "source")
MAX_LATENCY_MS = 1e9


@dataclass(frozen=True)
class UseCase:
    """A use case and its latency limits (None: no limit)."""

    key: str  # chat | batch | custom
    label: str
    max_ttft_ms: float | None
    max_tpot_ms: float | None
    rationale: str
    source: str

    @property
    def interactive(self) -> bool:
        return self.max_ttft_ms is not None or self.max_tpot_ms is not None


def load_use_cases(path: Path | str = USE_CASES_FILE) -> tuple[UseCase, ...]:
    """The use cases of `path` (default config/use_cases.csv), in file order; problems name row and column."""
    return _load(str(path))


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[UseCase, ...]:
    problems: list[Problem] = []
    table = parse_table(read_text(path), path, COLUMNS, (), problems=problems)
    out: list[UseCase] = []
    for lineno, row in table.rows:
        c = Cells(table, lineno, row, problems)
        key = c.text("key")
        if key is not None and key not in USE_CASE_KEYS:
            problems.append(Problem(f"unknown use case '{key}' (expected {', '.join(USE_CASE_KEYS)})", path, lineno,
                                    "key"))
            continue
        limits = [c.number(col, allow_missing=True, maximum=MAX_LATENCY_MS, unit="ms")
                  for col in ("max_ttft_ms", "max_tpot_ms")]
        label = c.text("label")
        if key is None or label is None:
            continue
        out.append(UseCase(key, label, limits[0], limits[1], row.get("rationale", ""), row.get("source", "")))
    missing = [k for k in USE_CASE_KEYS if k not in {u.key for u in out}]
    if missing and not problems:
        problems.append(Problem(f"no row for use case(s) {', '.join(missing)}", path, None, "key"))
    if problems:
        raise InputError(problems)
    return tuple(out)


def get_use_case(key: str, path: Path | str = USE_CASES_FILE) -> UseCase:
    """The use case named `key`; an unknown key is an InputError listing the known ones."""
    for uc in load_use_cases(path):
        if uc.key == key:
            return uc
    raise InputError(Problem(f"unknown use case '{key}' (known: {', '.join(u.key for u in load_use_cases(path))})",
                             "settings", column="use_case"))


def apply_use_case(settings, key: str | None, max_ttft_ms: float | None = None, max_tpot_ms: float | None = None):
    """`settings` (a SearchSettings) for use case `key`: chat sets its limits, batch removes them, custom
    keeps the current ones; `max_ttft_ms` / `max_tpot_ms` given here override the use case's."""
    if key is None:
        changes: dict = {}
    else:
        uc = get_use_case(key)
        changes = {"use_case": key}
        if key != "custom":
            changes.update(max_ttft_ms=uc.max_ttft_ms, max_tpot_ms=uc.max_tpot_ms)
    if max_ttft_ms is not None:
        changes["max_ttft_ms"] = max_ttft_ms
    if max_tpot_ms is not None:
        changes["max_tpot_ms"] = max_tpot_ms
    return replace(settings, **changes) if changes else settings


def interactive_warning(ttft_ms: float, tpot_ms: float, use_case: UseCase | str | None = None) -> str | None:
    """A plain sentence when a plan is too slow for a person waiting on it, else None.

    The yardstick is the interactive-chat limits of config/use_cases.csv. No warning for the batch use
    case (nobody waits on each request there)."""
    if isinstance(use_case, str):
        use_case = get_use_case(use_case)
    if use_case is not None and use_case.key == "batch":
        return None
    chat = get_use_case("chat")
    over = []
    if chat.max_ttft_ms is not None and ttft_ms > chat.max_ttft_ms:
        over.append(f"waits {_duration(ttft_ms)} for the first token (interactive chat: at most "
                    f"{_duration(chat.max_ttft_ms)})")
    if chat.max_tpot_ms is not None and tpot_ms > chat.max_tpot_ms:
        over.append(f"then gets a token every {_duration(tpot_ms)} (interactive chat: at most "
                    f"{_duration(chat.max_tpot_ms)}, {1000 / chat.max_tpot_ms:.0f} tokens/s)")
    if not over:
        return None
    advice = ("choose the interactive chat use case to plan within its limits"
              if use_case is None or use_case.key != "chat" else "these are beyond the limits set")
    return f"Too slow for interactive use: each user {' and '.join(over)}; fine for batch work; {advice}."


def _duration(ms: float) -> str:
    if not math.isfinite(ms):
        return "forever"
    if ms >= 1000:
        return f"{ms / 1000:.3g} s"
    return f"{ms:.3g} ms"
