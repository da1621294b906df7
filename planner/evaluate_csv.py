"""`python -m planner evaluate --from-csv FILE`: predict every row of a CSV of layouts.

One row = the arguments of one single-layout `evaluate`: `model, gpu, tp, pp, nodes, inter_node_gbps,
input_len, output_len, batch` or `concurrency`, `engine`, `precision`, optionally `kv_precision` (blank cell = the command's
default). Each row gives exactly the object `python -m planner evaluate --json` prints for the same
arguments, plus `row` (its line number in the file). Cells that cannot be read (unknown model, GPU or
engine, a non-number, batch and concurrency both given, ...) are collected over the whole file and raised
as one InputError, one problem per cell naming file, row and column; a layout that does not fit is not an
error: its object says `feasible: false` with the reason.

`inter_node_gbps` is gigabits per second (200 = 25 GB/s). `precision` (and the optional `kv_precision`)
are passed to `evaluate_layout` when that function takes them; until the performance model models
precision, a non-blank precision is accepted, kept in the output and reported in `notes` as not modelled.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path

from . import domain
from .catalog import Catalog
from .csvio import Cells, parse_table, read_text
from .errors import InputError, Problem
from .evaluate import evaluate_layout
from .units import DEFAULT_INTER_NODE_GBPS

log = logging.getLogger(__name__)

DEFAULT_ENGINE = "vllm"
# `inter_node_gbps` is gigabits per second, as its name (and clouds) say: 200 Gbps = 25 GB/s, the default
DEFAULT_INTER_NODE = DEFAULT_INTER_NODE_GBPS
# Precisions a row may name; the performance model's own list once it has one.
KNOWN_PRECISIONS = tuple(getattr(domain, "PRECISIONS", ("bf16", "fp16", "fp8", "int4")))
KNOWN_KV_PRECISIONS = tuple(getattr(domain, "KV_PRECISIONS", ("bf16", "fp16", "fp8")))
REQUIRED = ("model", "gpu", "tp", "input_len", "output_len")
OPTIONAL = ("pp", "nodes", "inter_node_gbps", "batch", "concurrency", "engine", "precision", "kv_precision")
MAX_LEN = domain.MAX_CONTEXT_TOKENS if hasattr(domain, "MAX_CONTEXT_TOKENS") else 10_000_000


def precision_modelled() -> bool:
    """Whether `evaluate_layout` takes a precision (the performance model v2 does)."""
    return "precision" in inspect.signature(evaluate_layout).parameters


@dataclass(frozen=True)
class LayoutArgs:
    """The arguments of one single-layout evaluation (one command line or one CSV row)."""

    model: str
    gpu: str
    tp: int
    input_len: int
    output_len: int
    pp: int = 1
    nodes: int = 1
    inter_node_gbps: float = DEFAULT_INTER_NODE
    batch: int | None = None
    concurrency: int | None = None
    engine: str = DEFAULT_ENGINE
    precision: str = ""
    kv_precision: str = ""


def evaluate_args(cat: Catalog, a: LayoutArgs) -> dict:
    """The single-layout result for `a` (what `evaluate --json` prints). Raises InputError for names
    the catalogue does not know; never for a layout that does not fit."""
    kwargs = dict(batch=a.batch, concurrency=a.concurrency, nodes=a.nodes, inter_node_gb_per_s=a.inter_node_gbps / 8)
    notes = []
    for name, value in (("precision", a.precision), ("kv_precision", a.kv_precision)):
        if not value:
            continue
        if name in inspect.signature(evaluate_layout).parameters:
            kwargs[name] = value
        else:
            notes.append(f"{name.replace('_', ' ')} '{value}' is not modelled yet: predicted with the model's "
                         "catalogue bytes per parameter")
    result = evaluate_layout(cat.model(a.model), cat.gpu(a.gpu), cat.engine(a.engine), a.tp, a.pp,
                             a.input_len, a.output_len, **kwargs)
    if a.precision and "precision" not in result:
        result["precision"] = a.precision
    if notes:
        result["notes"] = list(result.get("notes", [])) + notes
    return result


def catalogue_names(c: Cells, cat: Catalog) -> tuple[str | None, str | None]:
    """A row's `model` and `gpu` cells; a name the catalogue does not know is a problem on its cell, with
    the nearest names."""
    model, gpu = c.text("model"), c.text("gpu")
    if model is not None and cat.resolve_model(model) is None:
        near = cat.nearest_models(model)
        c._bad("model", f"unknown model '{model}'" + (f"; nearest: {', '.join(near)}" if near else ""))
    if gpu is not None and cat.resolve_gpu(gpu) is None:
        near = cat.nearest_gpus(gpu)
        c._bad("gpu", f"unknown GPU '{gpu}'" + (f"; nearest: {', '.join(near)}" if near else ""))
    return model, gpu


def layout_cells(c: Cells) -> tuple:
    """A row's layout and workload cells: (tp, pp, nodes, inter_node_gbps, input_len, output_len, batch,
    concurrency), each checked on its cell; batch and concurrency are exclusive."""
    tp = c.integer("tp", maximum=1024)
    pp = c.integer("pp", 1, maximum=10_000)
    nodes = c.integer("nodes", 1, maximum=10_000)
    gbps = c.number("inter_node_gbps", DEFAULT_INTER_NODE, maximum=1e6, unit="Gbps")
    input_len = c.integer("input_len", maximum=MAX_LEN, unit="tokens")
    output_len = c.integer("output_len", maximum=MAX_LEN, unit="tokens")
    batch = c.integer("batch", allow_missing=True, maximum=1e6)
    conc = c.integer("concurrency", allow_missing=True, maximum=1e6)
    if batch is not None and conc is not None:
        c._bad("concurrency", "give either batch (static) or concurrency (continuous batching), not both")
    return tp, pp, nodes, gbps, input_len, output_len, batch, conc


def read_layouts(path: Path | str, cat: Catalog) -> list[tuple[int, LayoutArgs]]:
    """(line number, arguments) per data row of the file; every unreadable cell is one Problem, all of
    them raised together."""
    file = str(path)
    problems: list[Problem] = []
    table = parse_table(read_text(path), file, required=REQUIRED, optional=OPTIONAL, problems=problems)
    out = []
    for lineno, row in table.rows:
        c = Cells(table, lineno, row, problems)
        before = len(problems)
        model, gpu = catalogue_names(c, cat)
        engine = c.text("engine", DEFAULT_ENGINE)
        if engine not in cat.engines:
            c._bad("engine", f"unknown engine profile '{engine}' (known: {', '.join(cat.engines)})")
        precision = c.text("precision", "").lower()
        if precision and precision not in KNOWN_PRECISIONS:
            c._bad("precision", f"unknown precision '{precision}' (known: {', '.join(KNOWN_PRECISIONS)}; "
                                "blank = the model's default)")
        kv_precision = c.text("kv_precision", "").lower()
        if kv_precision and kv_precision not in KNOWN_KV_PRECISIONS:
            c._bad("kv_precision", f"unknown KV precision '{kv_precision}' (known: {', '.join(KNOWN_KV_PRECISIONS)}; "
                                   "blank = the default for the precision)")
        tp, pp, nodes, gbps, input_len, output_len, batch, conc = layout_cells(c)
        if len(problems) == before:
            out.append((lineno, LayoutArgs(model, gpu, tp, input_len, output_len, pp, nodes, gbps, batch, conc,
                                           engine, precision, kv_precision)))
    if problems:
        raise InputError(problems)
    return out


def evaluate_csv(path: Path | str, cat: Catalog) -> list[dict]:
    """One result per data row, in file order, each with `row` (the line number) first."""
    results = []
    for lineno, args in read_layouts(path, cat):
        results.append({"row": lineno, **evaluate_args(cat, args)})
    log.info("evaluated %d layouts from %s", len(results), path)
    return results
