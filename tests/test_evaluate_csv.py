"""`python -m planner evaluate --from-csv FILE`: one object per row, in order, equal to the single-layout
`evaluate --json` for the same arguments; bad cells named by file, row and column (exit 2); a layout that
does not fit is an infeasible object, not a failure of the file."""
import json

import pytest

from planner.cli import main

HEADER = "model,gpu,tp,pp,nodes,inter_node_gbps,input_len,output_len,batch,concurrency,engine,precision\n"
ROWS = [  # (CSV row, the single-layout command line for the same arguments)
    ("llama-3-70b,L40S,4,1,,,2048,512,,,,",
     ["--model", "llama-3-70b", "--gpu", "L40S", "--tp", "4", "--input-len", "2048", "--output-len", "512"]),
    ("llama-3-8b,H100,1,1,1,,2048,512,8,,splitwise,fp8",
     ["--model", "llama-3-8b", "--gpu", "H100", "--tp", "1", "--input-len", "2048", "--output-len", "512",
      "--batch", "8", "--engine", "splitwise", "--precision", "fp8"]),
    ("llama-3-70b,T4,1,1,,,512,128,,,,",  # does not fit: an infeasible object
     ["--model", "llama-3-70b", "--gpu", "T4", "--tp", "1", "--input-len", "512", "--output-len", "128"]),
    ("llama-3-70b,L40S,4,2,2,100,2048,512,,32,vllm,",  # 100 Gbps between the two nodes
     ["--model", "llama-3-70b", "--gpu", "L40S", "--tp", "4", "--pp", "2", "--nodes", "2", "--inter-node-gbps",
      "100", "--input-len", "2048", "--output-len", "512", "--concurrency", "32", "--engine", "vllm"]),
    ("llama-3-70b,A100,3,1,,,512,128,1,,,",  # 64 heads do not split 3 ways: infeasible with a reason
     ["--model", "llama-3-70b", "--gpu", "A100", "--tp", "3", "--input-len", "512", "--output-len", "128",
      "--batch", "1"]),
]


def canon(obj: dict) -> str:
    """NaN-safe comparison form (an infeasible layout's times are NaN)."""
    return json.dumps(obj, sort_keys=True, default=str)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_each_row_equals_the_single_layout_json(tmp_path, capsys):
    f = tmp_path / "layouts.csv"
    f.write_text(HEADER + "\n".join(r for r, _ in ROWS) + "\n")
    code, out, err = run_cli(capsys, "evaluate", "--from-csv", str(f), "--json")
    assert code == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [g["row"] for g in got] == list(range(2, 2 + len(ROWS)))  # file order, header is line 1
    for g, (_, argv) in zip(got, ROWS):
        code, single, err = run_cli(capsys, "evaluate", *argv, "--json")
        assert code == 0, err
        want = json.loads(single)
        assert list(g) == ["row", *want]  # the single-layout keys, plus row first
        g.pop("row")
        assert canon(g) == canon(want)
    assert [g["feasible"] for g in got] == [True, True, False, True, False]
    assert "T4" in got[2]["reason"] and "heads" in got[4]["reason"]
    assert got[3]["links"][0]["gb_per_s"] == pytest.approx(100 / 8)  # gigabits per second in, GB/s in the model
    assert got[1]["precision"] == "fp8"


def test_order_is_kept_and_text_output_is_one_line_per_row(tmp_path, capsys):
    rows = [ROWS[3][0], ROWS[2][0], ROWS[0][0]]
    f = tmp_path / "l.csv"
    f.write_text(HEADER + "\n".join(rows) + "\n")
    code, out, _ = run_cli(capsys, "evaluate", "--from-csv", str(f), "--json")
    assert code == 0
    got = [json.loads(line) for line in out.splitlines()]
    assert [(g.get("gpus"), g["feasible"]) for g in got] == [(8, True), (None, False), (4, True)]
    code, text, _ = run_cli(capsys, "evaluate", "--from-csv", str(f))
    lines = text.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].startswith("row 2: ") and "TP4 PP2" in lines[0]
    assert lines[1].startswith("row 3: infeasible:")


def test_optional_columns_may_be_absent(tmp_path, capsys):
    f = tmp_path / "min.csv"
    f.write_text("model,gpu,tp,input_len,output_len\nllama-3-70b,L40S,4,2048,512\n")
    code, out, _ = run_cli(capsys, "evaluate", "--from-csv", str(f), "--json")
    assert code == 0
    code, single, _ = run_cli(capsys, "evaluate", *ROWS[0][1], "--json")
    g = json.loads(out)
    g.pop("row")
    assert canon(g) == canon(json.loads(single))


@pytest.mark.parametrize("content, expect", [
    (HEADER + "llama-9,L40S,4,1,,,2048,512,,,,\n", ["row 2, column 'model': unknown model 'llama-9'"]),
    (HEADER + "llama-3-70b,L40S,x,1,,,2048,512,,,,\n", ["row 2, column 'tp': 'x' is not a number"]),
    (HEADER + "llama-3-70b,L40S,4,1,,,2048,512,4,8,,\n", ["row 2, column 'concurrency': give either batch"]),
    (HEADER + "llama-3-70b,L40S,4,1,,,2048,512,,,vlm,\n", ["row 2, column 'engine': unknown engine profile 'vlm'"]),
    (HEADER + "llama-3-70b,L40S,4,1,,,2048,512,,,,fp7\n", ["row 2, column 'precision': unknown precision 'fp7'"]),
    ("model,gpu,tp,input_len,output_len,kv_precision\nllama-3-70b,L40S,4,2048,512,int2\n",
     ["row 2, column 'kv_precision': unknown KV precision 'int2'"]),
    (HEADER + "llama-3-70b,L40S,4,1,,,0,512,,,,\n", ["row 2, column 'input_len': must be positive"]),
    (HEADER + "llama-3-70b,L40S,4,1,,,2048,512,,,,\nllama-3-70b,Z99,4,1,,,2048,512,,,,\n"
              "llama-3-70b,L40S,4,1.5,,,2048,512,,,,\n",
     ["row 3, column 'gpu': unknown GPU 'Z99'", "row 4, column 'pp': must be a whole number"]),
    ("model,gpu,tp,input_len\nllama-3-70b,L40S,4,2048\n", ["row 1: missing column 'output_len'"]),
    ("model,gpu,tp,input_len,output_len,batchsize\nllama-3-70b,L40S,4,2048,512,4\n",
     ["row 1, column 'batchsize': unknown column (did you mean 'batch'?"]),
])
def test_bad_rows_exit_2_naming_file_row_and_column(tmp_path, capsys, content, expect):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    code, out, err = run_cli(capsys, "evaluate", "--from-csv", str(f), "--json")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == len(expect)
    for line, want in zip(lines, expect):
        assert line.startswith(f"error: {f}, ") and want in line, line


def test_from_csv_refuses_layout_flags_and_single_needs_them(tmp_path, capsys):
    f = tmp_path / "l.csv"
    f.write_text(HEADER + ROWS[0][0] + "\n")
    code, _, err = run_cli(capsys, "evaluate", "--from-csv", str(f), "--tp", "2")
    assert code == 2 and "--from-csv" in err and "--tp" in err
    code, _, err = run_cli(capsys, "evaluate", "--gpu", "L40S")
    assert code == 2 and len(err.strip().splitlines()) == 4  # --model, --tp, --input-len, --output-len
    code, _, err = run_cli(capsys, "evaluate", "--from-csv", str(tmp_path / "none.csv"))
    assert code == 2 and "none.csv" in err
