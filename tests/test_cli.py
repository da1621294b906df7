"""CLI round trips and bad input: exit status, files written, one clear line per problem."""
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from planner.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run([sys.executable, "-m", "planner", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("solve", "candidates", "evaluate", "validate"):
        assert cmd in out.stdout


def test_solve_medium_exact_beats_enumeration(tmp_path):
    exact = run("solve", "--config-dir", "config/medium", "--method", "exact", "--out", str(tmp_path / "e"), "--json")
    assert exact.returncode == 0, exact.stderr
    s = json.loads(exact.stdout)
    for key in ("method", "status", "proven_optimal", "tokens_per_s", "cost_usd_per_hour", "usd_per_million_tokens",
                "num_stages", "num_gpus", "solve_seconds", "stages"):
        assert key in s
    assert s["proven_optimal"] is True and s["status"] == "optimal"
    enum = run("solve", "--config-dir", "config/medium", "--method", "enumeration", "--out", str(tmp_path / "n"),
               "--json")
    assert enum.returncode == 0, enum.stderr
    n = json.loads(enum.stdout)
    assert n["proven_optimal"] is False
    assert s["usd_per_million_tokens"] <= n["usd_per_million_tokens"] * (1 + 1e-9)
    assert (tmp_path / "n" / "curve.csv").exists()
    # plan.csv agrees with the summary
    rows = list(csv.DictReader(open(tmp_path / "e" / "plan.csv")))
    assert len(rows) == s["num_stages"]
    assert sum(int(r["num_gpus"]) for r in rows) == s["num_gpus"]
    assert [int(r["first_layer"]) for r in rows] == [st["first_layer"] for st in s["stages"]]
    assert min(float(r["tokens_per_s"]) for r in rows) == pytest.approx(s["tokens_per_s"], rel=1e-6)
    assert s["usd_per_million_tokens"] == pytest.approx(s["cost_usd_per_hour"] / (3600 * s["tokens_per_s"]) * 1e6)


def test_plan_throughput_is_min_of_its_candidate_rows(tmp_path):
    assert main(["candidates", "--config-dir", "config/small", "--out", str(tmp_path)]) == 0
    assert main(["solve", "--config-dir", "config/small", "--out", str(tmp_path)]) == 0
    table: dict = {}
    for r in csv.DictReader(open(tmp_path / "candidates.csv")):
        key = (int(r["first_layer"]), int(r["last_layer"]), r["gpu_type"], int(r["tp"]), int(r["microbatch"]))
        table.setdefault(key, []).append(r)
    summary = json.loads((tmp_path / "summary.json").read_text())
    limits = json.loads((tmp_path / "limits.json").read_text())
    assert limits["num_layers"] == 12 and limits["gpu_counts"] == {"A100": 4, "V100": 4, "H100": 2}
    rates = []
    k = summary["num_stages"]
    for st in summary["stages"]:
        rows = table[(st["first_layer"], st["last_layer"], st["gpu_type"], st["tp"], summary["microbatch"])]
        # the row of the plan's level: its KV cache fits at the plan's stage count
        row = next(r for r in rows if r["feasible"] == "True" and int(r["max_stages"]) >= k)
        rates.append(float(row["tokens_per_s"]))
    assert min(rates) == pytest.approx(summary["tokens_per_s"], rel=1e-6)


def test_weighted_and_sizes_options(tmp_path):
    assert main(["solve", "--config-dir", "config/medium", "--method", "weighted", "--cost-weight", "0.2",
                 "--sizes", "5,10,20,40", "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["method"] == "weighted" and s["extra"]["weight"] == 0.2
    assert all((st["last_layer"] - st["first_layer"] + 1) in (5, 10, 20, 40) for st in s["stages"])


def _copy(tmp_path, name="tiny"):
    dst = tmp_path / name
    shutil.copytree(ROOT / "config" / name, dst)
    return dst


@pytest.mark.parametrize("file,content,expect", [
    ("gpu_pool.csv", "gpu_type,count,memory_gb\nA100,two,80\nV100,2,32\n", "gpu_pool.csv, row 2, column 'count'"),
    ("gpu_pool.csv", "gpu_type,count,memory_gb\nA100,2,-80\nV100,2,32\n", "gpu_pool.csv, row 2, column 'memory_gb'"),
    ("gpu_pool.csv", "gpu_type,count,memory_gb\nA1OO,2,80\nV100,2,32\n", "unknown GPU 'A1OO'"),
    ("gpu_pool.csv", "gpu_type,memory_gb\nA100,80\n", "missing column 'count'"),
    ("gpu_pool.csv", "", "file is empty"),
    ("config.csv", "parameter,value\nnum_decoder_layers,abc\n", "config.csv, row 2, column 'value'"),
])
def test_bad_input_exit_2_with_location(tmp_path, file, content, expect):
    d = _copy(tmp_path)
    (d / file).write_text(content)
    out = run("solve", "--config-dir", str(d), "--out", str(tmp_path / "o"))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert expect in out.stderr


def test_bad_network_matrix_is_named(tmp_path):
    d = _copy(tmp_path)
    (d / "network_bandwidth.csv").write_text(",gpu_0,gpu_1\ngpu_0,1,1\ngpu_1,1,1\n")
    out = run("solve", "--config-dir", str(d), "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and "network_bandwidth.csv" in out.stderr and "pool has 4 GPUs" in out.stderr


def test_missing_folder_and_bad_flag_values(tmp_path):
    assert main(["solve", "--config-dir", str(tmp_path / "nope")]) == 2
    assert main(["solve", "--config-dir", "config/tiny", "--cost-weight", "3", "--out", str(tmp_path)]) == 2
    assert main(["solve", "--config-dir", "config/tiny", "--budget-factors", "1,0.5", "--out", str(tmp_path)]) == 2


def test_infeasible_budget_exit_3(tmp_path, capsys):
    assert main(["solve", "--config-dir", "config/medium", "--budget", "0.5", "--out", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "budget cap" in err and "Traceback" not in err


def test_seed_configs_load_unchanged_and_report_ignored_keys():
    from planner import load_config_dir

    sc = load_config_dir(ROOT / "config" / "hal")
    text = " ".join(sc.warnings)
    for key in ("min_memory_utilization", "network_bandwidth_percentile_threshold", "optimization_priority"):
        assert f"'{key}' is ignored" in text
    assert "no price" in text and "$3.06" in text  # hal has no price column: filled from the catalogue
    seed = ROOT.parent / "shared" / "seed-configs"
    if not seed.exists():
        pytest.skip("shared/seed-configs is not beside this checkout")
    for name in ("tiny", "small", "medium", "large", "hal"):
        for f in ("config.csv", "gpu_pool.csv", "network_bandwidth.csv"):
            assert (ROOT / "config" / name / f).read_bytes() == (seed / name / f).read_bytes()


def test_min_cost_under_a_throughput_floor(tmp_path):
    """With a floor above the min-$/token plan's throughput, exact returns a faster plan, and no plan in
    the frontier that meets the floor is cheaper."""
    from planner import Planner, load_config_dir

    base = Planner(load_config_dir(ROOT / "config" / "medium")).exact(with_frontier=True)
    fastest = max(p.tokens_per_s for p in base.frontier)
    assert fastest > base.plan.tokens_per_s
    floor = (base.plan.tokens_per_s + fastest) / 2
    assert main(["solve", "--config-dir", "config/medium", "--min-throughput", str(floor), "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["tokens_per_s"] >= floor
    meeting = [p for p in base.frontier if p.tokens_per_s >= floor]
    assert meeting and min(p.cost_usd_per_hour / p.tokens_per_s for p in meeting) == pytest.approx(
        s["cost_usd_per_hour"] / s["tokens_per_s"], rel=1e-9)


def test_latency_slo_infeasible_names_the_slo_and_a_way_out(capsys):
    assert main(["solve", "--config-dir", "config/realistic", "--max-tpot-ms", "5", "--out", "/tmp/slo-out"]) == 3
    err = capsys.readouterr()
    text = err.out + err.err
    assert "TPOT SLO 5 ms" in text and "without the TPOT limit has TPOT" in text


def test_latency_slo_plan_meets_it(tmp_path):
    assert main(["solve", "--config-dir", "config/realistic", "--max-tpot-ms", "80", "--max-ttft-ms", "3000",
                 "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["tpot_ms"] <= 80 and s["ttft_ms"] <= 3000
    rows = list(csv.DictReader(open(tmp_path / "plan.csv")))
    assert len(rows) == s["num_stages"]


def test_evaluate_precision_and_gigabit_network(capsys):
    """fp8 on an A100 runs weight-only (a note says so); --inter-node-gbps is gigabits per second."""
    assert main(["evaluate", "--model", "llama-3-70b", "--gpu", "A100", "--tp", "2", "--input-len", "2048",
                 "--output-len", "512", "--precision", "fp8", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["feasible"] and r["precision"] == "fp8" and "no FP8 tensor cores" in r["note"]
    assert main(["evaluate", "--model", "llama-3-70b", "--gpu", "L40S", "--tp", "4", "--pp", "2", "--nodes", "2",
                 "--inter-node-gbps", "100", "--input-len", "2048", "--output-len", "512", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["links"][0]["kind"] == "network" and r["links"][0]["gb_per_s"] == pytest.approx(12.5)  # 100 Gbit/s
    assert main(["evaluate", "--model", "llama-3-70b", "--gpu", "H100", "--tp", "2", "--input-len", "2048",
                 "--output-len", "512", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["feasible"]  # 70B at TP2 on 80 GB GPUs runs in practice


def test_precision_in_config_and_on_the_command_line(tmp_path):
    folder = tmp_path / "realistic"
    shutil.copytree(ROOT / "config" / "realistic", folder)
    with open(folder / "config.csv", "a") as f:
        f.write("precision,fp8\n")
    fp8 = run("solve", "--config-dir", str(folder), "--out", str(tmp_path / "a"), "--json")
    assert fp8.returncode == 0, fp8.stderr
    bf16 = run("solve", "--config-dir", "config/realistic", "--out", str(tmp_path / "b"), "--json")
    flag = run("solve", "--config-dir", "config/realistic", "--precision", "fp8", "--out", str(tmp_path / "c"), "--json")
    a, b, c = (json.loads(x.stdout) for x in (fp8, bf16, flag))
    assert a["usd_per_million_tokens"] == pytest.approx(c["usd_per_million_tokens"])  # the file and the flag agree
    assert a["usd_per_million_tokens"] < b["usd_per_million_tokens"]  # half the bytes, FP8 tensor cores on H100
    with open(folder / "config.csv", "a") as f:
        f.write("kv_precision,fp4\n")
    bad = run("solve", "--config-dir", str(folder), "--out", str(tmp_path / "d"))
    assert bad.returncode == 2 and "kv_precision" in bad.stderr
