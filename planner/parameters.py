"""A scenario's parameters, each declared once: its section (model, workload, settings) and field there, its
config.csv key, unit, limits, command-line flag and help. The config reader (`scenario_sections`), the CLI
(`cli`, `cli_common`) and, later, the app's widgets read this table instead of restating the mapping.

`read` says who reads the config key: "number" is the generic reader (one number, checked against
`minimum`/`maximum`, whole when `integer`); "own" parameters have their own rules in
`scenario_sections.read_settings` (choices, lists, derived figures such as a runtime cap turned into a
throughput floor). The table's order is the order the CLI applies its flags (the first bad flag is the one
reported).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .domain import (MAX_CONCURRENCY, MAX_CONTEXT_TOKENS, MAX_LAYERS, MIN_PRICE_USD_PER_GPU_HOUR, USE_CASE_KEYS,
                     WEIGHT_SCALINGS)
from .kinds import METHODS

MAX_BUDGET_FACTOR = 1000
MAX_TIME_LIMIT_S = 10_000_000
QUANTIZATION_KEYS = ("coarse", "fine", "even", "full")


@dataclass(frozen=True)
class Parameter:
    field: str  # the field of its section's domain type (SearchSettings, Workload, ModelSpec)
    config_key: str  # config.csv parameter it is read from
    unit: str = ""
    minimum: float | None = None  # smallest value allowed (None: only the sign, checked by the domain)
    maximum: float | None = None
    integer: bool = False
    read: str = "own"  # "number": the generic config reader; "own": read_settings's own code
    flag: str | None = None  # command-line flag of `solve` (and the analysis commands), None: none
    flag_type: str = "float"  # how the flag is parsed: int | float | floats | choice | text
    choices: tuple[str, ...] = ()
    help: str = ""
    # the flag's value is checked against `minimum` in `unit` as the config key's is (the budget: no plan
    # costs less than one GPU-hour's floor price); other flags only refuse denormal numbers
    flag_floor: bool = False
    section: str = "settings"  # settings | workload | model

    @property
    def dest(self) -> str | None:
        """The flag's argparse attribute (`--max-stages` -> max_stages)."""
        return self.flag[2:].replace("-", "_") if self.flag else None


SETTINGS_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("max_stages", "max_pipeline_stages", "stages", maximum=MAX_LAYERS, integer=True, read="number",
              flag="--max-stages", flag_type="int", help="max pipeline stages (default: config.csv or 8)"),
    Parameter("min_layers_per_stage", "min_layers_per_stage", "layers", maximum=MAX_LAYERS, integer=True,
              read="number", flag="--min-layers", flag_type="int", help="min layers per stage"),
    Parameter("method", "method", choices=METHODS, flag="--method", flag_type="choice",
              help="exact: proven min $/token; enumeration: the seed's budget grid; weighted: cost-weight objective"),
    Parameter("cost_weight", "cost_throughput_weight", minimum=0.0, maximum=1.0, flag="--cost-weight",
              help="weighted method: 0 = pure throughput, 1 = pure cost"),
    Parameter("budget_factors", "budget_factors", maximum=MAX_BUDGET_FACTOR, flag="--budget-factors",
              flag_type="floats", help="enumeration: factors of the ballpark budget"),
    Parameter("max_usd_per_hour", "max_hourly_cost", "$/hour", minimum=MIN_PRICE_USD_PER_GPU_HOUR, maximum=1e9,
              read="number", flag="--budget", flag_floor=True, help="hard cap on $/hour"),
    Parameter("target_usd_per_million_tokens", "max_cost_per_million_token", "$ per million tokens", maximum=1e9,
              flag="--target", help="competitor's $/million tokens to beat"),
    Parameter("time_limit_s", "time_limit_seconds", "seconds", maximum=MAX_TIME_LIMIT_S, read="number",
              flag="--time-limit", help="solver time limit in seconds (whole method)"),
    # config.csv states a runtime cap for a token count; the settings hold the throughput it implies
    Parameter("min_tokens_per_s", "max_total_runtime_hours", "tokens/s", flag="--min-throughput",
              help="throughput floor in tokens/s (min cost under a floor)"),
    Parameter("max_ttft_ms", "max_ttft_ms", "ms", maximum=1e9, read="number", flag="--max-ttft-ms",
              help="latency SLO: time to first token (ms)"),
    Parameter("max_tpot_ms", "max_tpot_ms", "ms", maximum=1e9, read="number", flag="--max-tpot-ms",
              help="latency SLO: time per output token (ms)"),
    Parameter("mip_gap", "optimality_gap", flag="--mip-gap",  # a fraction below 1 (read_settings)
              help="relative MIP gap for enumeration/weighted"),
    Parameter("weight_scaling", "weight_scaling", choices=WEIGHT_SCALINGS, flag="--weight-scaling",
              flag_type="choice",
              help="weighted method: normalised (w spans the Pareto frontier, default) or seed (the seed's "
                   "T/T_norm and C/C_norm)"),
    Parameter("use_case", "use_case", choices=USE_CASE_KEYS, flag="--use-case", flag_type="choice",
              help="chat sets the interactive latency limits of config/use_cases.csv, batch removes them, "
                   "custom keeps the file's; --max-ttft-ms / --max-tpot-ms override"),
    # the segment sizes: flags of their own (`--sizes` and `--quantization`, mutually exclusive)
    Parameter("quantization", "quantization", choices=QUANTIZATION_KEYS),
    Parameter("sizes", "segment_sizes", "layers", maximum=MAX_LAYERS, integer=True),
    # config.csv states a total-cost cap for a token count; the settings hold the $/M tokens it implies
    Parameter("max_usd_per_million_tokens", "max_total_cost", "$ per million tokens"),
    # the seed's normalisations (tokens/s and $/hour); no unit in their messages, as the seed's files state none
    Parameter("throughput_normalization", "throughput_normalization", maximum=1e12, read="number"),
    Parameter("cost_normalization", "cost_normalization", maximum=1e12, read="number"),
)

# The architecture of a model given by its numbers instead of a catalogue name: whole numbers, each under its
# limit (read by `scenario_sections.read_model`; the domain checks the rest).
MODEL_PARAMETERS: tuple[Parameter, ...] = tuple(
    Parameter(field, key, unit, maximum=limit, integer=True, read="number", section="model")
    for key, field, limit, unit in (
        ("num_decoder_layers", "num_layers", MAX_LAYERS, "layers"),
        ("d_model", "hidden_size", 1_000_000, ""),
        ("d_hidden", "ffn_size", 10_000_000, ""),
        ("vocab_size", "vocab_size", 100_000_000, "tokens"),
        ("num_attention_heads", "num_heads", 100_000, "heads"),
        ("num_kv_heads", "num_kv_heads", 100_000, "heads"),
        ("head_dim", "head_dim", 100_000, ""),
        ("max_position_embeddings", "max_position_embeddings", MAX_CONTEXT_TOKENS, "tokens")))

# What is served (read by `scenario_sections.read_workload`, which also takes the seed's sequence_length and
# batch sizes); the flags' own parsing is in `cli_common.scenario_from_args`.
WORKLOAD_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("input_tokens", "input_tokens", "tokens", maximum=MAX_CONTEXT_TOKENS, integer=True, section="workload"),
    Parameter("output_tokens", "output_tokens", "tokens", maximum=MAX_CONTEXT_TOKENS, integer=True,
              section="workload"),
    Parameter("concurrency", "concurrency", "sequences in flight", maximum=MAX_CONCURRENCY, integer=True,
              flag="--concurrency", flag_type="text", section="workload",
              help="sequences in flight, or 'auto' (as many as memory allows)"),
    Parameter("token_basis", "token_basis", choices=("total", "output"), flag="--token-basis",
              flag_type="choice", section="workload", help="what a token is in $/token"),
)

PARAMETERS = MODEL_PARAMETERS + WORKLOAD_PARAMETERS + SETTINGS_PARAMETERS
BY_FIELD = {p.field: p for p in PARAMETERS}


def table_rows() -> list[dict]:
    """The table as plain rows (one dict per parameter, `dest` included), for documentation and the app."""
    return [{**asdict(p), "dest": p.dest} for p in PARAMETERS]
