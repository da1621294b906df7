"""Loading scenarios: the seed's config folders (unchanged) and this project's richer files.

A config folder holds `config.csv` (parameter,value), `gpu_pool.csv` and optionally the seed's
per-GPU `network_bandwidth.csv` or our `network_by_type.csv`. Every key of config.csv is either
honoured or reported as ignored; every assumption (a price from the catalogue, an alias, MHA when no
KV-head count is given) becomes a warning on the scenario.

Validation collects every problem of every file before refusing the input: each problem names the
file, the row and the column (for config.csv, the `value` column and the parameter name) and the rule.
"""
from __future__ import annotations

import difflib
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

from .catalog import Catalog, load_catalog, parse_engines, with_engines
from .csvio import Cells, Table, check_number, parse_bool, parse_table, read_text, split_rows
from .domain import (MAX_CONCURRENCY, MAX_CONTEXT_TOKENS, MAX_GB_PER_S, MAX_GPU_MEMORY_GB, MAX_GPU_TYPES,
                     MAX_GPUS_PER_TYPE, MAX_LAYERS, MAX_POOL_GPUS, MAX_PRICE_USD_PER_GPU_HOUR, MAX_TFLOPS,
                     MIN_BYTES_PER_PARAM, MIN_GB_PER_S, MIN_GPU_MEMORY_GB, MIN_PRICE_USD_PER_GPU_HOUR, MIN_TFLOPS,
                     USE_CASE_KEYS, WEIGHT_SCALINGS, GpuSpec, ModelSpec, Pool, PoolEntry, Scenario, SearchSettings,
                     Workload)
from .errors import InputError, Problem
from .kinds import METHODS
from .tiling import can_tile, tiles_at_all
from .units import GB, DEFAULT_LINK_GB_PER_S, tokens_per_s_over, usd_per_million_from_per_token

log = logging.getLogger(__name__)

SCENARIO_FORMAT = "gpu-pipeline-planner-scenario/1"
SCENARIO_FILES = ("config.csv", "gpu_pool.csv", "network_bandwidth.csv", "network_by_type.csv")
# A scenario may carry its own engine profiles (e.g. written by `python -m planner calibrate`), in the
# catalogue's format; they are added to the catalogue's for this scenario only.
ENGINE_FILES = ("engines.csv", "engine_gpus.csv")

# Keys the loader understands. Everything else is reported as unknown.
HONOURED = {
    "model_name", "model", "num_decoder_layers", "d_model", "d_hidden", "vocab_size", "num_attention_heads",
    "num_kv_heads", "head_dim", "gated_mlp", "bytes_per_element", "tied_embeddings", "layer_weight_memory_gb",
    "max_position_embeddings",
    "sequence_length", "input_tokens", "output_tokens", "batch_size", "min_batch_size", "max_batch_size",
    "concurrency", "token_basis", "engine", "inter_node_gb_per_s", "description",
    "time_limit_seconds", "optimality_gap", "enable_segment_quantization", "quantization", "segment_sizes",
    "max_pipeline_stages", "min_layers_per_stage", "cost_throughput_weight", "throughput_normalization",
    "cost_normalization", "max_hourly_cost", "max_cost_per_token", "max_cost_per_million_token",
    "budget_factors", "method", "max_total_cost", "max_total_runtime_hours", "total_tokens_to_process",
    "max_ttft_ms", "max_tpot_ms", "precision", "kv_precision", "use_case", "weight_scaling",
}
IGNORED = {
    "min_memory_utilization": "a memory-utilisation floor only forbids valid plans; it has no cost meaning",
    "network_bandwidth_percentile_threshold": "links are modelled exactly from the bandwidth matrix, not filtered by percentile",
    "optimization_priority": "the objective is chosen by the method (exact minimises $/token)",
}
DEFAULT_OUTPUT_TOKENS = 256
POOL_COLUMNS = ("gpu_type", "count")
POOL_OPTIONAL = ("memory_gb", "dollar_per_hour", "price_usd_per_hour", "gpus_per_node", "fp16_dense_tflops",
                 "hbm_gb_per_s", "intra_link", "intra_link_gb_per_s", "price_source", "price_date")
QUANTIZATION_KEYS = ("coarse", "fine", "even", "full")
MAX_BUDGET_FACTOR = 1000
MAX_TIME_LIMIT_S = 10_000_000

# config.csv key -> (ModelSpec field, limit, unit); all whole numbers.
MODEL_KEYS = {
    "num_decoder_layers": ("num_layers", MAX_LAYERS, "layers"),
    "d_model": ("hidden_size", 1_000_000, ""),
    "d_hidden": ("ffn_size", 10_000_000, ""),
    "vocab_size": ("vocab_size", 100_000_000, "tokens"),
    "num_attention_heads": ("num_heads", 100_000, "heads"),
    "num_kv_heads": ("num_kv_heads", 100_000, "heads"),
    "head_dim": ("head_dim", 100_000, ""),
    "max_position_embeddings": ("max_position_embeddings", MAX_CONTEXT_TOKENS, "tokens"),
}
# SearchSettings field -> the config.csv key it comes from (to locate the domain's own checks).
SETTINGS_KEYS = {
    "method": "method", "cost_weight": "cost_throughput_weight", "quantization": "quantization",
    "sizes": "segment_sizes", "budget_factors": "budget_factors", "max_stages": "max_pipeline_stages",
    "min_layers_per_stage": "min_layers_per_stage", "time_limit_s": "time_limit_seconds",
    "mip_gap": "optimality_gap", "max_usd_per_hour": "max_hourly_cost",
    "target_usd_per_million_tokens": "max_cost_per_million_token", "min_tokens_per_s": "max_total_runtime_hours",
    "max_usd_per_million_tokens": "max_total_cost", "throughput_normalization": "throughput_normalization",
    "cost_normalization": "cost_normalization", "max_ttft_ms": "max_ttft_ms", "max_tpot_ms": "max_tpot_ms",
    "weight_scaling": "weight_scaling", "use_case": "use_case",
}


def load_config_dir(config_dir: Path | str, catalog: Catalog | None = None) -> Scenario:
    """Load a config folder (the seed's or ours) into a validated Scenario."""
    base = Path(config_dir)
    if not base.is_dir():
        what = "is not a folder" if base.exists() else "no such config folder"
        raise InputError(Problem(what, str(base)))
    texts: dict[str, str] = {}
    problems: list[Problem] = []
    for name in SCENARIO_FILES + ENGINE_FILES:
        path = base / name
        if _present(path):
            try:
                texts[name] = read_text(path)
            except InputError as exc:
                problems.extend(exc.problems)
    for required in ("config.csv", "gpu_pool.csv"):
        if not _present(base / required):
            try:
                found = sorted(p.name for p in base.iterdir() if p.suffix.lower() == ".csv")
            except OSError as exc:
                raise InputError(Problem(f"cannot list the folder: {exc.strerror or exc}", str(base))) from exc
            problems.append(Problem(f"missing {required} (CSV files found: {', '.join(found) or 'none'})",
                                    str(base / required)))
    if problems:
        raise InputError(problems)
    return scenario_from_texts(texts, name=base.name, catalog=catalog, folder=str(base))


def _present(path: Path) -> bool:
    """Whether a name exists in its folder; a dangling link or an entry we may not look at counts (reading it
    then says what is wrong), only a plainly absent name does not."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return True


def scenario_from_texts(texts: dict[str, str], name: str = "scenario", catalog: Catalog | None = None,
                        folder: str = "") -> Scenario:
    """Build a Scenario from the text of the files of a config folder (file name -> text).

    Every file is checked as far as it can be read, and all problems are raised together."""
    catalog = catalog or load_catalog()
    prefix = f"{folder}/" if folder else ""
    problems: list[Problem] = []
    warnings: list[str] = []
    if "engines.csv" in texts:
        own = parse_engines(texts["engines.csv"], prefix + "engines.csv", texts.get("engine_gpus.csv"),
                            prefix + "engine_gpus.csv")
        catalog = with_engines(catalog, own)
        warnings.append(f"engine profile(s) {', '.join(own)} read from the scenario's engines.csv")
    absent = [Problem(f"missing {f}", prefix + f) for f in ("config.csv", "gpu_pool.csv") if f not in texts]
    if absent:
        raise InputError(absent)
    cfg = _Config(texts["config.csv"], prefix + "config.csv", problems, warnings)
    entries, pool_complete = _pool_entries(texts["gpu_pool.csv"], prefix + "gpu_pool.csv", catalog, problems,
                                           warnings)
    model = workload = settings = engine = inter_node = None
    if not cfg.broken:
        model = _model(cfg, catalog, warnings)
        workload = _workload(cfg, warnings)
        if model is not None and workload is not None:
            problem = model.context_problem(workload.input_tokens, workload.output_tokens)
            if problem:
                cfg.bad("input_tokens" if cfg.has("input_tokens") else "sequence_length", problem)
        settings = _settings(cfg, warnings)
        if model is not None and settings is not None:
            locate = {field: (cfg.file, cfg.row(key), "value") for field, key in SETTINGS_KEYS.items() if cfg.has(key)}
            problems.extend(check_settings_against_model(model, settings, locate, default_file=cfg.file))
        engine_name = cfg.choice("engine", tuple(catalog.engines), "vllm")
        engine = catalog.engines.get(engine_name) if engine_name else None
        inter_node = cfg.number("inter_node_gb_per_s", maximum=MAX_GB_PER_S, unit="GB/s", minimum=MIN_GB_PER_S)
    links = _links(texts, prefix, entries if pool_complete else None, problems, warnings)
    cfg.report_unused()
    if problems:
        order = {name: i for i, name in enumerate(SCENARIO_FILES)}
        problems.sort(key=lambda p: (order.get(Path(p.file).name, len(order)), p.row or 0))
        raise InputError(problems)
    try:
        pool = Pool(tuple(entries), links, default_link_gb_per_s=inter_node or DEFAULT_LINK_GB_PER_S)
    except InputError as exc:  # only the pool-wide limits are left to fail here
        raise InputError([Problem(p.message, prefix + "gpu_pool.csv") for p in exc.problems]) from exc
    description = cfg.text("description")
    scenario = Scenario(model, workload, pool, engine, settings, name=name, warnings=tuple(warnings),
                        description=description or "")
    for w in warnings:
        log.info("%s: %s", name, w)
    if description:
        log.info("%s: %s", name, description)
    return scenario


def check_settings_against_model(model: ModelSpec, settings: SearchSettings,
                                 locate: dict[str, tuple[str, int | None, str]],
                                 default_file: str = "settings") -> list[Problem]:
    """Rules that need both the model and the search settings (the segment sizes must tile L).

    `locate` maps a SearchSettings field to (file, row, column) of where the user set it."""
    problems = []
    L = model.num_layers

    def bad(field: str, message: str) -> None:
        file, row, column = locate.get(field, (default_file, None, field))
        problems.append(Problem(message, file, row, column))

    lo = settings.min_layers_per_stage
    if lo > L:
        bad("min_layers_per_stage", f"min_layers_per_stage ({lo}) is more than the model's {L} layers")
        return problems
    if settings.sizes:
        usable = sorted({s for s in settings.sizes if lo <= s <= L})
        given = sorted(set(settings.sizes))
        if not usable:
            bad("sizes", f"segment_sizes {given}: none lies between min_layers_per_stage ({lo}) and the model's "
                         f"{L} layers, so no stage can be formed")
        else:
            reachable = tiles_at_all(usable, L)
            within = reachable and can_tile(tuple(usable), L, settings.max_stages)
            if not reachable:
                bad("sizes", f"segment_sizes {given} cannot tile the model: no sum of the usable sizes {usable} "
                             f"equals its {L} layers (add {L}, or sizes that add up to {L})")
            elif not within:
                bad("sizes", f"segment_sizes {given} cannot tile the model's {L} layers within "
                             f"max_pipeline_stages ({settings.max_stages}): every sum of the sizes that equals {L} "
                             "needs more stages")
    return problems


def override_settings(scenario: Scenario, changes: dict, sources: dict[str, str]) -> Scenario:
    """`scenario` with its search settings changed (command-line flags); problems name the flag.

    `sources` maps a SearchSettings field to the flag that set it (e.g. cost_weight -> --cost-weight)."""
    try:
        settings = replace(scenario.settings, **changes)
    except InputError as exc:
        raise InputError([Problem(p.message, "command line", None, sources.get(p.column, p.column))
                          if p.column in sources else p for p in exc.problems]) from exc
    locate = {field: ("command line", None, flag) for field, flag in sources.items()}
    problems = check_settings_against_model(scenario.model, settings, locate, default_file="config.csv")
    if problems:
        raise InputError(problems)
    return replace(scenario, settings=settings)


# ------------------------------------------------------------------ config.csv
class _Config:
    """config.csv as parameter -> (value, row), with typed getters that record problems at the row."""

    def __init__(self, text: str | None, file: str, problems: list[Problem], warnings: list[str]):
        self.file, self.problems, self.warnings = file, problems, warnings
        self.values: dict[str, tuple[str, int]] = {}
        self.broken = text is None  # no usable rows: checking settings would only repeat that
        if text is None:
            return
        table = parse_table(text, file, ("parameter", "value"), (), problems=problems, join_extra=True)
        if table.missing or not table.rows:
            self.broken = True
            return
        if table.delimiter_note:
            warnings.append(table.delimiter_note)
        for lineno, row in table.rows:
            key = row.get("parameter", "").lower()
            if not key:
                if "parameter" not in table.missing:
                    problems.append(Problem("parameter name is empty", file, lineno, "parameter"))
                continue
            if key in self.values:
                problems.append(Problem(f"'{key}' is given twice (also on row {self.values[key][1]})", file, lineno,
                                        "parameter"))
                continue
            self.values[key] = (row.get("value", ""), lineno)

    def has(self, key: str) -> bool:
        return key in self.values

    def row(self, key: str) -> int | None:
        return self.values[key][1] if key in self.values else None

    def bad(self, key: str, message: str) -> None:
        if key in self.values:
            self.problems.append(Problem(f"{key}: {message}", self.file, self.row(key), "value"))
        else:
            self.problems.append(Problem(message, self.file, None, key))

    def text(self, key: str) -> str:
        return self.values.get(key, ("", 0))[0]

    def number(self, key: str, integer: bool = False, positive: bool = True, maximum: float | None = None,
               unit: str = "", words: tuple[str, ...] = (), minimum: float | None = None):
        """The value as a number, None when absent or wrong (then a problem is recorded)."""
        if key not in self.values:
            return None
        value = self.text(key)
        if value == "":
            self.bad(key, "is empty; a number is required (or delete the row)")
            return None
        x, message = check_number(value, positive=positive, maximum=maximum, unit=unit, minimum=minimum)
        if message:
            if words and "not a number" in message:
                message += f" or {' / '.join(words)}"
            self.bad(key, message)
            return None
        if integer:
            if int(x) != x:
                self.bad(key, f"must be a whole number, got {value}")
                return None
            return int(x)
        return x

    def boolean(self, key: str, default: bool | None = None) -> bool | None:
        if key not in self.values:
            return default
        x = parse_bool(self.text(key))
        if x is None:
            self.bad(key, f"'{self.text(key)}' is not true or false (write true/false, yes/no or 1/0)")
            return default
        return x

    def numbers(self, key: str, integer: bool = False, maximum: float | None = None) -> list | None:
        """A list such as `0.4;0.7;0.9` (also `,`, `|` or spaces between the numbers)."""
        if key not in self.values:
            return None
        pieces = self.text(key).replace(";", " ").replace(",", " ").replace("|", " ").split()
        if not pieces:
            self.bad(key, "is empty; give a list such as 0.4;0.7;1.0 (or delete the row)")
            return None
        out = []
        for piece in pieces:
            x, message = check_number(piece, maximum=maximum)
            if message:
                self.bad(key, message)
                return None
            if integer and int(x) != x:
                self.bad(key, f"'{piece}' is not a whole number")
                return None
            out.append(int(x) if integer else x)
        return out

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str | None:
        if key not in self.values:
            return default
        value = self.text(key)
        for option in options:
            if option.casefold() == value.casefold():
                return option
        near = difflib.get_close_matches(value.lower(), [o.lower() for o in options], n=1, cutoff=0.6)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        self.bad(key, f"must be one of {', '.join(options)}, got '{value}'{hint}")
        return None

    def relocate(self, exc: InputError, keys: dict[str, str]) -> None:
        """Record the problems a domain object raised, at the config row of the field they name."""
        for p in exc.problems:
            key = keys.get(p.column, "")
            if key in self.values:
                self.problems.append(Problem(p.message, self.file, self.row(key), "value"))
            else:
                self.problems.append(Problem(p.message, self.file))

    def report_unused(self) -> None:
        known = sorted(HONOURED | set(IGNORED))
        for key, (_, lineno) in self.values.items():
            if key in IGNORED:
                self.warnings.append(f"config.csv row {lineno}: '{key}' is ignored: {IGNORED[key]}")
            elif key not in HONOURED:
                near = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                self.warnings.append(f"config.csv row {lineno}: unknown parameter '{key}' is ignored{hint}")


def _model(cfg: _Config, catalog: Catalog, warnings: list[str]) -> ModelSpec | None:
    before = len(cfg.problems)
    name_key = "model" if cfg.has("model") else "model_name"
    name = cfg.text(name_key)
    base: ModelSpec | None = None
    if name:
        hit = catalog.resolve_model(name)
        if hit:
            base = catalog.models[hit[0]]
            if hit[1]:
                warnings.append(f"model '{name}' is an alias of catalogue model '{hit[0]}'")
    given = {field: cfg.number(key, integer=True, maximum=limit, unit=unit)
             for key, (field, limit, unit) in MODEL_KEYS.items()}
    given["bytes_per_param"] = cfg.number("bytes_per_element", maximum=16, unit="bytes", minimum=MIN_BYTES_PER_PARAM)
    given["gated_mlp"] = cfg.boolean("gated_mlp")
    given["tied_embeddings"] = cfg.boolean("tied_embeddings")
    given = {k: v for k, v in given.items() if v is not None}
    override = cfg.number("layer_weight_memory_gb", maximum=MAX_GPU_MEMORY_GB, unit="GB")
    keys = {field: key for key, (field, _, _) in MODEL_KEYS.items()} | {
        "bytes_per_param": "bytes_per_element", "gated_mlp": "gated_mlp", "tied_embeddings": "tied_embeddings",
        "layer_weight_memory_gb": "layer_weight_memory_gb"}
    if given.get("num_heads") and given.get("num_kv_heads"):
        heads, kv = given["num_heads"], given["num_kv_heads"]
        if kv > heads or heads % kv:
            cfg.bad("num_kv_heads", f"num_kv_heads ({kv}) must divide num_attention_heads ({heads})")
    if base is None:
        need = ("num_decoder_layers", "d_model", "d_hidden", "num_attention_heads")
        absent = [k for k in need if not cfg.has(k)]
        if absent:
            near = catalog.nearest_models(name) if name else []
            what = f"'{name}' is not in the catalogue" if name else "no model is named"
            hint = f" (nearest catalogue names: {', '.join(near)})" if near else ""
            cfg.bad(name_key if name else "model", f"{what}{hint}, and {', '.join(absent)} "
                                                   f"{'is' if len(absent) == 1 else 'are'} not given")
            return None
        if len(cfg.problems) > before:
            return None  # a dimension was given but is wrong: already reported at its row
        heads, hidden = given["num_heads"], given["hidden_size"]
        if "head_dim" not in given and hidden < heads:
            cfg.bad("d_model", f"d_model ({hidden}) must be at least num_attention_heads ({heads})")
        if len(cfg.problems) > before:
            return None
        if name_key == "model":
            warnings.append(f"model '{name}' is not in the catalogue: using the dimensions in config.csv")
        if "num_kv_heads" not in given:
            twin = _architecture_twin(catalog, name, hidden, heads)
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
        try:
            base = ModelSpec(
                name=name or "custom", num_layers=given["num_layers"], hidden_size=hidden,
                num_heads=heads, num_kv_heads=given.get("num_kv_heads", heads),
                head_dim=given.get("head_dim", hidden // heads), ffn_size=given["ffn_size"],
                gated_mlp=given.get("gated_mlp", True), vocab_size=given.get("vocab_size", 32000),
                bytes_per_param=given.get("bytes_per_param", 2.0), tied_embeddings=given.get("tied_embeddings", False),
                max_position_embeddings=given.get("max_position_embeddings"),
            )
        except InputError as exc:
            cfg.relocate(exc, keys)
            return None
    else:
        if len(cfg.problems) > before:
            return None
        changed = {k: v for k, v in given.items() if getattr(base, k) != v}
        if changed:
            warnings.append(f"config.csv overrides catalogue model '{base.name}': "
                            + ", ".join(f"{k}={v}" for k, v in changed.items()))
            try:
                base = replace(base, **changed)
            except InputError as exc:
                cfg.relocate(exc, keys)
                return None
    if override is not None:
        from .perf import layer_params

        computed = layer_params(base) * base.bytes_per_param / GB
        warnings.append(f"layer_weight_memory_gb={override:g} is used as each layer's weights: its memory, the "
                        f"bytes read per step and the FLOPs ({override / base.bytes_per_param:g} G parameters per "
                        f"layer; the architecture implies {computed:.2f} GB)")
        base = replace(base, layer_weight_gb_override=override)
    elif cfg.has("layer_weight_memory_gb"):
        return None
    from .domain import KV_PRECISIONS, PRECISIONS
    from .perf import apply_precision

    precision = cfg.choice("precision", tuple(PRECISIONS), "bf16") if cfg.has("precision") else None
    kv_precision = cfg.choice("kv_precision", tuple(KV_PRECISIONS), "bf16") if cfg.has("kv_precision") else None
    if precision is not None or kv_precision is not None:
        base = apply_precision(base, precision, kv_precision)
    return base


def _architecture_twin(catalog: Catalog, name: str, hidden: int, heads: int) -> ModelSpec | None:
    """The catalogue model with the same width and head count whose name is closest to `name`."""
    same = [m for m in catalog.models.values() if m.hidden_size == hidden and m.num_heads == heads]
    if not same or not name:
        return None
    return max(same, key=lambda m: difflib.SequenceMatcher(None, name.lower(), m.name.lower()).ratio())


def _workload(cfg: _Config, warnings: list[str]) -> Workload | None:
    before = len(cfg.problems)
    tokens = dict(integer=True, maximum=MAX_CONTEXT_TOKENS, unit="tokens (longer than any model's context)")
    seq = cfg.number("sequence_length", **tokens)
    inp = cfg.number("input_tokens", **tokens)
    out = cfg.number("output_tokens", **tokens)
    if not cfg.has("input_tokens") and not cfg.has("output_tokens"):
        if not cfg.has("sequence_length"):
            cfg.bad("input_tokens", "no workload: give input_tokens and output_tokens (or the seed's sequence_length)")
        elif seq is not None and seq < 2:
            cfg.bad("sequence_length", f"must be at least 2 (one prompt and one generated token), got {seq}")
        elif seq is not None:
            out = min(DEFAULT_OUTPUT_TOKENS, max(1, seq // 2))
            inp = seq - out
            warnings.append(f"sequence_length={seq} is read as prompt + generated tokens: {inp} input + {out} "
                            "output per request (set input_tokens and output_tokens to change)")
    elif not (cfg.has("input_tokens") and cfg.has("output_tokens")):
        given, absent = ("input_tokens", "output_tokens") if cfg.has("input_tokens") else ("output_tokens",
                                                                                          "input_tokens")
        cfg.bad(given, f"{absent} is not given: give both input_tokens and output_tokens")
    elif inp is not None and out is not None:
        if inp + out > MAX_CONTEXT_TOKENS:
            cfg.bad("input_tokens", f"input_tokens + output_tokens = {inp + out:,} is above the limit of "
                                    f"{MAX_CONTEXT_TOKENS:,} tokens (longer than any model's context)")
        if seq is not None:
            warnings.append(f"sequence_length={seq} is superseded by input_tokens + output_tokens = {inp + out}")
    concurrency = None
    per_request = dict(integer=True, maximum=MAX_CONCURRENCY, unit="sequences in flight")
    if cfg.has("concurrency") and cfg.text("concurrency").lower() not in ("auto", "max", ""):
        concurrency = cfg.number("concurrency", words=("auto",), **per_request)
    elif cfg.has("batch_size"):
        concurrency = cfg.number("batch_size", **per_request)
    elif cfg.has("max_batch_size"):
        concurrency = cfg.number("max_batch_size", **per_request)
        lo = cfg.number("min_batch_size", **per_request)
        if lo is not None and concurrency is not None and lo > concurrency:
            cfg.bad("min_batch_size", f"min_batch_size ({lo}) is above max_batch_size ({concurrency})")
        elif lo is not None and concurrency is not None and lo != concurrency:
            warnings.append(f"min_batch_size={lo}..max_batch_size={concurrency}: planning for {concurrency} "
                            "sequences in flight")
    basis = cfg.choice("token_basis", ("total", "output"), "total")
    if len(cfg.problems) > before or inp is None or out is None or basis is None:
        return None
    try:
        return Workload(inp, out, concurrency, basis)
    except InputError as exc:
        cfg.relocate(exc, {"input_tokens": "input_tokens", "output_tokens": "output_tokens",
                           "concurrency": "concurrency", "token_basis": "token_basis"})
        return None


def _settings(cfg: _Config, warnings: list[str]) -> SearchSettings | None:
    before = len(cfg.problems)
    kwargs: dict = {}
    method = cfg.choice("method", METHODS, "exact")
    if method:
        kwargs["method"] = method
    w = cfg.number("cost_throughput_weight", positive=False)
    if w is not None and w > 1:
        cfg.bad("cost_throughput_weight", f"must be between 0 and 1 (0 = pure throughput, 1 = pure cost), got {w:g}")
    elif w is not None:
        kwargs["cost_weight"] = w
    if cfg.has("quantization"):
        quant = cfg.choice("quantization", QUANTIZATION_KEYS, "coarse")
        if quant:
            kwargs["quantization"] = quant
    else:
        kwargs["quantization"] = "coarse" if cfg.boolean("enable_segment_quantization", default=True) else "full"
    sizes = cfg.numbers("segment_sizes", integer=True, maximum=MAX_LAYERS)
    if sizes:
        kwargs["sizes"] = tuple(sizes)
    factors = cfg.numbers("budget_factors", maximum=MAX_BUDGET_FACTOR)
    if factors:
        repeated = sorted({f for f in factors if factors.count(f) > 1})
        unsorted = [(a, b) for a, b in zip(factors, factors[1:]) if b < a]
        if repeated:
            cfg.bad("budget_factors", f"must not repeat a factor: {', '.join(f'{f:g}' for f in repeated)} "
                                      "appears more than once")
        elif unsorted:
            a, b = unsorted[0]
            cfg.bad("budget_factors", f"must be in increasing order: {b:g} comes after {a:g}")
        else:
            kwargs["budget_factors"] = tuple(factors)
    for key, field_name, integer, limit, unit in (
            ("max_pipeline_stages", "max_stages", True, MAX_LAYERS, "stages"),
            ("min_layers_per_stage", "min_layers_per_stage", True, MAX_LAYERS, "layers"),
            ("time_limit_seconds", "time_limit_s", False, MAX_TIME_LIMIT_S, "seconds"),
            ("throughput_normalization", "throughput_normalization", False, 1e12, ""),
            ("cost_normalization", "cost_normalization", False, 1e12, ""),
            ("max_hourly_cost", "max_usd_per_hour", False, 1e9, "$/hour"),
            ("max_ttft_ms", "max_ttft_ms", False, 1e9, "ms"),
            ("max_tpot_ms", "max_tpot_ms", False, 1e9, "ms")):
        floor = MIN_PRICE_USD_PER_GPU_HOUR if key == "max_hourly_cost" else None  # no plan costs less
        value = cfg.number(key, integer=integer, maximum=limit, unit=unit, minimum=floor)
        if value is not None:
            kwargs[field_name] = value
    # the seed's explicit normalisations mean the seed's weighting; without them, w spans the frontier
    seed_norms = cfg.has("throughput_normalization") or cfg.has("cost_normalization")
    scaling = cfg.choice("weight_scaling", WEIGHT_SCALINGS, "seed" if seed_norms else "normalised")
    if scaling:
        kwargs["weight_scaling"] = scaling
    use_case = cfg.choice("use_case", USE_CASE_KEYS, None)
    if use_case:
        kwargs["use_case"] = use_case
        if use_case != "custom":  # explicit max_ttft_ms / max_tpot_ms rows win over the use case's limits
            from .usecases import get_use_case

            uc = get_use_case(use_case)
            for field_name in ("max_ttft_ms", "max_tpot_ms"):
                if field_name not in kwargs and getattr(uc, field_name) is not None:
                    kwargs[field_name] = getattr(uc, field_name)
    gap = cfg.number("optimality_gap", positive=False)
    if gap is not None and gap >= 1:
        cfg.bad("optimality_gap", f"must be below 1 (a fraction: 0.01 is 1%), got {gap:g}")
    elif gap is not None:
        kwargs["mip_gap"] = gap
    target = cfg.number("max_cost_per_million_token", maximum=1e9, unit="$ per million tokens")
    per_token = cfg.number("max_cost_per_token", maximum=1e6, unit="$ per token")
    if target is not None:
        kwargs["target_usd_per_million_tokens"] = target
    elif per_token is not None:
        kwargs["target_usd_per_million_tokens"] = usd_per_million_from_per_token(per_token)
        warnings.append(f"max_cost_per_token={per_token:g} $/token is read as a target of "
                        f"${usd_per_million_from_per_token(per_token):g} per million tokens")
    tokens = cfg.number("total_tokens_to_process", maximum=1e18, unit="tokens")
    hours = cfg.number("max_total_runtime_hours", maximum=1e12, unit="hours")
    total_cost = cfg.number("max_total_cost", maximum=1e15, unit="$")
    if (cfg.has("max_total_runtime_hours") or cfg.has("max_total_cost")) and not cfg.has("total_tokens_to_process"):
        warnings.append("max_total_runtime_hours / max_total_cost need total_tokens_to_process; ignored")
    if tokens is not None and hours is not None:
        kwargs["min_tokens_per_s"] = tokens_per_s_over(tokens, hours)
    if tokens is not None and total_cost is not None:
        kwargs["max_usd_per_million_tokens"] = usd_per_million_from_per_token(total_cost / tokens)
    if len(cfg.problems) > before:
        return None
    try:
        return SearchSettings(**kwargs)
    except InputError as exc:
        cfg.relocate(exc, SETTINGS_KEYS)
        return None


# ------------------------------------------------------------------ gpu_pool.csv
def _pool_entries(text: str, file: str, catalog: Catalog, problems: list[Problem],
                  warnings: list[str]) -> tuple[list[PoolEntry], bool]:
    """The pool's entries, and whether every row was valid (network checks need the whole pool)."""
    before = len(problems)
    table = parse_table(text, file, POOL_COLUMNS, POOL_OPTIONAL, problems=problems)
    if table.delimiter_note:
        warnings.append(table.delimiter_note)
    if len(table.rows) > MAX_GPU_TYPES:  # refused before any row is checked (each row is catalogue work)
        problems.append(Problem(f"{len(table.rows):,} GPU types, above the limit of {MAX_GPU_TYPES} types in one pool",
                                file, None, "gpu_type"))
        return [], False
    entries: list[PoolEntry] = []
    seen: dict[str, int] = {}
    for lineno, row in table.rows:
        entry = _pool_entry(table, lineno, row, catalog, problems, warnings, seen)
        if entry is not None:
            entries.append(entry)
    total = sum(e.count for e in entries)
    if total > MAX_POOL_GPUS:
        problems.append(Problem(f"the pool has {total:,} GPUs in total, above the limit of {MAX_POOL_GPUS:,}", file,
                                None, "count"))
    return entries, len(problems) == before


def _pool_entry(table: Table, lineno: int, row: dict[str, str], catalog: Catalog, problems: list[Problem],
                warnings: list[str], seen: dict[str, int]) -> PoolEntry | None:
    file = table.file
    before = len(problems)
    c = Cells(table, lineno, row, problems)
    name = c.text("gpu_type")
    count = c.integer("count", maximum=MAX_GPUS_PER_TYPE, unit="GPUs of one type")
    memory = c.number("memory_gb", allow_missing=True, maximum=MAX_GPU_MEMORY_GB, unit="GB", minimum=MIN_GPU_MEMORY_GB)
    prices = {col: c.number(col, allow_missing=True, maximum=MAX_PRICE_USD_PER_GPU_HOUR, unit="$ per GPU-hour",
                            minimum=MIN_PRICE_USD_PER_GPU_HOUR)
              for col in ("price_usd_per_hour", "dollar_per_hour")}
    if None not in prices.values() and prices["price_usd_per_hour"] != prices["dollar_per_hour"]:
        problems.append(Problem(f"two different prices: price_usd_per_hour {prices['price_usd_per_hour']:g} and "
                                f"dollar_per_hour {prices['dollar_per_hour']:g}", file, lineno, "dollar_per_hour"))
    price = prices["price_usd_per_hour"] if prices["price_usd_per_hour"] is not None else prices["dollar_per_hour"]
    overrides = {"fp16_dense_tflops": c.number("fp16_dense_tflops", allow_missing=True, maximum=MAX_TFLOPS,
                                               unit="TFLOP/s", minimum=MIN_TFLOPS),
                 "hbm_gb_per_s": c.number("hbm_gb_per_s", allow_missing=True, maximum=MAX_GB_PER_S, unit="GB/s",
                                          minimum=MIN_GB_PER_S),
                 "intra_link_gb_per_s": c.number("intra_link_gb_per_s", allow_missing=True, maximum=MAX_GB_PER_S,
                                                 unit="GB/s", minimum=MIN_GB_PER_S)}
    per_node = c.integer("gpus_per_node", allow_missing=True, maximum=1024, unit="GPUs per node")
    link = row.get("intra_link", "").lower()
    if link and link not in ("nvlink", "pcie"):
        problems.append(Problem(f"'{row['intra_link']}' is not nvlink or pcie", file, lineno, "intra_link"))
    if name is not None:
        if name.casefold() in seen:
            problems.append(Problem(f"GPU type '{name}' is already listed on row {seen[name.casefold()]}",
                                    file, lineno, "gpu_type"))
        else:
            seen[name.casefold()] = lineno
    hit = catalog.resolve_gpu(name) if name else None
    if name and hit is None:
        custom = {"memory_gb": memory, "price_usd_per_hour": price, "gpus_per_node": per_node, "intra_link": link,
                  **overrides}
        absent = [k for k, v in custom.items() if not v and not row.get(k)]
        if absent:
            near = catalog.nearest_gpus(name)
            hint = f"; nearest catalogue names: {', '.join(near)}" if near else ""
            problems.append(Problem(f"unknown GPU '{name}'{hint} (for a GPU outside the catalogue give "
                                    f"{', '.join(absent)})", file, lineno, "gpu_type"))
    if len(problems) > before or name is None or count is None:
        return None
    if hit is None:
        spec = GpuSpec(sku=name, memory_gb=memory, price_usd_per_hour=price, gpus_per_node=per_node,
                       intra_link=link, price_source=row.get("price_source") or f"{file} row {lineno}",
                       price_date=row.get("price_date", ""), **overrides)
        return PoolEntry(name=name, count=count, spec=spec)
    sku, alias = hit
    spec = catalog.gpus[sku]
    if alias:
        warnings.append(f"GPU '{name}' ({file} row {lineno}) is read as catalogue SKU '{sku}'")
    changes: dict = {k: v for k, v in overrides.items() if v is not None}
    if per_node:
        changes["gpus_per_node"] = per_node
    if link:
        changes["intra_link"] = link
    if memory is not None and memory != spec.memory_gb:
        warnings.append(f"GPU '{name}': memory {memory:g} GB from {file} row {lineno} is used "
                        f"(catalogue {sku} has {spec.memory_gb:g} GB)")
        changes["memory_gb"] = memory
    if price is None:
        warnings.append(f"GPU '{name}': no price in {file} row {lineno}; using the catalogue's "
                        f"${spec.price_usd_per_hour:g}/GPU-hour ({spec.price_source}, {spec.price_date})")
    else:
        changes["price_usd_per_hour"] = price
        # the pool file may say where its price comes from (price_source, price_date), as the catalogue does
        changes["price_source"] = row.get("price_source") or f"{file} row {lineno}"
        changes["price_date"] = row.get("price_date", "")
    return PoolEntry(name=name, count=count, spec=replace(spec, **changes))


# ------------------------------------------------------------------ networks
def _links(texts: dict[str, str], prefix: str, entries: list[PoolEntry] | None, problems: list[Problem],
           warnings: list[str]) -> tuple[tuple[str, str, float], ...]:
    """Stage-to-stage bandwidth by type pair from whichever network file is given (ours wins).

    `entries` is None when the pool has problems: the files are then checked cell by cell only."""
    if "network_by_type.csv" in texts:
        if "network_bandwidth.csv" in texts:
            warnings.append("network_bandwidth.csv is ignored: network_by_type.csv is given too")
        return _links_by_type(texts["network_by_type.csv"], prefix + "network_by_type.csv", entries, problems,
                              warnings)
    if "network_bandwidth.csv" in texts:
        return _links_per_gpu(texts["network_bandwidth.csv"], prefix + "network_bandwidth.csv", entries, problems)
    return ()


def _links_by_type(text: str, file: str, entries: list[PoolEntry] | None, problems: list[Problem],
                   warnings: list[str]):
    table = parse_table(text, file, ("gpu_type_a", "gpu_type_b", "gb_per_s"), (), problems=problems)
    if table.delimiter_note:
        warnings.append(table.delimiter_note)
    names = {e.name.casefold(): e.name for e in entries or ()}
    seen: dict[tuple[str, str], int] = {}
    links = []
    for lineno, row in table.rows:
        before = len(problems)
        c = Cells(table, lineno, row, problems)
        pair = []
        for col in ("gpu_type_a", "gpu_type_b"):
            v = c.text(col)
            if v is not None and entries is not None and v.casefold() not in names:
                near = difflib.get_close_matches(v, list(names.values()), n=1, cutoff=0.5)
                hint = f"did you mean '{near[0]}'? " if near else ""
                problems.append(Problem(f"'{v}' is not a GPU type of the pool ({hint}pool: "
                                        f"{', '.join(names.values())})", file, lineno, col))
            pair.append(names.get(v.casefold(), v) if v else v)
        bw = c.number("gb_per_s", maximum=MAX_GB_PER_S, unit="GB/s", minimum=MIN_GB_PER_S)
        if len(problems) > before or None in pair or bw is None:
            continue
        key = tuple(sorted(pair, key=str.casefold))
        if key in seen:
            problems.append(Problem(f"the pair {key[0]} / {key[1]} is already given on row {seen[key]}",
                                    file, lineno, "gpu_type_b"))
            continue
        seen[key] = lineno
        links.append((pair[0], pair[1], bw))
    if entries is not None and table.rows and not table.missing:
        counts = {e.name: e.count for e in entries}
        types = list(counts)
        needed = [(a, b) for i, a in enumerate(types) for b in types[i:] if a != b or counts[a] > 1]
        absent = [f"{a} / {b}" for a, b in needed if tuple(sorted((a, b), key=str.casefold)) not in seen]
        if absent:
            problems.append(Problem(f"no bandwidth for {len(absent)} GPU-type pair(s) of the pool: "
                                    f"{', '.join(absent)} (every pair that can be neighbouring stages needs a row)",
                                    file))
    return tuple(links)


def _links_per_gpu(text: str, file: str, entries: list[PoolEntry] | None, problems: list[Problem]):
    """Reduce the seed's per-GPU matrix (GPU ids numbered in pool order) to one figure per type pair:
    the minimum over the pairs of distinct GPUs, so that any placement is covered (conservative)."""
    unreadable: list[Problem] = []
    _, rows = split_rows(text, file, unreadable)
    if unreadable:  # a matrix with a row missing would only give misleading size problems
        problems.extend(unreadable)
        return ()
    if not rows:
        problems.append(Problem("file is empty (a header row of GPU ids and one row per GPU are needed)", file))
        return ()
    (header_line, header), body = rows[0], rows[1:]
    while len(header) > 1 and not header[-1]:
        header.pop()
    columns = header[1:]
    if not body:
        problems.append(Problem("has a header but no data rows", file, header_line))
        return ()
    owner = [e.name for e in entries for _ in range(e.count)] if entries is not None else None
    n = len(owner) if owner is not None else len(columns)
    if owner is not None:
        if len(columns) != n:
            problems.append(Problem(f"the header names {len(columns)} GPUs but the pool has {n} GPUs "
                                    "(the matrix must be square, one row and column per GPU in pool order)",
                                    file, header_line))
        if len(body) != n:
            problems.append(Problem(f"has {len(body)} GPU rows but the pool has {n} GPUs (the matrix must be "
                                    "square, one row and column per GPU in pool order)", file))
        if len(columns) != n or len(body) != n:
            return ()  # a matrix of the wrong size: its rows are not worth a line each
    best: dict[tuple[str, str], float] = {}
    for i, (lineno, cells) in enumerate(body):
        while len(cells) > n + 1 and not cells[-1]:
            cells.pop()
        if len(cells) != n + 1:
            problems.append(Problem(f"has {len(cells) - 1} values, expected {n} (one per GPU)", file, lineno))
            continue
        for j, value in enumerate(cells[1:]):
            column = columns[j] if j < len(columns) and columns[j] else f"gpu_{j}"
            if value == "":
                problems.append(Problem("is empty; a bandwidth in GB/s is required", file, lineno, column))
                continue
            bw, message = check_number(value, positive=i != j, maximum=MAX_GB_PER_S, unit="GB/s",
                                       minimum=MIN_GB_PER_S)
            if message:  # the diagonal (a GPU to itself) may be 0 but must still be a number
                what = "bandwidth " + message if message.startswith("must") else message
                problems.append(Problem(what, file, lineno, column))
                continue
            if i == j or owner is None or i >= n:
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
    allowed = set(SCENARIO_FILES + ENGINE_FILES)
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise InputError(Problem("'files' must map file names to text", file))
    unknown = set(files) - allowed
    if unknown:
        raise InputError(Problem(f"unexpected files {sorted(unknown)} (allowed: {sorted(allowed)})", file))
    return str(doc.get("name", "imported")), dict(files)
