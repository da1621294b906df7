"""Replicas of least reduced cost: the pricing problem of the fleet's column generation, solved exactly.

The fleet master (`fleet_master`) has one column per replica r of class q with GPUs n_r (per type) and
rate theta_r (its slowest stage). Given the master LP's duals it needs, per class, the replicas of least
reduced cost

    rc(r) = sum_g w_g n_{r,g} - pi theta_r        (w_g >= 0: price and GPU-row duals; pi >= 0: demand dual)

either the best one (pricing: is any rc < 0?) or all with rc <= Delta (the integer proof, see fleet_master).
A replica is one pipeline as `solve` builds it: at one level and stage count P, a first stage, P - 2 middle
stages (a multiset: order changes neither rate nor GPUs nor the summed TTFT shares) and a last stage (or one
`only` stage), sizes summing to L, every option usable at P, summed TTFT shares within the TTFT limit, GPUs
within the pool.

Exact branch and bound over these multisets. A partial replica (weight W so far, slowest stage theta, r
layers left, j middles left) is pruned when a lower bound on every completion's rc exceeds the threshold:

    rc >= W + min over thresholds t <= theta of ( G_t[j][r] - pi t )

where G_t[j][r] is the least weight of j middles and a last stage covering exactly r layers with every
option's rate >= t (a completion ending at rate t uses only such options). G is a small dynamic program
over segment sizes, computed on a grid of thresholds t_0 < ... < t_K per level; for t in [t_i, t_{i+1})
it uses G_{t_i} <= G_t and -pi t >= -pi t_{i+1}, so the grid only loosens the bound, never the result.
It ignores the TTFT limit and the pool's counts (looser, still valid); the search enforces both.

Pricing asks first the dynamic program over layers of `fleet_dp` (`LevelPricer.price`), which settles
almost every unit without a search; the branch and bound remains for the units it cannot settle and for
the proof's enumeration (`collect`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .candidates import Level, Option
from .errors import CancelledError
from .fleet_dp import LayerDP
from .units import REL_EPS

log = logging.getLogger(__name__)
GRID = 256  # thresholds per level for the bound (accuracy of pruning only)
LAGRANGE_STEPS = 8  # dynamic programs per pricing unit before the branch and bound takes over
REL = REL_EPS  # same figure up to rounding (planner/units.py)


@dataclass
class Found:
    rc: float
    theta: float
    options: tuple[Option, ...]
    gpus: tuple[int, ...]


class SearchLimit(Exception):
    """The enumeration visited more partial replicas than it may (`LevelPricer.search`'s node limit)."""


class LevelPricer:
    """One level of one request class: its options by role as arrays, the bound tables, the search."""

    def __init__(self, level: Level, opts: list[Option], types: tuple[str, ...], counts: tuple[int, ...],
                 num_layers: int, ttft_limit_s: float | None):
        self.level, self.L = level, num_layers
        self.types, self.counts = types, np.array(counts, dtype=np.int64)
        index = {g: i for i, g in enumerate(types)}
        self.ttft = ttft_limit_s if ttft_limit_s is not None else np.inf
        opts = [o for o in opts if o.tp <= counts[index[o.gpu_type]]]
        self.roles: dict[str, dict] = {}
        for role in ("only", "first", "middle", "last"):
            os_ = [o for o in opts if o.role == role]
            self.roles[role] = {
                "opts": os_,
                "size": np.array([o.size for o in os_], dtype=np.int64),
                "theta": np.array([o.tokens_per_s for o in os_], dtype=float),
                "type": np.array([index[o.gpu_type] for o in os_], dtype=np.int64),
                "tp": np.array([o.tp for o in os_], dtype=np.int64),
                "pre": np.array([o.ttft_s for o in os_], dtype=float),
                "lo": np.array([o.min_stages for o in os_], dtype=np.int64),
                "hi": np.array([o.max_stages for o in os_], dtype=np.int64),
            }
        thetas = np.unique(np.concatenate([r["theta"] for r in self.roles.values()] + [np.zeros(0)]))
        self.empty = thetas.size == 0
        if self.empty:
            return
        pick = np.unique(np.linspace(0, thetas.size - 1, min(GRID, thetas.size)).round().astype(int))
        self.grid = thetas[pick]  # ascending, grid[0] = slowest option
        self.grid_next = np.append(self.grid[1:], thetas[-1])  # upper end of each interval
        self.max_mid = max(0, max((p for p in level.stage_counts), default=2) - 2)
        self.dp = LayerDP(self.roles, num_layers, level.stage_counts)
        # partial replicas are told apart by (layers left, GPUs per type): a mixed-radix integer when it fits
        radix = np.cumprod(np.concatenate([[1], self.counts[:-1] + 1])).astype(np.int64)
        total = float(np.prod((self.counts + 1).astype(float)))
        self._radix = (radix, int(total)) if total * (num_layers + 1) < 2.0 ** 62 else None
        self.dp_exact = self.dp_fallbacks = 0  # units the dynamic program answered / sent to the search
        self._dps: dict[int, LayerDP] = {}

    # ------------------------------------------------------------------ bound tables
    def prepare(self, w: np.ndarray, pi: float, cap: float = np.inf) -> None:
        """Option weights for GPU weights w (per type), the demand dual pi; a replica's rate counts up to
        `cap` (the master's coefficient tightening). The branch and bound's tables G and PM of the module
        docstring are built when a search first needs them (`_ready`); the dynamic program keeps its own."""
        self.pi, self.cap = pi, cap
        if self.empty:
            return
        key = w.tobytes()
        if key != self._w_key:
            self._w_key = key
            for r in self.roles.values():
                r["w"] = w[r["type"]] * r["tp"]
            self.dp.set_weights(key)
            self._g_key = None
        self.floor = self._floor()

    def _floor(self) -> float:
        """A lower bound on every replica's rc at this level, from its options alone: a replica's rate is at
        most each of its stages', and its stages' sizes sum to L, so
            rc = sum_o w_o - pi min(theta, cap) >= sum_o size_o (w_o / size_o - pi min(theta_o, cap) / L)
               >= L min_o (w_o / size_o - pi min(theta_o, cap) / L).
        When it is not below a search's threshold the level holds no replica below it, and neither its
        dynamic program nor its branch and bound runs (their answer would be none). Less a rounding slack."""
        d, scale = np.inf, 0.0
        for r in self.roles.values():
            if not r["w"].size:
                continue
            gain = self.pi * np.minimum(r["theta"], self.cap) / self.L
            dens = r["w"] / r["size"]
            d = min(d, float(np.min(dens - gain)))
            finite = np.isfinite(dens)
            if finite.any():
                scale = max(scale, float(np.max(dens[finite] + gain[finite])))
        return self.L * d - 1e-9 * (1.0 + self.L * scale)

    _w_key = b""
    _g_key = None
    _pm_key = None

    def _ready(self) -> None:
        """The branch and bound's tables at the prepared weights and duals: [threshold, r]."""
        if self._g_key != self._w_key:  # G depends on the weights only (the seed rounds change only pi)
            self._tables()
            self._g_key = self._w_key
            self._pm_key = None
        if self._pm_key == (self._w_key, self.pi, self.cap):  # the enumeration asks again at the same duals
            return
        self._pm_key = (self._w_key, self.pi, self.cap)
        shifted = self.G - self.pi * np.minimum(self.grid_next, self.cap)[None, :, None]  # G_{t_i} - pi t_{i+1}
        pm = np.empty_like(shifted)
        pm[:, 0] = np.inf
        np.minimum.accumulate(shifted[:, :-1], axis=1, out=pm[:, 1:])
        self.PM = pm

    def _tables(self) -> None:
        # the dynamic program's tables at the grid's thresholds (its options and weights are this level's)
        self.G = np.stack(self.dp._chain(self.grid, self.max_mid))  # [middles to come, threshold, layers]

    def _bound(self, j: int, r: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Least rc of any completion with j middles and a last over r layers, the slowest stage so far theta."""
        # callers pass 0 < r <= L and theta >= the slowest option's rate (grid[0])
        i = np.searchsorted(self.grid, theta, side="right") - 1
        return np.minimum(self.PM[j][i, r], self.G[j][i, r] - self.pi * np.minimum(theta, self.cap))

    # ------------------------------------------------------------------ pricing
    def price(self, p: int, threshold: float, node_limit: int, cancel=None,
              search: bool = True) -> tuple[list[Found], bool]:
        """A replica of P = p stages with rc < threshold, or a proof that none exists: (found, complete) as
        `search` returns them.

        The dynamic program (`fleet_dp`) answers when its replica is a real one. When it is not usable at
        its P, the program is run again over the options usable at P. When it takes more GPUs of some type
        than the pool has, the pool's counts are priced in (Lagrangian relaxation): with multipliers
        lam_g >= 0 every replica within the pool has rc >= (its rc + lam.n) - lam.N, so the program over
        weights w + lam, asked for a value below threshold + lam.N, either proves that no replica within the
        pool is below the threshold or returns a replica, which is a column if it is within the pool; lam
        grows on the overused types until one of the two happens. Else the branch and bound searches (unless
        `search` is False: then the unit is left undecided, complete False)."""
        if self.empty or p not in self.level.stage_counts or self.floor >= threshold:
            return [], True
        lam = np.zeros(len(self.types))
        at_p = False
        for _ in range(LAGRANGE_STEPS):
            dp = self._dp_for(p if at_p else None, lam)
            shift = float(lam @ self.counts)
            res = dp.price(p, self.pi, self.cap, threshold + shift)
            if res is None:
                self.dp_exact += 1
                return [], True
            steps = dp.replica(p, res[1])
            if not steps:
                break
            found, usable, n = self._found(steps, p)
            if found is not None and found.rc < threshold:
                self.dp_exact += 1
                return [found], True
            if not usable:
                if at_p:
                    break
                at_p = True
                continue
            over = np.flatnonzero(n > self.counts)
            if over.size == 0:  # within the pool (and the TTFT limit or not): the relaxation is not the issue
                break
            # raise lam on the overused types so that this replica's relaxed value reaches the threshold
            value = res[0]  # its rc + lam.n, at most (its rate is >= the threshold rate)
            excess = float(np.sum(n[over] - self.counts[over]))
            lam[over] += 1.5 * max(threshold + shift - value, 1e-12) / excess
        if not search:  # the caller has columns for this round already: settle this unit in a later one
            return [], False
        self.dp_fallbacks += 1
        return self.search(p, threshold, False, node_limit, cancel=cancel)

    def _dp_for(self, p: int | None, lam: np.ndarray) -> LayerDP:
        """The dynamic program over every option (p None) or the options usable at P, at weights w + lam."""
        if not lam.any():
            if p is None:
                return self.dp
            dp = self._dps.get(p)
            if dp is None:
                dp = self._dps[p] = LayerDP(self.roles, self.L, self.level.stage_counts, only_at=p)
            dp.set_weights(self._w_key)
            return dp
        roles = {role: {**r, "w": r["w"] + lam[r["type"]] * r["tp"]} for role, r in self.roles.items()}
        dp = LayerDP(roles, self.L, self.level.stage_counts, only_at=p)
        dp.set_weights(lam.tobytes())
        return dp

    def _found(self, steps: list[tuple[str, int]], p: int) -> tuple[Found | None, bool, np.ndarray]:
        """(the replica of these (role, option index) steps, or None unless it is usable at P stages, within
        the TTFT limit and the pool's counts; whether every option is usable at P; its GPUs per type)."""
        n = np.zeros(len(self.types), dtype=np.int64)
        W = pre = 0.0
        th = np.inf
        for role, i in steps:
            r = self.roles[role]
            if not r["lo"][i] <= p <= r["hi"][i]:
                return None, False, n
            n[r["type"][i]] += r["tp"][i]
            W += r["w"][i]
            pre += r["pre"][i]
            th = min(th, r["theta"][i])
        if len(steps) != p or np.any(n > self.counts) or pre > self.ttft * (1 + REL):
            return None, True, n
        opts = tuple(self.roles[role]["opts"][i] for role, i in steps)
        return Found(float(W - self.pi * min(th, self.cap)), float(th), opts, tuple(int(x) for x in n)), True, n

    # ------------------------------------------------------------------ the search
    def search(self, p: int, threshold: float, collect: bool, node_limit: int, keep: int = 2,
               cancel=None) -> tuple[list[Found], bool]:
        """Replicas of P = p stages with rc <= threshold (collect) or < threshold (pricing), breadth first:
        every partial replica of d stages whose bound passes is extended by every middle option (of index
        >= its last middle's: multisets), then closed by a last stage. Returns (found, complete): collect,
        all of them; pricing, the `keep` best. When pricing, a depth holding more than `node_limit` partial
        replicas keeps the best-bounded ones and `complete` is False (the search is then a heuristic, fine
        for finding columns but no proof that none is left); collecting raises SearchLimit instead."""
        self.nodes = 0
        if self.empty or p not in self.level.stage_counts or (self.floor > threshold if collect else
                                                               self.floor >= threshold):
            return [], True
        self._ready()
        self._thr, self._collect, self._keep = threshold, collect, keep
        tol = self.ttft * (1 + REL)
        complete = True
        if p == 1:
            r = self.roles["only"]
            ok = (r["size"] == self.L) & (r["lo"] <= 1) & (r["hi"] >= 1) & (r["pre"] <= tol)
            k = np.flatnonzero(ok)
            rc = r["w"][k] - self.pi * np.minimum(r["theta"][k], self.cap)
            return self._select(rc, r["theta"][k], (None, k),
                                np.eye(len(self.types), dtype=np.int64)[r["type"][k]] * r["tp"][k][:, None]), True
        f, m, last = self.roles["first"], self.roles["middle"], self.roles["last"]
        k = np.flatnonzero((f["lo"] <= p) & (f["hi"] >= p) & (f["pre"] <= tol))
        st = {"r": self.L - f["size"][k], "th": f["theta"][k], "W": f["w"][k], "pre": f["pre"][k],
              "n": np.eye(len(self.types), dtype=np.int64)[f["type"][k]] * f["tp"][k][:, None],
              "start": np.zeros(k.size, dtype=np.int64), "hist": k[:, None]}
        st = self._dedupe(self._prune(st, p - 2))
        mid_ok = np.flatnonzero((m["lo"] <= p) & (m["hi"] >= p))
        for d in range(p - 2):
            if cancel is not None and cancel.is_set():
                raise CancelledError()
            st = self._dedupe(self._extend(st, m, mid_ok, tol, p - 3 - d))
            self.nodes += st["r"].size
            if st["r"].size > node_limit:
                if collect:
                    raise SearchLimit()
                order = np.argsort(st["bound"], kind="stable")[:node_limit]
                st = {key: v[order] for key, v in st.items()}
                complete = False
        # close with a last stage of exactly r layers
        li = np.flatnonzero((last["lo"] <= p) & (last["hi"] >= p))
        if st["r"].size == 0 or li.size == 0:
            return [], complete
        a, b = _pairs_of_size(st["r"], li, last["size"])
        ok = st["pre"][a] + last["pre"][b] <= tol
        n = st["n"][a].copy()
        n[np.arange(a.size), last["type"][b]] += last["tp"][b]
        ok &= np.all(n <= self.counts, axis=1)
        a, b, n = a[ok], b[ok], n[ok]
        th = np.minimum(st["th"][a], last["theta"][b])
        if self._radix is not None and not np.isfinite(self.ttft) and a.size:
            keep = self._fastest(self._key(np.zeros(a.size, dtype=np.int64), n), th)
            a, b, n, th = a[keep], b[keep], n[keep], th[keep]
        rc = st["W"][a] + last["w"][b] - self.pi * np.minimum(th, self.cap)
        return self._select(rc, th, (st["hist"][a], b), n), complete

    # Dominance (exact): two partial replicas with the same layers left and the same GPUs per type have the
    # same weight and the same completions (the pool's counts and sizes admit the same stages), and the one
    # with the faster slowest stage gives every completion a rate at least as high. So only the fastest of
    # each (layers left, GPUs) is extended, and of complete replicas with the same GPUs only the fastest is
    # returned: a fleet using another can use it instead at the same cost and no less rate. Middles are then
    # added in any order (the canonical order of a multiset is not needed: its permutations meet in one
    # state). Not with a TTFT limit, where the summed prefill is a third figure to compare.
    def _key(self, r: np.ndarray, n: np.ndarray) -> np.ndarray:
        radix, total = self._radix
        return r.astype(np.int64) * total + n @ radix

    @staticmethod
    def _fastest(key: np.ndarray, th: np.ndarray) -> np.ndarray:
        """Indices of the fastest entry of each key."""
        order = np.lexsort((-th, key))
        k = key[order]
        first = np.ones(k.size, dtype=bool)
        first[1:] = k[1:] != k[:-1]
        return order[first]

    def _dedupe(self, st: dict) -> dict:
        if self._radix is None or np.isfinite(self.ttft) or st["r"].size < 2:
            return st
        keep = self._fastest(self._key(st["r"], st["n"]), st["th"])
        st = {key: v[keep] for key, v in st.items()}
        st["start"] = np.zeros(keep.size, dtype=np.int64)
        return st

    def _extend(self, st: dict, m: dict, mid_ok: np.ndarray, tol: float, j: int) -> dict:
        """Every partial replica with one more middle stage whose bound (j middles and a last to come after
        it) passes; the children's bounds come first, and only the survivors are built.

        Most children fail the bound, so they are not all formed (a node times every middle was most of the
        enumeration's time): a child's bound is at least its parent's with the same layers left after it,
        `_bound(j, r - s, theta)` (the bound does not increase with the rate, and the child's rate is at most
        the parent's theta), so for each middle size s only the middles of weight
        w <= threshold - W - _bound(j, r - s, theta) can pass, a prefix of that size's middles sorted by weight.
        Only those pairs are formed and checked exactly as before, in the same order."""
        S = st["r"].size
        empty = {key: v[:0] for key, v in st.items()}
        empty["bound"] = np.zeros(0)
        if S == 0 or mid_ok.size == 0:
            return empty
        order = mid_ok[np.lexsort((m["w"][mid_ok], m["size"][mid_ok]))]  # by size, lightest first
        sizes, first = np.unique(m["size"][order], return_index=True)
        last = np.append(first[1:], order.size)
        w_sorted = m["w"][order]
        U = sizes.size
        out = []
        chunk = max(1, 1_000_000 // U)
        for lo in range(0, S, chunk):
            stop = min(S, lo + chunk)
            r, W, th = st["r"][lo:stop], st["W"][lo:stop], st["th"][lo:stop]
            r2 = r[:, None] - sizes[None, :]
            fits = r2 > 0
            B = self._bound(j, np.where(fits, r2, 1).ravel(), np.repeat(th, U)).reshape(r2.shape)
            base = self._thr - W[:, None] - B
            # slack for the rounding of a different order of summation: the cut may only be looser
            slack = 1e-9 * (abs(self._thr) + np.abs(W)[:, None] + np.abs(B) + 1.0)
            with np.errstate(invalid="ignore"):
                cut = np.where(fits & np.isfinite(base), base + slack, -np.inf)
            cnt = np.empty(r2.shape, dtype=np.int64)
            for u in range(U):
                cnt[:, u] = np.searchsorted(w_sorted[first[u]:last[u]], cut[:, u], side="right")
            # pairs in batches of nodes of at most ~2M pairs each
            rows = cnt.sum(axis=1)
            cum = np.cumsum(rows)
            edges = np.unique(np.searchsorted(cum, np.arange(2_000_000, int(cum[-1]) if cum.size else 0, 2_000_000),
                                              side="right"))
            for b_lo, b_hi in zip(np.concatenate([[0], edges]), np.concatenate([edges, [rows.size]])):
                if b_hi <= b_lo:
                    continue
                c = cnt[b_lo:b_hi].ravel()
                total = int(c.sum())
                if total == 0:
                    continue
                a = np.repeat(np.repeat(np.arange(lo + b_lo, lo + b_hi), U), c)
                pos = np.repeat(np.tile(first, b_hi - b_lo), c) + np.arange(total) - np.repeat(np.cumsum(c) - c, c)
                b = order[pos]
                out.append(self._children(st, m, a, b, tol, j))
        out = [o for o in out if o["r"].size]
        if not out:
            return empty
        return {key: np.concatenate([o[key] for o in out]) for key in out[0]}

    def _children(self, st: dict, m: dict, a: np.ndarray, b: np.ndarray, tol: float, j: int) -> dict:
        """The children (parent a, middle b) that are multisets in canonical order, within the TTFT limit and
        the pool, and pass the bound; ordered by parent, then middle."""
        ok = b >= st["start"][a]
        ok &= st["pre"][a] + m["pre"][b] <= tol
        mt = m["type"][b]
        ok &= st["n"][a, mt] + m["tp"][b] <= self.counts[mt]
        a, b = a[ok], b[ok]
        th = np.minimum(st["th"][a], m["theta"][b])
        W = st["W"][a] + m["w"][b]
        r2 = st["r"][a] - m["size"][b]
        bound = W + self._bound(j, r2, th) if a.size else np.zeros(0)
        keep = bound <= self._thr if self._collect else bound < self._thr
        keep = np.flatnonzero(keep)
        keep = keep[np.lexsort((b[keep], a[keep]))]
        a, b = a[keep], b[keep]
        nn = st["n"][a].copy()
        nn[np.arange(a.size), m["type"][b]] += m["tp"][b]
        return {"r": r2[keep], "th": th[keep], "W": W[keep], "pre": st["pre"][a] + m["pre"][b], "n": nn,
                "start": b, "hist": np.concatenate([st["hist"][a], b[:, None]], axis=1), "bound": bound[keep]}

    def _prune(self, st: dict, j: int) -> dict:
        """Keep the partial replicas whose bound (j middles and a last to come) passes the threshold."""
        if st["r"].size == 0:
            st["bound"] = np.zeros(0)
            return st
        bound = st["W"] + self._bound(j, st["r"], st["th"])
        keep = bound <= self._thr if self._collect else bound < self._thr
        st = {key: v[keep] for key, v in st.items() if key != "bound"}
        st["bound"] = bound[keep]
        return st

    def _select(self, rc: np.ndarray, th: np.ndarray, hist, n: np.ndarray) -> list[Found]:
        keep = rc <= self._thr if self._collect else rc < self._thr
        idx = np.flatnonzero(keep)
        if not self._collect:
            idx = idx[np.argsort(rc[idx], kind="stable")[:self._keep]]
        out = []
        for i in idx:
            if hist[0] is None:  # one stage: (None, only-option indices)
                steps = [("only", int(hist[1][i]))]
            else:  # (first and middle indices, last indices)
                h, bb = hist[0][i], hist[1][i]
                steps = [("first", int(h[0]))] + [("middle", int(x)) for x in h[1:]] + [("last", int(bb))]
            opts = tuple(self.roles[role]["opts"][x] for role, x in steps)
            out.append(Found(float(rc[i]), float(th[i]), opts, tuple(int(x) for x in n[i])))
        return out


def _pairs_of_size(r: np.ndarray, idx: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (node a, option b in idx) with size[b] == r[a], ordered by a, then b (idx ascending)."""
    by_size = idx[np.argsort(size[idx], kind="stable")]
    s = size[by_size]
    lo, hi = np.searchsorted(s, r, side="left"), np.searchsorted(s, r, side="right")
    c = hi - lo
    total = int(c.sum())
    a = np.repeat(np.arange(r.size), c)
    pos = np.repeat(lo, c) + np.arange(total) - np.repeat(np.cumsum(c) - c, c)
    return a, by_size[pos]


def level_pricers(options: list[Option], types: tuple[str, ...], counts: tuple[int, ...], num_layers: int,
                  ttft_limit_s: float | None) -> list[LevelPricer]:
    by_level: dict[Level, list[Option]] = {}
    for o in options:
        by_level.setdefault(o.level, []).append(o)
    return [LevelPricer(level, opts, types, counts, num_layers, ttft_limit_s) for level, opts in by_level.items()]
