"""Why a scenario has no plan (`Planner.explain_infeasible`): which limit binds, by how much, and what
would make the scenario feasible, found by relaxing each limit on its own and solving again.

A mixin of `Planner` (planner.search); it builds the relaxed planners as `type(self)(...)`.
"""
from __future__ import annotations

from dataclasses import replace

from .errors import InfeasibleError, InputError, SolverError
from .plan import Plan
from .search_exact import EXACT_GAP
from .units import GB, GIB


class InfeasibilityExplanation:
    def explain_infeasible(self) -> InfeasibleError | SolverError:
        """Say which limit binds, by how much, and what would make the scenario feasible: memory against
        what the model needs at the requested context, then each limit relaxed on its own (budget,
        throughput floor, latency SLOs, max stages, min layers per stage, segment sizes, GPU counts)."""
        from . import perf

        stopped = [x for x in getattr(self, "_limits", ()) if "before finding a plan" in x]
        if stopped:  # not proven infeasible: a limit stopped a solve that might have found a plan
            return SolverError(f"no plan found within the time limit ({self.scenario.settings.time_limit_s:g} s): "
                               f"{stopped[0]}; raise the time limit", "time_limit")
        sc = self.scenario
        st = sc.settings
        m, w, e = sc.model, sc.workload, sc.engine
        binding: list[str] = []
        hints: list[str] = []
        weights_gb = (m.num_layers * perf.layer_weight_bytes(m) + 2 * perf.embedding_bytes(m)) / GB
        seqs = w.concurrency or 1
        kv_tokens = perf.workload_kv_tokens(w)
        kv_gb = seqs * perf.stage_kv_bytes_per_sequence_per_gpu(m, m.num_layers, 1, kv_tokens) / GB
        usable = sum(e_.count * max(0.0, e_.spec.memory_bytes * e.memory_utilization
                                    - e.runtime_reserve_gib * GIB) / GB for e_ in sc.pool.entries)
        need = weights_gb + kv_gb
        slo = st.max_ttft_ms is not None or st.max_tpot_ms is not None
        blocked_by_slo = slo and any(o.bound == "latency" for o in self.candidates.excluded)
        if need > usable:
            binding.append(f"memory: the model needs {need:.0f} GB (weights {weights_gb:.0f} GB + KV cache "
                           f"{kv_gb:.1f} GB for {seqs} sequence(s) holding {kv_tokens} tokens on average) but the whole "
                           f"pool has {usable:.0f} GB usable ({e.memory_utilization:.0%} of memory less "
                           f"{e.runtime_reserve_gib:g} GiB per GPU): short by {need - usable:.0f} GB")
            hints.append(f"add at least {need - usable:.0f} GB of GPU memory, or serve a smaller model or "
                         f"shorter context")
        elif (not self.candidates.options or not self.levels) and not blocked_by_slo:
            what = ("no stage option fits on any GPU" if not self.candidates.options
                    else "no GPU can hold the first or the last stage (embedding / LM head)")
            binding.append(f"memory: {what} (model weights {weights_gb:.0f} GB, pool usable memory {usable:.0f} GB; "
                           f"a stage must fit inside one node's tensor-parallel group)")
            hints.append("add GPUs with more memory per node, lower the concurrency or context, or allow "
                         "smaller segments")
        if not binding:
            relaxations = [
                ("max_usd_per_hour", None, "budget cap ${:g}/h"),
                ("min_tokens_per_s", None, "throughput floor {:g} tokens/s"),
                ("max_ttft_ms", None, "TTFT SLO {:g} ms"),
                ("max_tpot_ms", None, "TPOT SLO {:g} ms"),
                ("max_stages", m.num_layers, "max pipeline stages {}"),
                ("min_layers_per_stage", 1, "min layers per stage {}"),
            ]
            for field_name, value, label in relaxations:
                current = getattr(st, field_name)
                if current is None or current == value:
                    continue
                plan = self._relaxed_plan(settings=replace(st, **{field_name: value}))
                if plan is None:
                    continue
                binding.append(label.format(current))
                if field_name == "max_usd_per_hour":
                    hints.append(f"raise the budget to at least ${plan.cost_usd_per_hour:.2f}/h "
                                 f"(+${plan.cost_usd_per_hour - current:.2f}/h)")
                elif field_name == "max_stages":
                    hints.append(f"allow {len(plan.stages)} stages")
                elif field_name == "min_layers_per_stage":
                    hints.append(f"allow stages of {min(s.num_layers for s in plan.stages)} layers")
                elif field_name == "max_ttft_ms":
                    hints.append(f"the cheapest plan without the TTFT limit has TTFT {plan.ttft_s * 1e3:.0f} ms")
                elif field_name == "max_tpot_ms":
                    hints.append(f"the cheapest plan without the TPOT limit has TPOT {plan.tpot_s * 1e3:.1f} ms")
                else:
                    fastest = type(self)(replace(sc, settings=replace(st, min_tokens_per_s=None))).max_throughput(None)
                    hints.append(f"lower the floor to {fastest.tokens_per_s:.0f} tokens/s or less "
                                 f"(asked {current:g})")
            if not binding and slo:
                plan = self._relaxed_plan(settings=replace(st, max_ttft_ms=None, max_tpot_ms=None))
                if plan is not None:
                    binding.append(f"latency SLOs together (TTFT {st.max_ttft_ms} ms, TPOT {st.max_tpot_ms} ms)")
                    hints.append(f"the cheapest plan without them has TTFT {plan.ttft_s * 1e3:.0f} ms and TPOT "
                                 f"{plan.tpot_s * 1e3:.1f} ms")
            if not binding and st.sizes is None and st.quantization != "full":
                plan = self._relaxed_plan(settings=replace(st, quantization="full"))
                if plan is not None:
                    binding.append(f"segment sizes ({st.quantization} set {list(self.candidates.sizes)})")
                    hints.append(f"use finer segment sizes (full): e.g. {[s.num_layers for s in plan.stages]}")
            if not binding:
                more = replace(sc.pool, entries=tuple(replace(x, count=x.count * 8) for x in sc.pool.entries))
                plan = self._relaxed_plan(pool=more)
                if plan is not None:
                    short = {g: n - sc.pool.entry(g).count for g, n in plan.gpus_by_type().items()
                             if n > sc.pool.entry(g).count}
                    binding.append("GPU counts: " + ", ".join(f"{g} has {sc.pool.entry(g).count}"
                                                              for g in short))
                    hints.append("add " + ", ".join(f"{n} x {g}" for g, n in short.items()) +
                                 f" (the cheapest plan with more GPUs uses {plan.num_gpus})")
            if not binding:
                binding.append(f"GPU counts / memory: the pool cannot hold {m.num_layers} layers "
                               f"({weights_gb:.0f} GB of weights) with the allowed segment sizes and limits")
                hints.append("add GPUs, use finer segment sizes, or lower the concurrency")
        return InfeasibleError("No plan satisfies the limits.", binding, hints)

    def _relaxed_plan(self, settings=None, pool=None) -> Plan | None:
        """The cheapest plan of this scenario with one thing changed, or None."""
        sc = replace(self.scenario, **{k: v for k, v in (("settings", settings), ("pool", pool)) if v is not None})
        try:
            other = type(self)(sc)
        except InputError:
            return None
        return other.min_cost(None, EXACT_GAP) if other.levels else None
