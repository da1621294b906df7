"""Use cases (latency limits from config/use_cases.csv), TTFT/TPOT in the output, the interactive warning,
the normalised cost weight and the bundled chat scenario (issue 14)."""
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import InfeasibleError, InputError, Planner, load_config_dir
from planner.cli import main
from planner.scenario_io import scenario_from_texts
from planner.usecases import apply_use_case, get_use_case, interactive_warning, load_use_cases
from tests import brute
from tests.helpers import gpu, scenario, tiny_model, with_host_ms

ROOT = Path(__file__).resolve().parent.parent
SEED_FOLDERS = ("tiny", "small", "medium", "large", "hal")


def config_texts(folder: str) -> dict[str, str]:
    base = ROOT / "config" / folder
    return {p.name: p.read_text() for p in base.iterdir() if p.suffix == ".csv"}


def with_config_rows(texts: dict[str, str], **rows) -> dict[str, str]:
    """config.csv with these parameter rows (replacing any of the same name)."""
    kept = [line for line in texts["config.csv"].splitlines() if line.split(",", 1)[0] not in rows]
    return {**texts, "config.csv": "\n".join(kept + [f"{k},{v}" for k, v in rows.items()]) + "\n"}


# ------------------------------------------------------------------ the use-case table
def test_use_case_table_has_the_three_cases_with_sources():
    cases = {u.key: u for u in load_use_cases()}
    assert list(cases) == ["chat", "batch", "custom"]
    chat = cases["chat"]
    # MLPerf Inference's interactive Llama-2-70B limits (loadgen/mlperf.conf), read off the source text
    assert (chat.max_ttft_ms, chat.max_tpot_ms) == (450.0, 40.0)
    assert "ttft_latency = 450" in chat.source and "tpot_latency = 40" in chat.source
    assert cases["batch"].max_ttft_ms is None and cases["batch"].max_tpot_ms is None
    assert all(u.label and u.rationale and u.source for u in cases.values())


def test_a_broken_use_case_file_names_row_and_column(tmp_path):
    bad = tmp_path / "use_cases.csv"
    bad.write_text("key,label,max_ttft_ms,max_tpot_ms,rationale,source\n"
                   "chat,Chat,abc,40,r,s\nbatch,Batch,,,r,s\nlunch,Lunch,,,r,s\n")
    with pytest.raises(InputError) as exc:
        load_use_cases(bad)
    text = str(exc.value)
    assert "row 2, column 'max_ttft_ms'" in text and "row 4, column 'key'" in text and "lunch" in text


def test_apply_use_case_sets_removes_or_keeps_limits():
    sc = load_config_dir(ROOT / "config/tiny")
    chat = apply_use_case(sc.settings, "chat")
    assert (chat.use_case, chat.max_ttft_ms, chat.max_tpot_ms) == ("chat", 450.0, 40.0)
    assert apply_use_case(chat, "batch").max_ttft_ms is None
    custom = apply_use_case(replace(sc.settings, max_ttft_ms=3000.0), "custom")
    assert (custom.use_case, custom.max_ttft_ms, custom.max_tpot_ms) == ("custom", 3000.0, None)
    assert apply_use_case(sc.settings, "chat", max_tpot_ms=80.0).max_tpot_ms == 80.0
    with pytest.raises(InputError, match="unknown use case 'lunch'"):
        get_use_case("lunch")


def test_interactive_warning_is_a_sentence_only_when_too_slow():
    assert interactive_warning(449.0, 39.0, None) is None
    assert interactive_warning(85_000.0, 39.0, "batch") is None  # nobody waits on a batch request
    slow = interactive_warning(85_000.0, 120.0, None)
    assert slow.startswith("Too slow for interactive use") and "85 s" in slow and "120 ms" in slow
    assert "450 ms" in slow and "40 ms" in slow and slow.endswith(".")
    assert "first token" not in interactive_warning(100.0, 41.0, "custom")  # only the limit exceeded is named


# ------------------------------------------------------------------ config keys
def test_seed_folders_load_unchanged_and_give_the_same_plans():
    for folder in SEED_FOLDERS:
        sc = load_config_dir(ROOT / "config" / folder)
        assert sc.settings.use_case is None and sc.settings.max_ttft_ms is None and sc.settings.max_tpot_ms is None
        assert not any("use_case" in w or "weight_scaling" in w for w in sc.warnings)
    # the seed's normalisation keys mean the seed's weighting (else they would be silently ignored)
    assert load_config_dir(ROOT / "config/medium").settings.weight_scaling == "seed"
    assert load_config_dir(ROOT / "config/tiny").settings.weight_scaling == "normalised"
    # the exact optimum does not depend on the new keys: stating batch (no limits) changes nothing
    texts = config_texts("small")
    plain = Planner(scenario_from_texts(texts, name="small")).exact().plan
    batch = Planner(scenario_from_texts(with_config_rows(texts, use_case="batch"), name="small")).exact().plan
    assert (batch.cost_usd_per_hour, batch.tokens_per_s) == (plain.cost_usd_per_hour, plain.tokens_per_s)


def test_use_case_key_sets_limits_and_explicit_limits_win():
    texts = config_texts("realistic")
    chat = scenario_from_texts(with_config_rows(texts, use_case="chat"), name="r").settings
    assert (chat.max_ttft_ms, chat.max_tpot_ms) == (450.0, 40.0)
    own = scenario_from_texts(with_config_rows(texts, use_case="chat", max_ttft_ms=2000), name="r").settings
    assert (own.max_ttft_ms, own.max_tpot_ms) == (2000.0, 40.0)
    with pytest.raises(InputError) as exc:
        scenario_from_texts(with_config_rows(texts, use_case="chatty", weight_scaling="linear"), name="r")
    text = str(exc.value)
    assert "config.csv, row" in text and "chatty" in text and "did you mean 'chat'" in text and "linear" in text


def test_every_bundled_realistic_scenario_states_its_use_case():
    for folder in ("realistic", "xl", "llama70b-chat"):
        sc = load_config_dir(ROOT / "config" / folder)
        assert len(sc.description) > 40 and "\n" not in sc.description
        assert sc.settings.use_case in ("chat", "batch")


def test_chat_scenario_prices_have_source_and_date_and_its_plan_is_interactive():
    sc = load_config_dir(ROOT / "config/llama70b-chat")
    assert set(sc.pool.types) == {"H100-SXM", "A100-80GB-SXM", "L40S"}
    for e in sc.pool.entries:
        assert "Modal" in e.spec.price_source and e.spec.price_date == "2026-05"
    assert sc.settings.use_case == "chat" and sc.model.num_layers == 80
    r = Planner(sc).exact()
    assert r.proven_optimal
    assert r.plan.ttft_s * 1e3 <= 450.0 and r.plan.tpot_s * 1e3 <= 40.0
    assert interactive_warning(r.plan.ttft_s * 1e3, r.plan.tpot_s * 1e3, "chat") is None
    # without the limits the cheapest plan is far cheaper per token but keeps users waiting for seconds
    batch = Planner(replace(sc, settings=apply_use_case(sc.settings, "batch"))).exact().plan
    assert batch.usd_per_million_tokens < r.plan.usd_per_million_tokens
    assert interactive_warning(batch.ttft_s * 1e3, batch.tpot_s * 1e3, None) is not None


# ------------------------------------------------------------------ the normalised cost weight
def normalised_pick(points, w):
    """Brute force over (cost, throughput) frontier points: argmax of (1-w) t_norm - w c_norm, ties cheaper."""
    (c0, t0), (c1, t1) = points[0], points[-1]
    dt, dc = (t1 - t0) or 1.0, (c1 - c0) or 1.0
    values = [(1 - w) * (t - t0) / dt - w * (c - c0) / dc for c, t in points]
    top = max(values)
    return next(i for i, v in enumerate(values) if v >= top - 1e-12)


def test_cost_weight_spans_the_realistic_frontier():
    planner = Planner(load_config_dir(ROOT / "config/realistic"))
    picks = {}
    for w in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        r = planner.weighted(w)
        pts = [(p["cost_usd_per_hour"], p["tokens_per_s"]) for p in r.extra["frontier_points"]]
        assert r.extra["pick_index"] == normalised_pick(pts, w)
        assert (r.plan.cost_usd_per_hour, r.plan.tokens_per_s) == pts[r.extra["pick_index"]]
        assert r.extra["objective_proven"] and not r.proven_optimal  # exact for its objective, not for $/token
        picks[w] = r.extra["pick_index"]
    front = r.frontier
    assert picks[0.0] == len(front) - 1 and picks[1.0] == 0  # fastest and cheapest
    assert len({picks[w] for w in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)}) >= 3
    # the pick moves towards cheaper plans as w grows
    costs = [front[picks[w]].cost_usd_per_hour for w in sorted(picks)]
    assert costs == sorted(costs, reverse=True)


def test_seed_scaling_stays_available():
    sc = load_config_dir(ROOT / "config/realistic")
    seed = Planner(sc).weighted(0.5, scaling="seed")
    assert seed.extra["weight_scaling"] == "seed"
    t_norm = max(o.tokens_per_s for o in Planner(sc).candidates.options)
    assert seed.extra["throughput_normalization"] == t_norm
    settings_seed = replace(sc, settings=replace(sc.settings, weight_scaling="seed", cost_weight=0.5))
    again = Planner(settings_seed).weighted()
    assert (again.plan.cost_usd_per_hour, again.plan.tokens_per_s) == (seed.plan.cost_usd_per_hour,
                                                                        seed.plan.tokens_per_s)


gpu_st = st.builds(lambda mem, price, tflops, hbm, per_node: gpu("X", mem, price, tflops, hbm, per_node),
                   st.sampled_from([2.0, 4.0, 8.0, 16.0]), st.sampled_from([0.5, 1.0, 1.7, 3.0]),
                   st.sampled_from([30.0, 100.0, 300.0]), st.sampled_from([300.0, 1000.0, 3000.0]),
                   st.sampled_from([1, 2, 4]))


@st.composite
def small_scenarios(draw):
    gpus = [(replace(draw(gpu_st), sku=f"T{i}"), draw(st.integers(1, 4))) for i in range(draw(st.integers(1, 3)))]
    m = tiny_model(layers=draw(st.integers(2, 5)), hidden=draw(st.sampled_from([1024, 4096])))
    sc = scenario(m, gpus, concurrency=draw(st.sampled_from([1, 4, 16, None])), max_stages=draw(st.integers(1, 4)),
                  quantization="full")
    return with_host_ms(sc, draw(st.sampled_from([0.0, 40.0])))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_scenarios(), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]))
def test_normalised_pick_equals_brute_force_over_every_plan(sc, w):
    """The frontier of every feasible plan, enumerated, and the normalised objective maximised on it by
    hand: the method must pick a plan with that cost and throughput."""
    front = brute.frontier(sc)
    if not front:
        with pytest.raises(InfeasibleError):
            Planner(sc).weighted(w)
        return
    r = Planner(sc).weighted(w)
    c, t = front[normalised_pick(front, w)]
    assert r.plan.cost_usd_per_hour == pytest.approx(c, rel=1e-9)
    assert r.plan.tokens_per_s == pytest.approx(t, rel=1e-9)
    assert len(r.extra["frontier_points"]) == len(front)


# ------------------------------------------------------------------ command line
def test_cli_prints_ttft_tpot_and_warns_beyond_interactive_use(tmp_path):
    out = subprocess.run([sys.executable, "-m", "planner", "solve", "--config-dir", "config/realistic",
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    s = json.loads((tmp_path / "summary.json").read_text())
    def shown(ms):  # the CLI's format: seconds from 1 s up, else milliseconds
        return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"
    assert f"TTFT {shown(s['ttft_ms'])}" in out.stdout and f"TPOT {shown(s['tpot_ms'])}" in out.stdout
    assert "Too slow for interactive use" not in out.stderr  # realistic states batch use


def test_cli_use_case_flag_sets_limits_and_explicit_flags_win(tmp_path, capsys):
    assert main(["solve", "--config-dir", "config/realistic", "--use-case", "chat", "--out", str(tmp_path),
                 "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["ttft_ms"] <= 450.0 and s["tpot_ms"] <= 40.0
    # on realistic the chat TPOT limit binds (the unconstrained optimum streams a token every ~60 ms)
    assert main(["solve", "--config-dir", "config/realistic", "--use-case", "chat", "--max-tpot-ms", "100",
                 "--out", str(tmp_path), "--json"]) == 0
    loose = json.loads(capsys.readouterr().out)
    assert 40.0 < loose["tpot_ms"] <= 100.0 and loose["usd_per_million_tokens"] < s["usd_per_million_tokens"]
    # batch: nobody waits, no warning; custom without limits: the ~60 ms token interval is flagged
    assert main(["solve", "--config-dir", "config/llama70b-chat", "--use-case", "batch", "--out", str(tmp_path)]) == 0
    assert "Too slow for interactive use" not in capsys.readouterr().err
    assert main(["solve", "--config-dir", "config/realistic", "--use-case", "custom", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "warning: Too slow for interactive use: each user then gets a token every" in err
    assert f"every {loose['tpot_ms']:.3g} ms" in err  # the same plan as with TPOT <= 100 ms: the optimum


def test_cli_weight_scaling_flag(tmp_path, capsys):
    for scaling in ("normalised", "seed"):
        assert main(["solve", "--config-dir", "config/realistic", "--method", "weighted", "--cost-weight", "0.3",
                     "--weight-scaling", scaling, "--out", str(tmp_path), "--json"]) == 0
        s = json.loads(capsys.readouterr().out)
        assert s["extra"]["weight_scaling"] == scaling
    assert "pick_index" in s["extra"] or scaling == "seed"
