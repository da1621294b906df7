"""Pure (Streamlit-free) helpers: a scenario is the TEXT of its config folder's files.

Widget values are turned back into those texts here, so the bundled scenarios, uploads, edits and
the one-file scenario export all go through `planner.scenario_from_texts`. The config.csv side lives in
ui/config_texts.py and the pool/network tables in ui/pool_texts.py; their names are re-exported here
because the pages and ui.state use this module as the one entry (`T.pool_frame`, `T.config_updates`).
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING


from planner import InputError, Problem
from planner.csvio import decode, read_text
from planner.scenario_io import ENGINE_FILES, scenario_texts_from_json

from ui.config_texts import (  # noqa: F401  (re-exported: see the module docstring)
    GROUPS, MODEL_DIM_KEYS, WIDGET_KEYS, config_dict, key, parameter, config_rows, config_updates, default_values, list_text, num,
    set_params, use_case_of, values_from_scenario)
from ui.pool_texts import (  # noqa: F401
    NET_COLUMNS, POOL_COLUMNS, apply_delta, edited_pool_text, frame_text, net_frame, net_text, pool_frame,
    pool_names, pool_text, pool_types, scenario_links, type_pairs)
from ui.pool_texts import same_frame, same_value

if TYPE_CHECKING:
    import pandas as pd  # annotations only: see ui.pool_texts

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
CONFIG = "config.csv"
POOL = "gpu_pool.csv"
NET_TYPE = "network_by_type.csv"
NET_GPU = "network_bandwidth.csv"
SCENARIO_FILES = (CONFIG, POOL, NET_GPU, NET_TYPE)
CATALOG_FILES = ("gpus.csv", "models.csv", "engines.csv")
# a scenario folder may carry its own engine profiles (e.g. written by `python -m planner calibrate`)
UPLOAD_FILES = SCENARIO_FILES + ENGINE_FILES
DEFAULT_SCENARIO = "llama70b-chat"  # the realistic question a capacity planner brings; seeds stay in the picker


# ------------------------------------------------------------------ bundled files
SEED_SCENARIOS = ("tiny", "small", "medium", "large", "hal")  # the original project's examples, kept as they were


def bundled_names() -> list[str]:
    """The bundled scenario folders: the default first, then the other realistic ones, then the seed's."""
    names = sorted(p.name for p in CONFIG_DIR.iterdir() if (p / CONFIG).is_file() and (p / POOL).is_file())
    return sorted(names, key=lambda n: (n != DEFAULT_SCENARIO, n in SEED_SCENARIOS, n))


def load_bundled_texts(name: str) -> dict[str, str]:
    base = CONFIG_DIR / name
    return {f: read_text(base / f) for f in UPLOAD_FILES if (base / f).exists()}


def bundled_catalog_texts() -> dict[str, str]:
    return {f: read_text(CONFIG_DIR / f) for f in CATALOG_FILES}


def texts_key(texts: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A hashable, order-free key for cache lookups."""
    return tuple(sorted(texts.items()))


# ------------------------------------------------------------------ uploads
def texts_from_uploads(files: list[tuple[str, bytes]], current: dict[str, str],
                       max_bytes: int | None = None) -> tuple[str | None, dict[str, str]]:
    """Turn uploaded files into scenario texts: one exported scenario JSON, or CSV files of a config folder.
    Uploads are read as text only (CSV, JSON), never evaluated or unpickled.

    CSVs replace the files of the same name; when both config.csv and gpu_pool.csv come in, the upload
    is a whole folder and replaces everything. Returns (scenario name or None, texts)."""
    problems: list[Problem] = []
    if max_bytes is not None:
        for n, b in files:
            if len(b) > max_bytes:
                problems.append(Problem(f"{len(b) / 1048576:.1f} MB is over the upload limit of "
                                        f"{max_bytes / 1048576:g} MB (server.maxUploadSize)", n))
        files = [(n, b) for n, b in files if len(b) <= max_bytes]
    jsons = [(n, b) for n, b in files if n.lower().endswith(".json")]
    csvs = [(Path(n).name.lower(), b) for n, b in files if n.lower().endswith(".csv")]
    other = [n for n, _ in files if not n.lower().endswith((".json", ".csv"))]
    for n in other:
        problems.append(Problem("not a .csv or scenario .json file", n))
    if jsons:
        if len(jsons) > 1 or csvs:
            problems.append(Problem("upload either one scenario .json or the CSV files of a config folder", jsons[0][0]))
            raise InputError(problems)
        if problems:
            raise InputError(problems)
        jname, data = jsons[0]
        deep = json_depth_problem(data, jname)
        if deep is not None:
            raise InputError(deep)
        try:
            name, texts = scenario_texts_from_json(data, jname)
        except RecursionError as exc:  # nesting the depth check did not see (it is the same limit twice)
            raise InputError(Problem(f"not a scenario file: nested too deeply ({exc})", jname)) from exc
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits: not a JSON error to the library
            raise InputError(Problem(f"not a scenario file (invalid JSON: {exc})", jname)) from exc
        for n, text in sorted(texts.items()):
            problem = csv_problem(text, f"{jname}: {n}")
            if problem is not None:
                problems.append(problem)
        if problems:
            raise InputError(problems)
        return name, texts
    new: dict[str, str] = {}
    for n, b in csvs:
        if n not in UPLOAD_FILES:
            problems.append(Problem(f"unexpected file name (expected one of {', '.join(UPLOAD_FILES)})", n))
            continue
        try:
            new[n] = decode(b, n)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        problem = csv_problem(new[n], n)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise InputError(problems)
    if CONFIG in new and POOL in new:
        return None, new
    merged = dict(current)
    if NET_TYPE in new:
        merged.pop(NET_GPU, None)
    if NET_GPU in new:
        merged.pop(NET_TYPE, None)
    merged.update(new)
    return None, merged


MAX_JSON_DEPTH = 16  # an exported scenario is 2 levels deep
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string literal (unrolled: linear time)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_depth_problem(data: bytes, file: str) -> Problem | None:
    """A Problem if `data` nests arrays/objects more than MAX_JSON_DEPTH deep, found before parsing it (the
    parser would recurse once per level and could exhaust the interpreter's stack)."""
    text = data.decode("utf-8", errors="replace")
    depth = 0
    for m in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        depth += 1 if m.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return Problem(f"not a scenario file: nested more than {MAX_JSON_DEPTH} levels deep", file)
    return None


def csv_problem(text: str, file: str) -> Problem | None:
    """A Problem if Python's CSV reader refuses `text` (a field over its size limit, a NUL byte), with the
    row; None if every row reads. The planner's own checks of the values come after this."""
    reader = csv.reader(io.StringIO(text))
    try:
        for _ in reader:
            pass
    except csv.Error as exc:
        limit = csv.field_size_limit()
        what = (f"a field is longer than {limit:,} characters (the CSV reader's limit)" if "field larger" in str(exc)
                else f"not readable as CSV ({exc})")
        return Problem(what, file, reader.line_num or None)
    return None


# ------------------------------------------------------------------ the texts from the editing state
def build_texts(base_texts: dict[str, str], base_values: dict, values: dict, base_pool: pd.DataFrame,
                pool: pd.DataFrame, base_links: dict[tuple[str, str], float], net: pd.DataFrame) -> dict[str, str]:
    """Current scenario texts: the loaded texts with what the user changed written back into them."""
    texts = dict(base_texts)
    updates = config_updates(base_values, values, base_texts.get(CONFIG, ""))
    if updates:
        texts[CONFIG] = set_params(base_texts.get(CONFIG, "parameter,value\n"), updates)
    if not same_frame(pool, base_pool):
        texts[POOL] = edited_pool_text(base_texts.get(POOL, ""), base_pool, pool)
    net_values = {(r.gpu_type_a, r.gpu_type_b): r.gb_per_s for r in net.itertuples()}
    net_changed = any(not same_value(v, base_links.get(k, base_links.get((k[1], k[0])))) for k, v in net_values.items())
    types_changed = pool_types(pool) != pool_types(base_pool)
    # network_bandwidth.csv is a matrix with one row per GPU, so it no longer fits once a count changes
    counts_changed = pool["count"].tolist() != base_pool["count"].tolist()
    has_net_file = NET_GPU in base_texts or NET_TYPE in base_texts
    if net_changed or (has_net_file and types_changed) or (NET_GPU in base_texts and counts_changed):
        texts.pop(NET_GPU, None)
        texts[NET_TYPE] = net_text(net)
    return texts
