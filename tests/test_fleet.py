"""Fleet mode against brute force (every replica plan, then every multiset of replicas) and a hand-solved case."""
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import perf
from planner.fleet import DemandInfeasibleError, Fleet, RequestClass, class_demands, class_scenario, parse_mix
from tests import brute
from tests.helpers import gpu, scenario, tiny_model
from tests.test_planner import small_scenarios


def replica_table(sc):
    """Distinct (rate, GPUs per type, cost) of every feasible replica plan, by brute force."""
    types = sc.pool.types
    seen = {}
    for cost, rate, opts in brute.all_plans(sc):
        n = tuple(sum(o.tp for o in opts if o.gpu_type == g) for g in types)
        key = (n, round(rate, 9))
        seen[key] = (rate * sc.workload.basis_fraction, n, cost)
    return list(seen.values())


def _served_by_usage(tables, counts):
    """Every multiset of replicas, grouped by the GPUs it uses: usage vector u -> the Pareto set of the
    tokens/s it serves per class (every reachable u, built by adding one replica at a time)."""
    import itertools

    states = {tuple(0 for _ in counts): {tuple(0.0 for _ in tables)}}
    order = sorted(itertools.product(*[range(c + 1) for c in counts]), key=sum)
    for u in order:
        if u not in states:
            continue
        for q, table in enumerate(tables):
            for rate, n, _ in table:
                v = tuple(a + b for a, b in zip(u, n))
                if any(x > c for x, c in zip(v, counts)):
                    continue
                new = {tuple(s + (rate if i == q else 0.0) for i, s in enumerate(served)) for served in states[u]}
                pool = states.setdefault(v, set()) | new
                states[v] = {a for a in pool if not any(b != a and all(x >= y for x, y in zip(b, a)) for b in pool)}
    return states


def brute_fleet(sc, tables, demands):
    """Min cost over every multiset of replicas (per class) within the GPU counts meeting every demand, None
    if none does. A replica's cost is its GPUs times their prices, so a fleet's cost is prices . usage."""
    counts = tuple(sc.pool.entry(g).count for g in sc.pool.types)
    prices = [sc.pool.entry(g).spec.price_usd_per_hour for g in sc.pool.types]
    best = None
    for u, served in _served_by_usage(tables, counts).items():
        if any(all(s >= d * (1 - 1e-9) for s, d in zip(v, demands)) for v in served):
            cost = sum(p * x for p, x in zip(prices, u))
            best = cost if best is None else min(best, cost)
    return best


def brute_capacity(sc, table):
    counts = tuple(sc.pool.entry(g).count for g in sc.pool.types)
    return max(v[0] for served in _served_by_usage([table], counts).values() for v in served)


def fleet_scenarios():
    return small_scenarios().map(lambda sc: replace(sc, settings=replace(sc.settings, max_stages=min(sc.settings.max_stages, 3))))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_scenarios(), st.sampled_from([0.05, 0.3, 0.6, 0.9, 1.0, 1.2]))
def test_fleet_matches_brute_force(sc, fraction):
    table = replica_table(sc)
    cap = brute_capacity(sc, table)
    fleet = Fleet(sc)
    got_cap, status, _ = fleet.capacity()
    assert status == "optimal" and got_cap == pytest.approx(cap, rel=1e-9, abs=1e-9)
    demand = fraction * cap if cap > 0 else 1.0
    want = brute_fleet(sc, [table], [demand])
    if want is None:
        with pytest.raises(DemandInfeasibleError) as info:
            fleet.solve(demand)
        assert info.value.max_tokens_per_s == pytest.approx(cap, rel=1e-9, abs=1e-9)
        return
    got = fleet.solve(demand)
    assert got.proven_optimal and got.status == "optimal"
    assert got.cost_usd_per_hour == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert got.tokens_per_s >= demand * (1 - 1e-9)
    used = got.gpus_by_type()
    assert all(used.get(g, 0) <= sc.pool.entry(g).count for g in sc.pool.types)
    assert len(got.gpu_rows) == sum(used.values())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_scenarios(), st.sampled_from([0.3, 0.7]), st.sampled_from([None, 0.6, 1.2]))
def test_fleet_mix_matches_brute_force(sc, fraction, ttft_factor):
    """Two request classes of different lengths (one with its own TTFT limit) share the pool."""
    mix = (RequestClass("short", 0.6, 64, 32), RequestClass("long", 0.4, 256, 64))
    if ttft_factor is not None:
        # a limit around the cheapest single pipeline's TTFT for the long class
        plans = list(brute.all_plans(class_scenario(sc, mix[1])))
        if plans:
            c, t, opts = min(plans, key=lambda p: p[0] / p[1])
            ttft = sum(o.ttft_s for o in opts) * 1e3
            mix = (mix[0], replace(mix[1], max_ttft_ms=ttft * ttft_factor))
    scs = [class_scenario(sc, c) for c in mix]
    tables = [replica_table(s) for s in scs]
    fleet = Fleet(sc, mix)
    cap, status, _ = fleet.capacity()
    assert status == "optimal"
    demand = fraction * cap if cap > 0 else 1.0
    want = brute_fleet(sc, tables, class_demands(sc, mix, demand))
    if want is None:
        with pytest.raises(DemandInfeasibleError):
            fleet.solve(demand)
        return
    got = fleet.solve(demand)
    assert got.proven_optimal
    assert got.cost_usd_per_hour == pytest.approx(want, rel=1e-9, abs=1e-9)
    for (name, d) in got.classes:
        served = sum(g.count * g.tokens_per_s for g in got.groups if g.request_class == name)
        assert served >= d * (1 - 1e-9)


def test_hand_solved_two_types():
    """One layer-group model that fits on one GPU of either type. A: $1/h, rate a; B: $3/h, rate b.
    Demand just above 2a with 2 A and 1 B: three A replicas are impossible, so the optimum is 2 A + 1 B
    if a B replica is the cheapest way to close the gap, i.e. cost 1 + 1 + 3 = 5."""
    m = tiny_model(layers=2)
    ga, gb = gpu("A", 80, 1.0, tflops=100), gpu("B", 80, 3.0, tflops=300, hbm=3000)
    sc = scenario(m, [(ga, 2), (gb, 1)], concurrency=8, quantization="coarse", max_stages=1)
    e = sc.engine
    a = perf.stage_perf(m, ga, e, 2, 1, True, True, sc.workload, 8).tokens_per_s
    b = perf.stage_perf(m, gb, e, 2, 1, True, True, sc.workload, 8).tokens_per_s
    fleet = Fleet(sc)
    assert fleet.capacity()[0] == pytest.approx(2 * a + b)
    one = fleet.solve(0.5 * a)  # one A replica
    assert one.cost_usd_per_hour == pytest.approx(1.0) and one.num_replicas == 1
    two = fleet.solve(1.5 * a)
    assert two.cost_usd_per_hour == pytest.approx(2.0 if b < 1.5 * a else min(2.0, 3.0))
    three = fleet.solve(2 * a + 0.5 * b)
    assert three.cost_usd_per_hour == pytest.approx(5.0) and three.num_replicas == 3
    with pytest.raises(DemandInfeasibleError) as info:
        fleet.solve(2 * a + b + 1)
    assert info.value.max_tokens_per_s == pytest.approx(2 * a + b)
    assert f"{2 * a + b:,.1f}" in str(info.value)


def test_parse_mix_and_errors():
    mix = parse_mix("chat:0.7:512:256,docs:0.3:8192:512:4000")
    assert [c.name for c in mix] == ["chat", "docs"] and mix[1].max_ttft_ms == 4000
    from planner.errors import InputError
    with pytest.raises(InputError):
        parse_mix("chat:0.7:512")
    with pytest.raises(InputError):
        parse_mix("chat:-1:512:256")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_scenarios(), st.sampled_from([0.3, 0.8]))
def test_price_break_evens_match_re_solves(sc, fraction):
    """Between break-even prices the optimal cost is linear; at sampled prices it equals a fresh solve."""
    from planner.fleet_whatif import price_sensitivity

    fleet = Fleet(sc)
    cap = fleet.capacity()[0]
    if cap <= 0:
        return
    g = sc.pool.types[0]
    p0 = sc.pool.entry(g).spec.price_usd_per_hour
    res = price_sensitivity(fleet, fraction * cap, g, 0.1 * p0, 5 * p0)
    assert res.proven
    pts = res.points
    for a, b in zip(pts, pts[1:]):
        for t in (0.25, 0.5, 0.75):
            p = a.price + t * (b.price - a.price)
            fresh = Fleet(replace(sc, pool=replace(sc.pool, entries=tuple(
                replace(e, spec=replace(e.spec, price_usd_per_hour=p)) if e.name == g else e
                for e in sc.pool.entries)))).solve(fraction * cap)
            want = min(x.cost_usd_per_hour + x.type_gpus * (p - x.price) for x in pts)
            assert fresh.cost_usd_per_hour == pytest.approx(want, rel=1e-7, abs=1e-9)


def test_cli_fleet_json_files_and_exit_codes(tmp_path):
    import csv
    import json
    import subprocess
    import sys
    from pathlib import Path

    from planner import load_config_dir

    root = Path(__file__).resolve().parent.parent

    def run(*args):
        return subprocess.run([sys.executable, "-m", "planner", "fleet", "--config-dir", "config/tiny", *args],
                              cwd=root, capture_output=True, text=True, timeout=300)

    fleet = Fleet(load_config_dir(root / "config" / "tiny"))
    cap = fleet.capacity()[0]
    out = run("--demand", f"{0.6 * cap}", "--out", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    for key in ("status", "proven_optimal", "gap", "demand_tokens_per_s", "tokens_per_s", "cost_usd_per_hour",
                "usd_per_million_tokens", "replicas"):
        assert key in s
    want = fleet.solve(0.6 * cap)
    assert s["proven_optimal"] is True and s["cost_usd_per_hour"] == pytest.approx(want.cost_usd_per_hour)
    r = s["replicas"][0]
    assert set(r) >= {"count", "tokens_per_s", "cost_usd_per_hour", "concurrency", "ttft_ms", "tpot_ms", "stages"}
    assert set(r["stages"][0]) == {"first_layer", "last_layer", "gpu_type", "tp", "num_gpus"}
    rows = list(csv.DictReader((tmp_path / "fleet.csv").open()))
    assert len(rows) == sum(len(g.stages) for g in want.groups)
    gpus = list(csv.DictReader((tmp_path / "gpus.csv").open()))
    assert len(gpus) == sum(want.gpus_by_type().values()) and len({g["gpu_id"] for g in gpus}) == len(gpus)
    bad = run("--demand", f"{2 * cap}", "--out", str(tmp_path))
    assert bad.returncode == 3 and f"{cap:,.1f}" in bad.stderr
    curve = run("--curve", "--out", str(tmp_path / "c"), "--json")
    assert curve.returncode == 0, curve.stderr
    steps = json.loads(curve.stdout)["curve"]["steps"]
    assert max(st["demand_to_tokens_per_s"] for st in steps if st["series"] == "mixed") == pytest.approx(cap)
    assert run("--demand", "-5").returncode == 2
    assert run("--demand", "10", "--mix", "chat:0.5").returncode == 2
    assert "complete" in json.loads(curve.stdout)["curve"]


def test_cli_fleet_price_what_ifs(tmp_path):
    """--price re-solves at a spot price (equal to a fresh scenario at that price); --price-sensitivity writes
    prices.csv whose costs equal fresh solves; bad values exit 2 naming the flag."""
    import csv
    import json
    import subprocess
    import sys
    from pathlib import Path

    from planner import load_config_dir

    root = Path(__file__).resolve().parent.parent
    sc = load_config_dir(root / "config" / "tiny")
    g = sc.pool.types[0]
    p0 = sc.pool.entry(g).spec.price_usd_per_hour
    cap = Fleet(sc).capacity()[0]

    def run(*args):
        return subprocess.run([sys.executable, "-m", "planner", "fleet", "--config-dir", "config/tiny", *args],
                              cwd=root, capture_output=True, text=True, timeout=300)

    def fresh(price):
        return Fleet(replace(sc, pool=replace(sc.pool, entries=tuple(
            replace(e, spec=replace(e.spec, price_usd_per_hour=price)) if e.name == g else e
            for e in sc.pool.entries)))).solve(0.7 * cap)

    out = run("--demand", f"{0.7 * cap}", "--price", f"{g}={0.3 * p0}", "--price-sensitivity", f"{g}:0.2:3",
              "--out", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["what_if_prices"]["cost_usd_per_hour"] == pytest.approx(fresh(0.3 * p0).cost_usd_per_hour)
    assert s["what_if_prices"]["proven_optimal"] is True
    assert s["cost_usd_per_hour"] == pytest.approx(fresh(p0).cost_usd_per_hour)  # list prices restored
    rows = list(csv.DictReader((tmp_path / "prices.csv").open()))
    assert len(rows) >= 2 and float(rows[0]["price_usd_per_gpu_hour"]) == pytest.approx(0.2 * p0)
    for row in rows:
        assert float(row["fleet_cost_usd_per_hour"]) == pytest.approx(
            fresh(float(row["price_usd_per_gpu_hour"])).cost_usd_per_hour)
    for bad in (["--price", f"{g}=-1"], ["--price", "nosuch=1"], ["--price-sensitivity", f"{g}:3:1"]):
        res = run("--demand", "10", *bad, "--out", str(tmp_path))
        assert res.returncode == 2 and bad[0] in res.stderr, res.stderr


def catalogue_fleet_cost(sc, demand):
    """The previous method, kept as a cross-check: the MILP over every Pareto-minimal replica of the exact
    catalogue (fleet_replicas), min sum c y s.t. sum theta y >= D and the GPU rows, y integer."""
    import highspy

    from planner.fleet_replicas import build_catalogue

    cat = build_catalogue(sc, allow_large=True).replicas
    types = sc.pool.types
    prices = [sc.pool.entry(g).spec.price_usd_per_hour for g in types]
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 1e-9)
    h.setOptionValue("mip_abs_gap", 0.0)
    inf = highspy.kHighsInf
    n = len(cat)
    h.addVars(n, [0.0] * n, [inf] * n)
    h.changeColsIntegrality(n, list(range(n)), [highspy.HighsVarType.kInteger] * n)
    h.changeColsCost(n, list(range(n)), [sum(k * p for k, p in zip(r.gpus, prices)) for r in cat])
    beta = sc.workload.basis_fraction
    h.addRow(demand, inf, n, list(range(n)), [beta * r.tokens_per_s for r in cat])
    for g, t in enumerate(types):
        h.addRow(-inf, sc.pool.entry(t).count, n, list(range(n)), [float(r.gpus[g]) for r in cat])
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value


@pytest.mark.parametrize("name,stages", [("medium", 3), ("realistic", 3), ("small", 4)])
def test_column_generation_matches_the_replica_catalogue(name, stages):
    """On bundled scenarios where the exact catalogue is small enough to build: the same minimum $/hour at
    demands from 5% to 95% of the capacity (the catalogue's MILP is the previous, independent method)."""
    from pathlib import Path

    from planner import load_config_dir

    sc = load_config_dir(Path(__file__).resolve().parent.parent / "config" / name)
    sc = replace(sc, settings=replace(sc.settings, max_stages=stages))
    fleet = Fleet(sc)
    cap = fleet.capacity()[0]
    for f in (0.05, 0.35, 0.7, 0.95):
        got = fleet.solve(f * cap)
        assert got.proven_optimal
        assert got.cost_usd_per_hour == pytest.approx(catalogue_fleet_cost(sc, f * cap), rel=1e-9)


def test_realistic_at_its_full_stage_limit_is_proven():
    """The size guard is gone: realistic at its default 8 stages is solved and proven optimal (a fleet
    no dearer than the best 3-stage one, which the catalogue method also finds)."""
    from pathlib import Path

    from planner import load_config_dir

    sc = load_config_dir(Path(__file__).resolve().parent.parent / "config" / "realistic")
    plan = Fleet(sc).solve(20000)
    assert plan.proven_optimal and plan.status == "optimal" and plan.tokens_per_s >= 20000
    three = replace(sc, settings=replace(sc.settings, max_stages=3))
    assert plan.cost_usd_per_hour <= catalogue_fleet_cost(three, 20000) + 1e-9
