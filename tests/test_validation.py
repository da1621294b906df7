"""Input validation: every problem is collected and named (file, row, column, rule); unusual but
unambiguous files load to the same scenario as the clean ones.

Each bad input is a copy of config/medium or config/realistic with a few edits. It is checked through
the library (InputError with the expected problem) and through the CLI (exit status 2, one line per
problem, no traceback)."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import InputError, Scenario, load_config_dir, scenario_from_texts
from planner.cli import main
from planner.csvio import read_text

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ("tiny", "small", "medium", "large", "hal")


# ---------------------------------------------------------------------------- editing copies
def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def cell(file: str, row: int, col: int, value: str):
    """Set one cell (1-based row as in the file, 0-based column) of a plain comma-separated file."""
    def edit(d: Path) -> None:
        lines = _lines(d / file)
        fields = lines[row - 1].split(",")
        fields[col] = value
        lines[row - 1] = ",".join(fields)
        _write(d / file, lines)
    return edit


def line(file: str, row: int, text: str | None):
    """Replace (or with None delete) one line."""
    def edit(d: Path) -> None:
        lines = _lines(d / file)
        if text is None:
            del lines[row - 1]
        else:
            lines[row - 1] = text
        _write(d / file, lines)
    return edit


def cut(file: str, row: int):
    """Drop the last cell of one line."""
    def edit(d: Path) -> None:
        lines = _lines(d / file)
        lines[row - 1] = lines[row - 1].rsplit(",", 1)[0]
        _write(d / file, lines)
    return edit


def add(file: str, text: str):
    def edit(d: Path) -> None:
        _write(d / file, _lines(d / file) + [text])
    return edit


def put(file: str, text: str):
    def edit(d: Path) -> None:
        (d / file).write_text(text)
    return edit


def cfg(key: str, value: str):
    """Set a parameter that config.csv already has (on its own row)."""
    def edit(d: Path) -> None:
        lines = _lines(d / "config.csv")
        rows = [i for i, text in enumerate(lines) if text.split(",")[0] == key]
        assert len(rows) == 1, f"{key} is not in this config.csv"
        lines[rows[0]] = f"{key},{value}"
        _write(d / "config.csv", lines)
    return edit


def folder(tmp_path: Path, base: str, edits=()) -> Path:
    d = tmp_path / base
    shutil.copytree(ROOT / "config" / base, d)
    for edit in edits:
        edit(d)
    return d


# Rows used below. medium config.csv: 2 sequence_length, 3 batch_size, 5 num_decoder_layers,
# 9 num_attention_heads, 11 time_limit_seconds, 12 optimality_gap, 14 enable_segment_quantization,
# 15 max_pipeline_stages, 16 min_layers_per_stage, 17 cost_throughput_weight, 18 max_hourly_cost (21 rows).
# medium gpu_pool.csv: 2 A100, 3 L20, 4 A10, 5 V100, 6 T4 (columns gpu_type,count,memory_gb,dollar_per_hour).
# realistic config.csv: 2 model, 3 input_tokens, 4 output_tokens, 5 concurrency, 6 token_basis, 7 engine,
# 8 max_pipeline_stages, 10 quantization, 11 budget_factors, 13 max_hourly_cost, 17 inter_node_gb_per_s.
# realistic network_by_type.csv: rows 2..11, the last three L40S/L40S, L40S/A10G, A10G/A10G.
P, C, NT, NB = "gpu_pool.csv", "config.csv", "network_by_type.csv", "network_bandwidth.csv"
CUSTOM_POOL = ("gpu_type,count,price_usd_per_hour,fp16_dense_tflops,hbm_gb_per_s,intra_link\n"
               "H100-SXM,8,2.99,{tflops},{hbm},{link}\nA10G,8,2.04,,,\n")

# (name, base, edits, file, row, column, phrase of the rule)
CASES = [
    # ---- gpu_pool.csv: cells
    ("count_is_text", "medium", [cell(P, 2, 1, "eight")], P, 2, "count", "'eight' is not a number"),
    ("count_is_zero", "medium", [cell(P, 5, 1, "0")], P, 5, "count", "must be positive, got 0"),
    ("count_is_negative", "medium", [cell(P, 6, 1, "-20")], P, 6, "count", "must be positive"),
    ("count_is_fractional", "medium", [cell(P, 3, 1, "2.5")], P, 3, "count", "whole number"),
    ("count_is_a_billion", "medium", [cell(P, 6, 1, "1000000000")], P, 6, "count",
     "above the limit of 100,000 GPUs of one type"),
    ("memory_is_nan", "medium", [cell(P, 3, 2, "nan")], P, 3, "memory_gb", "not a finite number"),
    ("memory_is_zero", "medium", [cell(P, 6, 2, "0")], P, 6, "memory_gb", "must be positive"),
    ("memory_is_absurd", "medium", [cell(P, 2, 2, "1e7")], P, 2, "memory_gb", "above the limit of 10,000 GB"),
    ("price_is_inf", "medium", [cell(P, 4, 3, "inf")], P, 4, "dollar_per_hour", "not a finite number"),
    ("price_is_negative", "medium", [cell(P, 2, 3, "-1.0")], P, 2, "dollar_per_hour", "must be positive"),
    ("price_is_1e12", "medium", [cell(P, 5, 3, "1e12")], P, 5, "dollar_per_hour",
     "above the limit of 10,000 $ per GPU-hour"),
    ("price_with_decimal_comma", "medium", [put(P, "gpu_type;count;memory_gb;dollar_per_hour\nA100;8;48;1,5\n")],
     P, 2, "dollar_per_hour", "decimal separator"),
    ("gpu_type_is_empty", "medium", [cell(P, 3, 0, "")], P, 3, "gpu_type", "is empty"),
    ("unknown_gpu_with_nearest", "medium", [cell(P, 3, 0, "L2O")], P, 3, "gpu_type",
     "nearest catalogue names: L20"),
    ("duplicate_gpu_type", "medium", [add(P, "a100,2,80,1.0")], P, 7, "gpu_type", "already listed on row 2"),
    ("tflops_is_negative", "realistic", [put(P, CUSTOM_POOL.format(tflops=-5, hbm=3350, link="nvlink"))],
     P, 2, "fp16_dense_tflops", "must be positive"),
    ("hbm_is_text", "realistic", [put(P, CUSTOM_POOL.format(tflops=989, hbm="fast", link="nvlink"))],
     P, 2, "hbm_gb_per_s", "not a number"),
    ("intra_link_unknown", "realistic", [put(P, CUSTOM_POOL.format(tflops=989, hbm=3350, link="infiniband"))],
     P, 2, "intra_link", "not nvlink or pcie"),
    # ---- gpu_pool.csv: shape
    ("pool_missing_column", "medium", [line(P, 1, "gpu_type,cnt,memory_gb,dollar_per_hour")], P, 1, "",
     "missing column 'count'"),
    ("pool_unknown_column", "medium", [line(P, 1, "gpu_type,count,memory_gb,dollar_per_hr")], P, 1, "dollar_per_hr",
     "did you mean 'dollar_per_hour'"),
    ("pool_row_too_long", "medium", [line(P, 4, "A10,12,48,0.5,7")], P, 4, "", "5 values but the header has 4"),
    ("pool_row_other_separator", "medium", [line(P, 5, "V100;12;24;0.3")], P, 5, "", "separated by ';'"),
    ("pool_of_1.1_million_gpus", "realistic",
     [put(P, "gpu_type,count\n" + "".join(f"{g},100000\n" for g in (
         "A100-80GB-SXM A100-40GB A100-80GB-PCIe H100-SXM H100-PCIe H100-NVL H200 L40S L40 L20 L4".split())))],
     P, None, "count", "the pool has 1,100,000 GPUs in total, above the limit of 1,000,000"),
    ("pool_empty_file", "medium", [put(P, "")], P, None, "", "file is empty"),
    ("pool_header_only", "medium", [put(P, "gpu_type,count,memory_gb,dollar_per_hour\n")], P, 1, "",
     "no data rows"),
    # ---- config.csv: numbers, booleans, limits
    ("layers_is_text", "medium", [cfg("num_decoder_layers", "forty")], C, 5, "value", "'forty' is not a number"),
    ("layers_is_nan", "medium", [cfg("num_decoder_layers", "NaN")], C, 5, "value", "not a finite number"),
    ("layers_ten_million", "medium", [cfg("num_decoder_layers", "10000000")], C, 5, "value",
     "above the limit of 10,000 layers"),
    ("heads_is_zero", "medium", [cfg("num_attention_heads", "0")], C, 9, "value", "must be positive"),
    ("kv_heads_do_not_divide", "realistic", [add(C, "num_kv_heads,3")], C, 20, "value", "must divide"),
    ("bool_is_maybe", "medium", [cfg("enable_segment_quantization", "maybe")], C, 14, "value",
     "'maybe' is not true or false"),
    ("gated_mlp_is_text", "realistic", [add(C, "gated_mlp,perhaps")], C, 20, "value", "not true or false"),
    ("cost_weight_above_one", "medium", [cfg("cost_throughput_weight", "1.5")], C, 17, "value",
     "between 0 and 1"),
    ("cost_weight_negative", "medium", [cfg("cost_throughput_weight", "-0.1")], C, 17, "value", "cannot be negative"),
    ("gap_is_five", "medium", [cfg("optimality_gap", "5")], C, 12, "value", "must be below 1"),
    ("time_limit_negative", "medium", [cfg("time_limit_seconds", "-60")], C, 11, "value", "must be positive"),
    ("max_stages_zero", "medium", [cfg("max_pipeline_stages", "0")], C, 15, "value", "must be positive"),
    ("min_layers_above_L", "medium", [cfg("min_layers_per_stage", "41")], C, 16, "value",
     "is more than the model's 40 layers"),
    ("budget_cap_1e12", "realistic", [cfg("max_hourly_cost", "1e12")], C, 13, "value",
     "above the limit of 1,000,000,000 $/hour"),
    ("sequence_length_one", "medium", [cfg("sequence_length", "1")], C, 2, "value", "at least 2"),
    ("context_twenty_million", "realistic", [cfg("input_tokens", "20000000")], C, 3, "value",
     "above the limit of 10,000,000 tokens"),
    ("output_tokens_missing", "realistic", [line(C, 4, None)], C, 3, "value", "output_tokens is not given"),
    ("concurrency_is_text", "realistic", [cfg("concurrency", "lots")], C, 5, "value", "not a number or auto"),
    ("concurrency_is_zero", "realistic", [cfg("concurrency", "0")], C, 5, "value", "must be positive"),
    ("batch_size_absurd", "medium", [cfg("batch_size", "1e9")], C, 3, "value", "sequences in flight"),
    ("inter_node_zero", "realistic", [cfg("inter_node_gb_per_s", "0")], C, 17, "value", "must be positive"),
    ("parameter_twice", "medium", [add(C, "batch_size,8")], C, 22, "parameter", "given twice (also on row 3)"),
    # ---- config.csv: names and lists
    ("unknown_model_with_nearest", "realistic", [cfg("model", "llama-3-70 b")], C, 2, "value",
     "nearest catalogue names: llama-3-70b"),
    ("unknown_engine", "realistic", [cfg("engine", "vlm")], C, 7, "value", "did you mean 'vllm'"),
    ("unknown_method", "realistic", [add(C, "method,fastest")], C, 20, "value", "must be one of exact"),
    ("unknown_token_basis", "realistic", [cfg("token_basis", "input")], C, 6, "value", "must be one of total, output"),
    ("unknown_quantization", "realistic", [cfg("quantization", "medium")], C, 10, "value", "must be one of coarse"),
    ("budget_factors_unsorted", "realistic", [cfg("budget_factors", "0.4;0.9;0.7")], C, 11, "value",
     "increasing order: 0.7 comes after 0.9"),
    ("budget_factors_repeat", "realistic", [cfg("budget_factors", "0.4;0.7;0.7;1")], C, 11, "value",
     "0.7 appears more than once"),
    ("budget_factors_zero", "realistic", [cfg("budget_factors", "0;0.5")], C, 11, "value", "must be positive"),
    ("budget_factors_negative", "realistic", [cfg("budget_factors", "-0.4;1")], C, 11, "value", "must be positive"),
    ("budget_factors_text", "realistic", [cfg("budget_factors", "0.4;lots")], C, 11, "value", "'lots' is not a number"),
    ("sizes_cannot_sum_to_L", "realistic", [line(C, 10, "segment_sizes,3;6")], C, 10, "value",
     "no sum of the usable sizes [3, 6] equals its 80 layers"),
    ("sizes_need_too_many_stages", "realistic", [line(C, 10, "segment_sizes,5;7")], C, 10, "value",
     "cannot tile the model's 80 layers within max_pipeline_stages (8)"),
    ("sizes_all_above_L", "realistic", [line(C, 10, "segment_sizes,90;100")], C, 10, "value",
     "none lies between min_layers_per_stage (1) and the model's 80 layers"),
    ("sizes_fractional", "realistic", [line(C, 10, "segment_sizes,10;20.5")], C, 10, "value", "not a whole number"),
    ("config_missing_value_column", "medium", [line(C, 1, "parameter,val")], C, 1, "", "missing column 'value'"),
    ("config_header_only", "realistic", [put(C, "parameter,value\n")], C, 1, "", "no data rows"),
    ("config_empty", "realistic", [put(C, "\n\n")], C, None, "", "file is empty"),
    # ---- network_by_type.csv
    ("network_unknown_type", "realistic", [cell(NT, 10, 0, "L40X")], NT, 10, "gpu_type_a",
     "'L40X' is not a GPU type of the pool (did you mean 'L40S'?"),
    ("network_zero_bandwidth", "realistic", [cell(NT, 11, 2, "0")], NT, 11, "gb_per_s", "must be positive"),
    ("network_text_bandwidth", "realistic", [cell(NT, 3, 2, "fast")], NT, 3, "gb_per_s", "'fast' is not a number"),
    ("network_missing_pair", "realistic", [line(NT, 11, None)], NT, None, "",
     "no bandwidth for 1 GPU-type pair(s) of the pool: A10G / A10G"),
    ("network_pair_twice", "realistic", [add(NT, "A10G,L40S,10")], NT, 12, "gpu_type_b", "already given on row 10"),
    ("network_header_only", "realistic", [put(NT, "gpu_type_a,gpu_type_b,gb_per_s\n")], NT, 1, "", "no data rows"),
    # ---- network_bandwidth.csv (the seed's per-GPU matrix; medium has 64 GPUs)
    ("matrix_text_cell", "medium", [cell(NB, 3, 5, "abc")], NB, 3, "gpu_4", "'abc' is not a number"),
    ("matrix_negative_cell", "medium", [cell(NB, 10, 2, "-600")], NB, 10, "gpu_1", "bandwidth must be positive"),
    ("matrix_inf_cell", "medium", [cell(NB, 65, 1, "inf")], NB, 65, "gpu_0", "not a finite number"),
    ("matrix_missing_row", "medium", [line(NB, 65, None)], NB, None, "", "has 63 GPU rows but the pool has 64 GPUs"),
    ("matrix_short_row", "medium", [cut(NB, 7)], NB, 7, "", "has 63 values, expected 64"),
    ("matrix_empty_cell", "medium", [cell(NB, 8, 64, "")], NB, 8, "gpu_63", "is empty"),
    ("matrix_vs_pool_count", "medium", [cell(P, 2, 1, "9")], NB, 1, "", "header names 64 GPUs but the pool has 65"),
    # ---- denormal and absurdly small numbers (1e-320 reached a division as zero: ZeroDivisionError)
    ("price_is_denormal", "medium", [cell(P, 2, 3, "1e-320")], P, 2, "dollar_per_hour",
     "1e-320 is below the minimum of 0.0001 $ per GPU-hour"),
    ("price_below_the_floor", "medium", [cell(P, 3, 3, "0.00005")], P, 3, "dollar_per_hour",
     "below the minimum of 0.0001 $ per GPU-hour"),
    ("memory_is_denormal", "medium", [cell(P, 4, 2, "5e-324")], P, 4, "memory_gb", "below the minimum of 0.1 GB"),
    ("tflops_is_tiny", "realistic", [put(P, CUSTOM_POOL.format(tflops="1e-9", hbm=3350, link="nvlink"))],
     P, 2, "fp16_dense_tflops", "below the minimum of 0.01 TFLOP/s"),
    ("hbm_is_denormal", "realistic", [put(P, CUSTOM_POOL.format(tflops=989, hbm="1e-320", link="nvlink"))],
     P, 2, "hbm_gb_per_s", "below the minimum of 0.001 GB/s"),
    ("network_is_denormal", "realistic", [cell(NT, 11, 2, "1e-320")], NT, 11, "gb_per_s",
     "below the minimum of 0.001 GB/s"),
    ("matrix_cell_is_denormal", "medium", [cell(NB, 10, 2, "1e-320")], NB, 10, "gpu_1",
     "below the minimum of 0.001 GB/s"),
    ("inter_node_is_denormal", "realistic", [cfg("inter_node_gb_per_s", "1e-320")], C, 17, "value",
     "inter_node_gb_per_s: 1e-320 is below the minimum of 0.001 GB/s"),
    ("budget_is_denormal", "realistic", [cfg("max_hourly_cost", "1e-320")], C, 13, "value",
     "max_hourly_cost: 1e-320 is below the minimum of 0.0001 $/hour"),
    # ---- the model's context window (config/models.csv max_position_embeddings, or config.csv's own)
    ("context_over_the_window", "realistic", [cfg("input_tokens", "100000")], C, 3, "value",
     "input_tokens + output_tokens = 100,512 exceeds llama-3-70b's context window of 8,192 tokens"),
    ("context_over_a_given_window", "medium", [add(C, "max_position_embeddings,2048")], C, 2, "value",
     "input_tokens + output_tokens = 4,096 exceeds llama-70b's context window of 2,048 tokens"),
    ("context_window_is_text", "realistic", [add(C, "max_position_embeddings,long")], C, 20, "value",
     "max_position_embeddings: 'long' is not a number"),
    ("weight_is_denormal", "medium", [cfg("cost_throughput_weight", "1e-320")], C, 17, "value",
     "cost_throughput_weight: 1e-320 is too small to be a real value"),
]


def _match(problems, file, row, column, phrase):
    return [p for p in problems
            if Path(p.file).name == file and p.row == row and p.column == column and phrase in p.message]


def test_the_table_is_big_enough():
    assert len({c[0] for c in CASES}) == len(CASES) >= 40


@pytest.mark.parametrize("name,base,edits,file,row,column,phrase", CASES, ids=[c[0] for c in CASES])
def test_bad_input_library_and_cli(tmp_path, capsys, name, base, edits, file, row, column, phrase):
    d = folder(tmp_path, base, edits)
    with pytest.raises(InputError) as err:
        load_config_dir(d)
    problems = err.value.problems
    hits = _match(problems, file, row, column, phrase)
    assert hits, f"expected {file} row {row} column {column!r} '{phrase}', got:\n" + "\n".join(map(str, problems))
    if row is not None:
        assert f"row {row}" in str(hits[0])
    capsys.readouterr()
    assert main(["solve", "--config-dir", str(d), "--out", str(tmp_path / "out")]) == 2
    out, err_text = capsys.readouterr()
    lines = err_text.splitlines()
    assert "Traceback" not in out + err_text
    assert len(lines) == len(problems) and all(text.startswith("error: ") for text in lines)
    assert f"error: {hits[0]}" in lines
    assert not (tmp_path / "out").exists()


def test_every_problem_of_every_file_is_collected(tmp_path, capsys):
    """Five problems in three files: all reported at once, each with its own location."""
    d = folder(tmp_path, "realistic", [cfg("cost_throughput_weight", "2"), cfg("budget_factors", "1;0.5"),
                                       cell(P, 3, 1, "many"), cell(P, 5, 0, "A10X"), cell(NT, 2, 2, "nan")])
    with pytest.raises(InputError) as err:
        load_config_dir(d)
    where = sorted((Path(p.file).name, p.row, p.column) for p in err.value.problems)
    assert where == [(C, 11, "value"), (C, 16, "value"), (P, 3, "count"), (P, 5, "gpu_type"), (NT, 2, "gb_per_s")]
    capsys.readouterr()
    assert main(["solve", "--config-dir", str(d), "--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 5


@pytest.mark.parametrize("flags,phrase", [
    (["--cost-weight", "3"], "command line, --cost-weight: cost weight must be between 0 and 1"),
    (["--budget-factors", "1,0.5"], "command line, --budget-factors: budget factors must be increasing"),
    (["--max-stages", "0"], "command line, --max-stages: max pipeline stages must be >= 1"),
    (["--min-layers", "50"], "command line, --min-layers: min_layers_per_stage (50) is more than the model's 40"),
    (["--sizes", "7"], "command line, --sizes: segment_sizes [7] cannot tile the model"),
    (["--concurrency", "some"], "command line, --concurrency: 'some' is not a whole number or 'auto'"),
    (["--engine", "trt"], "command line, --engine: unknown engine profile 'trt'"),
    (["--budget", "1e-320"], "command line, --budget: 1e-320 is below the minimum of 0.0001 $/hour"),
    (["--target", "1e-320"], "command line, --target: 1e-320 is too small to be a real value"),
    (["--time-limit", "5e-324"], "command line, --time-limit: 5e-324 is too small to be a real value"),
])
def test_bad_flags_name_the_flag(tmp_path, capsys, flags, phrase):
    assert main(["solve", "--config-dir", "config/medium", *flags, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {phrase}" in err and "Traceback" not in err


@pytest.mark.parametrize("name,base,edits,file,row,column,phrase",
                         [c for c in CASES if c[0] in ("count_is_text", "unknown_model_with_nearest",
                                                        "matrix_missing_row", "network_missing_pair")])
def test_real_process_prints_no_traceback(tmp_path, name, base, edits, file, row, column, phrase):
    d = folder(tmp_path, base, edits)
    run = subprocess.run([sys.executable, "-m", "planner", "solve", "--config-dir", str(d), "--out",
                          str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "Traceback" not in run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert lines and all(text.startswith("error: ") for text in lines)
    assert any(phrase in text and file in text for text in lines)


# ---------------------------------------------------------------------------- unusual but fine
def _fields(text: str) -> list[list[str]]:
    return list(csv.reader(text.splitlines()))


def _join(rows: list[list[str]], sep: str = ",", quote: bool = False, pad: str = "") -> list[str]:
    out = []
    for r in rows:
        cells = [f'"{c}"' if quote and c else c for c in r]
        out.append((pad + sep + pad).join(cells))
    return out


VARIANTS = {
    "bom": lambda t: "\ufeff" + t,
    "crlf": lambda t: "\r\n".join(t.splitlines()) + "\r\n",
    "blank_lines": lambda t: "\n\n" + "\n\n".join(t.splitlines()) + "\n,,\n \n",
    "stray_spaces": lambda t: "\n".join(_join(_fields(t), pad="  ")),
    "trailing_commas": lambda t: "\n".join(line + "," for line in t.splitlines()),
    "quoted_fields": lambda t: "\n".join(_join(_fields(t), quote=True)),
    "semicolons": lambda t: "\n".join(_join(_fields(t), sep=";")),
    "tabs": lambda t: "\n".join(_join(_fields(t), sep="\t")),
}


def _comparable(sc: Scenario):
    """What a solve depends on: everything but the notes (whose row numbers may move) and price sources."""
    pool = replace(sc.pool, entries=tuple(replace(e, spec=replace(e.spec, price_source="")) for e in sc.pool.entries))
    return sc.model, sc.workload, pool, sc.engine, sc.settings


@pytest.mark.parametrize("base", ["medium", "realistic"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_unusual_files_give_the_same_scenario(tmp_path, base, variant):
    clean = load_config_dir(ROOT / "config" / base)
    d = folder(tmp_path, base)
    for path in d.glob("*.csv"):
        path.write_bytes(VARIANTS[variant](read_text(path)).encode("utf-8"))
    sc = load_config_dir(d)
    assert _comparable(sc) == _comparable(clean)
    notes = " ".join(sc.warnings)
    if variant in ("semicolons", "tabs"):
        kind = "semicolon" if variant == "semicolons" else "tab"
        assert f"config.csv is read as {kind}-separated" in notes and f"gpu_pool.csv is read as {kind}" in notes
    else:
        assert "-separated" not in notes


def test_unambiguous_list_in_extra_cells_and_case_of_names(tmp_path):
    """`budget_factors,0.4,0.7,1.0` (the list spilled into extra cells) and `h100-sxm` in the network file."""
    clean = load_config_dir(ROOT / "config" / "realistic")
    d = folder(tmp_path, "realistic", [cfg("budget_factors", "0.4,0.7,0.9,1.0,1.2,1.5"),
                                       cell(NT, 2, 0, "h100-sxm")])
    assert _comparable(load_config_dir(d)) == _comparable(clean)


def test_texts_with_bom_load_like_files():
    texts = {f: read_text(ROOT / "config" / "realistic" / f) for f in (C, P, NT)}
    with_bom = {f: "\ufeff" + t for f, t in texts.items()}
    assert _comparable(scenario_from_texts(with_bom)) == _comparable(scenario_from_texts(texts))


# ---------------------------------------------------------------------------- seeds still load
@pytest.mark.parametrize("path", [ROOT / "config" / n for n in (*SEEDS, "realistic", "xl")]
                         + [ROOT.parent / "shared" / "seed-configs" / n for n in SEEDS], ids=str)
def test_bundled_and_seed_folders_load(path):
    if not path.exists():
        pytest.skip(f"{path} is not beside this checkout")
    sc = load_config_dir(path)
    pool_rows = list(csv.DictReader(open(path / P)))
    assert [(e.name, e.count) for e in sc.pool.entries] == [(r["gpu_type"], int(r["count"])) for r in pool_rows]
    config = dict(r for r in list(csv.reader(open(path / C)))[1:] if len(r) == 2)
    if "num_decoder_layers" in config:
        assert sc.model.num_layers == int(config["num_decoder_layers"])
    assert not any("-separated" in w for w in sc.warnings)


# ---------------------------------------------------------------------------- random damage
JUNK = ["", "abc", "-1", "0", "nan", "inf", "1e30", "2.5", "7", '"', "true", "auto", "A100", "1,5", "x" * 200]
BASE_TEXTS = {b: {p.name: read_text(p) for p in (ROOT / "config" / b).glob("*.csv")} for b in ("medium", "realistic")}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(sorted(BASE_TEXTS)), data=st.data())
def test_random_damage_is_a_clean_input_error_or_a_scenario(base, data):
    """Overwrite random cells with junk: the loader returns a scenario or an InputError whose every
    problem names a file and prints as one line, never another exception."""
    texts = dict(BASE_TEXTS[base])
    for _ in range(data.draw(st.integers(1, 4))):
        name = data.draw(st.sampled_from(sorted(texts)))
        lines = texts[name].splitlines()
        i = data.draw(st.integers(0, len(lines) - 1))
        fields = lines[i].split(",")
        fields[data.draw(st.integers(0, len(fields) - 1))] = data.draw(st.sampled_from(JUNK))
        lines[i] = ",".join(fields)
        texts[name] = "\n".join(lines)
    try:
        scenario_from_texts(texts)
    except InputError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.file and "\n" not in str(p)


def test_a_matrix_of_the_wrong_size_is_one_or_two_lines_not_one_per_row(tmp_path):
    d = folder(tmp_path, "medium", [cell("gpu_pool.csv", 2, 1, "9")])  # one more A100 than the matrix has
    with pytest.raises(InputError) as info:
        load_config_dir(d)
    problems = [p for p in info.value.problems if p.file.endswith("network_bandwidth.csv")]
    assert 1 <= len(problems) <= 2 and all("the pool has 65 GPUs" in str(p) for p in problems)
