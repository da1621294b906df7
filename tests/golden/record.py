"""Record the planner's answers on the bundled scenarios, so a restructuring can prove it changed nothing.

Each case is one CLI command run in-process with `--json`; its whole JSON answer is kept except wall-clock
timings (they differ on every run). `python tests/golden/record.py` rewrites tests/data/golden_cli.json;
do that only on a commit whose answers are the reference (the first recording was made at main 7ff13aa,
before the restructure of issue 13). tests/test_golden.py recomputes every case and compares: strings,
integers, booleans, list lengths and key sets exactly, floats to 1e-9 relative.

Left out: config/xl (37,223 stage options; the CLI refuses it without --allow-large and a solve takes
minutes), and the quantizations other than each scenario's default (the test must stay under a minute).
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden_cli.json"

# every bundled scenario the CLI solves within seconds (xl is refused without --allow-large, see above)
SCENARIOS = ("tiny", "small", "medium", "hal", "realistic", "llama70b-chat", "large")
QUICK = ("tiny", "small")


def cases() -> dict[str, list[str]]:
    """Name -> argv (the config paths relative to the repository root)."""
    out: dict[str, list[str]] = {}
    for s in SCENARIOS:
        out[f"solve exact {s}"] = ["solve", "--config-dir", f"config/{s}", "--json"]
    for s in QUICK:
        out[f"solve enumeration {s}"] = ["solve", "--config-dir", f"config/{s}", "--json", "--method", "enumeration"]
        out[f"solve weighted {s}"] = ["solve", "--config-dir", f"config/{s}", "--json", "--method", "weighted",
                                      "--cost-weight", "0.5"]
        out[f"solve exact frontier {s}"] = ["solve", "--config-dir", f"config/{s}", "--json", "--frontier"]
        out[f"solve budget {s}"] = ["solve", "--config-dir", f"config/{s}", "--json", "--budget", "10"]
        out[f"pareto {s}"] = ["pareto", "--config-dir", f"config/{s}", "--json"]
        out[f"baselines {s}"] = ["baselines", "--config-dir", f"config/{s}", "--json"]
        out[f"sensitivity {s}"] = ["sensitivity", "--config-dir", f"config/{s}", "--json"]
        out[f"quantization {s}"] = ["quantization", "--config-dir", f"config/{s}", "--json"]
    out["solve latency small"] = ["solve", "--config-dir", "config/small", "--json", "--max-tpot-ms", "60"]
    out["solve min-throughput medium"] = ["solve", "--config-dir", "config/medium", "--json",
                                          "--min-throughput", "5000"]
    out["spot small"] = ["spot", "--config-dir", "config/small", "--json", "--spot", "A100=1.0"]
    out["compare tiny small"] = ["compare", "config/tiny", "config/small", "--json"]
    ev = ["evaluate", "--model", "llama-2-70b", "--gpu", "A100-80GB-SXM", "--input-len", "1000", "--output-len",
          "200", "--json"]
    out["evaluate llama70b A100 tp4 pp2 batch"] = ev + ["--tp", "4", "--pp", "2", "--batch", "16"]
    out["evaluate llama70b A100 tp8 pp2 two nodes"] = ev + ["--tp", "8", "--pp", "2", "--nodes", "2",
                                                            "--concurrency", "64"]
    out["evaluate llama70b A100 tp4 fp8"] = ev + ["--tp", "4", "--pp", "1", "--concurrency", "32",
                                                  "--precision", "fp8"]
    return out


def _drop_timings(value):
    """Remove wall-clock fields (any key ending in 'seconds' or '_s' that times a run)."""
    if isinstance(value, dict):
        return {k: _drop_timings(v) for k, v in value.items() if not _is_timing(k)}
    if isinstance(value, list):
        return [_drop_timings(v) for v in value]
    return value


def _is_timing(key: str) -> bool:
    return key.endswith("seconds") or key in ("elapsed_s", "wall_s", "solve_s", "build_s")


def run(argv: list[str]) -> dict:
    """Run the CLI in-process from the repository root; returns {'exit': code, 'json': parsed stdout}."""
    from planner.cli import main

    import tempfile

    buf = io.StringIO()
    logging.disable(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(buf), \
                contextlib.redirect_stderr(io.StringIO()), _chdir(ROOT):
            # `solve` writes its files too: into a scratch folder, not the repository's ./out
            code = main(list(argv) + (["--out", out] if argv[0] == "solve" else []))
    finally:
        logging.disable(logging.NOTSET)
    text = buf.getvalue()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        # commands that print one JSON object per line
        parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {"exit": code, "json": _drop_timings(parsed)}


@contextlib.contextmanager
def _chdir(path: Path):
    import os
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def scenario(name: str) -> dict:
    """The parsed scenario (model, workload, pool, settings, warnings) and its JSON export, as plain data."""
    import dataclasses

    from planner.scenario_io import SCENARIO_FILES, load_config_dir, scenario_texts_to_json

    folder = ROOT / "config" / name
    sc = load_config_dir(folder)
    texts = {f: (folder / f).read_text() for f in SCENARIO_FILES if (folder / f).exists()}
    parsed = json.loads(json.dumps(dataclasses.asdict(sc), default=str))
    return {"scenario": _relative(parsed), "export": json.loads(scenario_texts_to_json(texts, name))}


def _relative(value):
    """Absolute paths inside messages and sources depend on where the repository is checked out."""
    if isinstance(value, dict):
        return {k: _relative(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v) for v in value]
    if isinstance(value, str):
        return value.replace(str(ROOT) + "/", "")
    return value


def main() -> int:
    got = {name: run(argv) for name, argv in cases().items()}
    scenarios = {name: scenario(name) for name in (*SCENARIOS, "xl")}
    GOLDEN.write_text(json.dumps({"cases": cases(), "answers": got, "scenarios": scenarios}, indent=1,
                                 sort_keys=True) + "\n")
    print(f"wrote {len(got)} cases to {GOLDEN.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
