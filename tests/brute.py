"""Brute force over every ordered pipeline of a small scenario, independent of the MILP."""
from __future__ import annotations

import itertools
from dataclasses import replace

from planner import perf

from planner.candidates import evaluate_option, pipeline_levels, segment_sizes, tp_degrees


def compositions(total: int, parts: tuple[int, ...], max_parts: int):
    if total == 0:
        yield ()
        return
    if max_parts == 0:
        return
    for s in parts:
        if s <= total:
            for rest in compositions(total - s, parts, max_parts - 1):
                yield (s,) + rest


def all_plans(sc):
    """Yield (cost_usd_per_hour, tokens_per_s, stages) for every feasible plan (stage order included).

    A plan of k stages runs at each level allowing k stages: microbatch b, and every stage must hold the
    KV cache of the level's concurrency at k (each option knows the most stages at which it fits)."""
    L = sc.model.num_layers
    st = sc.settings
    ttft, tpot = st.max_ttft_ms, st.max_tpot_ms
    # options are evaluated without the SLOs; the latency limits are checked here from planner.perf
    sc = replace(sc, settings=replace(st, max_ttft_ms=None, max_tpot_ms=None))
    sizes, _ = segment_sizes(sc)
    tps, _ = tp_degrees(sc)
    shapes = [(g, t) for g in sc.pool.types for t in tps[g]]
    counts = {e.name: e.count for e in sc.pool.entries}
    for level in pipeline_levels(sc):
        for comp in compositions(L, sizes, sc.settings.max_stages):
            k = len(comp)
            if k not in level.stage_counts:
                continue
            roles = ["only"] if k == 1 else ["first"] + ["middle"] * (k - 2) + ["last"]
            for choice in itertools.product(shapes, repeat=k):
                used = {}
                for g, t in choice:
                    used[g] = used.get(g, 0) + t
                if any(used[g] > counts[g] for g in used):
                    continue
                opts = [evaluate_option(sc, s, r, g, t, level) for s, r, (g, t) in zip(comp, roles, choice)]
                if not all(o.feasible and k <= o.max_stages for o in opts):
                    continue
                if ttft is not None or tpot is not None:
                    # each stage's times as the model defines them for an option (perf.stage_perf at the
                    # level's microbatch, the scheduler's share at the fewest stages of the role, a
                    # non-last stage's hand-off over the pool's network), recomputed here from perf
                    lat = []  # (TTFT share, TPOT step) per stage, perf.serving_latency
                    for o in opts:
                        p0 = o.min_stages
                        g = sc.pool.entry(o.gpu_type).spec
                        hand = None if o.last else (sc.pool.default_link_gb_per_s, "network")
                        sp = perf.stage_perf(sc.model, g, sc.engine, o.size, o.tp, o.first, o.last, sc.workload,
                                             level.concurrency(p0), microbatches=p0, handoff=hand)
                        own = perf.prefill_time(sc.model, g, sc.engine, o.size, o.tp, o.first, o.last, 1,
                                                sc.workload.input_tokens, stages=p0, pipelined=p0 > 1, handoff=hand)
                        lat.append(perf.serving_latency(sp, own.seconds, sc.workload, sc.engine, p0))
                    # a sum in another order differs in the last bits: a plan at the limit is within it
                    if ttft is not None and sum(t for t, _ in lat) * 1e3 > ttft * (1 + 1e-9):
                        continue
                    if tpot is not None and k * max(s for _, s in lat) * 1e3 > tpot:
                        continue
                yield sum(o.cost_usd_per_hour for o in opts), min(o.tokens_per_s for o in opts), opts


def best_ratio(sc):
    return min(((c / t, c, t) for c, t, _ in all_plans(sc)), default=None)


def frontier(sc):
    pts = sorted({(round(c, 9), t) for c, t, _ in all_plans(sc)}, key=lambda p: (p[0], -p[1]))
    out = []
    for c, t in pts:
        if out and t <= out[-1][1] * (1 + 1e-12):
            continue
        out.append((c, t))
    return out


def max_throughput(sc, budget):
    return max(((t, -c) for c, t, _ in all_plans(sc) if c <= budget * (1 + 1e-12)), default=None)
