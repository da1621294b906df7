"""Which pipelines the segment sizes allow: the stage counts P for which P sizes (repeats allowed) sum to the
layer count. The one tiling algorithm of the planner: the candidate build (levels, the sizes' complements),
the scenario checks and the MILP's stage counts all ask it.
"""
from __future__ import annotations

from .errors import InputError, Problem

# The stage-count search does at most this many big-integer shift steps (see `exact_counts`).
MAX_COUNT_STEPS = 2_000_000


def _runs(sizes: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct sizes as runs of consecutive integers: (first, length)."""
    runs: list[list[int]] = []
    for s in sizes:
        if runs and runs[-1][0] + runs[-1][1] == s:
            runs[-1][1] += 1
        else:
            runs.append([s, 1])
    return [(a, n) for a, n in runs]


def _smear(bits: int, n: int) -> int:
    """OR of bits << k for k in 0..n-1, in O(log n) shifts (binary decomposition of n)."""
    out, cur, span, shift = 0, bits, 1, 0
    while n:
        if n & 1:
            out |= cur << shift
            shift += span
        cur |= cur << span
        span *= 2
        n >>= 1
    return out


def exact_counts(sizes, total: int, max_stages: int) -> tuple[int, ...]:
    """The stage counts P <= max_stages for which exactly P sizes (repeats allowed) sum to `total`.

    Contiguous sizes a..b reach exactly the totals in [P a, P b]. Otherwise bit i of an int marks "i is a
    sum of P sizes", and each P is a few shifts per run of consecutive sizes; P stops at total / min size.
    Linear-time in practice for 10,000 layers (the coin-change DP it replaces took minutes); a size set
    and stage limit that would still need more than MAX_COUNT_STEPS shifts are refused."""
    sizes = sorted({s for s in sizes if 0 < s <= total})
    if not sizes:
        return ()
    lo, hi = sizes[0], sizes[-1]
    top = min(max_stages, total // lo)
    if hi - lo + 1 == len(sizes):
        return tuple(range(max(1, -(-total // hi)), top + 1))
    runs = _runs(sizes)
    steps = top * sum(max(1, n.bit_length()) for _, n in runs)
    if steps > MAX_COUNT_STEPS:
        raise InputError(Problem(f"{len(sizes):,} segment sizes in {len(runs):,} separate runs with up to {top:,} "
                                 f"pipeline stages need {steps:,} steps to find the stage counts, above the limit of "
                                 f"{MAX_COUNT_STEPS:,}: use fewer stages (max_pipeline_stages) or contiguous sizes "
                                 f"(quantization full)", "settings", column="segment sizes"))
    mask = (1 << (total + 1)) - 1
    bits, out = 1, []
    for p in range(1, top + 1):
        nxt = 0
        for a, n in runs:
            nxt |= _smear(bits, n) << a
        bits = nxt & mask
        if not bits:
            break
        if bits >> total & 1:
            out.append(p)
    return tuple(out)


def can_tile(sizes: tuple[int, ...], num_layers: int, max_stages: int) -> bool:
    """Whether some multiset of at most `max_stages` sizes sums to `num_layers`."""
    return bool(exact_counts(sizes, num_layers, max_stages))


def stage_counts(sizes: tuple[int, ...], num_layers: int, max_stages: int) -> tuple[int, ...]:
    """Stage counts P <= max_stages for which exactly P sizes of the set sum to the layer count."""
    return exact_counts(sizes, num_layers, max_stages)




def tiles_at_all(sizes, total: int) -> bool:
    """Whether any number of the sizes (repeats allowed) sums to `total`, with no limit on the stages.

    Bit i of an int marks "i is reachable"; each size adds its multiples s, 2s, 4s, ... (which
    combine to any count of s), so the work is a few shifts per size, not a loop over sums."""
    mask = (1 << (total + 1)) - 1
    reach = 1
    for s in sorted({s for s in sizes if 0 < s <= total}):
        step = s
        while step <= total:
            reach = (reach | reach << step) & mask
            step *= 2
    return bool(reach >> total & 1)
