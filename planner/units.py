"""Units, conversions and tolerances: each rule written once.

Memory: GPU capacities are the vendors' nominal "GB", which are GiB (2^30 bytes); every memory figure the
planner reports is in GB (1e9 bytes). Money: prices are $ per GPU-hour; a plan's price per token is its $/h
over its billable tokens per hour, reported per million tokens. Links: GB/s (1e9 bytes/s); clouds quote the
network between nodes in gigabits per second (Gbit/s = GB/s x 8).

Tolerances: figures that are sums or products of the same inputs in another order differ in their last bits,
so comparisons between them allow a relative slack scaled to the figure compared with (`REL_EPS`), never an
absolute one. `SAME_FIGURE_REL` is the coarser "these two reported figures are the same" used when plans are
compared across solves (costs summed in another order, solver round-off).
"""
from __future__ import annotations

GB = 1e9  # bytes
GIB = 2.0 ** 30  # bytes
BITS_PER_BYTE = 8
SECONDS_PER_HOUR = 3600
TOKENS_PER_MILLION = 1e6

# The network between nodes when a scenario names none: 200 Gbit/s (25 GB/s), a common cloud
# instance's inter-node bandwidth.
DEFAULT_INTER_NODE_GBPS = 200.0
DEFAULT_LINK_GB_PER_S = DEFAULT_INTER_NODE_GBPS / BITS_PER_BYTE  # 25.0

# The MILP's budget row when no budget is set: a bound no cost reaches (costs are scaled to about 1 in the
# models; a bound, never a figure to report).
NO_BUDGET = 1e30

REL_EPS = 1e-12  # same figure up to rounding (see the module docstring)
SAME_FIGURE_REL = 1e-9  # same reported figure across solves


def usd_per_million_tokens(cost_usd_per_hour: float, tokens_per_s: float) -> float:
    """$ per million tokens of a deployment costing `cost_usd_per_hour` that serves `tokens_per_s`."""
    return cost_usd_per_hour / (SECONDS_PER_HOUR * tokens_per_s) * TOKENS_PER_MILLION


def usd_per_million_tokens_per_usd_per_hour(tokens_per_s: float) -> float:
    """d($/M tokens)/d($/hour) at `tokens_per_s`: the factor that turns an hourly cost into $/M tokens."""
    return TOKENS_PER_MILLION / (SECONDS_PER_HOUR * tokens_per_s)


def usd_per_hour_at(usd_per_million: float, tokens_per_s: float) -> float:
    """The $/hour at which serving `tokens_per_s` costs `usd_per_million` per million tokens."""
    return usd_per_million / TOKENS_PER_MILLION * SECONDS_PER_HOUR * tokens_per_s


def usd_per_million_from_per_token(usd_per_token: float) -> float:
    return usd_per_token * TOKENS_PER_MILLION


def tokens_per_s_over(tokens: float, hours: float) -> float:
    """The rate that serves `tokens` in `hours`."""
    return tokens / (hours * SECONDS_PER_HOUR)


def up(x: float, rel: float = REL_EPS) -> float:
    """`x` loosened upwards by the rounding slack (for a positive x: slightly larger)."""
    return x * (1 + rel)


def down(x: float, rel: float = REL_EPS) -> float:
    """`x` loosened downwards by the rounding slack (for a positive x: slightly smaller)."""
    return x * (1 - rel)


def exceeds(a: float, b: float, rel: float = REL_EPS) -> bool:
    """`a` is larger than `b` by more than rounding (b >= 0)."""
    return a > up(b, rel)


def at_most(a: float, b: float, rel: float = REL_EPS) -> bool:
    """`a` is not larger than `b` beyond rounding (b >= 0)."""
    return a <= up(b, rel)


def at_least(a: float, b: float, rel: float = REL_EPS) -> bool:
    """`a` is not smaller than `b` beyond rounding (b >= 0)."""
    return a >= down(b, rel)


def falls_short(a: float, b: float, rel: float = REL_EPS) -> bool:
    """`a` is smaller than `b` by more than rounding (b >= 0)."""
    return a < down(b, rel)
