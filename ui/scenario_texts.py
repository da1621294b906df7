"""Pure (Streamlit-free) helpers: a scenario is the TEXT of its config folder's files.

Widget values are turned back into those texts here, so the bundled scenarios, uploads, edits and
the one-file scenario export all go through `planner.scenario_from_texts`.
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import pandas as pd

from planner import Catalog, InputError, Problem, Scenario
from planner.csvio import decode, read_text, split_rows
from planner.scenario_io import ENGINE_FILES, scenario_texts_from_json

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

POOL_COLUMNS = ("gpu_type", "count", "memory_gb", "price_usd_per_hour", "gpus_per_node", "fp16_dense_tflops",
                "hbm_gb_per_s", "intra_link", "intra_link_gb_per_s")
NET_COLUMNS = ("gpu_type_a", "gpu_type_b", "gb_per_s")
MODEL_DIM_KEYS = ("num_decoder_layers", "d_model", "d_hidden", "vocab_size", "num_attention_heads", "num_kv_heads",
                  "head_dim", "gated_mlp", "bytes_per_element", "tied_embeddings", "layer_weight_memory_gb",
                  "max_position_embeddings")


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


# ------------------------------------------------------------------ config.csv as rows
def config_rows(text: str) -> list[list[str]]:
    """(parameter, value) rows in file order, header dropped; tolerant of blank lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    delimiter = "," if "," in lines[0] or ";" not in lines[0] else ";"
    rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)]
    out = []
    for r in rows[1:]:
        out.append([r[0] if r else "", r[1] if len(r) > 1 else ""])
    return out


def config_dict(text: str) -> dict[str, str]:
    return {k.lower(): v for k, v in config_rows(text)}


def set_params(text: str, updates: dict[str, str | None]) -> str:
    """config.csv with `updates` applied: a value replaces (or appends) the parameter, None removes it."""
    rows = config_rows(text)
    out: list[list[str]] = []
    done = set()
    for k, v in rows:
        key = k.lower()
        if key in updates:
            if updates[key] is not None and key not in done:
                out.append([k, updates[key]])
            done.add(key)
        else:
            out.append([k, v])
    for k, v in updates.items():
        if k not in done and v is not None:
            out.append([k, v])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["parameter", "value"])
    w.writerows(out)
    return buf.getvalue()


def num(v) -> str:
    """A number as config text: integers without '.0', floats round-trip exactly."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    try:
        if isinstance(v, float) and math.isnan(v):
            return ""
    except TypeError:
        pass
    if isinstance(v, bool):
        return "true" if v else "false"
    f = float(v)
    if math.isfinite(f) and f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return repr(f)


def parse_number_list(text: str, integer: bool = False) -> list[float] | None:
    """'5; 10, 20' -> [5, 10, 20]; None if a piece is not a number."""
    parts = [p for p in text.replace(";", " ").replace(",", " ").replace("|", " ").split() if p]
    out = []
    for p in parts:
        try:
            x = float(p)
        except ValueError:
            return None
        out.append(int(x) if integer and x.is_integer() else x)
    return out


def list_text(values) -> str:
    return "; ".join(num(v) for v in values)


# ------------------------------------------------------------------ widget values <-> config.csv
def default_values(catalog: Catalog) -> dict:
    """Widget values when the loaded texts do not parse (the texts are left untouched until edited)."""
    models = list(catalog.models)
    return {
        "method": "exact", "cost_weight": 0.5, "quantization": "coarse", "custom_sizes": False,
        "segment_sizes_text": "", "budget_factors_text": "0.4; 0.7; 0.9; 1; 1.2; 1.5", "target": 0.0,
        "use_case": "custom", "max_ttft_ms": 0.0, "max_tpot_ms": 0.0, "weight_scaling": "normalised",
        "max_stages": 8, "min_layers": 1, "time_limit": 60.0,
        "input_tokens": 2048, "output_tokens": 512, "concurrency_auto": True, "concurrency": 32,
        "token_basis": "total", "model_source": "catalogue",
        "model_name": "llama-3-70b" if "llama-3-70b" in models else models[0],
        "num_layers": 80, "hidden_size": 8192, "ffn_size": 28672, "num_heads": 64, "num_kv_heads": 8,
        "vocab_size": 32000, "layer_weight_gb": 0.0,
    }


def values_from_scenario(sc: Scenario, config_text: str, catalog: Catalog, sizes: tuple[int, ...]) -> dict:
    """The widget values a parsed scenario implies (what the user sees right after loading)."""
    st_ = sc.settings
    cfg = config_dict(config_text)
    m = sc.model
    hit = catalog.resolve_model(m.name)
    dims_given = any(k in cfg for k in ("num_decoder_layers", "d_model", "d_hidden", "num_attention_heads",
                                         "layer_weight_memory_gb"))
    return {
        "method": st_.method, "cost_weight": float(st_.cost_weight), "quantization": st_.quantization,
        "custom_sizes": st_.sizes is not None, "segment_sizes_text": list_text(sizes),
        "budget_factors_text": list_text(st_.budget_factors),
        "target": float(st_.target_usd_per_million_tokens or 0.0),
        "use_case": st_.use_case or "custom",  # not stated (seed folders): its own limits, warned when slow
        "max_ttft_ms": float(st_.max_ttft_ms or 0.0), "max_tpot_ms": float(st_.max_tpot_ms or 0.0),
        "weight_scaling": st_.weight_scaling,
        "max_stages": int(st_.max_stages), "min_layers": int(st_.min_layers_per_stage),
        "time_limit": float(st_.time_limit_s),
        "input_tokens": int(sc.workload.input_tokens), "output_tokens": int(sc.workload.output_tokens),
        "concurrency_auto": sc.workload.concurrency is None,
        "concurrency": int(sc.workload.concurrency or 32), "token_basis": sc.workload.token_basis,
        "model_source": "dimensions" if dims_given or hit is None else "catalogue",
        "model_name": hit[0] if hit else default_values(catalog)["model_name"],
        "num_layers": m.num_layers, "hidden_size": m.hidden_size, "ffn_size": m.ffn_size,
        "num_heads": m.num_heads, "num_kv_heads": m.num_kv_heads, "vocab_size": m.vocab_size,
        "layer_weight_gb": float(m.layer_weight_gb_override or 0.0),
    }


# widget groups -> config.csv parameters; a group is written only when one of its values changed
GROUPS = {
    "method": ("method",),
    "cost_weight": ("cost_weight",),
    "weight_scaling": ("weight_scaling",),
    "sizes": ("quantization", "custom_sizes", "segment_sizes_text"),
    "budget": ("budget_factors_text",),
    "target": ("target",),
    "slo": ("use_case", "max_ttft_ms", "max_tpot_ms"),
    "max_stages": ("max_stages",),
    "min_layers": ("min_layers",),
    "time_limit": ("time_limit",),
    "tokens": ("input_tokens", "output_tokens"),
    "concurrency": ("concurrency_auto", "concurrency"),
    "token_basis": ("token_basis",),
    "model": ("model_source", "model_name", "num_layers", "hidden_size", "ffn_size", "num_heads", "num_kv_heads",
              "vocab_size", "layer_weight_gb"),
}
WIDGET_KEYS = tuple(k for g in GROUPS.values() for k in g)


def _changed(group: str, base: dict, values: dict) -> bool:
    return any(base.get(k) != values.get(k) for k in GROUPS[group])


def config_updates(base: dict, values: dict, base_config: str) -> dict[str, str | None]:
    """config.csv parameter updates for the widget groups whose values differ from the loaded ones."""
    u: dict[str, str | None] = {}
    v = values
    if _changed("method", base, v):
        u["method"] = v["method"]
    if _changed("cost_weight", base, v):
        u["cost_throughput_weight"] = num(v["cost_weight"])
    if _changed("sizes", base, v):
        u["quantization"] = v["quantization"]
        u["enable_segment_quantization"] = None
        if v["custom_sizes"]:
            u["segment_sizes"] = ";".join(p.strip() for p in v["segment_sizes_text"].replace(",", ";").split(";")
                                          if p.strip()) or " "
        else:
            u["segment_sizes"] = None
    if _changed("budget", base, v):
        u["budget_factors"] = ";".join(p for p in v["budget_factors_text"].replace(",", ";").replace(" ", ";")
                                       .split(";") if p) or " "
    if _changed("target", base, v):
        u["max_cost_per_million_token"] = num(v["target"]) if v["target"] else None
        u["max_cost_per_token"] = None
    if _changed("weight_scaling", base, v):
        u["weight_scaling"] = v["weight_scaling"]
    if _changed("slo", base, v):  # the use case and its limits together: explicit limits win over the use case's
        u["use_case"] = v["use_case"]
        u["max_ttft_ms"] = num(v["max_ttft_ms"]) if v["max_ttft_ms"] else None
        u["max_tpot_ms"] = num(v["max_tpot_ms"]) if v["max_tpot_ms"] else None
    if _changed("max_stages", base, v):
        u["max_pipeline_stages"] = num(v["max_stages"])
    if _changed("min_layers", base, v):
        u["min_layers_per_stage"] = num(v["min_layers"])
    if _changed("time_limit", base, v):
        u["time_limit_seconds"] = num(v["time_limit"])
    if _changed("tokens", base, v):
        u["input_tokens"] = num(v["input_tokens"])
        u["output_tokens"] = num(v["output_tokens"])
        u["sequence_length"] = None
    if _changed("concurrency", base, v):
        u["concurrency"] = "auto" if v["concurrency_auto"] else num(v["concurrency"])
        u["batch_size"] = u["min_batch_size"] = u["max_batch_size"] = None
    if _changed("token_basis", base, v):
        u["token_basis"] = v["token_basis"]
    if _changed("model", base, v):
        cfg = config_dict(base_config)
        for k in MODEL_DIM_KEYS:
            u[k] = None
        if v["model_source"] == "catalogue":
            u["model"] = v["model_name"]
            u["model_name"] = None
        else:
            name = cfg.get("model") or cfg.get("model_name") or "custom"
            u["model"] = None
            u["model_name"] = name
            u.update({"num_decoder_layers": num(v["num_layers"]), "d_model": num(v["hidden_size"]),
                      "d_hidden": num(v["ffn_size"]), "num_attention_heads": num(v["num_heads"]),
                      "num_kv_heads": num(v["num_kv_heads"]), "vocab_size": num(v["vocab_size"])})
            for k in ("head_dim", "gated_mlp", "bytes_per_element", "tied_embeddings", "max_position_embeddings"):
                if k in cfg:
                    u[k] = cfg[k]
            if "head_dim" in cfg and (v["hidden_size"] != base.get("hidden_size") or v["num_heads"] != base.get("num_heads")):
                u["head_dim"] = None  # let it follow d_model / heads
            if v["layer_weight_gb"]:
                u["layer_weight_memory_gb"] = num(v["layer_weight_gb"])
    return u


# ------------------------------------------------------------------ gpu_pool.csv <-> DataFrame
def pool_frame(sc: Scenario | None, pool_text: str) -> pd.DataFrame:
    """The GPU pool with every datasheet column filled in (from the parsed scenario when it parses)."""
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
            if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
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


# ------------------------------------------------------------------ the texts from the editing state
def build_texts(base_texts: dict[str, str], base_values: dict, values: dict, base_pool: pd.DataFrame,
                pool: pd.DataFrame, base_links: dict[tuple[str, str], float], net: pd.DataFrame) -> dict[str, str]:
    """Current scenario texts: the loaded texts with what the user changed written back into them."""
    texts = dict(base_texts)
    updates = config_updates(base_values, values, base_texts.get(CONFIG, ""))
    if updates:
        texts[CONFIG] = set_params(base_texts.get(CONFIG, "parameter,value\n"), updates)
    if not _same_frame(pool, base_pool):
        texts[POOL] = edited_pool_text(base_texts.get(POOL, ""), base_pool, pool)
    net_values = {(r.gpu_type_a, r.gpu_type_b): r.gb_per_s for r in net.itertuples()}
    net_changed = any(not _same(v, base_links.get(k, base_links.get((k[1], k[0])))) for k, v in net_values.items())
    types_changed = pool_types(pool) != pool_types(base_pool)
    # network_bandwidth.csv is a matrix with one row per GPU, so it no longer fits once a count changes
    counts_changed = pool["count"].tolist() != base_pool["count"].tolist()
    has_net_file = NET_GPU in base_texts or NET_TYPE in base_texts
    if net_changed or (has_net_file and types_changed) or (NET_GPU in base_texts and counts_changed):
        texts.pop(NET_GPU, None)
        texts[NET_TYPE] = net_text(net)
    return texts


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-12)
    except (TypeError, ValueError):
        return False


# the pool columns a file may spell the seed's way
_POOL_ALIASES = {"price_usd_per_hour": ("price_usd_per_hour", "dollar_per_hour")}


def _same_frame(a: pd.DataFrame, b: pd.DataFrame) -> bool:
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
            if j is None and _blank(new):
                continue
            target = next((a for a in _POOL_ALIASES.get(col, (col,)) if a in row), col)
            row[target] = "" if _blank(new) else (new.strip() if isinstance(new, str) else num(new))
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


def _blank(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)) or (isinstance(x, str) and not x.strip())


def _same_cell(a, b) -> bool:
    if _blank(a) or _blank(b):
        return _blank(a) and _blank(b)
    if isinstance(a, str) or isinstance(b, str):
        return str(a).strip() == str(b).strip()
    return _same(a, b)
