"""Validation across sources (issue 12 item 7): each figure of `python -m planner validate` recomputed by hand
from the compared rows and held under the bound of THRESHOLDS; the AIConfigurator comparison and its two
decision metrics on a small fixture, checked by hand; the published measurements' provenance; the
generated docs section up to date.

THRESHOLDS is the one table of regression bounds: (source, group, profile, quantity) -> (max MAPE %,
max worst ratio). A model change that worsens a figure beyond its bound fails here; a figure without a
bound fails too (every reported figure must be guarded). The bounds are provisional (today's figures
plus a small margin) until the performance model v2 lands; then they are set to the issue's targets.
"""
import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from planner.catalog import load_catalog
from planner.evaluate import evaluate_layout
from planner.validation import (AIC_SYSTEMS, PUBLISHED_COLUMNS, PUBLISHED_QUANTITIES, SOURCE_AIC, aic_rows,
                                decision_metrics, published_points, validation_report)

DGX, VLLM, PUB, AIC = "DGX-A100 (splitwise_a100.csv)", "vLLM on L40S (vllm_l40s.csv)", "published", SOURCE_AIC
# ---- the regression bounds: (source, group, profile, quantity) -> (max MAPE %, max worst ratio, max rows the
# model calls infeasible although they ran). Set from performance model v2 (2026-11-29) with
# `python benchmarks/validation_report.py --thresholds`: today's figures (in the comments) + ~5 %; the sglang and
# trtllm profiles (fitted on AIConfigurator's sglang/trtllm backends, same split as vllm) added 2026-11-29.
# 2026-11-30: DGX rows with the large all-reduce term (prefill 10.6 -> 7.5 %, decode 5.5 -> 3.3 %); L40S rows
# with throughput runs' full-context admission (15.7 -> 13.0 %; held-out 19.3 -> 16.3 %, worst ratio 1.99 -> 2.52).
# 2026-11-30 (later): L40S burst runs pay the prefill of the tokens vLLM recomputes after preempting
# (perf.burst_recompute_tokens): 13.0 -> 11.1 %, fit rows 9.9 -> 8.5 %, held-out 16.3 -> 13.9 %,
# worst 2.52 -> 2.46. Issue 12's targets on the shared files are met on all rows and on the held-out rows
# (docs/calibration.md). Best GPU per dollar: vllm 44 of 48 groups (91.6 %, with the NVSwitch all-reduce term;
# 43 before), trtllm 45 of 48; sglang's 29 of 48 is far below the target (memory accounting and near-ties,
# see docs/calibration.md).
# decisions against AIConfigurator, per backend: (min % of groups with the same best GPU per tokens/$,
# min % of configurations with the same memory feasibility); targets >= 90 and >= 95
THRESHOLDS = {
    (DGX, "fit", "splitwise", "decode_step"): (3.5, 1.20, 0),  # 3.3 %, 1.12
    (DGX, "fit", "splitwise", "prefill"): (8.0, 1.40, 0),  # 7.2 %, 1.29
    (DGX, "held-out", "splitwise", "decode_step"): (4.0, 1.20, 0),  # 3.3 %, 1.13
    (DGX, "held-out", "splitwise", "prefill"): (8.5, 1.40, 0),  # 7.7 %, 1.29
    (DGX, "all", "splitwise", "decode_step"): (3.5, 1.20, 0),  # 3.3 %, 1.13
    (DGX, "all", "splitwise", "prefill"): (8.0, 1.40, 0),  # 7.5 %, 1.29
    (VLLM, "fit", "vllm-eager", "throughput"): (9.0, 1.60, 0),  # 8.5 %, 1.49
    (VLLM, "held-out", "vllm-eager", "throughput"): (14.5, 2.60, 0),  # 13.9 %, 2.46
    (VLLM, "all", "vllm-eager", "throughput"): (11.5, 2.60, 0),  # 11.1 %, 2.46
    (AIC, "sglang fit", "sglang", "decode_step"): (7.5, 1.55, 0),  # 7.1 %, 1.43
    (AIC, "sglang fit", "sglang", "prefill"): (9.0, 1.65, 0),  # 8.4 %, 1.55
    (AIC, "sglang fit", "sglang", "ttft"): (9.0, 1.65, 0),  # 8.4 %, 1.55
    (AIC, "sglang fit", "sglang", "tpot"): (8.0, 1.55, 0),  # 7.2 %, 1.43
    (AIC, "sglang fit", "sglang", "throughput"): (6.5, 1.35, 0),  # 6.1 %, 1.27
    (AIC, "sglang held-out", "sglang", "decode_step"): (8.5, 1.55, 0),  # 7.8 %, 1.44
    (AIC, "sglang held-out", "sglang", "prefill"): (9.0, 1.65, 0),  # 8.4 %, 1.54
    (AIC, "sglang held-out", "sglang", "ttft"): (9.0, 1.65, 0),  # 8.4 %, 1.54
    (AIC, "sglang held-out", "sglang", "tpot"): (8.5, 1.55, 0),  # 7.8 %, 1.44
    (AIC, "sglang held-out", "sglang", "throughput"): (7.0, 1.40, 0),  # 6.3 %, 1.31
    (AIC, "all", "sglang", "decode_step"): (8.0, 1.55, 0),  # 7.4 %, 1.44
    (AIC, "all", "sglang", "prefill"): (9.0, 1.65, 0),  # 8.4 %, 1.55
    (AIC, "all", "sglang", "ttft"): (9.0, 1.65, 0),  # 8.4 %, 1.55
    (AIC, "all", "sglang", "tpot"): (8.0, 1.55, 0),  # 7.5 %, 1.44
    (AIC, "all", "sglang", "throughput"): (6.5, 1.40, 0),  # 6.2 %, 1.31
    (AIC, "trtllm fit", "trtllm", "decode_step"): (9.5, 1.95, 0),  # 9.0 %, 1.85
    (AIC, "trtllm fit", "trtllm", "prefill"): (10.5, 2.65, 0),  # 9.9 %, 2.50
    (AIC, "trtllm fit", "trtllm", "ttft"): (10.5, 2.65, 0),  # 9.9 %, 2.50
    (AIC, "trtllm fit", "trtllm", "tpot"): (10.0, 1.95, 0),  # 9.1 %, 1.85
    (AIC, "trtllm fit", "trtllm", "throughput"): (8.0, 1.80, 0),  # 7.4 %, 1.71
    (AIC, "trtllm held-out", "trtllm", "decode_step"): (10.0, 2.05, 0),  # 9.5 %, 1.91
    (AIC, "trtllm held-out", "trtllm", "prefill"): (10.5, 2.10, 0),  # 9.9 %, 1.96
    (AIC, "trtllm held-out", "trtllm", "ttft"): (10.5, 2.10, 0),  # 9.9 %, 1.96
    (AIC, "trtllm held-out", "trtllm", "tpot"): (10.0, 2.00, 0),  # 9.5 %, 1.90
    (AIC, "trtllm held-out", "trtllm", "throughput"): (8.5, 1.80, 0),  # 7.6 %, 1.67
    (AIC, "all", "trtllm", "decode_step"): (10.0, 2.05, 0),  # 9.3 %, 1.91
    (AIC, "all", "trtllm", "prefill"): (10.5, 2.65, 0),  # 9.9 %, 2.50
    (AIC, "all", "trtllm", "ttft"): (10.5, 2.65, 0),  # 9.9 %, 2.50
    (AIC, "all", "trtllm", "tpot"): (10.0, 2.00, 0),  # 9.3 %, 1.90
    (AIC, "all", "trtllm", "throughput"): (8.0, 1.80, 0),  # 7.5 %, 1.71
    (AIC, "vllm fit", "vllm", "decode_step"): (6.5, 1.50, 0),  # 5.8 %, 1.39
    (AIC, "vllm fit", "vllm", "prefill"): (9.0, 1.65, 0),  # 8.2 %, 1.56
    (AIC, "vllm fit", "vllm", "ttft"): (9.0, 1.65, 0),  # 8.2 %, 1.56
    (AIC, "vllm fit", "vllm", "tpot"): (6.5, 1.50, 0),  # 5.9 %, 1.39
    (AIC, "vllm fit", "vllm", "throughput"): (5.5, 1.30, 0),  # 5.2 %, 1.23
    (AIC, "vllm held-out", "vllm", "decode_step"): (6.5, 1.60, 0),  # 6.0 %, 1.49
    (AIC, "vllm held-out", "vllm", "prefill"): (9.0, 1.70, 0),  # 8.3 %, 1.59
    (AIC, "vllm held-out", "vllm", "ttft"): (9.0, 1.70, 0),  # 8.3 %, 1.59
    (AIC, "vllm held-out", "vllm", "tpot"): (6.5, 1.60, 0),  # 6.1 %, 1.49
    (AIC, "vllm held-out", "vllm", "throughput"): (5.5, 1.40, 0),  # 5.2 %, 1.30
    (AIC, "all", "vllm", "decode_step"): (6.5, 1.60, 0),  # 5.9 %, 1.49
    (AIC, "all", "vllm", "prefill"): (9.0, 1.70, 0),  # 8.3 %, 1.59
    (AIC, "all", "vllm", "ttft"): (9.0, 1.70, 0),  # 8.3 %, 1.59
    (AIC, "all", "vllm", "tpot"): (6.5, 1.60, 0),  # 6.0 %, 1.49
    (AIC, "all", "vllm", "throughput"): (5.5, 1.40, 0),  # 5.2 %, 1.30
    (PUB, "NIM (TensorRT-LLM)", "trtllm", "ttft"): (25.0, 1.50, 0),  # 23.8 %, 1.38
    (PUB, "NIM (TensorRT-LLM)", "trtllm", "tpot"): (13.0, 1.25, 0),  # 12.1 %, 1.15
    (PUB, "NeMo inference (TensorRT-LLM)", "trtllm", "latency"): (41.0, 2.75, 0),  # 38.8 %, 2.61
    (PUB, "TensorRT-LLM", "trtllm", "throughput"): (39.5, 2.65, 0),  # 37.3 %, 2.48
    (PUB, "vLLM", "vllm", "tpot"): (22.0, 1.30, 0),  # 20.8 %, 1.21
    (PUB, "vLLM", "vllm-eager", "latency"): (7.0, 1.15, 0),  # 6.2 %, 1.09
}
DECISION_FLOORS = {'vllm': (91.6, 98.5), 'sglang': (60.4, 96.8), 'trtllm': (93.7, 99.2)}
FIXTURE = Path(__file__).parent / "data" / "aiconfigurator_fixture.csv"
CAT = load_catalog()


@pytest.fixture(scope="module")
def report():
    return validation_report(CAT)


def by_hand(rows: list[dict]) -> tuple[int, float, float, int]:
    """n, MAPE %, worst ratio, rows without a prediction: plain arithmetic on measured and predicted."""
    n, total, worst, missing = 0, 0.0, 1.0, 0
    for r in rows:
        if r["excluded"]:
            continue
        m, p = r["measured"], r["predicted"]
        if not p == p:  # NaN: the model calls it infeasible
            missing += 1
            continue
        n += 1
        total += abs(p - m) / m * 100.0
        worst = max(worst, p / m, m / p)
    return n, (total / n if n else math.nan), (worst if n else math.nan), missing


def rows_of(report, source, group, profile, quantity):
    return [r for r in report["rows"] if r["source"] == source and r["profile"] == profile
            and r["quantity"] == quantity and (group == "all" or r["group"] == group)]


def test_every_figure_recomputed_by_hand_and_within_its_bound(report):
    assert report["summary"], "no figures"
    for s in report["summary"]:
        key = (s["source"], s["group"], s["profile"], s["quantity"])
        n, mape, worst, missing = by_hand(rows_of(report, *key))
        assert (s["n"], s["no_prediction"]) == (n, missing), key
        assert s["mape_pct"] == pytest.approx(mape, rel=1e-9, nan_ok=True), key
        assert s["worst_ratio"] == pytest.approx(worst, rel=1e-9, nan_ok=True), key
        assert key in THRESHOLDS, f"figure without a regression bound: {key} (MAPE {mape:.1f} %, worst {worst:.2f})"
        max_mape, max_worst, max_missing = THRESHOLDS[key]
        assert mape <= max_mape, f"{key}: MAPE {mape:.1f} % > {max_mape} %"
        assert worst <= max_worst, f"{key}: worst ratio {worst:.2f} > {max_worst}"
        assert missing <= max_missing, f"{key}: {missing} configurations that ran are called infeasible"


def test_decisions_against_the_reference_by_hand(report):
    """Recount both decision metrics from the per-configuration records, and hold them above their floors."""
    configs = report["configs"]
    assert set(report["decisions"]) == set(DECISION_FLOORS)
    for backend, (min_best, min_memory) in DECISION_FLOORS.items():
        cs = [c for c in configs if c["backend"] == backend]
        same_memory = sum(1 for c in cs if c["reference_fits"] == c["predicted_fits"])
        groups: dict = {}
        for c in cs:
            g = groups.setdefault((c["model"], c["input_len"], c["output_len"], c["batch"]), {"ref": {}, "ours": {}})
            if c["reference_fits"]:
                ref = c["reference_tokens_per_s"] / c["usd_per_hour"]
                g["ref"][c["gpu"]] = max(g["ref"].get(c["gpu"], 0.0), ref)
            if c["predicted_fits"]:
                ours = c["predicted_tokens_per_s"] / c["usd_per_hour"]
                g["ours"][c["gpu"]] = max(g["ours"].get(c["gpu"], 0.0), ours)
        decided = [g for g in groups.values() if g["ref"]]
        same = sum(1 for g in decided if g["ours"] and max(g["ref"], key=g["ref"].get) == max(g["ours"], key=g["ours"].get))
        d = report["decisions"][backend]
        assert (d["memory_configs"], d["memory_agree"]) == (len(cs), same_memory)
        assert (d["best_gpu_groups"], d["best_gpu_agree"]) == (len(decided), same)
        assert 100 * same / len(decided) >= min_best, f"{backend}: best GPU agrees in {same} of {len(decided)}"
        assert 100 * same_memory / len(cs) >= min_memory, f"{backend}: memory agrees in {same_memory} of {len(cs)}"


def test_thresholds_name_existing_figures(report):
    shown = {(s["source"], s["group"], s["profile"], s["quantity"]) for s in report["summary"]}
    assert set(THRESHOLDS) <= shown, set(THRESHOLDS) - shown  # a stale bound guards nothing


def test_shared_files_split_into_fit_and_held_out(report):
    """Configurations numbered per file in the listed order; even ones fitted, odd ones held out (both phases
    of a DGX configuration on the same side)."""
    for source, n_configs in ((DGX, 76), (VLLM, 23)):
        rows = [r for r in report["rows"] if r["source"] == source]
        seen: dict[tuple, str] = {}
        for r in rows:
            key = (r["model"], r["tp"], r["pp"], r["batch"], r["input_len"], r["output_len"])
            want = "held-out" if seen.setdefault(key, len(seen)) % 2 else "fit"
            assert r["group"] == want, (source, key)
        assert len(seen) == n_configs
    aic = [r for r in report["rows"] if r["source"] == AIC and r["profile"] == "vllm"]
    assert aic and all((r["batch"] in (1, 4, 16, 64)) == (r["group"] == "vllm fit") for r in aic)


def test_published_rows_are_the_model_at_their_configuration(report):
    """Each published point's prediction is evaluate_layout at the recorded layout, recomputed here."""
    pub = [r for r in report["rows"] if r["source"] == PUB]
    assert len(pub) == len(published_points())
    takes_precision = "precision" in inspect.signature(evaluate_layout).parameters
    for r in pub:
        if r["excluded"]:
            continue
        extra = {"precision": r["precision"]} if takes_precision and r["precision"] not in ("", "fp16", "bf16") else {}
        res = evaluate_layout(CAT.model(r["model"]), CAT.gpu(r["gpu"]), CAT.engine(r["profile"]), r["tp"], r["pp"],
                              r["input_len"], r["output_len"], batch=r["batch"],
                              concurrency=r["concurrency"] if r["batch"] is None else None, **extra)
        if not res["feasible"]:
            assert r["predicted"] != r["predicted"]
            continue
        ttft = res.get("ttft_ms", res["prefill_ms"])  # the model's own TTFT/TPOT when it reports them
        tpot = res.get("tpot_ms", res["decode_step_ms"])
        want = {"tpot": tpot, "ttft": ttft, "decode_step": res["decode_step_ms"], "prefill": res["prefill_ms"],
                "latency": ttft + (r["output_len"] - 1) * tpot}.get(r["quantity"])
        if r["quantity"] == "throughput":
            want = res["output_tokens_per_s"] if r["figure"] == "output_tokens_per_s" else res["tokens_per_s"]
        assert r["predicted"] == pytest.approx(want, rel=1e-9), r


def test_published_points_have_provenance():
    points = published_points()
    assert 15 <= len(points) <= 40
    for i, p in enumerate(points, start=2):
        assert tuple(p) == PUBLISHED_COLUMNS
        for col in ("source_url", "citation", "published", "stack", "stack_version", "profile", "gpu", "model"):
            assert p[col].strip(), f"line {i}: {col} empty"
        assert p["source_url"].startswith("https://"), i
        assert p["quantity"] in PUBLISHED_QUANTITIES, i
        assert float(p["value"]) > 0 and int(p["tp"]) >= 1 and int(p["input_len"]) >= 1, i
        assert CAT.resolve_model(p["model"]) and CAT.resolve_gpu(p["gpu"]), i
        assert not (p["batch"].strip() and p["concurrency"].strip()), i
    assert len({p["stack"] for p in points}) >= 3


# ---------------------------------------------------------------- AIConfigurator: a small fixture, by hand
def test_aic_rows_from_the_reference_schema():
    rows, configs, notes = aic_rows(CAT, FIXTURE)
    assert len(configs) == 7  # 9 rows: one unknown model, one backend without a profile
    assert any("Unknown-9B" in n for n in notes) and any("lmdeploy" in n for n in notes)
    assert {c["model"] for c in configs} == {"llama-3.1-8b", "llama-3.1-70b"}  # own catalogue rows (context 131,072)
    assert {c["gpu"] for c in configs} == {"H100-SXM", "L40S", "A100-80GB-SXM"}
    assert set(AIC_SYSTEMS.values()) >= {c["gpu"] for c in configs}
    # the configuration that does not fit by the reference is not compared on timings
    assert not any(r["model"] == "llama-3-70b" and r["gpu"] == "L40S" for r in rows)
    assert len([r for r in rows if r["quantity"] == "decode_step"]) == 6
    r = next(r for r in rows if r["quantity"] == "tpot" and r["gpu"] == "H100-SXM" and r["tp"] == 2)
    res = evaluate_layout(CAT.model("llama-3-8b"), CAT.gpu("H100-SXM"), CAT.engine("vllm"), 2, 1, 2048, 512, batch=1)
    assert r["measured"] == 4.0
    assert r["predicted"] == pytest.approx(res.get("tpot_ms", res["decode_step_ms"]), rel=1e-12)
    assert r["ratio"] == pytest.approx(r["predicted"] / 4.0)


def test_aic_decision_metrics_by_hand():
    _, configs, _ = aic_rows(CAT, FIXTURE)
    d = decision_metrics(configs)
    price = {g: CAT.gpu(g).price_usd_per_hour for g in ("H100-SXM", "L40S", "A100-80GB-SXM")}
    fixture = [  # (gpu, tp, batch, reference tokens/s) of the fitting 8B rows
        ("H100-SXM", 1, 1, 795), ("H100-SXM", 2, 1, 1230), ("L40S", 1, 1, 225),
        ("H100-SXM", 1, 32, 13900), ("L40S", 1, 32, 4160)]
    agree = 0
    for batch in (1, 32):
        ref, pred = {}, {}
        for gpu, tp, b, tps in fixture:
            if b != batch:
                continue
            res = evaluate_layout(CAT.model("llama-3.1-8b"), CAT.gpu(gpu), CAT.engine("vllm"), tp, 1, 2048, 512, batch=b)
            ref[gpu] = max(ref.get(gpu, 0), tps / (tp * price[gpu]))
            if res["feasible"]:
                pred[gpu] = max(pred.get(gpu, 0), res["tokens_per_s"] / (tp * price[gpu]))
        agree += bool(pred) and max(ref, key=ref.get) == max(pred, key=pred.get)
    # 70B: only the A100 TP2 configuration fits by the reference; the model's choice among what it says fits
    ours = {}
    for gpu, tp in (("L40S", 1), ("A100-80GB-SXM", 2)):
        res = evaluate_layout(CAT.model("llama-3.1-70b"), CAT.gpu(gpu), CAT.engine("vllm"), tp, 1, 2048, 512, batch=1)
        if res["feasible"]:
            ours[gpu] = res["tokens_per_s"] / (tp * price[gpu])
    agree += bool(ours) and max(ours, key=ours.get) == "A100-80GB-SXM"
    assert (d["best_gpu_groups"], d["best_gpu_agree"]) == (3, agree)
    fits = {(c["model"], c["gpu"], c["tp"], c["batch"]): c["predicted_fits"] for c in configs}
    ref_fits = {k: not (k[0] == "llama-3.1-70b" and k[1] == "L40S") for k in fits}
    same = sum(fits[k] == ref_fits[k] for k in fits)
    assert (d["memory_configs"], d["memory_agree"]) == (7, same)
    assert d["memory_agree_pct"] == pytest.approx(100 * same / 7)
    assert d["wrongly_infeasible"] == sum(ref_fits[k] and not fits[k] for k in fits)


def test_validate_cli_json_has_the_sources(tmp_path):
    out = subprocess.run([sys.executable, "-m", "planner", "validate", "--json"], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent, timeout=300)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert {"summary", "rows", "decisions", "held_out", "notes"} <= set(rep["sources"])
    assert {"rows", "summary"} <= set(rep)  # the calibration report is still there
    text = subprocess.run([sys.executable, "-m", "planner", "validate"], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, timeout=300).stdout
    assert "Validation across sources" in text and "held-out" in text and "worst ratio" in text


def test_docs_section_is_generated_from_validate():
    out = subprocess.run([sys.executable, "benchmarks/validation_report.py", "--check"], capture_output=True,
                         text=True, cwd=Path(__file__).parent.parent, timeout=300)
    assert out.returncode == 0, out.stderr


def test_a_bad_published_point_is_named_by_file_and_row(tmp_path):
    from planner.errors import InputError
    from planner.validation import PUBLISHED_FILE, published_rows

    lines = PUBLISHED_FILE.read_text(encoding="utf-8").splitlines()
    bad = lines[1].replace("llama-2-7b", "llama-9-7b", 1)
    f = tmp_path / "measurements.csv"
    f.write_text("\n".join([lines[0], lines[1], bad]) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        published_rows(CAT, f)
    assert len(exc.value.problems) == 1
    assert "row 3" in str(exc.value.problems[0]) and "llama-9-7b" in str(exc.value.problems[0])
