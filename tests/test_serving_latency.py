"""Latency in a server's steady state (`perf.serving_latency`), against numbers worked out by hand, and a
plan's TTFT/TPOT as the sum / P x max of its stages' shares."""
from __future__ import annotations

from dataclasses import replace

import pytest

from planner import Planner, load_config_dir, perf
from planner.catalog import load_catalog
from planner.domain import Workload

from .helpers import assert_close


def stage(wave_s: float, decode_s: float, prefill_s: float, concurrency: int) -> perf.StagePerf:
    def phase(t):
        return perf.PhaseTime(t, t, 0.0, 0.0, 0.0)
    return perf.StagePerf(1.0, 1.0, wave_s, phase(prefill_s), phase(decode_s), concurrency)


def engine(chunk: int = 8192):
    return replace(load_catalog().engines["vllm"], prefill_chunk_tokens=chunk)


def test_one_sequence_is_the_concurrency_one_prefill_and_decode_step():
    # nothing else runs: the prompt's own prefill, then one decode step per token
    sp = stage(wave_s=0.5 + 499 * 0.0186, decode_s=0.0186, prefill_s=0.5, concurrency=1)
    ttft, step = perf.serving_latency(sp, 0.5, Workload(5000, 500, 1), engine())
    assert ttft == 0.5 and step == 0.0186


def test_sixty_four_sequences_by_hand():
    # wave 10 s over 500 output tokens: an average step of 20 ms, of which 15 ms is the decode step;
    # 63 of 64 sequences are the others: TTFT = own 30 ms + 63/64 x (1/2 + 1 chunk) x 20 ms = 59.53125 ms,
    # TPOT step = 15 ms + 63/64 x 5 ms = 19.921875 ms
    sp = stage(wave_s=10.0, decode_s=0.015, prefill_s=3.0, concurrency=64)
    ttft, step = perf.serving_latency(sp, 0.030, Workload(1024, 500, 64), engine())
    assert_close(ttft, 0.030 + 63 / 64 * 1.5 * 0.020, rel=1e-12)
    assert_close(ttft, 0.05953125, rel=1e-12)
    assert_close(step, 0.019921875, rel=1e-12)


def test_a_prompt_longer_than_the_chunk_waits_for_more_steps():
    # 20,000 prompt tokens in chunks of 8,192: 3 steps carry it, plus half a step of waiting
    sp = stage(wave_s=10.0, decode_s=0.015, prefill_s=3.0, concurrency=64)
    ttft, _ = perf.serving_latency(sp, 0.5, Workload(20_000, 500, 64), engine(8192))
    assert_close(ttft, 0.5 + 63 / 64 * 3.5 * 0.020, rel=1e-12)


def test_microbatches_split_the_others():
    # 64 sequences over 4 microbatches: 16 per step, 15 of them the others
    sp = stage(wave_s=10.0, decode_s=0.015, prefill_s=3.0, concurrency=64)
    ttft, step = perf.serving_latency(sp, 0.030, Workload(1024, 500, 64), engine(), microbatches=4)
    assert_close(ttft, 0.030 + 15 / 16 * 1.5 * 0.020, rel=1e-12)
    assert_close(step, 0.015 + 15 / 16 * 0.005, rel=1e-12)


@pytest.mark.parametrize("folder", ["llama70b-chat", "realistic", "hal"])
def test_plan_latency_is_the_stages_shares(folder):
    """TTFT = sum of the stages' shares, TPOT = P x the slowest stage's step, each share recomputed here
    from perf for the stage as the plan holds it."""
    sc = load_config_dir(f"config/{folder}")
    plan = Planner(sc).exact().plan
    P = len(plan.stages)
    shares, steps = [], []
    for s in plan.stages:
        g = sc.pool.entry(s.gpu_type).spec
        first, last = s.index == 1, s.index == P
        hand = None if last else (sc.pool.default_link_gb_per_s, "network")
        b = plan.concurrency
        sp = perf.stage_perf(sc.model, g, sc.engine, s.num_layers, s.tp, first, last, sc.workload, b,
                             microbatches=P, handoff=hand)
        own = perf.prefill_time(sc.model, g, sc.engine, s.num_layers, s.tp, first, last, 1,
                                sc.workload.input_tokens, stages=P, pipelined=P > 1, handoff=hand).seconds
        t, st = perf.serving_latency(sp, own, sc.workload, sc.engine, P)
        shares.append(t)
        steps.append(st)
    assert_close(plan.ttft_s, sum(shares), rel=1e-9)
    assert_close(plan.tpot_s, P * max(steps), rel=1e-9)
    assert plan.ttft_s < sum(s.prefill_s for s in plan.stages) or plan.concurrency <= P  # never the wave
