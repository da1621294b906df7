"""Write data/reference/aiconfigurator_<backend>.csv: NVIDIA AIConfigurator's estimates for a grid of
configurations, used as fitting and validation data for the engine profiles (docs/calibration.md).

AIConfigurator sums NVIDIA's profiled kernel timings (GEMM, attention, NCCL) per GPU and serving stack;
it is a model, not a measurement, but an independent one built from measured kernels. The project does
not depend on it at run time: this script runs in a separate environment and its output is data.

    python -m venv /tmp/aic && /tmp/aic/bin/pip install aiconfigurator-core==0.12.0
    /tmp/aic/bin/python benchmarks/aiconfigurator_reference.py [--backend vllm]
    /tmp/aic/bin/python benchmarks/aiconfigurator_reference.py --backend nccl   # all-reduce timings

Grid (issue 12's targets): Llama-3.1-8B and 70B on H100-SXM, H200, A100-SXM, L40S; TP 1, 2, 4, 8;
static batches 1..128; ISL/OSL 128/128, 2048/512, 8192/256. Per configuration:
- prefill_ms: the static batch's context phase (all `batch` prompts of `isl` tokens), as run_static;
- decode_step_ms: one decode step of the batch at context isl + osl/2 (the middle of the output);
- ttft_ms = prefill_ms; tpot_ms = generation time / (osl - 1), as run_static reports them;
- tokens_per_s = batch * (isl + osl) / total time (input + output tokens, the planner's default basis);
- fits / memory_gib: AIConfigurator's memory model at a memory share of 0.9 (of total memory for vLLM and
  SGLang, of free memory for TensorRT-LLM), max_num_batched_tokens 8192,
  max_num_seqs 256: fits when the KV budget holds every sequence
  at its full length (batch * (isl + osl) tokens); memory_gib is the per-GPU non-KV memory
  (weights, activations, runtime) it estimates.
"""
from __future__ import annotations

import argparse
import csv
import logging
import time
from datetime import date
from pathlib import Path

import yaml

# aiconfigurator re-reads its YAML with the pure-Python loader on every call (10-30 s each on 2 cores);
# the C loader gives the same documents.
yaml.safe_load = lambda s: yaml.load(s, Loader=yaml.CSafeLoader)  # noqa: E731

from aiconfigurator_core.sdk.engine import EngineHandle  # noqa: E402
from aiconfigurator_core.sdk.memory import estimate_kv_cache  # noqa: E402

log = logging.getLogger("aic_reference")
ROOT = Path(__file__).resolve().parents[1]

GPUS = {"h100_sxm": "H100-SXM", "h200_sxm": "H200", "a100_sxm": "A100-80GB-SXM", "l40s": "L40S"}
VERSIONS = {  # the database version per backend and system in aiconfigurator-core 0.12.0
    "vllm": {"h100_sxm": "0.24.0", "h200_sxm": "0.24.0", "a100_sxm": "0.14.0", "l40s": "0.24.0"},
    "sglang": {"h100_sxm": "0.5.14", "h200_sxm": "0.5.14", "a100_sxm": "0.5.10", "l40s": "0.5.14"},
    "trtllm": {"h100_sxm": "1.3.0rc20", "h200_sxm": "1.3.0rc20", "a100_sxm": "1.0.0", "l40s": "1.3.0rc20"},
}
FRACTION = {"vllm": "of_total", "sglang": "of_total", "trtllm": "of_free"}
MODELS = {"meta-llama/Meta-Llama-3.1-8B": "llama-3.1-8b", "meta-llama/Meta-Llama-3.1-70B": "llama-3.1-70b"}
TPS = (1, 2, 4, 8)
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
LENGTHS = ((128, 128), (2048, 512), (8192, 256))
COLUMNS = ["source", "backend", "backend_version", "system", "gpu", "model", "tp", "pp", "batch", "isl", "osl",
           "prefill_ms", "decode_step_ms", "ttft_ms", "tpot_ms", "tokens_per_s", "fits", "memory_gib"]


def rows(backend: str):
    source = f"aiconfigurator-core 0.12.0 ({backend} database), generated {date.today().isoformat()}"
    for system, version in VERSIONS[backend].items():
        gpu = GPUS[system]
        for hf_name, model in MODELS.items():
            for tp in TPS:
                start = time.perf_counter()
                handle = EngineHandle.compile(hf_name, system, backend, backend_version=version, tp_size=tp)
                for isl, osl in LENGTHS:
                    try:
                        mem = estimate_kv_cache(hf_name, system, backend, version, max_num_tokens=8192,
                                                max_batch_size=256, memory_fraction_kind=FRACTION[backend],
                                                memory_fraction_value=0.9, tp_size=tp)
                    except ValueError as exc:
                        if "no KV budget" not in str(exc):
                            raise
                        # weights and workspace alone exceed the memory limit: nothing fits
                        log.info("%s %s tp%d: %s", system, model, tp, exc)
                        kv_tokens, non_kv = 0, None
                    else:
                        kv_tokens = mem["total_kv_size_tokens"]
                        breakdown = mem["memory_breakdown"] or {}
                        non_kv = sum(breakdown.values()) if breakdown else None
                    for batch in BATCHES:
                        ctx_ms, gen_ms, total_ms = handle.run_static(batch_size=batch, isl=isl, osl=osl)
                        step_ms = handle.predict_decode_latency(batch, isl + osl // 2)
                        yield {
                            "source": source, "backend": backend, "backend_version": version, "system": system,
                            "gpu": gpu, "model": model, "tp": tp, "pp": 1, "batch": batch, "isl": isl, "osl": osl,
                            "prefill_ms": round(ctx_ms, 4), "decode_step_ms": round(step_ms, 4),
                            "ttft_ms": round(ctx_ms, 4), "tpot_ms": round(gen_ms / max(osl - 1, 1), 4),
                            "tokens_per_s": round(batch * (isl + osl) / (total_ms / 1e3), 3),
                            "fits": bool(kv_tokens > 0 and kv_tokens >= batch * (isl + osl)),
                            "memory_gib": "" if non_kv is None else round(non_kv / 2**30, 3),
                        }
                log.info("%s %s tp%d: %.1f s", system, model, tp, time.perf_counter() - start)


NCCL_COLUMNS = ["source", "system", "gpu", "nccl_version", "op", "dtype", "num_gpus", "message_bytes", "latency_us"]


def nccl_rows():
    """NCCL all-reduce timings (16-bit) per GPU count and message size from aiconfigurator-core's profiled
    database, at the NCCL version each system file names (the one its estimates use)."""
    import aiconfigurator_core
    import pandas as pd

    systems = Path(aiconfigurator_core.__file__).parent / "systems"
    for system, gpu in GPUS.items():
        spec = yaml.safe_load((systems / f"{system}.yaml").read_text())
        version = str(spec["misc"]["nccl_version"])
        path = systems / spec["data_dir"] / "comm" / "nccl" / version / "nccl_perf.parquet"
        d = pd.read_parquet(path)
        d = d[(d.op_name == "all_reduce") & (d.nccl_dtype == "half")].sort_values(["num_gpus", "message_size"])
        source = f"aiconfigurator-core 0.12.0 ({system} nccl {version}), generated {date.today().isoformat()}"
        for r in d.itertuples():
            yield {"source": source, "system": system, "gpu": gpu, "nccl_version": version, "op": "all_reduce",
                   "dtype": "half", "num_gpus": int(r.num_gpus), "message_bytes": int(r.message_size),
                   "latency_us": round(float(r.latency) * 1e3, 3)}  # the database holds milliseconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="vllm", choices=("vllm", "sglang", "trtllm", "nccl"),
                   help="a serving stack's estimates, or nccl: the all-reduce timings of its NCCL database")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or ROOT / "data" / "reference" / f"aiconfigurator_{args.backend}.csv"
    if args.backend == "nccl":
        # not named aiconfigurator_*.csv: those are configurations that `planner validate` compares
        out = args.out or ROOT / "data" / "reference" / "nccl_aiconfigurator.csv"
        with out.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=NCCL_COLUMNS)
            w.writeheader()
            w.writerows(nccl_rows())
        log.info("wrote %s", out)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        n = 0
        for r in rows(args.backend):
            w.writerow(r)
            n += 1
    tmp.replace(out)
    log.info("wrote %d rows to %s", n, out)


if __name__ == "__main__":
    main()
