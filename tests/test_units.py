"""The rules of planner/units.py, planner/kinds.py and planner/tiling.py, checked against hand figures and
brute force."""
from __future__ import annotations

import csv
import io
import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from planner.kinds import METHODS, ROLES, Method, Role, holds_embedding, holds_lm_head
from planner.tiling import can_tile, tiles_at_all
from planner.units import (DEFAULT_LINK_GB_PER_S, at_least, at_most, exceeds, falls_short, tokens_per_s_over,
                           usd_per_hour_at, usd_per_million_tokens, usd_per_million_tokens_per_usd_per_hour)


def test_price_per_million_tokens_by_hand():
    # $36/h serving 10,000 tokens/s: 36 million tokens per hour at $36, so $1 per million tokens
    assert abs(usd_per_million_tokens(36.0, 10_000.0) - 1.0) < 1e-15
    assert abs(usd_per_hour_at(1.0, 10_000.0) - 36.0) < 1e-12
    assert abs(usd_per_million_tokens_per_usd_per_hour(10_000.0) * 36.0 - 1.0) < 1e-15
    assert tokens_per_s_over(7_200.0, 2.0) == 1.0
    assert DEFAULT_LINK_GB_PER_S == 25.0  # 200 Gbit/s


def test_tolerances_scale_with_the_figure():
    for scale in (1e-6, 1.0, 1e9):
        b = 3.0 * scale
        same = b * (1 + 1e-14)
        assert at_most(same, b) and at_least(b, same) and not exceeds(same, b) and not falls_short(b, same)
        bigger = b * (1 + 1e-9)
        assert exceeds(bigger, b) and not at_most(bigger, b) and falls_short(b, bigger)


def test_enums_are_their_strings():
    assert Role.FIRST == "first" and "only" in {Role.ONLY} and {"last": 1}[Role.LAST] == 1
    assert json.dumps({"role": Role.MIDDLE, "method": Method.EXACT}) == '{"role": "middle", "method": "exact"}'
    out = io.StringIO()
    csv.writer(out).writerow([Role.FIRST, Method.WEIGHTED])
    assert out.getvalue().strip() == "first,weighted" and f"{Role.ONLY}" == "only"
    assert [str(r) for r in ROLES] == ["first", "middle", "last", "only"]
    assert [str(m) for m in METHODS] == ["exact", "enumeration", "weighted"]
    assert [r for r in ROLES if holds_embedding(r)] == ["first", "only"]
    assert [r for r in ("first", "middle", "last", "only") if holds_lm_head(r)] == ["last", "only"]


def _brute(sizes, total, max_stages):
    """(within max_stages, with any number of stages), by listing every multiset."""
    within = any(sum(c) == total for k in range(1, max_stages + 1)
                 for c in itertools.combinations_with_replacement(sizes, k))
    anywhere = any(sum(c) == total for k in range(1, total + 1)
                   for c in itertools.combinations_with_replacement(sizes, k))
    return within, anywhere


@given(st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True), st.integers(1, 16), st.integers(1, 4))
def test_tiling_matches_brute_force(sizes, total, max_stages):
    within, anywhere = _brute(sorted(sizes), total, max_stages)
    assert tiles_at_all(sizes, total) == anywhere
    assert can_tile(tuple(sorted(sizes)), total, max_stages) == within
