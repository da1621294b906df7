"""config.csv as rows, and the app's widget values turned into config.csv parameter updates (pure, no
Streamlit): a widget group is written back only when one of its values changed."""
from __future__ import annotations

import csv
import io
import math

from planner import Catalog, Scenario, SearchSettings
from planner.parameters import BY_FIELD, Parameter

MODEL_DIM_KEYS = ("num_decoder_layers", "d_model", "d_hidden", "vocab_size", "num_attention_heads", "num_kv_heads",
                  "head_dim", "gated_mlp", "bytes_per_element", "tied_embeddings", "layer_weight_memory_gb",
                  "max_position_embeddings")


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


def list_text(values) -> str:
    return "; ".join(num(v) for v in values)


# ------------------------------------------------------------------ widget values <-> config.csv
def default_values(catalog: Catalog) -> dict:
    """Widget values when the loaded texts do not parse (the texts are left untouched until edited): the
    library's own defaults (SearchSettings), not a second copy of them."""
    d = SearchSettings()
    name = "llama-3-70b" if "llama-3-70b" in catalog.models else next(iter(catalog.models))
    m = catalog.models[name]  # the model boxes show a real model's dimensions
    return {
        "method": d.method, "cost_weight": d.cost_weight, "quantization": d.quantization, "custom_sizes": False,
        "segment_sizes_text": "", "budget_factors_text": list_text(d.budget_factors),
        "target": 0.0, "use_case": "custom", "max_ttft_ms": 0.0, "max_tpot_ms": 0.0, "weight_scaling": d.weight_scaling,
        "max_stages": d.max_stages, "min_layers": d.min_layers_per_stage, "time_limit": d.time_limit_s,
        "input_tokens": 2048, "output_tokens": 512, "concurrency_auto": True, "concurrency": 32,
        "token_basis": "total", "model_source": "catalogue", "model_name": name,
        "num_layers": m.num_layers, "hidden_size": m.hidden_size, "ffn_size": m.ffn_size, "num_heads": m.num_heads,
        "num_kv_heads": m.num_kv_heads, "vocab_size": m.vocab_size, "layer_weight_gb": 0.0,
    }


def use_case_of(settings: SearchSettings) -> str:
    """The use case a scenario's settings imply: "custom" where none is stated (the seed's folders), which
    keeps its own limits and is warned about when slow."""
    return settings.use_case or "custom"


def values_from_scenario(sc: Scenario, config_text: str, catalog: Catalog, sizes: tuple[int, ...]) -> dict:
    """The widget values a parsed scenario implies (what the user sees right after loading)."""
    st_ = sc.settings
    cfg = config_dict(config_text)
    m = sc.model
    hit = catalog.resolve_model(m.name)
    # a model given by its dimensions (KV heads and vocabulary alone may also refine a catalogue model)
    dims_given = any(k in cfg for k in (*map(key, ("num_layers", "hidden_size", "ffn_size", "num_heads")),
                                         "layer_weight_memory_gb"))
    return {
        "method": st_.method, "cost_weight": float(st_.cost_weight), "quantization": st_.quantization,
        "custom_sizes": st_.sizes is not None, "segment_sizes_text": list_text(sizes),
        "budget_factors_text": list_text(st_.budget_factors),
        "target": float(st_.target_usd_per_million_tokens or 0.0),
        "use_case": use_case_of(st_),
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


# widget -> the parameter it edits (planner/parameters.py: config key, unit, limits), where one widget
# is one parameter; the config keys and the widgets' limits come from there, not from here
WIDGET_FIELDS = {
    "method": "method", "cost_weight": "cost_weight", "weight_scaling": "weight_scaling", "max_stages": "max_stages",
    "min_layers": "min_layers_per_stage", "time_limit": "time_limit_s", "token_basis": "token_basis",
    "quantization": "quantization", "segment_sizes_text": "sizes", "budget_factors_text": "budget_factors",
    "target": "target_usd_per_million_tokens", "use_case": "use_case", "max_ttft_ms": "max_ttft_ms",
    "max_tpot_ms": "max_tpot_ms", "input_tokens": "input_tokens", "output_tokens": "output_tokens",
    "concurrency": "concurrency", "num_layers": "num_layers", "hidden_size": "hidden_size", "ffn_size": "ffn_size",
    "num_heads": "num_heads", "num_kv_heads": "num_kv_heads", "vocab_size": "vocab_size",
}
ONE_TO_ONE = ("method", "cost_weight", "weight_scaling", "max_stages", "min_layers", "time_limit", "token_basis")
MODEL_WIDGETS = ("num_layers", "hidden_size", "ffn_size", "num_heads", "num_kv_heads", "vocab_size")


def parameter(widget: str) -> Parameter:
    return BY_FIELD[WIDGET_FIELDS[widget]]


def key(widget: str) -> str:
    """The config.csv key `widget` writes."""
    return parameter(widget).config_key


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
    for w in ONE_TO_ONE:
        if _changed(w, base, v):
            u[key(w)] = num(v[w])
    if _changed("sizes", base, v):
        u[key("quantization")] = v["quantization"]
        u["enable_segment_quantization"] = None  # the seed's switch, replaced by the quantization key
        if v["custom_sizes"]:
            u[key("segment_sizes_text")] = ";".join(p.strip() for p in v["segment_sizes_text"].replace(",", ";")
                                                    .split(";") if p.strip()) or " "
        else:
            u[key("segment_sizes_text")] = None
    if _changed("budget", base, v):
        u[key("budget_factors_text")] = ";".join(p for p in v["budget_factors_text"].replace(",", ";")
                                                 .replace(" ", ";").split(";") if p) or " "
    if _changed("target", base, v):
        u[key("target")] = num(v["target"]) if v["target"] else None
        u["max_cost_per_token"] = None  # the seed's per-token spelling of the same target
    if _changed("slo", base, v):  # the use case and its limits together: explicit limits win over the use case's
        u[key("use_case")] = v["use_case"]
        u[key("max_ttft_ms")] = num(v["max_ttft_ms"]) if v["max_ttft_ms"] else None
        u[key("max_tpot_ms")] = num(v["max_tpot_ms"]) if v["max_tpot_ms"] else None
    if _changed("tokens", base, v):
        u[key("input_tokens")] = num(v["input_tokens"])
        u[key("output_tokens")] = num(v["output_tokens"])
        u["sequence_length"] = None  # the seed's input + output length, replaced by the two keys
    if _changed("concurrency", base, v):
        u[key("concurrency")] = "auto" if v["concurrency_auto"] else num(v["concurrency"])
        u["batch_size"] = u["min_batch_size"] = u["max_batch_size"] = None  # the seed's batch sizes
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
            u.update({key(w): num(v[w]) for w in MODEL_WIDGETS})
            for k in ("head_dim", "gated_mlp", "bytes_per_element", "tied_embeddings", "max_position_embeddings"):
                if k in cfg:
                    u[k] = cfg[k]
            if "head_dim" in cfg and (v["hidden_size"] != base.get("hidden_size") or v["num_heads"] != base.get("num_heads")):
                u["head_dim"] = None  # let it follow d_model / heads
            if v["layer_weight_gb"]:
                u["layer_weight_memory_gb"] = num(v["layer_weight_gb"])
    return u
