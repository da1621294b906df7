"""`python -m planner calibrate`: recovery of known parameters, held-out error on measured data,
clear messages for files that cannot identify anything or cannot be read, the --engines flag and a
scenario folder's own engines.csv."""
from __future__ import annotations

import csv
import itertools
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from planner.calibrate import calibrate, read_runs
from planner.calibrate_fit import QUANTITIES, Run, candidate_params, fit, predict, predicted_figures, with_values
from planner.catalog import load_catalog, read_engine_file
from planner.cli import main
from planner.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
L40S = ROOT / "data" / "measurements" / "vllm_l40s.csv"
HEADER = ["model", "gpu", "tp", "pp", "nodes", "input_len", "output_len", "batch", "concurrency", "precision"]


def _truth(cat, base, values):
    probe = [Run("p", "llama-3.1-8b", "H100-SXM", 1, 1, 1, 200, 1, 1, 1, None, "", ())]
    params = [p for p in candidate_params(base, probe, cat) if p.name in values]
    return with_values(base, params, [values[p.name] for p in params], cat)


def synthetic_runs(cat, truth, n=20, seed=1):
    """Static batches on H100-SXM (8B and 70B, TP 1-8, batch 1-64, short and long prompts), measured
    prefill and decode step as the model with the `truth` profile predicts them."""
    runs = []
    for m, tp, b, il in itertools.product(["llama-3.1-8b", "llama-3-70b"], [1, 2, 4, 8], [1, 16, 64], [128, 2048]):
        if m == "llama-3-70b" and tp < 2:
            continue
        r = Run(f"syn {m} tp{tp} b{b} il{il}", m, "H100-SXM", tp, 1, 1, 200.0, il, 256, b, None, "", ())
        res = predict(truth, r, cat)
        runs.append(replace(r, measured=(("prefill_ms", res["prefill_ms"]), ("decode_step_ms", res["decode_step_ms"]))))
    return random.Random(seed).sample(runs, n)


CHANGED = {"H100-SXM:hbm": 0.72, "H100-SXM:compute": 0.60, "nvlink_efficiency": 0.45, "scheduler_ms": 1.2}


def test_synthetic_stack_recovered_within_5_percent():
    cat = load_catalog()
    base = cat.engine("vllm")
    truth = _truth(cat, base, CHANGED)
    runs = synthetic_runs(cat, truth)
    result = fit(base, runs, cat)
    for name, value in CHANGED.items():
        assert name in result.selection.fitted, (name, result.selection)
        assert result.after[name] == pytest.approx(value, rel=0.05), name
    # not varied by these runs (PCIe, network, several nodes): kept at the base value, each with a reason
    kept = dict(result.selection.kept)
    for name in ("pcie_efficiency", "network_efficiency", "network_latency_us"):
        assert name in kept and "not identifiable" in kept[name]
        assert getattr(result.profile, name) == getattr(base, name)


def test_synthetic_report_errors_drop_to_zero_and_loo_is_small():
    cat = load_catalog()
    base = cat.engine("vllm")
    runs = synthetic_runs(cat, _truth(cat, base, CHANGED))
    out = calibrate(runs, base, "syn", cat, "synthetic")
    rep = out["report"]
    assert rep["mape_before_pct"] > 5  # the changed parameters move the predictions
    assert rep["mape_after_pct"] < 0.1  # 4 significant digits in the written profile
    assert rep["mape_leave_one_out_pct"] < 0.5
    assert len(rep["rows"]) == 40 and {r["quantity"] for r in rep["rows"]} == {"prefill_ms", "decode_step_ms"}


def test_multi_node_runs_calibrate_the_network_and_predict_other_multi_node_runs():
    """The issue's check on multi-node runs, with runs the model generates from a stack whose network
    is slower than the base's (efficiency 0.35, 600 us per hand-off): fitted on half of 32 pipelines over
    2-4 nodes (TP 4/8, PP 2/4, 100/400 Gbps), the network parameters come back within 5% and the other
    half is predicted within 1% (the base profile is several % off on them)."""
    cat = load_catalog()
    base = cat.engine("vllm")
    changed = {"network_efficiency": 0.35, "network_latency_us": 600.0}
    truth = _truth(cat, base, changed)
    runs = []
    for (tp, pp), gbps, conc, (il, ol) in itertools.product([(8, 2), (4, 4), (8, 4), (4, 2)], [100, 400], [16, 128],
                                                           [(512, 128), (2048, 512)]):
        r = Run(f"mn tp{tp} pp{pp}", "llama-3-70b", "H100-SXM", tp, pp, max(1, tp * pp // 8), gbps, il, ol, None,
                conc, "", ())
        res = predict(truth, r, cat)
        runs.append(replace(r, measured=tuple((q, float(res[QUANTITIES[q]]))
                                              for q in ("total_tokens_per_s", "ttft_ms", "tpot_ms"))))
    random.Random(3).shuffle(runs)
    train, held = runs[::2], runs[1::2]
    out = calibrate(train, base, "mn", cat, "synthetic")
    for name, value in changed.items():
        assert getattr(out["profile"], name) == pytest.approx(value, rel=0.05), name

    def mape(profile):
        errs = [abs(p / m - 1) for r, preds in zip(held, predicted_figures(profile, held, cat))
                for (_, m), p in zip(r.measured, preds)]
        return 100 * sum(errs) / len(errs)
    assert mape(out["profile"]) < 1.0 < 5.0 < mape(base)


def _l40s_csv(tmp_path: Path, keep=lambda i: True) -> Path:
    rows = list(csv.DictReader(L40S.open()))
    path = tmp_path / "l40s.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "gpu", "tp", "pp", "nodes", "input_len", "output_len", "total_tokens_per_s"])
        for i, r in enumerate(rows):
            if keep(i):
                w.writerow([r["model"], r["gpu"], r["tp"], r["pp"], r["num_nodes"], r["input_len"], r["output_len"],
                            r["total_tokens_per_s"]])
    return path


def test_measured_l40s_held_out_error_drops(tmp_path):
    """vLLM 0.10 on L40S (data/measurements/vllm_l40s.csv) from the `vllm` profile (fitted to another
    stack): fitted on the even rows, the odd rows' error falls; the leave-one-out error is below the
    base profile's."""
    cat = load_catalog()
    base = cat.engine("vllm")
    train = read_runs(_l40s_csv(tmp_path, lambda i: i % 2 == 0), cat, "vllm")
    test_dir = tmp_path / "t"
    test_dir.mkdir()
    held = read_runs(_l40s_csv(test_dir, lambda i: i % 2 == 1), cat, "vllm")
    out = calibrate(train, base, "l40s", cat, "test")
    from planner.calibrate_fit import predicted_figures

    def mape(profile):
        errs = [abs(p[0] / r.measured[0][1] - 1) for r, p in zip(held, predicted_figures(profile, held, cat))]
        return sum(errs) / len(errs)
    assert mape(out["profile"]) < mape(base)
    rep = out["report"]
    assert rep["mape_leave_one_out_pct"] < rep["mape_before_pct"]


def test_the_projects_own_measurement_file_is_read_as_it_is():
    """data/measurements/vllm_l40s.csv (source, num_nodes, gpus_per_node, runs columns) is read directly:
    one run per data row, num_nodes as nodes, its figures as written in the file."""
    rows = list(csv.DictReader(L40S.open()))
    runs = read_runs(L40S, load_catalog(), "vllm-eager")
    assert len(runs) == len(rows)
    for row, run in zip(rows, runs):
        assert (run.tp, run.pp, run.nodes) == (int(row["tp"]), int(row["pp"]), int(row["num_nodes"]))
        assert run.measured == (("total_tokens_per_s", float(row["total_tokens_per_s"])),)


def test_num_nodes_and_nodes_together_and_a_layout_too_big_for_its_nodes(tmp_path):
    both = tmp_path / "both.csv"
    both.write_text("model,gpu,tp,nodes,num_nodes,input_len,output_len,total_tokens_per_s\n"
                    "llama-3-70b,L40S,4,1,1,2048,512,527\n")
    with pytest.raises(InputError, match="give either 'nodes' or 'num_nodes'"):
        read_runs(both, load_catalog(), "vllm")
    big = tmp_path / "big.csv"
    big.write_text("model,gpu,tp,pp,num_nodes,gpus_per_node,input_len,output_len,total_tokens_per_s\n"
                   "llama-3-70b,L40S,4,2,1,4,2048,512,527\n")
    with pytest.raises(InputError) as exc:
        read_runs(big, load_catalog(), "vllm")
    assert f"{big}, row 2, column 'gpus_per_node': tp x pp = 8 GPUs do not fit on 1 node(s) of 4 GPUs" in str(exc.value)


def test_one_run_identifies_nothing(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("model,gpu,tp,input_len,output_len,total_tokens_per_s\nllama-3-70b,L40S,4,2048,512,527\n")
    cat = load_catalog()
    with pytest.raises(InputError) as exc:
        calibrate(read_runs(path, cat, "vllm"), cat.engine("vllm"), "x", cat, "t")
    text = str(exc.value)
    assert "identify no parameter" in text and "too few measurements" in text


def test_bad_rows_name_file_row_and_column(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("model,gpu,tp,input_len,output_len,total_tokens_per_s\n"
                    "llama-3-70b,L40S,4,2048,512,527\n"
                    "llama-3-70b,L40Z,4,2048,512,500\n"
                    "llama-3-70b,L40S,four,2048,512,500\n"
                    "llama-3-70b,L40S,4,2048,512,-3\n")
    code = main(["calibrate", "--measurements", str(path), "--name", "x", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{path}, row 3, column 'gpu': unknown GPU 'L40Z'" in err
    assert f"{path}, row 4, column 'tp'" in err
    assert f"{path}, row 5, column 'total_tokens_per_s': must be positive" in err
    assert "Traceback" not in err


def test_csv_without_measured_column(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("model,gpu,tp,input_len,output_len\nllama-3-70b,L40S,4,2048,512\n")
    with pytest.raises(InputError, match="no measured figure"):
        read_runs(path, load_catalog(), "vllm")


def test_cli_writes_profile_that_reproduces_the_fit(tmp_path, capsys):
    cat = load_catalog()
    base = cat.engine("vllm")
    runs = synthetic_runs(cat, _truth(cat, base, CHANGED))
    path = tmp_path / "runs.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER + ["prefill_ms", "decode_step_ms"])
        for r in runs:
            w.writerow([r.model, r.gpu, r.tp, r.pp, r.nodes, r.input_len, r.output_len, r.batch, "", "",
                        r.measured[0][1], r.measured[1][1]])
    out = tmp_path / "cal"
    assert main(["calibrate", "--measurements", str(path), "--base", "vllm", "--name", "mine", "--out", str(out),
                 "--date", "2026-11-29", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert {p["parameter"] for p in rep["fitted"]} >= set(CHANGED)
    assert (out / "calibration.json").is_file() and (out / "engine_gpus.csv").is_file()
    prof = read_engine_file(out / "engines.csv")["mine"]
    assert prof.source == "calibrated by python -m planner calibrate on runs.csv, 2026-11-29"
    row = rep["rows"][0]
    assert main(["evaluate", "--engines", str(out / "engines.csv"), "--engine", "mine", "--model", row["model"],
                 "--gpu", row["gpu"], "--tp", str(row["tp"]), "--batch", str(row["batch"]), "--input-len",
                 str(row["input_len"]), "--output-len", str(row["output_len"]), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res[row["quantity"]] == pytest.approx(row["predicted_after"], rel=1e-9)


def test_vllm_result_json(tmp_path, capsys):
    """A vLLM `--save-result` file: lengths from total tokens / completed, concurrency from
    max_concurrency; figures total_token_throughput, output_throughput, mean_ttft_ms, mean_tpot_ms."""
    cat = load_catalog()
    results = []
    for conc, _tp in ((8, 2), (32, 2), (64, 4), (16, 4)):
        results.append({"backend": "vllm", "completed": 100, "num_prompts": 100, "max_concurrency": conc,
                        "total_input_tokens": 100 * 1000, "total_output_tokens": 100 * 200,
                        "total_token_throughput": 300.0 * conc ** 0.7, "output_throughput": 50.0 * conc ** 0.7,
                        "mean_ttft_ms": 100.0 + conc, "mean_tpot_ms": 20 + conc / 4})
    path = tmp_path / "result.json"
    path.write_text(json.dumps(results[0]))
    layout_runs = read_runs(path, cat, "vllm", __import__("planner.calibrate", fromlist=["Layout"]).Layout(
        "llama-3.1-8b", "H100-SXM", tp=2))
    (run,) = layout_runs
    assert (run.input_len, run.output_len, run.concurrency, run.batch) == (1000, 200, 8, None)
    assert dict(run.measured) == {"total_tokens_per_s": results[0]["total_token_throughput"],
                                  "output_tokens_per_s": results[0]["output_throughput"],
                                  "ttft_ms": 108.0, "tpot_ms": 22.0}
    with pytest.raises(InputError, match="give its layout"):
        read_runs(path, cat, "vllm")
    lines = tmp_path / "results.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in results) + "\n")
    assert main(["calibrate", "--measurements", str(lines), "--name", "v", "--out", str(tmp_path / "o"),
                 "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--tp", "2", "--no-loo"]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"completed": 10, "total_input_tokens": "many"}))
    code = main(["calibrate", "--measurements", str(bad), "--name", "v", "--out", str(tmp_path / "o2"),
                 "--model", "llama-3.1-8b", "--gpu", "H100-SXM"])
    err = capsys.readouterr().err
    assert code == 2 and "'total_input_tokens' must be a positive number" in err


def test_scenario_folder_engines_csv(tmp_path):
    """A scenario folder's engines.csv is read: config.csv may name its profile."""
    from planner.scenario_io import load_config_dir

    folder = tmp_path / "sc"
    folder.mkdir()
    for f in (ROOT / "config" / "small").iterdir():
        (folder / f.name).write_text(f.read_text())
    cat = load_catalog()
    prof = replace(cat.engine("vllm"), name="mine", scheduler_ms=7.5, source="test")
    from planner.calibrate import engines_csv

    (folder / "engines.csv").write_text(engines_csv(prof))
    text = (folder / "config.csv").read_text().rstrip("\n") + "\nengine,mine\n"
    (folder / "config.csv").write_text(text)
    sc = load_config_dir(folder)
    assert sc.engine.name == "mine" and sc.engine.scheduler_ms == 7.5
    assert any("engines.csv" in w for w in sc.warnings)


def test_unknown_engines_file_is_exit_2(capsys):
    code = main(["evaluate", "--engines", "/nonexistent/engines.csv", "--model", "llama-3-70b", "--gpu", "L40S",
                 "--tp", "4", "--input-len", "10", "--output-len", "10"])
    assert code == 2 and "/nonexistent/engines.csv: no such file" in capsys.readouterr().err


def test_unpredictable_layout_is_named(tmp_path, capsys):
    path = tmp_path / "odd.csv"
    # TP 3 does not divide Llama-3-70B's 64 heads
    path.write_text("model,gpu,tp,input_len,output_len,total_tokens_per_s\nllama-3-70b,H100-SXM,3,2048,512,527\n"
                    "llama-3-70b,H100-SXM,4,2048,512,900\n")
    assert main(["calibrate", "--measurements", str(path), "--name", "x", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{path}, row 2: the model cannot predict this layout: TP 3 does not divide the 64 attention heads" in err


def test_twenty_runs_under_ten_seconds():
    """Issue 15's target (fit and leave-one-out refits), on a machine shared with other jobs."""
    import time

    cat = load_catalog()
    base = cat.engine("vllm")
    runs = synthetic_runs(cat, _truth(cat, base, CHANGED))
    t = time.perf_counter()
    calibrate(runs, base, "x", cat, "t")
    assert time.perf_counter() - t < 10.0


def test_validate_with_engines_reports_the_calibration(tmp_path, capsys):
    out = tmp_path / "cal"
    path = _l40s_csv(tmp_path)
    assert main(["calibrate", "--measurements", str(path), "--name", "l40s-mine", "--out", str(out), "--no-loo"]) == 0
    capsys.readouterr()
    assert main(["validate", "--engines", str(out / "engines.csv"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    cal = doc["added_profiles"]["calibration"]
    rep = json.loads((out / "calibration.json").read_text())
    assert cal["mape_after_pct"] == rep["mape_after_pct"] and cal["mape_before_pct"] == rep["mape_before_pct"]
    assert "l40s-mine" in doc["sources"]["profiles"]
