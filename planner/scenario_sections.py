"""The model, workload and search settings of a scenario, read from config.csv (`scenario_config.ConfigReader`):
catalogue models by name or architecture, context lengths, the seed's settings keys and ours.
"""
from __future__ import annotations

import difflib
from dataclasses import replace

from .catalog import Catalog
from .domain import (MAX_CONCURRENCY, MAX_CONTEXT_TOKENS, MAX_GPU_MEMORY_GB, MAX_LAYERS, MIN_BYTES_PER_PARAM,
                     USE_CASE_KEYS, WEIGHT_SCALINGS, ModelSpec, SearchSettings, Workload)
from .errors import InputError
from .kinds import METHODS
from .parameters import (MAX_BUDGET_FACTOR, MAX_TIME_LIMIT_S, MODEL_PARAMETERS, QUANTIZATION_KEYS,  # noqa: F401
                         SETTINGS_PARAMETERS)
from .scenario_config import ConfigReader
from .units import GB, tokens_per_s_over, usd_per_million_from_per_token

DEFAULT_OUTPUT_TOKENS = 256

# config.csv key -> (ModelSpec field, limit, unit); all whole numbers.
MODEL_KEYS = {p.config_key: (p.field, p.maximum, p.unit) for p in MODEL_PARAMETERS}
# SearchSettings field -> the config.csv key it comes from (to locate the domain's own checks).
SETTINGS_KEYS = {p.field: p.config_key for p in SETTINGS_PARAMETERS}


def read_model(cfg: ConfigReader, catalog: Catalog, warnings: list[str]) -> ModelSpec | None:
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


def read_workload(cfg: ConfigReader, warnings: list[str]) -> Workload | None:
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


def read_settings(cfg: ConfigReader, warnings: list[str]) -> SearchSettings | None:
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
    for p in SETTINGS_PARAMETERS:
        if p.read == "number":
            value = cfg.number(p.config_key, integer=p.integer, maximum=p.maximum, unit=p.unit, minimum=p.minimum)
            if value is not None:
                kwargs[p.field] = value
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
