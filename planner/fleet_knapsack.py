"""The mixed pool's demand curve without a MILP per step: a knapsack over GPU usage, proven by LP duals.

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
needed Delta enumerated (the pricing's exact branch and bound). Only for one request class and a lattice
of at most LATTICE_LIMIT points; else the caller uses its parametric solves.
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


def lattice_fleets(counts: tuple[int, ...], replicas: dict[tuple, float]) -> np.ndarray:
    """F[u]: the most tokens/s of a fleet of these replicas (GPUs per type -> tokens/s) using <= u GPUs."""
    F = np.zeros(tuple(c + 1 for c in counts))
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


def curve_of(F: np.ndarray, prices: np.ndarray) -> list[tuple[float, float, float]]:
    """(demand from, demand to, cost) steps of min cost against demand, from the lattice."""
    cost = np.zeros(F.shape)
    for g, p in enumerate(prices):
        shape = [1] * F.ndim
        shape[g] = F.shape[g]
        cost = cost + p * np.arange(F.shape[g]).reshape(shape)
    c, f = np.round(cost.ravel(), 9), F.ravel()
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


def mixed_curve(fleet, capacity: float, time_limit: float, deadline: float) -> tuple[list[tuple], int] | None:
    """The exact mixed-pool step curve (module docstring): ([(from, to, cost)], dual sets used), or None when
    it does not apply or cannot be proven before `deadline` (the caller then solves step by step)."""
    m = fleet.master
    counts = tuple(int(c) for c in m.counts)
    if fleet.mix or math.prod(c + 1 for c in counts) > LATTICE_LIMIT:
        return None
    prices = np.array([fleet.prices[g] for g in fleet.types])
    beta = fleet.betas[0]
    S: dict[tuple, float] = {}

    def take(gpus, theta):
        if theta * beta > S.get(gpus, 0.0):
            S[gpus] = theta * beta

    for _, r in m.cols:  # every replica the master has found (the capacity's fleet among them)
        take(r.gpus, r.tokens_per_s)
    proofs: list[tuple[float, float, float]] = []  # (pi, mu.N, Delta)
    N = np.array(counts, dtype=float)
    for _ in range(MAX_DUAL_SETS):
        if time.perf_counter() > deadline:
            return None
        steps = curve_of(lattice_fleets(counts, pareto(S)), prices)
        if not steps or abs(steps[-1][1] - capacity) > 1e-6 * max(1.0, capacity):
            log.info("knapsack curve ends at %.6g, the capacity is %.6g: step by step instead", steps[-1][1] if steps
                     else 0.0, capacity)
            return None
        slack = [STEP_TOL * max(1.0, c) for _, _, c in steps]
        unproven = [i for i, (lo, _, c) in enumerate(steps)
                    if not any(c <= pi * lo + muN + delta - slack[i] for pi, muN, delta in proofs)]
        if not unproven:
            return steps, len(proofs)
        lo, _, c = steps[unproven[0]]
        demand = min(capacity, lo + 1e-6 * capacity)
        got = m.lp_duals([demand], max(0.01, min(time_limit, deadline - time.perf_counter())), fleet.cancel)
        if got is None:
            return None
        duals, lp = got
        pi = max(0.0, float(duals[0]))
        mu = np.minimum(0.0, duals[m.Q:m.Q + m.T])
        muN = float(mu @ N)
        tol = 1e-9 * max(1.0, abs(lp))
        # Delta: enough for this step and for the later unproven ones that need at most twice as much
        need = [steps[i][2] - (pi * steps[i][0] + muN) for i in unproven]
        delta = max(x for x in need if x <= max(2 * need[0], need[0] + 0.01 * c))
        delta += tol * (sum(counts) + 1) + 2 * slack[unproven[0]]
        try:
            found, _ = m._price(duals, True, delta, deadline, fleet.cancel, NODE_LIMIT, cap=False)
        except (SearchLimit, TimeoutError):
            return None
        for _, f in found:
            take(f.gpus, f.theta)
        # every replica outside S now has rc > delta under these duals; the slack covers -tol per replica
        proofs.append((pi, muN, delta - tol * (sum(counts) + 1)))
    return None

