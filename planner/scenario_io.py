"""Loading scenarios: the seed's config folders (unchanged) and this project's richer files.

A config folder holds `config.csv` (parameter,value), `gpu_pool.csv` and optionally the seed's
per-GPU `network_bandwidth.csv` or our `network_by_type.csv`. Every key of config.csv is either
honoured or reported as ignored; every assumption (a price from the catalogue, an alias, MHA when no
KV-head count is given) becomes a warning on the scenario.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from .catalog import Catalog, load_catalog
from .csvio import Cells, Table, parse_table, read_text
from .domain import GpuSpec, ModelSpec, Pool, PoolEntry, Scenario, SearchSettings, Workload
from .errors import InputError, Problem

log = logging.getLogger(__name__)

SCENARIO_FORMAT = "gpu-pipeline-planner-scenario/1"

# Keys the loader understands. Everything else is reported as unknown.
HONOURED = {
    "model_name", "model", "num_decoder_layers", "d_model", "d_hidden", "vocab_size", "num_attention_heads",
    "num_kv_heads", "head_dim", "gated_mlp", "bytes_per_element", "tied_embeddings", "layer_weight_memory_gb",
    "sequence_length", "input_tokens", "output_tokens", "batch_size", "min_batch_size", "max_batch_size",
    "concurrency", "token_basis", "engine", "inter_node_gb_per_s", "description",
    "time_limit_seconds", "optimality_gap", "enable_segment_quantization", "quantization", "segment_sizes",
    "max_pipeline_stages", "min_layers_per_stage", "cost_throughput_weight", "throughput_normalization",
    "cost_normalization", "max_hourly_cost", "max_cost_per_token", "max_cost_per_million_token",
    "budget_factors", "method", "max_total_cost", "max_total_runtime_hours", "total_tokens_to_process",
}
IGNORED = {
    "min_memory_utilization": "a memory-utilisation floor only forbids valid plans; it has no cost meaning",
    "network_bandwidth_percentile_threshold": "links are modelled exactly from the bandwidth matrix, not filtered by percentile",
    "optimization_priority": "the objective is chosen by the method (exact minimises $/token)",
}
DEFAULT_OUTPUT_TOKENS = 256
POOL_COLUMNS = ("gpu_type", "count")
POOL_OPTIONAL = ("memory_gb", "dollar_per_hour", "price_usd_per_hour", "gpus_per_node", "fp16_dense_tflops",
                 "hbm_gb_per_s", "intra_link", "intra_link_gb_per_s")


def load_config_dir(config_dir: Path | str, catalog: Catalog | None = None) -> Scenario:
    """Load a config folder (the seed's or ours) into a validated Scenario."""
    base = Path(config_dir)
    if not base.is_dir():
        raise InputError(Problem("no such config folder", str(base)))
    texts: dict[str, str] = {}
    for name in ("config.csv", "gpu_pool.csv", "network_bandwidth.csv", "network_by_type.csv"):
        path = base / name
        if path.exists():
            texts[name] = read_text(path)
    for required in ("config.csv", "gpu_pool.csv"):
        if required not in texts:
            raise InputError(Problem(f"missing {required}", str(base / required)))
    return scenario_from_texts(texts, name=base.name, catalog=catalog, folder=str(base))


def scenario_from_texts(texts: dict[str, str], name: str = "scenario", catalog: Catalog | None = None,
                        folder: str = "") -> Scenario:
    """Build a Scenario from the text of the files of a config folder (file name -> text)."""
    catalog = catalog or load_catalog()
    prefix = f"{folder}/" if folder else ""
    problems: list[Problem] = []
    config = _parse_config(texts["config.csv"], prefix + "config.csv", problems)
    try:
        pool_table = parse_table(texts["gpu_pool.csv"], prefix + "gpu_pool.csv", POOL_COLUMNS, POOL_OPTIONAL)
    except InputError as exc:
        problems.extend(exc.problems)
        pool_table = None
    if problems:
        raise InputError(problems)
    warnings: list[str] = []
    entries = _pool_entries(pool_table, catalog, problems, warnings)
    model = _model(config, catalog, problems, warnings, prefix + "config.csv")
    workload = _workload(config, problems, warnings, prefix + "config.csv")
    settings = _settings(config, problems, warnings, prefix + "config.csv")
    engine_name = config.get("engine", ("vllm", 0))[0]
    engine = None
    try:
        engine = catalog.engine(engine_name)
    except InputError as exc:
        problems.append(Problem(str(exc), prefix + "config.csv", config["engine"][1], "value"))
    inter_node = _config_number(config, "inter_node_gb_per_s", problems, prefix + "config.csv", default=25.0)
    links: tuple[tuple[str, str, float], ...] = ()
    if entries and "network_by_type.csv" in texts:
        links = _links_by_type(texts["network_by_type.csv"], prefix + "network_by_type.csv", entries, problems)
    elif entries and "network_bandwidth.csv" in texts:
        links = _links_per_gpu(texts["network_bandwidth.csv"], prefix + "network_bandwidth.csv", entries, problems)
    for key, (_, lineno) in config.items():
        if key in IGNORED:
            warnings.append(f"config.csv row {lineno}: '{key}' is ignored: {IGNORED[key]}")
        elif key not in HONOURED:
            warnings.append(f"config.csv row {lineno}: unknown parameter '{key}' is ignored")
    if problems:
        raise InputError(problems)
    pool = Pool(tuple(entries), links, default_link_gb_per_s=inter_node)
    description = config.get("description", ("", 0))[0]
    scenario = Scenario(model, workload, pool, engine, settings, name=name, warnings=tuple(warnings))
    for w in warnings:
        log.info("%s: %s", name, w)
    if description:
        log.info("%s: %s", name, description)
    return scenario


# ------------------------------------------------------------------ config.csv
def _parse_config(text: str, file: str, problems: list[Problem]) -> dict[str, tuple[str, int]]:
    try:
        table = parse_table(text, file, ("parameter", "value"), ())
    except InputError as exc:
        problems.extend(exc.problems)
        return {}
    config: dict[str, tuple[str, int]] = {}
    for lineno, row in table.rows:
        key = row["parameter"].lower()
        if not key:
            problems.append(Problem("parameter name is empty", file, lineno, "parameter"))
            continue
        if key in config:
            problems.append(Problem(f"'{key}' is given twice (also row {config[key][1]})", file, lineno, "parameter"))
            continue
        config[key] = (row["value"], lineno)
    return config


def _config_number(config, key, problems, file, default=None, integer=False, positive=True, maximum=None):
    if key not in config:
        return default
    value, lineno = config[key]
    try:
        x = float(value)
    except ValueError:
        problems.append(Problem(f"{key}: '{value}' is not a number", file, lineno, "value"))
        return default
    if x != x or x in (float("inf"), float("-inf")):
        problems.append(Problem(f"{key}: '{value}' is not a finite number", file, lineno, "value"))
        return default
    if (positive and x <= 0) or (not positive and x < 0):
        problems.append(Problem(f"{key} must be {'positive' if positive else 'non-negative'}, got {value}", file, lineno, "value"))
        return default
    if maximum is not None and x > maximum:
        problems.append(Problem(f"{key} = {value} is implausibly large (limit {maximum:g})", file, lineno, "value"))
        return default
    if integer:
        if int(x) != x:
            problems.append(Problem(f"{key} must be a whole number, got {value}", file, lineno, "value"))
            return default
        return int(x)
    return x


def _config_bool(config, key, problems, file, default=None):
    if key not in config:
        return default
    value, lineno = config[key]
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    problems.append(Problem(f"{key}: '{value}' is not true/false", file, lineno, "value"))
    return default


def _config_list(config, key, problems, file, integer=False):
    if key not in config:
        return None
    value, lineno = config[key]
    parts = [p.strip() for p in value.replace(";", " ").replace("|", " ").split()]
    out = []
    for p in parts:
        try:
            x = float(p)
        except ValueError:
            problems.append(Problem(f"{key}: '{p}' is not a number", file, lineno, "value"))
            return None
        if integer and int(x) != x:
            problems.append(Problem(f"{key}: '{p}' is not a whole number", file, lineno, "value"))
            return None
        out.append(int(x) if integer else x)
    if not out:
        problems.append(Problem(f"{key} is empty", file, lineno, "value"))
        return None
    return out


def _model(config, catalog: Catalog, problems, warnings, file) -> ModelSpec | None:
    name_key = "model" if "model" in config else "model_name"
    name, lineno = config.get(name_key, ("", 0))
    base: ModelSpec | None = None
    if name:
        hit = catalog.resolve_model(name)
        if hit:
            base = catalog.models[hit[0]]
            if hit[1]:
                warnings.append(f"model '{name}' is an alias of catalogue model '{hit[0]}'")
    dims = {
        "num_layers": _config_number(config, "num_decoder_layers", problems, file, integer=True, maximum=10_000),
        "hidden_size": _config_number(config, "d_model", problems, file, integer=True, maximum=1_000_000),
        "ffn_size": _config_number(config, "d_hidden", problems, file, integer=True, maximum=10_000_000),
        "vocab_size": _config_number(config, "vocab_size", problems, file, integer=True, maximum=100_000_000),
        "num_heads": _config_number(config, "num_attention_heads", problems, file, integer=True, maximum=100_000),
        "num_kv_heads": _config_number(config, "num_kv_heads", problems, file, integer=True, maximum=100_000),
        "head_dim": _config_number(config, "head_dim", problems, file, integer=True, maximum=100_000),
        "bytes_per_param": _config_number(config, "bytes_per_element", problems, file, maximum=16),
        "gated_mlp": _config_bool(config, "gated_mlp", problems, file),
        "tied_embeddings": _config_bool(config, "tied_embeddings", problems, file),
    }
    override = _config_number(config, "layer_weight_memory_gb", problems, file, maximum=10_000)
    given = {k: v for k, v in dims.items() if v is not None}
    if base is None:
        need = ("num_layers", "hidden_size", "ffn_size", "num_heads")
        missing = [k for k in need if k not in given]
        if missing:
            near = catalog.nearest_models(name) if name else []
            what = f"model '{name}' is not in the catalogue" if name else "no model is named"
            hint = f" (nearest: {', '.join(near)})" if near else ""
            cols = {"num_layers": "num_decoder_layers", "hidden_size": "d_model", "ffn_size": "d_hidden",
                    "num_heads": "num_attention_heads"}
            problems.append(Problem(f"{what}{hint} and {', '.join(cols[m] for m in missing)} not given",
                                    file, lineno or None, "value" if lineno else ""))
            return None
        heads = given["num_heads"]
        if "num_kv_heads" not in given:
            twin = _architecture_twin(catalog, name, given["hidden_size"], heads)
            if twin is not None:
                given["num_kv_heads"] = twin.num_kv_heads
                warnings.append(f"num_kv_heads not given: using {twin.num_kv_heads} from catalogue model "
                                f"'{twin.name}' (same d_model and heads, nearest name to '{name}')")
            else:
                warnings.append(f"num_kv_heads not given: assuming multi-head attention ({heads} KV heads); "
                                "add num_kv_heads for a GQA model")
        if "bytes_per_param" not in given:
            warnings.append("bytes_per_element not given: assuming 2 (fp16/bf16)")
        if "vocab_size" not in given:
            warnings.append("vocab_size not given: assuming 32000")
        if "gated_mlp" not in given:
            warnings.append("gated_mlp not given: assuming a gated (SwiGLU) MLP as in Llama")
        base = ModelSpec(
            name=name or "custom", num_layers=given["num_layers"], hidden_size=given["hidden_size"],
            num_heads=heads, num_kv_heads=given.get("num_kv_heads", heads),
            head_dim=given.get("head_dim", given["hidden_size"] // heads), ffn_size=given["ffn_size"],
            gated_mlp=given.get("gated_mlp", True), vocab_size=given.get("vocab_size", 32000),
            bytes_per_param=given.get("bytes_per_param", 2.0), tied_embeddings=given.get("tied_embeddings", False),
        )
    else:
        changed = {k: v for k, v in given.items() if getattr(base, k) != v}
        if changed:
            warnings.append(f"config.csv overrides catalogue model '{base.name}': "
                            + ", ".join(f"{k}={v}" for k, v in changed.items()))
            try:
                base = replace(base, **changed)
            except InputError as exc:
                problems.extend(Problem(p.message, file) for p in exc.problems)
                return None
    if override is not None:
        from .perf import layer_params

        computed = layer_params(base) * base.bytes_per_param / 1e9
        warnings.append(f"layer_weight_memory_gb={override:g} is used as each layer's weight memory "
                        f"(the architecture implies {computed:.2f} GB)")
        base = replace(base, layer_weight_gb_override=override)
    return base


def _architecture_twin(catalog: Catalog, name: str, hidden: int, heads: int) -> ModelSpec | None:
    """The catalogue model with the same width and head count whose name is closest to `name`."""
    import difflib

    same = [m for m in catalog.models.values() if m.hidden_size == hidden and m.num_heads == heads]
    if not same or not name:
        return None
    return max(same, key=lambda m: difflib.SequenceMatcher(None, name.lower(), m.name.lower()).ratio())


def _workload(config, problems, warnings, file) -> Workload | None:
    seq = _config_number(config, "sequence_length", problems, file, integer=True, maximum=10_000_000)
    inp = _config_number(config, "input_tokens", problems, file, integer=True, maximum=10_000_000)
    out = _config_number(config, "output_tokens", problems, file, integer=True, maximum=10_000_000)
    if inp is None and out is None:
        if seq is None:
            problems.append(Problem("no workload: give input_tokens and output_tokens (or the seed's sequence_length)", file))
            return None
        out = min(DEFAULT_OUTPUT_TOKENS, max(1, seq // 2))
        inp = seq - out
        warnings.append(f"sequence_length={seq} is read as prompt + generated tokens: {inp} input + {out} output "
                        "per request (set input_tokens and output_tokens to change)")
    elif inp is None or out is None:
        problems.append(Problem("give both input_tokens and output_tokens", file))
        return None
    elif seq is not None:
        warnings.append(f"sequence_length={seq} is superseded by input_tokens + output_tokens = {inp + out}")
    concurrency = None
    if "concurrency" in config and config["concurrency"][0].lower() not in ("auto", "max", ""):
        concurrency = _config_number(config, "concurrency", problems, file, integer=True, maximum=1_000_000)
    elif "batch_size" in config:
        concurrency = _config_number(config, "batch_size", problems, file, integer=True, maximum=1_000_000)
    elif "max_batch_size" in config:
        concurrency = _config_number(config, "max_batch_size", problems, file, integer=True, maximum=1_000_000)
        lo = _config_number(config, "min_batch_size", problems, file, integer=True, maximum=1_000_000)
        if lo is not None and concurrency is not None and lo != concurrency:
            warnings.append(f"min_batch_size={lo}..max_batch_size={concurrency}: planning for {concurrency} "
                            "sequences in flight")
    basis = config.get("token_basis", ("total", 0))[0].lower()
    if basis not in ("total", "output"):
        problems.append(Problem(f"token_basis must be 'total' or 'output', got '{basis}'", file,
                                config["token_basis"][1], "value"))
        return None
    if inp is None or out is None or inp <= 0:
        if inp is not None and inp <= 0:
            problems.append(Problem("input tokens must be positive", file))
        return None
    return Workload(inp, out, concurrency, basis)


QUANTIZATION_KEYS = ("coarse", "fine", "even", "full")


def _settings(config, problems, warnings, file) -> SearchSettings | None:
    kwargs: dict = {}
    method = config.get("method", ("exact", 0))
    if method[0] not in ("exact", "enumeration", "weighted"):
        problems.append(Problem(f"method must be exact, enumeration or weighted, got '{method[0]}'", file, method[1], "value"))
    else:
        kwargs["method"] = method[0]
    w = _config_number(config, "cost_throughput_weight", problems, file, positive=False, maximum=1.0)
    if w is not None:
        kwargs["cost_weight"] = w
    quant = config.get("quantization")
    if quant:
        if quant[0].lower() not in QUANTIZATION_KEYS:
            problems.append(Problem(f"quantization must be one of {', '.join(QUANTIZATION_KEYS)}, got '{quant[0]}'",
                                    file, quant[1], "value"))
        else:
            kwargs["quantization"] = quant[0].lower()
    else:
        enabled = _config_bool(config, "enable_segment_quantization", problems, file, default=True)
        kwargs["quantization"] = "coarse" if enabled else "full"
    sizes = _config_list(config, "segment_sizes", problems, file, integer=True)
    if sizes:
        kwargs["sizes"] = tuple(sizes)
    factors = _config_list(config, "budget_factors", problems, file)
    if factors:
        if any(f <= 0 for f in factors) or factors != sorted(set(factors)):
            problems.append(Problem(f"budget_factors must be positive and increasing, got {factors}", file,
                                    config["budget_factors"][1], "value"))
        else:
            kwargs["budget_factors"] = tuple(factors)
    for key, field_name, integer in (("max_pipeline_stages", "max_stages", True),
                                     ("min_layers_per_stage", "min_layers_per_stage", True),
                                     ("time_limit_seconds", "time_limit_s", False),
                                     ("throughput_normalization", "throughput_normalization", False),
                                     ("cost_normalization", "cost_normalization", False),
                                     ("max_hourly_cost", "max_usd_per_hour", False)):
        value = _config_number(config, key, problems, file, integer=integer, maximum=1e9)
        if value is not None:
            kwargs[field_name] = value
    gap = _config_number(config, "optimality_gap", problems, file, positive=False, maximum=0.99)
    if gap is not None:
        kwargs["mip_gap"] = gap
    target = _config_number(config, "max_cost_per_million_token", problems, file, maximum=1e9)
    per_token = _config_number(config, "max_cost_per_token", problems, file, maximum=1e6)
    if target is not None:
        kwargs["target_usd_per_million_tokens"] = target
    elif per_token is not None:
        kwargs["target_usd_per_million_tokens"] = per_token * 1e6
        warnings.append(f"max_cost_per_token={per_token:g} $/token is read as a target of "
                        f"${per_token * 1e6:g} per million tokens")
    tokens = _config_number(config, "total_tokens_to_process", problems, file, maximum=1e18)
    hours = _config_number(config, "max_total_runtime_hours", problems, file, maximum=1e12)
    total_cost = _config_number(config, "max_total_cost", problems, file, maximum=1e15)
    if (hours is not None or total_cost is not None) and tokens is None:
        warnings.append("max_total_runtime_hours / max_total_cost need total_tokens_to_process; ignored")
    if tokens is not None and hours is not None:
        kwargs["min_tokens_per_s"] = tokens / (hours * 3600)
    if tokens is not None and total_cost is not None:
        kwargs["max_usd_per_million_tokens"] = total_cost / tokens * 1e6
    try:
        return SearchSettings(**kwargs)
    except InputError as exc:
        problems.extend(Problem(p.message, file) for p in exc.problems)
        return None


# ------------------------------------------------------------------ gpu_pool.csv
def _pool_entries(table: Table, catalog: Catalog, problems: list[Problem], warnings: list[str]) -> list[PoolEntry]:
    entries: list[PoolEntry] = []
    seen: dict[str, int] = {}
    for lineno, row in table.rows:
        c = Cells(table, lineno, row, problems)
        name = c.text("gpu_type")
        count = c.integer("count", maximum=100_000)
        memory = c.number("memory_gb", allow_missing=True, maximum=10_000)
        price_col = "price_usd_per_hour" if row.get("price_usd_per_hour") else "dollar_per_hour"
        price = c.number(price_col, allow_missing=True, maximum=10_000)
        if name is None or count is None:
            continue
        if name.casefold() in seen:
            problems.append(Problem(f"GPU type '{name}' already listed on row {seen[name.casefold()]}",
                                    table.file, lineno, "gpu_type"))
            continue
        seen[name.casefold()] = lineno
        hit = catalog.resolve_gpu(name)
        overrides = {k: c.number(k, allow_missing=True, maximum=1e7)
                     for k in ("fp16_dense_tflops", "hbm_gb_per_s", "intra_link_gb_per_s")}
        per_node = c.integer("gpus_per_node", allow_missing=True, maximum=1024)
        link = row.get("intra_link", "").lower()
        if link and link not in ("nvlink", "pcie"):
            problems.append(Problem(f"'{link}' is not nvlink or pcie", table.file, lineno, "intra_link"))
            continue
        if hit is None:
            custom_ok = all(v is not None for v in overrides.values()) and memory and price and per_node and link
            if not custom_ok:
                near = catalog.nearest_gpus(name)
                hint = f"; nearest catalogue names: {', '.join(near)}" if near else ""
                problems.append(Problem(f"unknown GPU '{name}'{hint} (or give memory_gb, price, gpus_per_node, "
                                        "fp16_dense_tflops, hbm_gb_per_s, intra_link, intra_link_gb_per_s)",
                                        table.file, lineno, "gpu_type"))
                continue
            spec = GpuSpec(sku=name, memory_gb=memory, price_usd_per_hour=price, gpus_per_node=per_node,
                           intra_link=link, price_source=f"{table.file} row {lineno}", **overrides)
        else:
            sku, alias = hit
            spec = catalog.gpus[sku]
            if alias:
                warnings.append(f"GPU '{name}' ({table.file} row {lineno}) is read as catalogue SKU '{sku}'")
            changes: dict = {k: v for k, v in overrides.items() if v is not None}
            if per_node:
                changes["gpus_per_node"] = per_node
            if link:
                changes["intra_link"] = link
            if memory is not None and memory != spec.memory_gb:
                warnings.append(f"GPU '{name}': memory {memory:g} GB from {table.file} row {lineno} is used "
                                f"(catalogue {sku} has {spec.memory_gb:g} GB)")
                changes["memory_gb"] = memory
            if price is None:
                warnings.append(f"GPU '{name}': no price in {table.file} row {lineno}; using the catalogue's "
                                f"${spec.price_usd_per_hour:g}/GPU-hour ({spec.price_source}, {spec.price_date})")
            else:
                changes["price_usd_per_hour"] = price
                changes["price_source"] = f"{table.file} row {lineno}"
                changes["price_date"] = ""
            spec = replace(spec, **changes)
        entries.append(PoolEntry(name=name, count=count, spec=spec))
    return entries


# ------------------------------------------------------------------ networks
def _links_by_type(text: str, file: str, entries: list[PoolEntry], problems: list[Problem]):
    try:
        table = parse_table(text, file, ("gpu_type_a", "gpu_type_b", "gb_per_s"), ())
    except InputError as exc:
        problems.extend(exc.problems)
        return ()
    names = {e.name for e in entries}
    links = []
    for lineno, row in table.rows:
        c = Cells(table, lineno, row, problems)
        a, b = c.text("gpu_type_a"), c.text("gpu_type_b")
        bw = c.number("gb_per_s", maximum=1e6)
        bad = False
        for col, v in (("gpu_type_a", a), ("gpu_type_b", b)):
            if v is not None and v not in names:
                problems.append(Problem(f"'{v}' is not a GPU type of the pool ({', '.join(sorted(names))})", file, lineno, col))
                bad = True
        if a and b and bw and not bad:
            links.append((a, b, bw))
    return tuple(links)


def _links_per_gpu(text: str, file: str, entries: list[PoolEntry], problems: list[Problem]):
    """Reduce the seed's per-GPU matrix (GPU ids numbered in pool order) to one figure per type pair:
    the minimum over the pairs of distinct GPUs, so that any placement is covered (conservative)."""
    rows = [line for line in text.splitlines() if line.strip()]
    owner: list[str] = [e.name for e in entries for _ in range(e.count)]
    n = len(owner)
    if len(rows) - 1 != n:
        problems.append(Problem(f"has {len(rows) - 1} GPU rows but the pool has {n} GPUs", file))
        return ()
    best: dict[tuple[str, str], float] = {}
    for i, line in enumerate(rows[1:]):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != n + 1:
            problems.append(Problem(f"has {len(cells) - 1} values, expected {n}", file, i + 2))
            continue
        for j, value in enumerate(cells[1:]):
            if i == j:
                continue
            try:
                bw = float(value)
            except ValueError:
                problems.append(Problem(f"'{value}' is not a number", file, i + 2, f"gpu_{j}"))
                continue
            if not bw > 0:
                problems.append(Problem(f"bandwidth must be positive, got {value}", file, i + 2, f"gpu_{j}"))
                continue
            key = tuple(sorted((owner[i], owner[j])))
            best[key] = min(best.get(key, bw), bw)
    return tuple((a, b, bw) for (a, b), bw in sorted(best.items()))


# ------------------------------------------------------------------ scenario files (one JSON file)
def scenario_texts_to_json(texts: dict[str, str], name: str) -> str:
    """Bundle a config folder's files into one scenario file that `scenario_from_json` re-imports."""
    return json.dumps({"format": SCENARIO_FORMAT, "name": name, "files": texts}, indent=1)


def scenario_texts_from_json(data: str | bytes, file: str = "scenario.json") -> tuple[str, dict[str, str]]:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(Problem(f"not a scenario file (invalid JSON: {exc})", file)) from exc
    if not isinstance(doc, dict) or doc.get("format") != SCENARIO_FORMAT:
        raise InputError(Problem(f"not a scenario file of format {SCENARIO_FORMAT}", file))
    files = doc.get("files")
    allowed = {"config.csv", "gpu_pool.csv", "network_bandwidth.csv", "network_by_type.csv"}
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise InputError(Problem("'files' must map file names to text", file))
    unknown = set(files) - allowed
    if unknown:
        raise InputError(Problem(f"unexpected files {sorted(unknown)} (allowed: {sorted(allowed)})", file))
    return str(doc.get("name", "imported")), dict(files)
