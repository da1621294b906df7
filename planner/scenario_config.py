"""config.csv, the scenario's parameter,value file: the keys the loader understands and a reader with typed
getters that record every problem at its row (a problem names the file, the row, the `value` column and the
parameter), and report unknown keys with a suggestion.
"""
from __future__ import annotations

import difflib

from .csvio import check_number, parse_bool, parse_table
from .errors import InputError, Problem

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


class ConfigReader:
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
