"""The GPU pool and network tables as DataFrames for the app's editors, and back to CSV text (pure, no
Streamlit). An edit writes back only the cells the user changed (edited_pool_text)."""
from __future__ import annotations

import csv
import io
import math
from typing import TYPE_CHECKING

from planner import Scenario
from planner.csvio import split_rows
from planner.units import REL_EPS
from ui.config_texts import num

if TYPE_CHECKING:
    import pandas as pd
# pandas (0.5-0.7 s to import) is imported by the functions that make or read a table, not with this module: a
# fresh session's headline is drawn before any table exists (ui.planner_page.early_headline).

POOL_COLUMNS = ("gpu_type", "count", "memory_gb", "price_usd_per_hour", "gpus_per_node", "fp16_dense_tflops",
                "hbm_gb_per_s", "intra_link", "intra_link_gb_per_s")
NET_COLUMNS = ("gpu_type_a", "gpu_type_b", "gb_per_s")


# ------------------------------------------------------------------ gpu_pool.csv <-> DataFrame
def pool_frame(sc: Scenario | None, pool_text: str) -> pd.DataFrame:
    """The GPU pool with every datasheet column filled in (from the parsed scenario when it parses)."""
    import pandas as pd

    if sc is not None:
        rows = [{"gpu_type": e.name, "count": e.count, "memory_gb": e.spec.memory_gb,
                 "price_usd_per_hour": e.spec.price_usd_per_hour, "gpus_per_node": e.spec.gpus_per_node,
                 "fp16_dense_tflops": e.spec.fp16_dense_tflops, "hbm_gb_per_s": e.spec.hbm_gb_per_s,
                 "intra_link": e.spec.intra_link, "intra_link_gb_per_s": e.spec.intra_link_gb_per_s}
                for e in sc.pool.entries]
        df = pd.DataFrame(rows, columns=list(POOL_COLUMNS))
    else:
        try:
            raw = pd.read_csv(io.StringIO(pool_text), dtype=str, keep_default_na=False, skip_blank_lines=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError):
            raw = pd.DataFrame(columns=list(POOL_COLUMNS))
        raw.columns = [str(c).strip().lower() for c in raw.columns]
        if "dollar_per_hour" in raw.columns and "price_usd_per_hour" not in raw.columns:
            raw = raw.rename(columns={"dollar_per_hour": "price_usd_per_hour"})
        df = pd.DataFrame({c: raw[c] if c in raw.columns else "" for c in POOL_COLUMNS})
        for c in POOL_COLUMNS:
            if c not in ("gpu_type", "intra_link"):
                df[c] = pd.to_numeric(df[c].replace("", None), errors="coerce")
    return _typed_pool(df)


def _typed_pool(df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    df = df.reset_index(drop=True).copy()
    for c in ("gpu_type", "intra_link"):
        df[c] = df[c].astype(object)
    for c in POOL_COLUMNS:
        if c not in ("gpu_type", "intra_link"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


def frame_text(df: pd.DataFrame, columns) -> str:
    """A DataFrame as CSV text; empty cells stay empty; whole numbers lose their '.0'."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(columns))
    for _, row in df.iterrows():
        cells = []
        for c in columns:
            x = row.get(c)
            if blank(x):
                cells.append("")
            elif isinstance(x, str):
                cells.append(x.strip())
            else:
                cells.append(num(x))
        w.writerow(cells)
    return buf.getvalue()


def pool_text(df: pd.DataFrame) -> str:
    return frame_text(df, POOL_COLUMNS)


# ------------------------------------------------------------------ network by type pair
def type_pairs(types: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(types) for b in types[i:]]


def net_frame(types: list[str], values: dict[tuple[str, str], float], default: float) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for a, b in type_pairs(types):
        gb = values.get((a, b), values.get((b, a), default))
        rows.append({"gpu_type_a": a, "gpu_type_b": b, "gb_per_s": float(gb)})
    return pd.DataFrame(rows, columns=list(NET_COLUMNS))


def net_text(df: pd.DataFrame) -> str:
    return frame_text(df, NET_COLUMNS)


def scenario_links(sc: Scenario) -> dict[tuple[str, str], float]:
    return {(a, b): sc.pool.link(a, b) for a, b in type_pairs(list(sc.pool.types))}


def pool_types(df: pd.DataFrame) -> list[str]:
    out: list[str] = []
    for t in df["gpu_type"].tolist():
        if isinstance(t, str) and t.strip() and t.strip() not in out:
            out.append(t.strip())
    return out


def apply_delta(df: pd.DataFrame, delta: dict) -> pd.DataFrame:
    """Apply a st.data_editor edit state (edited_rows, deleted_rows, added_rows) to `df`."""
    import pandas as pd

    out = df.reset_index(drop=True).copy()
    for idx, changes in (delta.get("edited_rows") or {}).items():
        i = int(idx)
        if 0 <= i < len(out):
            for col, value in changes.items():
                if col in out.columns:
                    if out[col].dtype == float and value is not None and not isinstance(value, (int, float)):
                        try:
                            value = float(value)
                        except (TypeError, ValueError):
                            out[col] = out[col].astype(object)
                    out.at[i, col] = float("nan") if value is None and out[col].dtype == float else value
    deleted = sorted({int(i) for i in (delta.get("deleted_rows") or [])})
    if deleted:
        out = out.drop(index=[i for i in deleted if 0 <= i < len(out)]).reset_index(drop=True)
    added = [r for r in (delta.get("added_rows") or []) if r]
    if added:
        extra = pd.DataFrame([{c: r.get(c) for c in out.columns} for r in added], columns=out.columns)
        out = pd.concat([out, extra], ignore_index=True) if len(out) else extra
    return out


def same_value(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return math.isclose(float(a), float(b), rel_tol=REL_EPS)
    except (TypeError, ValueError):
        return False


# the pool columns a file may spell the seed's way
_POOL_ALIASES = {"price_usd_per_hour": ("price_usd_per_hour", "dollar_per_hour")}


def same_frame(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return pool_text(a) == pool_text(b)


def edited_pool_text(base_text: str, base_pool: pd.DataFrame, pool: pd.DataFrame) -> str:
    """gpu_pool.csv with only the cells the user changed written back.

    `base_pool` is the table as first shown (blank cells filled from the catalogue) and `pool` the table as
    edited. A row keeps its own text (blank cells, price source and date, the seed's column names); a cell
    is written only where the edited value differs from the shown one, so the other rows keep taking the
    catalogue's price, with its source and date, and later catalogue edits still reach them. A changed
    price drops the row's price_source/price_date (the user is now the source). Rows are matched by GPU
    type; a row that matches nothing (added or renamed) is written with the cells it shows."""
    delimiter, parsed = split_rows(base_text) if base_text.strip() else (",", [])
    header = parsed[0][1] if parsed else []
    keys = [h.strip().lower() for h in header]
    raw_rows = [dict(zip(keys, fields + [""] * (len(keys) - len(fields)))) for _, fields in parsed[1:]]
    if len(raw_rows) != len(base_pool):  # the shown table is not this text row for row: write it whole
        return pool_text(pool)
    base = base_pool.reset_index(drop=True)
    edited = pool.reset_index(drop=True)
    origin = _match_rows(pool_names(base), pool_names(edited))
    out_keys = list(keys)
    out_rows: list[dict[str, str]] = []
    for i in range(len(edited)):
        j = origin.get(i)
        row = dict(raw_rows[j]) if j is not None else {}
        for col in POOL_COLUMNS:
            new = edited.at[i, col]
            if j is not None and _same_cell(new, base.at[j, col]):
                continue
            if j is None and blank(new):
                continue
            target = next((a for a in _POOL_ALIASES.get(col, (col,)) if a in row), col)
            row[target] = "" if blank(new) else (new.strip() if isinstance(new, str) else num(new))
            if target not in out_keys:
                out_keys.append(target)
            if col == "price_usd_per_hour":
                for k in ("price_source", "price_date"):
                    if k in row:
                        row[k] = ""
        out_rows.append(row)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow([header[keys.index(k)] if k in keys else k for k in out_keys])
    w.writerows([[r.get(k, "") for k in out_keys] for r in out_rows])
    return buf.getvalue()


def pool_names(df: pd.DataFrame) -> list[str]:
    return [t.strip().casefold() if isinstance(t, str) else "" for t in df["gpu_type"].tolist()]


def _match_rows(base: list[str], edited: list[str]) -> dict[int, int]:
    """edited row -> base row of the same GPU type (in order). A renamed or added row matches nothing: it is
    written with every cell it shows, as the user sees it (a deleted row's text must not leak into it)."""
    free = list(range(len(base)))
    match: dict[int, int] = {}
    for i, name in enumerate(edited):
        j = next((j for j in free if name and base[j] == name), None)
        if j is not None:
            match[i] = j
            free.remove(j)
    return match


def blank(x) -> bool:
    """An empty table cell: None, pandas' NA, NaN or blank text."""
    import pandas as pd

    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)) or (isinstance(x, str) and not x.strip())


def _same_cell(a, b) -> bool:
    if blank(a) or blank(b):
        return blank(a) and blank(b)
    if isinstance(a, str) or isinstance(b, str):
        return str(a).strip() == str(b).strip()
    return same_value(a, b)
