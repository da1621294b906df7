"""Tolerant, precise CSV reading: every problem names its file, row and column.

Accepted quirks: a UTF-8 byte-order mark, stray spaces, blank lines (also rows of empty cells), CRLF or
CR line ends, quoted fields, trailing commas, and semicolon- or tab-separated files when the header
row has no comma (the table records which separator it used, so the caller can say so). Everything is
parsed as data only.
"""
from __future__ import annotations

import csv
import difflib
import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .domain import MIN_MAGNITUDE
from .errors import InputError, Problem

MAX_FILE_BYTES = 5_000_000
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_LINE_END = re.compile(r"\r\n|\r|\n")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


@dataclass(frozen=True)
class Table:
    """A parsed CSV: header names (lower-cased, stripped) and rows with their 1-based line numbers."""

    file: str
    header: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, str]], ...]
    delimiter: str = ","
    missing: tuple[str, ...] = ()  # required columns that are absent (already reported)

    @property
    def delimiter_note(self) -> str | None:
        """What to tell the user when the file was not comma-separated."""
        if self.delimiter == ",":
            return None
        return f"{self.file} is read as {DELIMITER_NAMES[self.delimiter]}-separated (its header has no comma)"


def read_file(path: Path | str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else is an InputError naming the file.

    The one way the planner reads an input file. Directories, FIFOs, devices, sockets and symbolic links to
    them are refused from `os.stat` before anything is opened; the file is opened non-blocking and checked
    again with `fstat` (it may have been swapped in between), and at most `limit + 1` bytes are read, so a
    file that grows, or lies about its size, is refused too. Nothing can hang or fill the memory."""
    path = Path(path)
    where = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        if os.path.islink(path):
            raise InputError(Problem(f"is a symbolic link to '{os.readlink(path)}', which does not exist",
                                     where)) from exc
        raise InputError(Problem("no such file", where)) from exc
    except OSError as exc:  # permission denied on a folder above, a loop of links, a name too long, ...
        raise InputError(Problem(f"cannot read: {exc.strerror or exc}", where)) from exc
    _check_regular(st.st_mode, path)
    if st.st_size > limit:
        raise InputError(Problem(_too_large(st.st_size, limit), where))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputError(Problem(f"cannot read: {exc.strerror or exc}", where)) from exc
    try:
        _check_regular(os.fstat(fd).st_mode, path)
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise InputError(Problem(f"cannot read: {exc.strerror or exc}", where)) from exc
    finally:
        os.close(fd)
    if total > limit:
        raise InputError(Problem(_too_large(None, limit), where))
    return b"".join(chunks)


def _check_regular(mode: int, path: Path) -> None:
    if stat.S_ISREG(mode):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    if path.is_symlink():
        kind = f"a symbolic link to {kind} ('{os.readlink(path)}')"
    raise InputError(Problem(f"is {kind}, not a regular file; give a plain CSV file", str(path)))


def _too_large(size: int | None, limit: int) -> str:
    what = f"is {size:,} bytes" if size is not None else "has more bytes than it said"
    return f"file {what}, larger than the {limit:,}-byte limit ({limit / 1e6:g} MB)"


def read_text(path: Path | str, limit: int = MAX_FILE_BYTES) -> str:
    """A regular UTF-8 text file of at most `limit` bytes (see `read_file`)."""
    return decode(read_file(path, limit), str(path))


def decode(data: bytes, file: str) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(Problem("is UTF-16 text; save it as UTF-8 (plain CSV)", file))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(Problem(f"not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV", file)) from exc


def split_rows(text: str, file: str = "", problems: list[Problem] | None = None
               ) -> tuple[str, list[tuple[int, list[str]]]]:
    """(delimiter, [(line number, stripped fields)]) without blank lines or rows of empty cells.

    Each line is parsed on its own so that line numbers stay exact (a quoted field cannot span lines).
    A line the csv module refuses (a field over its 131,072-character limit) is a problem at its row:
    appended to `problems` (the line is skipped) or, without a list, raised."""
    text = text.removeprefix("\ufeff")
    lines = [(i + 1, line) for i, line in enumerate(_LINE_END.split(text)) if line.strip()]
    if not lines:
        return ",", []
    first = lines[0][1]
    delimiter = "," if "," in first else ";" if ";" in first else "\t" if "\t" in first else ","
    rows = []
    for lineno, line in lines:
        try:
            fields = [f.strip() for f in next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))]
        except csv.Error as exc:
            limit = csv.field_size_limit()
            message = (f"a field is longer than {limit:,} characters (the CSV field limit); no value of a scenario "
                       "is that long" if "field limit" in str(exc) else f"cannot be read as CSV: {exc}")
            found = Problem(message, file, lineno)
            if problems is None:
                raise InputError(found) from exc
            problems.append(found)
            continue
        if any(fields):
            rows.append((lineno, fields))
    return delimiter, rows


def parse_table(text: str, file: str, required: tuple[str, ...] = (), optional: tuple[str, ...] | None = None,
                keep_case_header: bool = False, problems: list[Problem] | None = None,
                join_extra: bool = False) -> Table:
    """Parse CSV text; check required columns and (when `optional` is given) unknown ones.

    With `problems`, problems are appended there and the rows that could be read are returned (so a
    caller can go on checking them); without, any problem raises InputError. `join_extra` puts surplus
    cells back into the last column (config.csv: `budget_factors,0.4,0.7` is unambiguous)."""
    found: list[Problem] = []
    delimiter, parsed = split_rows(text, file, found)
    if found and (not parsed or (found[0].row or 0) < parsed[0][0]):  # the header row itself is unreadable
        return _finish(Table(file, (), (), delimiter, tuple(required)), found, problems)
    if not parsed:
        found.append(Problem("file is empty (a header row and at least one data row are needed)", file))
        return _finish(Table(file, (), (), delimiter, tuple(required)), found, problems)
    header_line, raw_header = parsed[0]
    header = [h if keep_case_header else h.lower() for h in raw_header]
    while header and not header[-1]:  # trailing separators on the header row
        header.pop()
    missing = tuple(c for c in required if c not in header)
    for c in missing:
        found.append(Problem(f"missing column '{c}' (columns found: {', '.join(h for h in header if h) or 'none'})",
                             file, header_line))
    if optional is not None:
        known = list(required) + list(optional)
        for c in header:
            if c and c not in known:
                near = difflib.get_close_matches(c, known, n=1, cutoff=0.6)
                hint = f"did you mean '{near[0]}'? " if near else ""
                found.append(Problem(f"unknown column ({hint}expected {', '.join(known)})", file, header_line, c))
    for c in sorted({h for h in header if h and header.count(h) > 1}):
        found.append(Problem("column appears more than once", file, header_line, c))
    other = ";" if delimiter == "," else ","
    rows = []
    for lineno, values in parsed[1:]:
        if len(header) > 1 and len(values) == 1 and other in values[0]:
            found.append(Problem(f"this row is separated by '{other}' but the header by '{delimiter}'", file, lineno))
            continue
        extra = values[len(header):]
        if any(extra):
            if join_extra and header:
                values = values[:len(header) - 1] + [delimiter.join(values[len(header) - 1:]).rstrip(delimiter)]
            else:
                found.append(Problem(f"{len(values)} values but the header has {len(header)} columns "
                                     "(quote a value that contains the separator)", file, lineno))
                continue
        row = {}
        for i, h in enumerate(header):
            value = values[i] if i < len(values) else ""
            if not h and value:
                found.append(Problem(f"value '{value}' is in column {i + 1}, which has no name in the header",
                                     file, lineno))
            elif h:
                row.setdefault(h, value)
        rows.append((lineno, row))
    if not rows and not found:
        found.append(Problem("has a header but no data rows", file, header_line))
    return _finish(Table(file, tuple(header), tuple(rows), delimiter, missing), found, problems)


def _finish(table: Table, found: list[Problem], problems: list[Problem] | None) -> Table:
    if problems is None:
        if found:
            raise InputError(found)
    else:
        problems.extend(found)
    return table


class Cells:
    """Typed access to one row's cells that records problems instead of raising at the first.

    A cell of a required column that is missing from the header reads as None without a new problem:
    the missing column was reported once, at the header."""

    def __init__(self, table: Table, lineno: int, row: dict[str, str], problems: list[Problem]):
        self.table, self.lineno, self.row, self.problems = table, lineno, row, problems

    def _bad(self, column: str, message: str) -> None:
        self.problems.append(Problem(message, self.table.file, self.lineno, column))

    def text(self, column: str, default: str | None = None) -> str | None:
        value = self.row.get(column, "")
        if value == "":
            if default is None and column not in self.table.missing:
                self._bad(column, "is empty")
            return default
        return value

    def number(self, column: str, default: float | None = None, positive: bool = True,
               maximum: float | None = None, allow_missing: bool = False, unit: str = "",
               minimum: float | None = None) -> float | None:
        value = self.row.get(column, "")
        if value == "":
            if default is None and not allow_missing and column not in self.table.missing:
                self._bad(column, "is empty; a number is required")
            return default
        x, message = check_number(value, positive=positive, maximum=maximum, unit=unit, minimum=minimum)
        if message:
            self._bad(column, message)
        return x

    def integer(self, column: str, default: int | None = None, maximum: float | None = None,
                allow_missing: bool = False, unit: str = "") -> int | None:
        x = self.number(column, default, maximum=maximum, allow_missing=allow_missing, unit=unit)
        if x is None:
            return None
        if int(x) != x:
            self._bad(column, f"must be a whole number, got {self.row.get(column)}")
            return None
        return int(x)

    def boolean(self, column: str, default: bool | None = None) -> bool | None:
        value = self.row.get(column, "")
        if value == "":
            if default is None and column not in self.table.missing:
                self._bad(column, "is empty; true or false is required")
            return default
        x = parse_bool(value)
        if x is None:
            self._bad(column, f"'{value}' is not true or false (write true/false, yes/no or 1/0)")
        return x


def parse_bool(value: str) -> bool | None:
    v = value.strip().lower()
    if v in ("true", "1", "yes", "y"):
        return True
    if v in ("false", "0", "no", "n"):
        return False
    return None


def check_number(value: str, positive: bool = True, maximum: float | None = None,
                 unit: str = "", minimum: float | None = None) -> tuple[float | None, str]:
    """(number, "") or (None, what is wrong with it).

    Besides the sign and `maximum`: a number other than 0 below `minimum` (a sanity floor such as
    $0.0001 per GPU-hour), or with no floor given below MIN_MAGNITUDE (1e-30, e.g. a denormal 1e-320),
    is out of range."""
    try:
        x = float(value)
    except ValueError:
        if _DECIMAL_COMMA.match(value.strip()):
            return None, f"'{value}' is not a number (use a point as the decimal separator)"
        return None, f"'{value}' is not a number"
    if not math.isfinite(x):
        return None, f"'{value}' is not a finite number"
    if positive and x <= 0:
        return None, f"must be positive, got {value}"
    if x < 0:
        return None, f"cannot be negative, got {value}"
    if maximum is not None and x > maximum:
        return None, f"{value} is above the limit of {fmt_limit(maximum)}{' ' + unit if unit else ''}"
    if x and minimum is not None and x < minimum:
        return None, (f"{value} is below the minimum of {fmt_limit(minimum)}{' ' + unit if unit else ''} "
                      "(too small to be real)")
    if x and x < MIN_MAGNITUDE:
        return None, f"{value} is too small to be a real value (the smallest accepted is {MIN_MAGNITUDE:g})"
    return x, ""


def fmt_limit(x: float) -> str:
    """10000000 -> '10,000,000' (never '1e+07')."""
    return f"{int(x):,}" if x == int(x) else f"{x:,}"
