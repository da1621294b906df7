"""Loading scenarios: the seed's config folders (unchanged) and this project's richer files.

A config folder holds `config.csv` (parameter,value), `gpu_pool.csv` and optionally the seed's
per-GPU `network_bandwidth.csv` or our `network_by_type.csv`. Every key of config.csv is either
honoured or reported as ignored; every assumption (a price from the catalogue, an alias, MHA when no
KV-head count is given) becomes a warning on the scenario.

Validation collects every problem of every file before refusing the input: each problem names the
file, the row and the column (for config.csv, the `value` column and the parameter name) and the rule.
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from .catalog import Catalog, load_catalog, parse_engines, with_engines
from .csvio import read_text
from .domain import MAX_GB_PER_S, MIN_GB_PER_S, ModelSpec, Pool, Scenario, SearchSettings
from .errors import InputError, Problem
from .scenario_config import HONOURED, IGNORED, ConfigReader  # noqa: F401  (imported from here)
from .scenario_json import (ENGINE_FILES, SCENARIO_FILES, SCENARIO_FORMAT,  # noqa: F401
                            scenario_texts_from_json, scenario_texts_to_json)
from .scenario_pool import POOL_COLUMNS, POOL_OPTIONAL, read_links, read_pool  # noqa: F401
from .scenario_sections import (DEFAULT_OUTPUT_TOKENS, MAX_BUDGET_FACTOR, MAX_TIME_LIMIT_S,  # noqa: F401
                                MODEL_KEYS, QUANTIZATION_KEYS, SETTINGS_KEYS, read_model, read_settings,
                                read_workload)
from .tiling import can_tile, tiles_at_all
from .units import DEFAULT_LINK_GB_PER_S

log = logging.getLogger(__name__)


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
    cfg = ConfigReader(texts["config.csv"], prefix + "config.csv", problems, warnings)
    entries, pool_complete = read_pool(texts["gpu_pool.csv"], prefix + "gpu_pool.csv", catalog, problems,
                                           warnings)
    model = workload = settings = engine = inter_node = None
    if not cfg.broken:
        model = read_model(cfg, catalog, warnings)
        workload = read_workload(cfg, warnings)
        if model is not None and workload is not None:
            problem = model.context_problem(workload.input_tokens, workload.output_tokens)
            if problem:
                cfg.bad("input_tokens" if cfg.has("input_tokens") else "sequence_length", problem)
        settings = read_settings(cfg, warnings)
        if model is not None and settings is not None:
            locate = {field: (cfg.file, cfg.row(key), "value") for field, key in SETTINGS_KEYS.items() if cfg.has(key)}
            problems.extend(check_settings_against_model(model, settings, locate, default_file=cfg.file))
        engine_name = cfg.choice("engine", tuple(catalog.engines), "vllm")
        engine = catalog.engines.get(engine_name) if engine_name else None
        inter_node = cfg.number("inter_node_gb_per_s", maximum=MAX_GB_PER_S, unit="GB/s", minimum=MIN_GB_PER_S)
    links = read_links(texts, prefix, entries if pool_complete else None, problems, warnings)
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


