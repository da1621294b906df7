"""gpu_pool.csv (GPU types, counts, prices and overrides of the catalogue's figures) and the stage-to-stage
network: the seed's per-GPU network_bandwidth.csv or our network_by_type.csv.
"""
from __future__ import annotations

import difflib
from dataclasses import replace

from .catalog import Catalog
from .csvio import Cells, Table, check_number, parse_table, split_rows
from .domain import (MAX_GB_PER_S, MAX_GPU_MEMORY_GB, MAX_GPU_TYPES, MAX_GPUS_PER_TYPE, MAX_POOL_GPUS,
                     MAX_PRICE_USD_PER_GPU_HOUR, MAX_TFLOPS, MIN_GB_PER_S, MIN_GPU_MEMORY_GB, MIN_PRICE_USD_PER_GPU_HOUR,
                     MIN_TFLOPS, GpuSpec, PoolEntry)
from .errors import Problem

POOL_COLUMNS = ("gpu_type", "count")
POOL_OPTIONAL = ("memory_gb", "dollar_per_hour", "price_usd_per_hour", "gpus_per_node", "fp16_dense_tflops",
                 "hbm_gb_per_s", "intra_link", "intra_link_gb_per_s", "price_source", "price_date")


def read_pool(text: str, file: str, catalog: Catalog, problems: list[Problem],
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
def read_links(texts: dict[str, str], prefix: str, entries: list[PoolEntry] | None, problems: list[Problem],
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
