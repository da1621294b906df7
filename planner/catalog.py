"""GPU, model and engine catalogues (data files under config/), with exact alias resolution.

Names are matched exactly after case-folding, or through a listed alias; never by substring
(the seed priced an A10 as an A100 that way).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .csvio import Cells, parse_table, read_text
from .domain import (MAX_CONTEXT_TOKENS, MAX_GB_PER_S, MAX_GPU_MEMORY_GB, MAX_LAYERS, MAX_PRICE_USD_PER_GPU_HOUR, MAX_TFLOPS,
                     MIN_BYTES_PER_PARAM, MIN_GB_PER_S, MIN_GPU_MEMORY_GB, MIN_PRICE_USD_PER_GPU_HOUR, MIN_TFLOPS,
                     EngineProfile, GpuEfficiency, GpuSpec, ModelSpec)
from .errors import InputError, Problem

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

# memory_gib: the vendor's nominal "GB", which are GiB (80 GB = 80 GiB = 85.9e9 bytes); files with the
# former column name memory_gb (same numbers) still load.
GPU_COLUMNS = ("sku", "aliases", "memory_gib", "fp16_dense_tflops", "hbm_gb_per_s", "intra_link",
               "intra_link_gb_per_s", "gpus_per_node", "price_usd_per_hour", "price_source", "price_date",
               "datasheet_source", "arch", "fp8_dense_tflops")
GPU_ARCHS = ("volta", "turing", "ampere", "ada", "hopper", "blackwell")
MODEL_COLUMNS = ("name", "aliases", "num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim",
                 "ffn_size", "gated_mlp", "vocab_size", "bytes_per_param", "tied_embeddings",
                 "max_position_embeddings", "source")
ENGINE_COLUMNS = ("name", "compute_efficiency", "hbm_efficiency", "nvlink_efficiency", "nvlink_latency_us",
                  "pcie_efficiency", "pcie_latency_us", "network_efficiency", "network_latency_us",
                  "launch_us_per_layer", "scheduler_ms", "scheduler_us_per_seq", "memory_utilization",
                  "runtime_reserve_gib", "max_num_seqs", "prefill_chunk_tokens", "pcie_root_gpus", "source",
                  "memory_fraction_of", "nvswitch_exponent",
                  "allreduce_large_mb", "allreduce_large_ratio")
# config/engine_gpus.csv: an engine's kernel efficiencies per GPU SKU or per architecture (arch:<name>)
ENGINE_GPU_COLUMNS = ("engine", "gpu", "compute_efficiency", "hbm_efficiency", "source")


def _key(name: str) -> str:
    return name.strip().casefold()


@dataclass(frozen=True)
class Catalog:
    gpus: dict[str, GpuSpec]
    gpu_aliases: dict[str, str]  # folded alias -> sku
    models: dict[str, ModelSpec]
    model_aliases: dict[str, str]
    model_sources: dict[str, str] = field(default_factory=dict)
    engines: dict[str, EngineProfile] = field(default_factory=dict)

    def resolve_gpu(self, name: str) -> tuple[str, bool] | None:
        """(sku, was_alias) for a GPU name, or None."""
        for sku in self.gpus:
            if _key(sku) == _key(name):
                return sku, False
        sku = self.gpu_aliases.get(_key(name))
        return (sku, True) if sku else None

    def resolve_model(self, name: str) -> tuple[str, bool] | None:
        for model in self.models:
            if _key(model) == _key(name):
                return model, False
        model = self.model_aliases.get(_key(name))
        return (model, True) if model else None

    def nearest_gpus(self, name: str) -> list[str]:
        return _nearest(name, list(self.gpus), self.gpu_aliases)

    def nearest_models(self, name: str) -> list[str]:
        return _nearest(name, list(self.models), self.model_aliases)

    def gpu(self, name: str) -> GpuSpec:
        hit = self.resolve_gpu(name)
        if hit is None:
            near = self.nearest_gpus(name)
            hint = f"; nearest: {', '.join(near)}" if near else ""
            raise InputError(f"unknown GPU '{name}'{hint}")
        return self.gpus[hit[0]]

    def model(self, name: str) -> ModelSpec:
        hit = self.resolve_model(name)
        if hit is None:
            near = self.nearest_models(name)
            hint = f"; nearest: {', '.join(near)}" if near else ""
            raise InputError(f"unknown model '{name}'{hint}")
        return self.models[hit[0]]

    def engine(self, name: str) -> EngineProfile:
        if name not in self.engines:
            raise InputError(f"unknown engine profile '{name}' (known: {', '.join(self.engines)})")
        return self.engines[name]


def _nearest(name: str, names: list[str], aliases: dict[str, str], n: int = 3) -> list[str]:
    """Closest catalogue names to `name`, ignoring case; a close alias stands for its catalogue name."""
    folded = {a: target for a, target in aliases.items()} | {_key(x): x for x in names}
    close = [folded[k] for k in difflib.get_close_matches(_key(name), list(folded), n=3 * n, cutoff=0.4)]
    return list(dict.fromkeys(close))[:n]


def _aliases(text: str) -> list[str]:
    return [a.strip() for a in text.split("|") if a.strip()]


def parse_gpus(text: str, file: str) -> tuple[dict[str, GpuSpec], dict[str, str]]:
    header = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    memory_column = "memory_gb" if "memory_gb" in header and "memory_gib" not in header else "memory_gib"
    required = tuple(memory_column if c == "memory_gib" else c for c in GPU_COLUMNS[:9])
    table = parse_table(text, file, required=required, optional=GPU_COLUMNS[9:])
    problems: list[Problem] = []
    gpus: dict[str, GpuSpec] = {}
    aliases: dict[str, str] = {}
    for lineno, row in table.rows:
        c = Cells(table, lineno, row, problems)
        sku = c.text("sku")
        arch = (row.get("arch", "") or "").strip().lower()
        if arch and arch not in GPU_ARCHS:
            problems.append(Problem(f"'{arch}' is not one of {', '.join(GPU_ARCHS)}", file, lineno, "arch"))
        values = dict(
            memory_gb=c.number(memory_column, maximum=MAX_GPU_MEMORY_GB, unit="GiB", minimum=MIN_GPU_MEMORY_GB),
            fp8_dense_tflops=c.number("fp8_dense_tflops", allow_missing=True, maximum=MAX_TFLOPS, unit="TFLOP/s",
                                      minimum=MIN_TFLOPS),
            fp16_dense_tflops=c.number("fp16_dense_tflops", maximum=MAX_TFLOPS, unit="TFLOP/s", minimum=MIN_TFLOPS),
            hbm_gb_per_s=c.number("hbm_gb_per_s", maximum=MAX_GB_PER_S, unit="GB/s", minimum=MIN_GB_PER_S),
            intra_link_gb_per_s=c.number("intra_link_gb_per_s", maximum=MAX_GB_PER_S, unit="GB/s",
                                         minimum=MIN_GB_PER_S),
            gpus_per_node=c.integer("gpus_per_node", maximum=1024, unit="GPUs per node"),
            price_usd_per_hour=c.number("price_usd_per_hour", maximum=MAX_PRICE_USD_PER_GPU_HOUR,
                                        unit="$ per GPU-hour", minimum=MIN_PRICE_USD_PER_GPU_HOUR),
        )
        link = (c.text("intra_link") or "").lower()
        if link and link not in ("nvlink", "pcie"):
            problems.append(Problem(f"'{link}' is not nvlink or pcie", file, lineno, "intra_link"))
        if sku is None or None in (v for k, v in values.items() if k != "fp8_dense_tflops") \
                or link not in ("nvlink", "pcie"):
            continue
        if _key(sku) in {_key(s) for s in gpus}:
            problems.append(Problem(f"GPU '{sku}' listed twice", file, lineno, "sku"))
            continue
        gpus[sku] = GpuSpec(sku=sku, intra_link=link, price_source=row.get("price_source", ""),
                            price_date=row.get("price_date", ""), datasheet_source=row.get("datasheet_source", ""),
                            arch=arch, **values)
        for alias in _aliases(row.get("aliases", "")):
            if _key(alias) in aliases:
                problems.append(Problem(f"alias '{alias}' already maps to {aliases[_key(alias)]}", file, lineno, "aliases"))
            aliases[_key(alias)] = sku
    if problems:
        raise InputError(problems)
    return gpus, aliases


def parse_models(text: str, file: str) -> tuple[dict[str, ModelSpec], dict[str, str], dict[str, str]]:
    table = parse_table(text, file, required=MODEL_COLUMNS[:10], optional=MODEL_COLUMNS[10:])
    problems: list[Problem] = []
    models: dict[str, ModelSpec] = {}
    aliases: dict[str, str] = {}
    sources: dict[str, str] = {}
    for lineno, row in table.rows:
        c = Cells(table, lineno, row, problems)
        name = c.text("name")
        values = dict(
            num_layers=c.integer("num_layers", maximum=MAX_LAYERS, unit="layers"),
            hidden_size=c.integer("hidden_size", maximum=1_000_000),
            num_heads=c.integer("num_heads", maximum=100_000),
            num_kv_heads=c.integer("num_kv_heads", maximum=100_000),
            head_dim=c.integer("head_dim", maximum=100_000),
            ffn_size=c.integer("ffn_size", maximum=10_000_000),
            gated_mlp=c.boolean("gated_mlp"),
            vocab_size=c.integer("vocab_size", maximum=100_000_000),
            bytes_per_param=c.number("bytes_per_param", default=2.0, maximum=16, minimum=MIN_BYTES_PER_PARAM),
            tied_embeddings=c.boolean("tied_embeddings", default=False),
        )
        context = c.integer("max_position_embeddings", allow_missing=True, maximum=MAX_CONTEXT_TOKENS,
                            unit="tokens")
        if name is None or None in values.values() or (row.get("max_position_embeddings") and context is None):
            continue
        try:
            models[name] = ModelSpec(name=name, max_position_embeddings=context, **values)
        except InputError as exc:
            problems.extend(Problem(p.message, file, lineno, p.column) for p in exc.problems)
            continue
        sources[name] = row.get("source", "")
        for alias in _aliases(row.get("aliases", "")):
            aliases[_key(alias)] = name
    if problems:
        raise InputError(problems)
    return models, aliases, sources


def parse_engines(text: str, file: str, gpu_text: str | None = None,
                  gpu_file: str = "engine_gpus.csv") -> dict[str, EngineProfile]:
    """engines.csv (one row per profile) and, if given, engine_gpus.csv (per-GPU / per-architecture
    kernel efficiencies of each profile)."""
    table = parse_table(text, file, required=ENGINE_COLUMNS[:16], optional=ENGINE_COLUMNS[16:])
    problems: list[Problem] = []
    engines: dict[str, EngineProfile] = {}
    for lineno, row in table.rows:
        c = Cells(table, lineno, row, problems)
        name = c.text("name")
        values = dict(
            compute_efficiency=c.number("compute_efficiency", maximum=1.0),
            hbm_efficiency=c.number("hbm_efficiency", maximum=1.0),
            nvlink_efficiency=c.number("nvlink_efficiency", maximum=1.0),
            nvlink_latency_us=c.number("nvlink_latency_us", positive=False, maximum=1e6),
            pcie_efficiency=c.number("pcie_efficiency", maximum=1.0),
            pcie_latency_us=c.number("pcie_latency_us", positive=False, maximum=1e6),
            network_efficiency=c.number("network_efficiency", maximum=1.0),
            network_latency_us=c.number("network_latency_us", positive=False, maximum=1e6),
            launch_us_per_layer=c.number("launch_us_per_layer", positive=False, maximum=1e6),
            scheduler_ms=c.number("scheduler_ms", positive=False, maximum=1e5),
            scheduler_us_per_seq=c.number("scheduler_us_per_seq", positive=False, maximum=1e6),
            memory_utilization=c.number("memory_utilization", maximum=1.0),
            runtime_reserve_gib=c.number("runtime_reserve_gib", positive=False, maximum=1000),
            max_num_seqs=c.integer("max_num_seqs", maximum=1_000_000),
            prefill_chunk_tokens=c.integer("prefill_chunk_tokens", maximum=10_000_000),
            pcie_root_gpus=c.number("pcie_root_gpus", default=8.0, maximum=1024),
            nvswitch_exponent=c.number("nvswitch_exponent", default=0.0, positive=False, maximum=1.0),
            allreduce_large_mb=c.number("allreduce_large_mb", default=0.0, positive=False, maximum=1e9),
            allreduce_large_ratio=c.number("allreduce_large_ratio", default=1.0, maximum=1.0),
        )
        if name is None or None in values.values():
            continue
        share_of = (row.get("memory_fraction_of") or "total").strip().lower()
        if share_of not in ("total", "free"):
            problems.append(Problem(f"memory_fraction_of must be 'total' or 'free', got '{share_of}'", file, lineno,
                                    "memory_fraction_of"))
            continue
        engines[name] = EngineProfile(name=name, source=row.get("source", ""), memory_fraction_of=share_of, **values)
    if gpu_text is not None:
        per_gpu: dict[str, list[GpuEfficiency]] = {}
        gtable = parse_table(gpu_text, gpu_file, required=ENGINE_GPU_COLUMNS[:4], optional=ENGINE_GPU_COLUMNS[4:])
        for lineno, row in gtable.rows:
            c = Cells(gtable, lineno, row, problems)
            engine, gpu = c.text("engine"), c.text("gpu")
            ce, he = c.number("compute_efficiency", maximum=1.0), c.number("hbm_efficiency", maximum=1.0)
            if None in (engine, gpu, ce, he):
                continue
            if engine not in engines:
                problems.append(Problem(f"unknown engine '{engine}' (engines.csv has {', '.join(engines)})",
                                        gpu_file, lineno, "engine"))
                continue
            per_gpu.setdefault(engine, []).append(GpuEfficiency(gpu, ce, he, row.get("source", "")))
        from dataclasses import replace

        engines = {n: replace(e, gpu_efficiencies=tuple(per_gpu.get(n, ()))) for n, e in engines.items()}
    if problems:
        raise InputError(problems)
    return engines


def load_catalog(config_dir: Path | str = CONFIG_DIR) -> Catalog:
    """Read gpus.csv, models.csv and engines.csv from `config_dir`."""
    config_dir = Path(config_dir)
    return _load_catalog_cached(str(config_dir.resolve()))


@lru_cache(maxsize=8)
def _load_catalog_cached(config_dir: str) -> Catalog:
    base = Path(config_dir)
    gpus, gpu_aliases = parse_gpus(read_text(base / "gpus.csv"), str(base / "gpus.csv"))
    models, model_aliases, sources = parse_models(read_text(base / "models.csv"), str(base / "models.csv"))
    per_gpu = base / "engine_gpus.csv"
    engines = parse_engines(read_text(base / "engines.csv"), str(base / "engines.csv"),
                            read_text(per_gpu) if per_gpu.exists() else None, str(per_gpu))
    return Catalog(gpus, gpu_aliases, models, model_aliases, sources, engines)


def read_engine_file(path: Path | str) -> dict[str, EngineProfile]:
    """Engine profiles from an engines.csv-format file (`--engines FILE`, a scenario folder's engines.csv,
    what `calibrate` writes); an engine_gpus.csv in the same folder adds their per-GPU rows."""
    path = Path(path)
    per_gpu = path.parent / "engine_gpus.csv"
    return parse_engines(read_text(path), str(path), read_text(per_gpu) if per_gpu.exists() else None, str(per_gpu))


def with_engines(cat: Catalog, engines: dict[str, EngineProfile]) -> Catalog:
    """The catalogue with `engines` added (a profile of the same name replaces the catalogue's)."""
    from dataclasses import replace

    return replace(cat, engines={**cat.engines, **engines})


def with_engine_file(cat: Catalog, path: Path | str) -> Catalog:
    return with_engines(cat, read_engine_file(path))
