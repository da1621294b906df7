"""Cell-level checks of the GPU-pool table as the user edits it, so that nothing falls back silently.

In the file format a blank datasheet cell means "take the catalogue value"; in the editor the table is
shown with every cell filled in, so a cell that is blank there was emptied (or was typed as text the
number column refused) and is an error on that cell, with the catalogue value to type back. Messages
name the table, the row as shown (1-based, with its GPU type) and the column header as shown.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from planner import Catalog, InputError, Problem

from .pool_texts import blank

if TYPE_CHECKING:
    import pandas as pd
# pandas is imported where a table is made, not with this module (see ui.pool_texts)

POOL_TABLE = "GPU pool table"
# column name in the frame -> (header as shown in the editor, catalogue attribute, unit suffix)
POOL_HEADERS = {
    "gpu_type": ("GPU type", None, ""),
    "count": ("count", None, ""),
    "memory_gb": ("mem (GB)", "memory_gb", " GB"),
    "price_usd_per_hour": ("$/GPU-hour", "price_usd_per_hour", " $/h"),
    "gpus_per_node": ("per node", "gpus_per_node", ""),
    "fp16_dense_tflops": ("TFLOP/s fp16", "fp16_dense_tflops", " TFLOP/s"),
    "hbm_gb_per_s": ("HBM GB/s", "hbm_gb_per_s", " GB/s"),
    "intra_link": ("link", "intra_link", ""),
    "intra_link_gb_per_s": ("link GB/s", "intra_link_gb_per_s", " GB/s"),
}
WHOLE = ("count", "gpus_per_node")
POSITIVE = ("memory_gb", "gpus_per_node", "fp16_dense_tflops", "hbm_gb_per_s", "intra_link_gb_per_s")
LINKS = ("nvlink", "pcie")


@dataclass(frozen=True)
class CellProblem:
    row: int  # 0-based position in the frame as shown
    column: str  # frame column name
    message: str  # without the location

    def where(self, gpu_type: str) -> str:
        header = POOL_HEADERS[self.column][0]
        label = f" ({gpu_type})" if gpu_type else ""
        return f"{POOL_TABLE}, row {self.row + 1}{label}, column '{header}'"


def _number(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def catalogue_hint(cat: Catalog, gpu_type: str, column: str) -> str:
    """'; catalogue value 1.79 $/h (source: ...)' for a catalogue GPU, '' otherwise."""
    attr = POOL_HEADERS[column][1]
    hit = cat.resolve_gpu(gpu_type) if gpu_type else None
    if attr is None or hit is None:
        return ""
    spec = cat.gpus[hit[0]]
    value = getattr(spec, attr)
    shown = value if isinstance(value, str) else f"{value:g}"
    source = spec.price_source if column == "price_usd_per_hour" else spec.datasheet_source
    return (f"; the catalogue's value for {hit[0]} is {shown}{POOL_HEADERS[column][2]}"
            + (f" ({source})" if source else ""))


def pool_cell_problems(df: pd.DataFrame, cat: Catalog) -> list[CellProblem]:
    """Every empty or invalid cell of the pool table (rows left entirely empty are ignored)."""
    out: list[CellProblem] = []
    for i, row in enumerate(df.to_dict("records")):
        if all(blank(row.get(c)) for c in POOL_HEADERS):
            continue
        name = "" if blank(row.get("gpu_type")) else str(row["gpu_type"]).strip()
        known = bool(name) and cat.resolve_gpu(name) is not None
        for c in POOL_HEADERS:
            x = row.get(c)
            if c == "gpu_type":
                if not name:
                    out.append(CellProblem(i, c, "empty: name a catalogue GPU (see the Catalogue page) or a "
                                                 "custom type"))
                continue
            if blank(x):
                if c == "count":
                    out.append(CellProblem(i, c, "empty: enter how many GPUs of this type are available (0 "
                                                 "to leave it out)"))
                elif known:
                    out.append(CellProblem(i, c, "empty: enter a value" + catalogue_hint(cat, name, c)
                                           + ", or press 'Fill empty cells from the catalogue'"))
                else:
                    out.append(CellProblem(i, c, f"empty: '{name}' is not in the catalogue, so every datasheet "
                                                 "column needs a value"))
                continue
            if c == "intra_link":
                if str(x).strip().lower() not in LINKS:
                    out.append(CellProblem(i, c, f"'{x}' is not a link type; use nvlink or pcie"))
                continue
            v = _number(x)
            if v is None:
                out.append(CellProblem(i, c, f"'{x}' is not a number"))
            elif c in WHOLE and v != int(v):
                out.append(CellProblem(i, c, f"{v:g} is not a whole number"))
            elif v < 0:
                out.append(CellProblem(i, c, f"{v:g} is negative"))
            elif c in POSITIVE and v == 0:
                out.append(CellProblem(i, c, "0: must be more than zero"))
    return out


def from_library(err: InputError, df: pd.DataFrame) -> tuple[list[CellProblem], list[Problem]]:
    """The library's problems with the pool file (file row N = table row N - 1, header as shown) as cell
    problems; the others unchanged."""
    cells: list[CellProblem] = []
    others: list[Problem] = []
    for p in err.problems:
        row = (p.row - 2) if p.row is not None else None
        if p.file.endswith("gpu_pool.csv") and row is not None and 0 <= row < len(df) and p.column in POOL_HEADERS:
            cells.append(CellProblem(row, p.column, p.message))
        elif p.file.endswith("gpu_pool.csv") and row is not None and 0 <= row < len(df):
            cells.append(CellProblem(row, "gpu_type", p.message))
        else:
            others.append(p)
    return cells, others


def as_input_error(problems: list[CellProblem], df: pd.DataFrame, others: list[Problem] = ()) -> InputError:
    names = [("" if blank(x) else str(x).strip()) for x in df["gpu_type"]]
    return InputError([Problem(p.message, p.where(names[p.row] if p.row < len(names) else ""))
                       for p in problems] + list(others))


def fill_from_catalogue(df: pd.DataFrame, cat: Catalog) -> tuple[pd.DataFrame, list[str]]:
    """The table with the empty datasheet cells of catalogue GPUs filled with the catalogue's values
    (explicitly, so they show), and one line per filled cell saying what came from where."""
    out = df.copy()
    notes: list[str] = []
    for i in range(len(out)):
        name = out.at[i, "gpu_type"]
        hit = None if blank(name) else cat.resolve_gpu(str(name).strip())
        if hit is None:
            continue
        spec = cat.gpus[hit[0]]
        for c, (header, attr, unit) in POOL_HEADERS.items():
            if attr is not None and blank(out.at[i, c]):
                value = getattr(spec, attr)
                out.at[i, c] = value
                source = spec.price_source if c == "price_usd_per_hour" else spec.datasheet_source
                shown = value if isinstance(value, str) else f"{value:g}"
                notes.append(f"row {i + 1} ({name}), '{header}': {shown}{unit} from the catalogue"
                             + (f" ({source})" if source else ""))
    return out, notes


def marked_frame(df: pd.DataFrame, problems: list[CellProblem]):
    """A styled copy of the table with the bad cells highlighted, headers as shown, for st.dataframe
    (the editor itself cannot colour single cells)."""
    shown = df.rename(columns={c: h for c, (h, _, _) in POOL_HEADERS.items()}).copy()
    shown.index = range(1, len(shown) + 1)
    bad = {(p.row, POOL_HEADERS[p.column][0]) for p in problems}

    def colour(frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
        for r, h in bad:
            if h in styles.columns and r + 1 in styles.index:
                styles.at[r + 1, h] = "background-color: #ffd6d6; color: #8b0000; font-weight: bold"
        return styles

    def cell(x) -> str:
        if blank(x):
            return "⚠ empty"
        v = _number(x) if not isinstance(x, str) else None
        return f"{v:,.10g}" if v is not None else str(x)

    return shown.map(cell).style.apply(colour, axis=None)
