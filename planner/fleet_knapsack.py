"""The demand curve without a MILP per step: knapsacks over GPU usage, proven by LP duals.

For a set S of replicas, F_S(u) = the most billable tokens/s of a fleet of S-replicas using at most u_g GPUs
of every type g (a dynamic program over the lattice 0 <= u <= N, each replica added as 1, 2, 4, ... copies);
the step curve of S is then read off: C_S(D) = min { p.u : F_S(u) >= D }, stepping wherever the best tokens/s
at a cost rises. C_S >= C (S lacks replicas); it is proven equal step by step:

Weak duality. Take the duals (pi >= 0 on the demand row, mu_g <= 0 on the GPU rows) of the cost question's
LP at some demand, without coefficient tightening and priced to completion, so that every replica has
reduced cost rc_j = c_j - pi a_j - mu.n_j >= -tol. For ANY demand D' and any fleet y serving it,
    c.y = sum_j rc_j y_j + pi sum_j a_j y_j + mu.sum_j n_j y_j >= sum_j rc_j y_j + L(D'),  L(D') = pi D' + mu.N.
If S holds every replica with rc_j <= Delta, a fleet using any other replica costs more than L(D') + Delta
- tol x (its replicas). A step of C_S with cost c over (E_prev, E] is therefore exact when c <= L(E_prev) +
Delta - slack for one of the dual sets (L rises with D', so its left end is the worst): a cheaper fleet
serving D' > E_prev would have to use a replica outside S, and cost more than c. Its right end is exact too:
a fleet costing <= c and serving more than E would undercut the next step, which is proven in turn, and the
last step ends at the pool's capacity (proven by the master) or the curve is not claimed.

Steps that no dual set proves get a new one: the LP duals at their left end, and the replicas within the
needed Delta enumerated (the pricing's exact branch and bound): the first dual set's at half its need first
(S then holds only the master's columns, and its curve's needs are too high), then what the first unproven
step needs, stretched to the later ones needing a little more (RANGE, STRETCH_GPUS). Only for a lattice of
at most LATTICE_LIMIT points; else the caller uses its parametric solves.

A request mix. Class q must serve f_q D (f_q: the master's fractions, Fleet.demands(1), billable tokens on
the scenario's basis), each replica is dedicated to one class, and S_q, F_q are per class (its own lengths
and latency limits). The most demand served on u GPUs is
    G[u] = max over v_1 + ... + v_Q <= u of min_q F_q[v_q] / f_q,
the classes folded in one at a time by the max-min convolution (`maxmin`), and C_S(D) = min { p.u : G[u] >= D }.
The proof is the one above with a demand row per class: sum_q pi_q sum_{j of q} a_j y_j >= sum_q pi_q f_q D',
so L(D') = (sum_q pi_q f_q) D' + mu.N, and the enumeration prices every class's replicas under these duals.

The last fold is not built as a lattice (a loop over tens of thousands of boxes on realistic's mix): only its
step curve is needed, and that is the step curve of the pair points (`pair_points`). Let A, B be the two
operands (non-decreasing along every axis) and v a minimal point of A: A[v] > 0 and A[v] > A[v - e_g] for
every g with v_g > 0. Its pair point serves A[v] at p.v + min { p.w : B[w] >= A[v], w <= N - v }; the same
for B's minimal points with A. Each is a real pair, and every pair (v, w) with v + w <= N is matched or beaten
by one: if A[v] <= B[w], lower v to a minimal v' <= v with A[v'] = A[v] (A is monotone); v' serves A[v] at <=
p.v' + p.w (w still fits, B[w] >= A[v']). The points are evaluated in order of a lower bound, p.v plus B's
cheapest point of value >= A[v] anywhere, and one whose bound a point at hand already matches (no dearer,
serving as much) is skipped: on realistic's mix about 2,700 evaluations of 72,000 minimal points.
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np

from .fleet_master import NODE_LIMIT
from .fleet_pricing import SearchLimit

log = logging.getLogger(__name__)
LATTICE_LIMIT = 2_000_000
MAX_DUAL_SETS = 40
STEP_TOL = 1e-9
# a dual set's Delta also covers the later unproven steps needing up to RANGE x its first step's, and at most
# STRETCH_GPUS GPU-hours of the cheapest type more (measured on realistic's two-class mix: RANGE 1.0 took 18
# dual sets, 2.0 an enumeration of 60,000 replicas, 1.25-1.5 the least time; on a three-class mix RANGE alone
# stretched a need of 33 $/h to 48, 412,000 replicas in 75 s)
RANGE = 1.5
STRETCH_GPUS = 2.0
PAIR_BATCH = 256  # pair points tested against the points at hand at once
FIRST_SHARE = 0.5  # of a new dual set's first need: its first, cheap enumeration


def lattice_fleets(counts: tuple[int, ...], replicas: dict[tuple, float], F: np.ndarray | None = None) -> np.ndarray:
    """F[u]: the most tokens/s of a fleet of these replicas (GPUs per type -> tokens/s) using <= u GPUs; given
    F (the same for other replicas), of a fleet of both (a knapsack's items may come in any order)."""
    F = np.zeros(tuple(c + 1 for c in counts)) if F is None else F.copy()
    for n, rate in replicas.items():
        copies = min(c // k for c, k in zip(counts, n) if k > 0)
        m = 1
        while copies > 0:  # 1, 2, 4, ... copies as 0/1 items: any number up to `copies`
            take = min(m, copies)
            dst = tuple(slice(take * k, None) for k in n)
            src = tuple(slice(0, c + 1 - take * k) for c, k in zip(counts, n))
            np.maximum(F[dst], F[src] + take * rate, out=F[dst])
            copies -= take
            m *= 2
    return F


def pareto(replicas: dict[tuple, float]) -> dict[tuple, float]:
    """Drop every replica another beats on GPUs (<= per type) and tokens/s (>=): the knapsack never needs it."""
    keys = list(replicas)
    if len(keys) < 2:
        return dict(replicas)
    n = np.array(keys, dtype=np.int64)
    r = np.array([replicas[k] for k in keys])
    order = np.lexsort((n.sum(axis=1), -r))  # fastest first, then fewest GPUs
    n, r = n[order], r[order]
    keep = np.ones(len(keys), dtype=bool)
    for i in range(1, len(keys)):
        keep[i] = not np.any(np.all(n[:i][keep[:i]] <= n[i], axis=1))
    return {tuple(int(x) for x in n[i]): float(r[i]) for i in np.flatnonzero(keep)}


def lattice_cost(shape: tuple[int, ...], prices: np.ndarray) -> np.ndarray:
    """$/hour of every GPU usage u of the lattice: p.u."""
    cost = np.zeros(shape)
    for g, p in enumerate(prices):
        axis = [1] * len(shape)
        axis[g] = shape[g]
        cost = cost + p * np.arange(shape[g]).reshape(axis)
    return cost


def curve_of(F: np.ndarray, prices: np.ndarray) -> list[tuple[float, float, float]]:
    """(demand from, demand to, cost) steps of min cost against demand, from the lattice."""
    return steps_of(lattice_cost(F.shape, prices).ravel(), F.ravel())


def steps_of(cost: np.ndarray, served: np.ndarray) -> list[tuple[float, float, float]]:
    """The step curve of points (cost, demand served): min cost against demand."""
    c, f = np.round(cost, 9), served
    order = np.lexsort((-f, c))
    c, f = c[order], f[order]
    steps, last = [], 0.0
    top = np.maximum.accumulate(f)
    rise = np.flatnonzero(top > np.concatenate([[0.0], top[:-1]]) * (1 + 1e-12) + 1e-12)
    for i in rise:
        if steps and c[i] <= steps[-1][2]:
            steps[-1] = (steps[-1][0], float(top[i]), steps[-1][2])
        else:
            steps.append((last, float(top[i]), float(c[i])))
        last = float(top[i])
    return steps


def minimal_points(A: np.ndarray) -> np.ndarray:
    """Flat indices (C order) of the lattice points v with A[v] > 0 and A[v] > A[v - e_g] for every g with
    v_g > 0: where a monotone A rises. Every other point v has a minimal v' <= v with A[v'] = A[v]."""
    keep = A > 0
    for g in range(A.ndim):
        lower = [slice(None)] * A.ndim
        upper = [slice(None)] * A.ndim
        lower[g], upper[g] = slice(0, -1), slice(1, None)
        keep[tuple(upper)] &= A[tuple(upper)] > A[tuple(lower)]
    return np.flatnonzero(keep)


def maxmin(A: np.ndarray, B: np.ndarray, deadline: float = math.inf) -> np.ndarray:
    """G[u] = max over v <= u of min(A[v], B[u - v]) for A, B non-decreasing along every axis: the most demand
    two classes' fleets serve together on u GPUs (module docstring). Only the minimal points v of one side
    are paired (a v with A[v] = A[v - e_g] is beaten by v - e_g, B being monotone), each writing
    min(A[v], B[. - v]) over the box above it; the side with fewer minimal points is the one paired.
    TimeoutError past `deadline`."""
    ma, mb = minimal_points(A), minimal_points(B)
    if ma.size > mb.size:
        A, B, ma = B, A, mb
    G = np.zeros(A.shape)
    flat_A, shape = A.ravel(), A.shape
    for n, (k, v) in enumerate(zip(ma, zip(*np.unravel_index(ma, shape)))):
        if n % 1024 == 1023 and time.perf_counter() > deadline:
            raise TimeoutError()
        dst = tuple(slice(x, None) for x in v)
        src = tuple(slice(0, n - x) for n, x in zip(shape, v))
        np.maximum(G[dst], np.minimum(B[src], flat_A[k]), out=G[dst])
    return G


def pair_points(A: np.ndarray, B: np.ndarray, prices: np.ndarray,
                deadline: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    """(demand served, cost) of points whose step curve is curve_of(maxmin(A, B)) (module docstring: the
    pair points P_v and Q_w, evaluated lazily in order of their lower bounds)."""
    shape = A.shape
    if not (A > 0).any() or not (B > 0).any():  # a class no fleet serves: no demand is served
        return np.zeros(0), np.zeros(0)
    room = np.array(shape) - 1
    cost = lattice_cost(shape, prices).ravel()
    sides = []
    for X, Y in ((A, B), (B, A)):
        mx, my = minimal_points(X), minimal_points(Y)
        order = np.argsort(-Y.ravel()[my], kind="stable")  # Y's minimal points by value, highest first
        my = my[order]
        vy, cy = Y.ravel()[my], cost[my]
        uy = np.array(np.unravel_index(my, shape))  # [axis, point]: a test per axis is one fast pass
        vx = X.ravel()[mx]
        k = np.searchsorted(-vy, -vx, side="right")  # Y's points of value >= vx: its first k
        cheapest = np.minimum.accumulate(cy) if cy.size else cy
        lb = cost[mx] + np.where(k > 0, cheapest[np.maximum(k - 1, 0)], np.inf)  # Y's cheapest, anywhere
        free = room[:, None] - np.array(np.unravel_index(mx, shape))  # [axis, point]: the room beside it
        sides.append((vx, lb, k, uy, cy, free, cost[mx]))
    side = np.concatenate([np.full(x[0].size, i) for i, x in enumerate(sides)])
    idx = np.concatenate([np.arange(x[0].size) for x in sides])
    lb = np.concatenate([x[1] for x in sides])
    val = np.concatenate([x[0] for x in sides])
    order = np.argsort(lb, kind="stable")
    order = order[np.isfinite(lb[order])]
    side, idx, lb, val = side[order], idx[order], lb[order], val[order]
    fv, fc = np.zeros(0), np.zeros(0)  # the points so far: values ascending, the least cost at >= each value
    got_v: list[float] = []
    got_c: list[float] = []
    for s in range(0, lb.size, PAIR_BATCH):
        if time.perf_counter() > deadline:
            raise TimeoutError()
        part = slice(s, s + PAIR_BATCH)
        j = np.searchsorted(fv, val[part], side="left")
        best = fc[np.minimum(j, fv.size - 1)] if fv.size else np.full(j.size, np.inf)
        live = s + np.flatnonzero(np.where(j < fv.size, best, np.inf) > lb[part])
        fresh = len(got_v)
        for t in live:  # not beaten by a point at hand: its cheapest partner that fits beside it
            a, bound = val[t], lb[t]
            if any(got_v[n] >= a and got_c[n] <= bound for n in range(fresh, len(got_v))):
                continue  # beaten by a point of this batch
            vx, _, k, uy, cy, free, own = sides[side[t]]
            i = idx[t]
            fit = np.all(uy[:, :k[i]] <= free[:, i:i + 1], axis=0)
            if fit.any():
                got_v.append(float(vx[i]))
                got_c.append(float(own[i] + np.min(cy[:k[i]][fit])))
        if len(got_v) > fresh:
            o = np.argsort(got_v, kind="stable")
            fv = np.array(got_v)[o]
            fc = np.minimum.accumulate(np.array(got_c)[o][::-1])[::-1]
    return np.array(got_v), np.array(got_c)


def mix_steps(F: list[np.ndarray], fractions: list[float], prices: np.ndarray,
              deadline: float = math.inf) -> list[tuple[float, float, float]]:
    """The step curve of min cost against demand D when class q (F[q][u]: the most tokens/s its fleets give
    on <= u GPUs) must serve f_q D: one class, F itself; more, the classes folded by maxmin, the last
    pair by pair_points. TimeoutError past `deadline`."""
    if len(F) == 1:
        return curve_of(F[0], prices)
    H = F[0] / fractions[0]
    for Fq, f in zip(F[1:-1], fractions[1:-1]):
        H = maxmin(H, Fq / f, deadline)
    value, cost = pair_points(H, F[-1] / fractions[-1], prices, deadline)
    return steps_of(cost, value)


def dual_bound(m, duals: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of L(D) = (sum_q pi_q f_q) D + mu.N, below the cost of every fleet serving D plus
    its replicas' reduced costs (module docstring); pi clipped at 0 as the pricing clips it
    (fleet_master._price), mu at 0 (a GPU row's dual above 0 only loosens mu.(n.y) >= mu.N)."""
    pi = float(sum(max(0.0, float(duals[q])) * f for q, f in enumerate(m.fractions)))
    return pi, float(np.minimum(0.0, duals[m.Q:m.Q + m.T]) @ np.array(m.counts, dtype=float))


def mixed_curve(fleet, capacity: float, time_limit: float, deadline: float,
                seed: list | None = None) -> tuple[list[tuple], int] | None:
    """The exact mixed-pool step curve (module docstring): ([(from, to, cost)], dual sets used), or None when
    it does not apply or cannot be proven before `deadline` (the caller then solves step by step). `seed`:
    the (class, replica) pairs S starts from (default: every column of the master); they must include a
    fleet at the capacity."""
    m = fleet.master
    counts = tuple(int(c) for c in m.counts)
    if math.prod(c + 1 for c in counts) > LATTICE_LIMIT:
        return None
    prices = np.array([fleet.prices[g] for g in fleet.types])
    fractions = [float(f) for f in m.fractions]
    S: list[dict[tuple, float]] = [{} for _ in range(m.Q)]  # per class: GPUs -> the fastest replica's tokens/s

    def take(q, gpus, theta):
        rate = theta * m.betas[q]
        if rate > S[q].get(gpus, 0.0):
            S[q][gpus] = new[q][gpus] = rate

    new: list[dict[tuple, float]] = [{} for _ in range(m.Q)]  # S's replicas not yet in F
    F: list[np.ndarray | None] = [None] * m.Q
    for q, r in m.cols if seed is None else seed:  # every replica the master has found (the capacity's fleet
        take(q, r.gpus, r.tokens_per_s)           # among them)
    proofs: list[tuple[float, float, float]] = []  # (sum_q pi_q f_q, mu.N, Delta)
    sets, at, stage = 0, None, 0
    for _ in range(3 * MAX_DUAL_SETS):
        if time.perf_counter() > deadline:
            return None
        for q in range(m.Q):
            if new[q] or F[q] is None:
                F[q], new[q] = lattice_fleets(counts, pareto(new[q]), F[q]), {}
        try:
            steps = mix_steps(F, fractions, prices, deadline)
        except TimeoutError:
            log.info("knapsack curve: the deadline passed while combining the classes: step by step instead")
            return None
        if not steps or abs(steps[-1][1] - capacity) > 1e-6 * max(1.0, capacity):
            log.info("knapsack curve ends at %.6g, the capacity is %.6g: step by step instead", steps[-1][1] if steps
                     else 0.0, capacity)
            return None
        slack = [STEP_TOL * max(1.0, c) for _, _, c in steps]
        unproven = [i for i, (lo, _, c) in enumerate(steps)
                    if not any(c <= pi * lo + muN + delta - slack[i] for pi, muN, delta in proofs)]
        if not unproven:
            return steps, sets
        lo, _, c = steps[unproven[0]]
        if at != lo or stage >= 2:  # new duals, at the first unproven step's left end
            if sets >= MAX_DUAL_SETS:
                log.info("knapsack curve: %d dual sets left steps unproven: step by step instead", sets)
                return None
            demand = min(capacity, lo + 1e-6 * capacity)
            got = m.lp_duals(fleet.demands(demand), max(0.01, min(time_limit, deadline - time.perf_counter())),
                             fleet.cancel)
            if got is None:
                log.info("knapsack curve: the LP duals at %.6g were not priced to completion in time", demand)
                return None
            duals, lp = got
            pi, muN = dual_bound(m, duals)
            tol = 1e-9 * max(1.0, abs(lp))
            sets, at, stage = sets + 1, lo, 0
        need = [steps[i][2] - (pi * steps[i][0] + muN) for i in unproven]
        if stage == 0 and sets == 1 and need[0] > 0.01 * c:
            # at first S holds only the master's columns and the curve is far from the truth, its needs too
            # high: half the first need is enumerated first (an enumeration grows about 4x per 3.5 $/h of
            # Delta on realistic's mix), and the needs of the curve it gives are much nearer the truth
            delta = FIRST_SHARE * need[0]
        else:  # enough for this step and for the later unproven ones that need a little more
            reach = min(RANGE * need[0], need[0] + STRETCH_GPUS * float(prices.min()))
            delta = max(x for x in need if x <= max(reach, need[0] + 0.01 * c))
            stage = 1
        delta += tol * (sum(counts) + 1) + 2 * slack[unproven[0]]
        stage += 1
        try:
            found, _ = m._price(duals, True, delta, deadline, fleet.cancel, NODE_LIMIT, cap=False)
        except (SearchLimit, TimeoutError) as exc:
            log.info("knapsack curve: the enumeration within Delta %.6g stopped (%s): step by step instead", delta,
                     type(exc).__name__)
            return None
        for q, f in found:
            take(q, f.gpus, f.theta)
        log.debug("dual set %d at %.6g: pi %.6g, Delta %.6g (need %.6g), %d replicas within it, %d unproven of %d "
                  "steps", sets, lo, pi, delta, need[0], len(found), len(unproven), len(steps))
        # every replica outside S now has rc > delta under these duals; the slack covers -tol per replica
        proofs.append((pi, muN, delta - tol * (sum(counts) + 1)))
    return None
