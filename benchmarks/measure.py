"""What the benchmarks time, and how a measurement is isolated.

Every measurement runs in its own process, so that a solve that runs away (HiGHS does not honour its
time limit during presolve of a huge model) or eats memory is killed and reported instead of hanging
the run. Children are forked from the benchmark script, which never imports Pyomo, HiGHS or the
planner itself, so no solver threads or caches are inherited (spawn works too, but leaves Pyomo's
semaphore warnings behind). Inside the child, `repeat` runs are timed one after the other, each after
clearing the planner's caches (a new scenario in the app misses them too); every finished run is sent
to the parent at once, so a timeout keeps the runs that did finish.
"""
from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED_REPEAT_UNDER_S = 20.0  # repeat a seed-formulation run only when one run takes less than this


# ------------------------------------------------------------------ scenarios
def scenario_of(spec: dict):
    """A scenario from {"folder": config folder name, "quantization": override} or {"texts": file texts}."""
    from planner import load_config_dir, scenario_from_texts

    if "texts" in spec:
        sc = scenario_from_texts(spec["texts"], name=spec.get("name", "synthetic"))
    else:
        sc = load_config_dir(ROOT / "config" / spec["folder"])
    if spec.get("quantization"):
        sc = replace(sc, settings=replace(sc.settings, quantization=spec["quantization"], sizes=None))
    return sc


def clear_caches() -> None:
    """Forget every memoised performance-model result (the lru caches of planner.candidates and perf)."""
    from planner import candidates, perf

    for module in (candidates, perf):
        for obj in vars(module).values():
            if callable(getattr(obj, "cache_clear", None)):
                obj.cache_clear()


# ------------------------------------------------------------------ what is timed (generators, run in the child)
def ours_method(spec: dict, method: str, repeat: int):
    """Planner(scenario).<method>() from scratch: candidates, model builds and all solves."""
    from planner import Planner

    sc = scenario_of(spec)
    for _ in range(repeat):
        clear_caches()
        t0 = time.perf_counter()
        planner = Planner(sc)
        result = getattr(planner, method)()
        total = time.perf_counter() - t0
        size, plan = result.problem_size, result.plan
        yield {"options": size.get("options"), "binaries": size.get("binaries"), "rows": size.get("rows"),
               "build_s": result.build_seconds, "highs_s": result.solve_seconds, "total_s": total,
               "solves": result.extra.get("solves", ""), "usd_per_million_tokens": plan.usd_per_million_tokens,
               "tokens_per_s": plan.tokens_per_s, "usd_per_hour": plan.cost_usd_per_hour,
               "proven_optimal": result.proven_optimal, "status": result.status}


def ours_budget(spec: dict, factor: float, repeat: int):
    """Max throughput at budget B (ties toward lower cost) with the planner, B = factor x the cost of
    the minimum-$/token plan (found first, untimed); the seed formulation then answers the same question."""
    from planner import Planner

    sc = scenario_of(spec)
    budget = factor * Planner(sc).exact().plan.cost_usd_per_hour
    for _ in range(repeat):
        clear_caches()
        t0 = time.perf_counter()
        planner = Planner(sc)
        plan = planner.max_throughput(budget)
        total = time.perf_counter() - t0
        size = planner.problem_size()
        yield {"budget_usd_per_hour": budget, "size": size.get("options"), "pairs": "",
               "binaries": size.get("binaries"), "rows": size.get("rows"), "build_s": planner.build_seconds,
               "highs_s": planner.solve_seconds, "total_s": total, "tokens_per_s": plan.tokens_per_s,
               "usd_per_hour": plan.cost_usd_per_hour, "usd_per_million_tokens": plan.usd_per_million_tokens,
               "status": "optimal"}


def seed_budget(spec: dict, budget: float, repeat: int, time_limit_s: float, max_pairs: int | None):
    """The same question with the seed-style formulation (benchmarks/seed_formulation.py)."""
    from benchmarks import seed_formulation as sf

    sc = scenario_of(spec)
    for _ in range(repeat):
        clear_caches()
        try:
            out = sf.max_throughput(sc, budget, time_limit_s=time_limit_s, max_pairs=max_pairs)
        except sf.TooLarge as exc:
            yield {"budget_usd_per_hour": budget, "size": exc.segments, "pairs": exc.pairs,
                   "binaries": exc.segments + exc.pairs, "status": f"not built: {exc}"}
            return
        yield {"budget_usd_per_hour": budget, "size": out.size["segments"], "pairs": out.size["pairs"],
               "binaries": out.size["binaries"], "rows": out.size["rows"], "build_s": out.build_seconds,
               "highs_s": out.solve_seconds, "total_s": out.total_seconds, "tokens_per_s": out.tokens_per_s,
               "usd_per_hour": out.cost_usd_per_hour, "usd_per_million_tokens": out.usd_per_million_tokens,
               "status": out.status}
        if out.total_seconds > SEED_REPEAT_UNDER_S:
            return


# ------------------------------------------------------------------ isolation
def _child(conn, target, args, memory_gb):
    if memory_gb:
        limit = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        for record in target(*args):
            conn.send(record)
        conn.send(None)
    except MemoryError:
        conn.send({"status": f"out of memory (limit {memory_gb:g} GB)"})
    except Exception as exc:  # report any failure of the measured code to the parent, with its traceback
        conn.send({"status": f"error: {type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
    finally:
        conn.close()


def run_isolated(target, args: tuple, per_run_timeout_s: float, memory_gb: float | None = None) -> tuple[list[dict], str]:
    """Run generator `target(*args)` in a child process; return (finished runs, final status).

    The status is "ok", "timeout after N s" (the child is killed), a failure reported by the child, or
    "crashed" if it died without a word (e.g. killed by the kernel)."""
    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, target, args, memory_gb), daemon=True)
    proc.start()
    send.close()
    runs: list[dict] = []
    status = "ok"
    try:
        while True:
            if not receive.poll(per_run_timeout_s):
                status = f"timeout after {per_run_timeout_s:g} s"
                break
            try:
                msg = receive.recv()
            except EOFError:
                status = f"crashed (exit code {proc.exitcode})"
                break
            if msg is None:
                break
            if "total_s" not in msg:  # a failure, or a case that was not built
                if "traceback" in msg:
                    print(msg["traceback"], file=sys.stderr)
                runs.append(msg)
                status = msg["status"]
                break
            runs.append(msg)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(10)
        receive.close()
    return runs, status


def summarise(runs: list[dict], status: str) -> dict:
    """The first run's figures with build, HiGHS and total time replaced by the medians over runs."""
    timed = [r for r in runs if "total_s" in r]
    if not timed:
        row = dict(runs[0]) if runs else {}
        row.pop("traceback", None)
        row.update(status=status, runs=0)
        return row
    row = dict(timed[0])
    for key in ("build_s", "highs_s", "total_s"):
        row[key] = statistics.median(r[key] for r in timed)
    row["runs"] = len(timed)
    if status != "ok":
        row["status"] = f"{row.get('status', '')}; then {status}".lstrip("; ")
    return row
