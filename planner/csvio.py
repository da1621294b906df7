"""Tolerant, precise CSV reading: every problem names its file, row and column.

Accepted quirks: a UTF-8 byte-order mark, stray spaces, blank lines, and semicolon-separated files
(when the header has no comma). Everything is parsed as data only.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, Problem

MAX_FILE_BYTES = 5_000_000


@dataclass(frozen=True)
class Table:
    """A parsed CSV: header names (lower-cased, stripped) and rows with their 1-based line numbers."""

    file: str
    header: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, str]], ...]


def read_text(path: Path | str) -> str:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(Problem(f"cannot read: {exc.strerror}", str(path))) from exc
    if size > MAX_FILE_BYTES:
        raise InputError(Problem(f"file is {size} bytes, larger than the {MAX_FILE_BYTES}-byte limit", str(path)))
    data = path.read_bytes()
    return decode(data, str(path))


def decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(Problem(f"not UTF-8 text (byte {exc.start})", file)) from exc


def parse_table(text: str, file: str, required: tuple[str, ...] = (), optional: tuple[str, ...] | None = None,
                keep_case_header: bool = False) -> Table:
    """Parse CSV text; check required columns and (when `optional` is given) unknown ones."""
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    if not lines:
        raise InputError(Problem("file is empty", file))
    first = lines[0][1]
    delimiter = "," if "," in first or ";" not in first else ";"
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO("\n".join(line for _, line in lines)), delimiter=delimiter)
    parsed = list(reader)
    header = tuple(h.strip() if keep_case_header else h.strip().lower() for h in parsed[0])
    missing = [c for c in required if c not in header]
    for c in missing:
        problems.append(Problem(f"missing column '{c}' (columns found: {', '.join(header)})", file, 1))
    if optional is not None:
        known = set(required) | set(optional)
        for c in header:
            if c and c not in known:
                problems.append(Problem(f"unknown column '{c}' (expected {', '.join(sorted(known))})", file, 1, c))
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    for c in dupes:
        problems.append(Problem("column appears more than once", file, 1, c))
    rows = []
    for (lineno, _), values in zip(lines[1:], parsed[1:]):
        if len(values) > len(header) and any(v.strip() for v in values[len(header):]):
            problems.append(Problem(f"{len(values)} values but the header has {len(header)} columns", file, lineno))
            continue
        row = {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header)}
        rows.append((lineno, row))
    if problems:
        raise InputError(problems)
    return Table(file, header, tuple(rows))


class Cells:
    """Typed access to one row's cells that records problems instead of raising at the first."""

    def __init__(self, table: Table, lineno: int, row: dict[str, str], problems: list[Problem]):
        self.table, self.lineno, self.row, self.problems = table, lineno, row, problems

    def _bad(self, column: str, message: str) -> None:
        self.problems.append(Problem(message, self.table.file, self.lineno, column))

    def text(self, column: str, default: str | None = None) -> str | None:
        value = self.row.get(column, "")
        if value == "":
            if default is None:
                self._bad(column, "is empty")
            return default
        return value

    def number(self, column: str, default: float | None = None, positive: bool = True,
               maximum: float | None = None, allow_missing: bool = False) -> float | None:
        value = self.row.get(column, "")
        if value == "":
            if default is None and not allow_missing:
                self._bad(column, "is empty; a number is required")
            return default
        try:
            x = float(value)
        except ValueError:
            self._bad(column, f"'{value}' is not a number")
            return None
        if not math.isfinite(x):
            self._bad(column, f"'{value}' is not a finite number")
            return None
        if positive and x <= 0:
            self._bad(column, f"must be positive, got {value}")
            return None
        if not positive and x < 0:
            self._bad(column, f"cannot be negative, got {value}")
            return None
        if maximum is not None and x > maximum:
            self._bad(column, f"{value} is implausibly large (limit {maximum:g})")
            return None
        return x

    def integer(self, column: str, default: int | None = None, maximum: float | None = None,
                allow_missing: bool = False) -> int | None:
        x = self.number(column, default, maximum=maximum, allow_missing=allow_missing)
        if x is None:
            return None
        if int(x) != x:
            self._bad(column, f"must be a whole number, got {self.row.get(column)}")
            return None
        return int(x)

    def boolean(self, column: str, default: bool | None = None) -> bool | None:
        value = self.row.get(column, "").lower()
        if value == "":
            if default is None:
                self._bad(column, "is empty; true or false is required")
            return default
        if value in ("true", "1", "yes", "y"):
            return True
        if value in ("false", "0", "no", "n"):
            return False
        self._bad(column, f"'{value}' is not true/false")
        return None
