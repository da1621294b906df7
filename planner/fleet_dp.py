"""Pricing by dynamic programming over layers: the least reduced cost of a replica per (level, stage count).

The pricing problem of the fleet's column generation (`fleet_pricing`): for one level and stage count P,

    min over replicas r of  rc(r) = W(r) - pi min(theta_r, cap),   W(r) = sum of its options' weights w_o,

a replica being a first stage, P - 2 middle stages and a last stage (or one `only` stage) whose sizes sum
to L, every option usable at P, within the TTFT limit and the pool's counts. theta_r is its slowest stage.

Thresholds. For a rate t let H(t) be the least weight of a replica all of whose stages run at >= t. Every
replica r has W(r) >= H(theta_r), and the replica attaining H(t) has rate >= t, so

    min_r rc(r) = min over option rates t of  H(t) - pi min(t, cap).

H(t) is a shortest path over layer boundaries: B_role[t][s] = least weight of a `role` option of size s and
rate >= t; G_0 = B_last, G_j[r] = min_s B_middle[s] + G_{j-1}[r - s]; H(t) = min_s B_first[s] + G_{P-2}[L - s].
It is computed for a grid of thresholds t_0 < ... < t_K at once. On [t_i, t_{i+1}) H is at least H(t_i) and
-pi min(t, cap) at least -pi min(t', cap) with t' the largest option rate below t_{i+1}; so
H(t_i) - pi min(t', cap) bounds every replica whose rate lies in the interval, and H(t_i) - pi min(t_i, cap)
is the reduced cost of a real replica (or better). Intervals whose bound passes are refined on the option
rates inside them, down to single rates, where the bound is exact.

The tables relax three things, so their values are lower bounds: options are usable at any stage count of
the level (each option's `max_stages` is ignored), and neither the TTFT limit nor the pool's counts are
applied. A replica read back from the tables that satisfies all three is therefore optimal for its unit.
One that is not usable at its P sends the unit to tables of that P's usable options only (exact in P);
one over the TTFT limit or the pool sends it to the exact branch and bound (`LevelPricer.search`).

What the column generation needs from pricing is a negative column when one exists and a proof when none
does: `price` returns the replica at the best grid point (refining only where no grid point is below the
threshold but an interval's bound is) or proves that every replica of the unit has rc >= threshold.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

GRID = 48  # thresholds per table (the refinement makes the result exact whatever this is)
INF = np.inf


class LayerDP:
    """The threshold tables of one level (`LevelPricer`'s options by role), for one set of weights."""

    def __init__(self, roles: dict, num_layers: int, stage_counts: tuple[int, ...], only_at: int | None = None):
        """`only_at`: the tables of one stage count P, over the options usable at P only (exact in P; used
        when the relaxed tables' replica is not usable at its P)."""
        self.src, self.L = roles, num_layers
        if only_at is None:
            self.keep = {role: np.arange(r["theta"].size) for role, r in roles.items()}
            self.stage_counts = stage_counts
        else:
            self.keep = {role: np.flatnonzero((r["lo"] <= only_at) & (r["hi"] >= only_at)) for role, r in roles.items()}
            self.stage_counts = (only_at,)
        self.roles = {role: {"theta": r["theta"][self.keep[role]], "size": r["size"][self.keep[role]]}
                      for role, r in roles.items()}
        rates = [r["theta"] for r in self.roles.values() if r["theta"].size]
        self.rates = np.unique(np.concatenate(rates)) if rates else np.zeros(0)
        self.max_mid = max(0, max(self.stage_counts) - 2)
        sizes = self.roles["middle"]["size"]
        self.mid_sizes = np.unique(sizes) if sizes.size else np.zeros(0, dtype=np.int64)
        self._key = None

    def set_weights(self, key: bytes) -> None:
        """The source roles' option weights `w` changed (key: their identity); forget the tables."""
        if key != self._key:
            self._key = key
            self._top = None
            for role, r in self.roles.items():
                r["w"] = self.src[role]["w"][self.keep[role]]

    # ------------------------------------------------------------------ tables at a set of thresholds
    def _best(self, role: str, ts: np.ndarray) -> np.ndarray:
        """[threshold k, size s]: the least weight of a `role` option of size s with rate >= ts[k]."""
        r = self.roles[role]
        out = np.full((ts.size, self.L + 1), INF)
        if r["w"].size:
            slot = np.searchsorted(ts, r["theta"], side="right") - 1
            ok = slot >= 0
            np.minimum.at(out, (slot[ok], r["size"][ok]), r["w"][ok])
            out = np.minimum.accumulate(out[::-1], axis=0)[::-1]
        return out

    def _chain(self, ts: np.ndarray, depth: int) -> list[np.ndarray]:
        """G_0..G_depth at thresholds ts: G_j[k, r] least weight of j middles and a last over r layers."""
        G = [self._best("last", ts)]
        if depth == 0:
            return G
        mid = self._best("middle", ts)
        L = self.L
        sizes = self.mid_sizes.astype(np.int64)
        if sizes.size == 0:
            return G + [np.full_like(G[0], INF) for _ in range(depth)]
        # G_j[k, r] = min_s mid[k, s] + G_{j-1}[k, r - s]. Size by size (a few numpy calls per size), or with
        # many sizes all at once: G_{j-1} padded by L infinities on the left has windows of L + 1 with
        # window[r][L - s] = G_{j-1}[k, r - s] (mid is inf at absent sizes). Measured per chain of depth 6:
        # 79 sizes at 48 thresholds 7 ms by size, 4-5 at once; at 256 thresholds (a table of 13 MB per
        # step, past the caches) 24 by size, 34 at once; 6 sizes 0.6 vs 8 ms.
        at_once = sizes.size > 12 and ts.size * (L + 1) ** 2 <= 600_000
        if at_once:
            pad = np.full((ts.size, 2 * L + 1), INF)
            mid_rev = np.ascontiguousarray(mid[:, ::-1])[:, None, :]  # [k, 1, t] = mid[k, L - t]
            work = np.empty((ts.size, L + 1, L + 1))
        for _ in range(depth):
            if at_once:
                pad[:, L:] = G[-1]
                np.add(sliding_window_view(pad, L + 1, axis=1), mid_rev, out=work)
                G.append(work.min(axis=2))
                continue
            prev, nxt = G[-1], np.full_like(G[-1], INF)
            for s in sizes:
                np.minimum(nxt[:, s:], mid[:, s:s + 1] + prev[:, :L + 1 - s], out=nxt[:, s:])
            G.append(nxt)
        return G

    def _heads(self, ts: np.ndarray, depth: int) -> dict[int, np.ndarray]:
        """H(t) per stage count (relaxed, module docstring) at thresholds ts."""
        out = {}
        if 1 in self.stage_counts:
            out[1] = self._best("only", ts)[:, self.L]
        deep = [p for p in self.stage_counts if 2 <= p <= depth + 2]
        if deep:
            G = self._chain(ts, max(deep) - 2)
            first = self._best("first", ts)
            L = self.L
            for p in deep:
                # min over the first stage's size s of B_first[s] + G_{p-2}[L - s]
                out[p] = np.min(first[:, 1:L] + G[p - 2][:, L - 1:0:-1], axis=1)
        return out

    def _grid(self, rates: np.ndarray) -> np.ndarray:
        """Indices into `rates` of at most GRID thresholds, the first one included."""
        if rates.size <= GRID:
            return np.arange(rates.size)
        return np.unique(np.linspace(0, rates.size - 1, GRID).round().astype(np.int64))

    # ------------------------------------------------------------------ the pricing question
    def price(self, p: int, pi: float, cap: float, threshold: float) -> tuple[float, float] | None:
        """(value, t) with value = H(t) - pi min(t, cap) < threshold and the least such value over the grid
        points examined, or None when every replica of P stages has (relaxed) rc >= threshold: a proof."""
        if self.rates.size == 0 or p not in self.stage_counts:
            return None
        if self._top is None:
            idx = self._grid(self.rates)
            self._top = (idx, self._heads(self.rates[idx], self.max_mid))
        idx, heads = self._top
        return self._search(p, pi, cap, threshold, 0, self.rates.size, idx, heads[p])

    def _search(self, p, pi, cap, threshold, lo, hi, idx, h):
        """Within rates[lo:hi] (idx: the grid's indices into rates, idx[0] = lo; h: H at those rates)."""
        rates = self.rates
        t = rates[idx]
        value = h - pi * np.minimum(t, cap)
        k = int(np.argmin(value))
        if value[k] < threshold:
            return float(value[k]), float(t[k])
        # no grid point is below the threshold; an interval whose bound is must be refined
        ends = np.append(idx[1:], hi)  # interval i covers rates[idx[i]:ends[i]]
        top = rates[ends - 1]
        bound = h - pi * np.minimum(top, cap)
        for i in np.flatnonzero((bound < threshold) & (ends - idx > 1)):
            a, b = int(idx[i]) + 1, int(ends[i])  # rates[idx[i]] itself is exact already
            sub = a + self._grid(rates[a:b])
            found = self._search(p, pi, cap, threshold, a, b, sub, self._heads(rates[sub], p - 2)[p])
            if found is not None:
                return found
        return None

    # ------------------------------------------------------------------ the replica behind a value
    def replica(self, p: int, t: float) -> list[tuple[str, int]]:
        """The options (role, index into the source roles) of a replica attaining H(t) at P stages."""
        return [(role, int(self.keep[role][i])) for role, i in self._replica(p, t)]

    def _replica(self, p: int, t: float) -> list[tuple[str, int]]:
        L = self.L
        arg = {}
        for role in ("only", "first", "middle", "last"):
            r = self.roles[role]
            ok = np.flatnonzero(r["theta"] >= t)
            best = np.full(L + 1, INF)
            who = np.full(L + 1, -1, dtype=np.int64)
            if ok.size:  # per size the lightest option (ties: the lowest index)
                ok = ok[np.lexsort((ok, r["w"][ok], r["size"][ok]))]
                sz = r["size"][ok]
                head = np.flatnonzero(np.r_[True, sz[1:] != sz[:-1]])
                best[sz[head]], who[sz[head]] = r["w"][ok[head]], ok[head]
            arg[role] = (best, who)
        if p == 1:
            i = int(arg["only"][1][L])
            return [("only", i)] if i >= 0 else []
        mid_best, mid_who = arg["middle"]
        G, choice = [arg["last"][0]], []
        sizes = self.mid_sizes.astype(np.int64)
        shift = np.arange(L + 1)[None, :] - sizes[:, None]  # [size, r]: r - s
        valid = shift >= 0
        shift = np.where(valid, shift, 0)
        for _ in range(p - 2):
            # every middle size at once (the smallest size among equal values, as an ascending scan keeps)
            cand = np.full((sizes.size, L + 1), INF)
            np.add(mid_best[sizes][:, None], G[-1][shift], out=cand, where=valid)
            k = np.argmin(cand, axis=0) if sizes.size else np.zeros(L + 1, dtype=np.int64)
            nxt = cand[k, np.arange(L + 1)] if sizes.size else np.full(L + 1, INF)
            G.append(nxt)
            choice.append(np.where(np.isfinite(nxt), sizes[k], 0) if sizes.size else k)
        total = arg["first"][0][1:L] + G[p - 2][L - 1:0:-1]
        s = 1 + int(np.argmin(total))
        if not np.isfinite(total[s - 1]):
            return []
        steps = [("first", int(arg["first"][1][s]))]
        r = L - s
        for j in range(p - 2, 0, -1):
            m = int(choice[j - 1][r])
            steps.append(("middle", int(mid_who[m])))
            r -= m
        steps.append(("last", int(arg["last"][1][r])))
        return steps
