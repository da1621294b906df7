"""The server's solve slots (ui.solve_slots.SolvePool): at most `limit` solve workers at once, the rest queued in
order with a visible position; sessions asking for the same solve share one worker; a solve is stopped
only when no session waits for it any more. Real worker processes on the bundled small scenario."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from planner import Planner, build_candidates, scenario_from_texts
from ui import scenario_texts as T
from ui import solve_slots, solver


@pytest.fixture(scope="module")
def small():
    sc = scenario_from_texts(T.load_bundled_texts("small"), "small")
    return sc, build_candidates(sc)


@pytest.fixture(scope="module")
def realistic():
    """Slow enough (seconds) to still be running while the test looks at the queue."""
    sc = scenario_from_texts(T.load_bundled_texts("realistic"), "realistic")
    return replace(sc, settings=replace(sc.settings, quantization="fine")), None


def key(name: str) -> tuple:
    return (("pool-test", name),), (("catalogue", name),)


def finish(*tickets, timeout_s: float = 240.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(t.poll() for t in tickets):
        assert time.monotonic() < deadline, [t.state for t in tickets]
        time.sleep(0.05)


def live(pool: solve_slots.SolvePool) -> list:
    return [sh.job.process for sh in pool._running if sh.job.process.is_alive()]


def test_cap_queues_in_order_and_every_queued_solve_finishes(small, realistic):
    pool = solve_slots.SolvePool(limit=1)
    slow = pool.submit(*realistic, *key("slow"), ("exact",))
    a = pool.submit(*small, *key("a"), ("exact",))
    b = pool.submit(*small, *key("b"), ("exact",))
    assert slow.state == "running" and slow.position == 0
    assert (a.state, a.position, b.state, b.position) == ("queued", 1, "queued", 2)
    assert pool.counts() == (1, 2) and len(live(pool)) == 1
    while not slow.poll():
        assert len(live(pool)) <= 1  # never more workers than the cap
        time.sleep(0.05)
    finish(a, b)
    assert [t.state for t in (slow, a, b)] == ["done"] * 3
    lib = Planner(small[0]).exact().plan.usd_per_million_tokens
    for name, t in (("a", a), ("b", b)):
        got = solver.results().get((*key(name), "exact"))
        assert got is t.outcomes["exact"] and got.result.plan.usd_per_million_tokens == pytest.approx(lib, rel=1e-12)
    assert pool.counts() == (0, 0) and pool.started == 3


def test_same_request_shares_one_worker(small):
    pool = solve_slots.SolvePool(limit=2)
    first = pool.submit(*small, *key("shared"), ("enumeration", "exact"))
    second = pool.submit(*small, *key("shared"), ("exact",))  # a subset of what is being solved
    assert second.shared is first.shared and first.shared_with == 1
    finish(first, second)
    assert pool.started == 1
    assert second.outcomes["exact"] is first.outcomes["exact"]
    # a "Solve now" (no size cap) does not wait on a solve that may skip the problem as too large
    capped = pool.submit(*small, *key("capped"), ("exact",), max_options=10)
    uncapped = pool.submit(*small, *key("capped"), ("exact",))
    assert uncapped.shared is not capped.shared
    finish(capped, uncapped)
    assert capped.skipped and not uncapped.skipped and uncapped.state == "done"


def test_cancel_lets_go_and_the_last_one_out_stops_the_worker(realistic, small):
    pool = solve_slots.SolvePool(limit=1)
    a = pool.submit(*realistic, *key("cancel"), ("exact",))
    b = pool.submit(*realistic, *key("cancel"), ("exact",))
    queued = pool.submit(*small, *key("never"), ("exact",))
    process = a.job.process
    a.cancel()
    assert a.state == "cancelled" and b.state == "running" and process.is_alive()  # b still waits for it
    queued.cancel()
    assert queued.state == "cancelled" and pool.counts() == (1, 0)  # dropped from the queue, never started
    b.cancel()
    assert b.state == "cancelled" and not process.is_alive() and pool.counts() == (0, 0)
    assert solver.results().get((*key("cancel"), "exact")) is None
    assert pool.started == 1


def test_speculative_solves_take_a_slot_only_when_one_is_free(small):
    pool = solve_slots.SolvePool(limit=1)
    busy = pool.submit(*small, *key("busy"), ("exact",))
    assert pool.start_speculative(lambda: pytest.fail("started past the cap")) is None
    finish(busy)
    made = []
    assert pool.start_speculative(lambda: made.append(1) or "job") == "job" and made == [1]


def test_max_solvers_reads_the_environment(monkeypatch):
    monkeypatch.setenv("PLANNER_MAX_SOLVERS", "3")
    assert solver.max_solvers() == 3
    monkeypatch.setenv("PLANNER_MAX_SOLVERS", "zero")
    assert solver.max_solvers() >= 1
    monkeypatch.delenv("PLANNER_MAX_SOLVERS")
    assert solver.max_solvers() >= 1
