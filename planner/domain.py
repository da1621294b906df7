"""Domain objects: frozen, self-validating, with units in their field names."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import InputError, Problem
from .kinds import METHODS
from .units import DEFAULT_LINK_GB_PER_S, GIB

TOKEN_BASES = ("total", "output")
WEIGHT_SCALINGS = ("normalised", "seed")
USE_CASE_KEYS = ("chat", "batch", "custom")  # the rows of config/use_cases.csv (planner.usecases)

# Sanity limits: far above anything real, low enough to catch a typo (a price in cents, a count with
# three extra zeros) before it reaches the solver. Messages name the limit.
MAX_GPUS_PER_TYPE = 100_000
MAX_POOL_GPUS = 1_000_000
# GPU types in one pool: every type multiplies the stage options (and the network file needs every pair);
# the MILP stays fast to about 16 types (README, Scaling), 100 is far beyond any real pool
MAX_GPU_TYPES = 100
MAX_LAYERS = 10_000
MAX_CONTEXT_TOKENS = 10_000_000  # input + output per request; no model reads more
MAX_CONCURRENCY = 1_000_000
MAX_GPU_MEMORY_GB = 10_000
MAX_PRICE_USD_PER_GPU_HOUR = 10_000
MAX_TFLOPS = 100_000
MAX_GB_PER_S = 1_000_000  # memory, NVLink/PCIe and network bandwidth
# Minimums: a figure below these is a typo or a unit slip, and a denormal (1e-320) would reach a division
# as zero. Inputs (files and flags) are held to them; the domain objects refuse only what no computation
# survives (below MIN_MAGNITUDE), so that the library can still scale prices or links for what-ifs.
MIN_PRICE_USD_PER_GPU_HOUR = 0.0001
MIN_GPU_MEMORY_GB = 0.1
MIN_TFLOPS = 0.01
MIN_GB_PER_S = 0.001  # 1 MB/s: memory, NVLink/PCIe and network bandwidth
MIN_BYTES_PER_PARAM = 0.1
MIN_MAGNITUDE = 1e-30  # any other number that is not 0


def _check_positive(owner: str, **values: float) -> None:
    problems = []
    for name, value in values.items():
        if value is None or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            problems.append(Problem(f"{name} must be a positive number, got {value!r}", owner, column=name))
        elif value < MIN_MAGNITUDE:
            problems.append(Problem(f"{name} is too small to be a real value, got {value!r} (below {MIN_MAGNITUDE:g})",
                                    owner, column=name))
    if problems:
        raise InputError(problems)


@dataclass(frozen=True)
class GpuSpec:
    """One GPU SKU as the performance model sees it.

    `memory_gb` is the vendor's nominal figure, and vendors' "80 GB" are 80 GiB (2^30 bytes): the
    model takes the capacity as `memory_gb` x 2^30 bytes (`memory_bytes`). `fp8_dense_tflops` is None
    where the GPU has no FP8 tensor cores (Ampere and older). `arch` (ampere, hopper, ada, ...) lets an
    engine profile's per-architecture factors apply to SKUs it has no row for."""

    sku: str
    memory_gb: float
    fp16_dense_tflops: float
    hbm_gb_per_s: float
    intra_link: str  # "nvlink" or "pcie": what tensor parallelism inside a node runs over
    intra_link_gb_per_s: float
    gpus_per_node: int
    price_usd_per_hour: float
    price_source: str = ""
    price_date: str = ""
    datasheet_source: str = ""
    arch: str = ""
    fp8_dense_tflops: float | None = None

    def __post_init__(self) -> None:
        _check_positive(
            f"GPU {self.sku}",
            memory_gb=self.memory_gb,
            fp16_dense_tflops=self.fp16_dense_tflops,
            hbm_gb_per_s=self.hbm_gb_per_s,
            intra_link_gb_per_s=self.intra_link_gb_per_s,
            gpus_per_node=self.gpus_per_node,
            price_usd_per_hour=self.price_usd_per_hour,
        )
        if self.fp8_dense_tflops is not None:
            _check_positive(f"GPU {self.sku}", fp8_dense_tflops=self.fp8_dense_tflops)
        if self.intra_link not in ("nvlink", "pcie"):
            raise InputError(f"GPU {self.sku}: intra_link must be 'nvlink' or 'pcie', got {self.intra_link!r}")

    @property
    def memory_bytes(self) -> float:
        """Capacity in bytes: the vendor's GB are GiB (80 GB = 85.9e9 bytes)."""
        return self.memory_gb * GIB


@dataclass(frozen=True)
class PoolEntry:
    """A GPU type in the pool: how many, and the spec (catalogue values with the pool's overrides)."""

    name: str  # as the user wrote it (the seed's "A100")
    count: int
    spec: GpuSpec

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count <= 0:
            raise InputError(Problem(f"count must be a positive integer, got {self.count!r}", f"GPU type {self.name}",
                                     column="count"))
        if self.count > MAX_GPUS_PER_TYPE:
            raise InputError(Problem(f"count {self.count} is above the limit of {MAX_GPUS_PER_TYPE:,} GPUs of one type",
                                     f"GPU type {self.name}", column="count"))


@dataclass(frozen=True)
class Pool:
    """The heterogeneous GPU pool plus stage-to-stage link bandwidth by GPU-type pair (GB/s)."""

    entries: tuple[PoolEntry, ...]
    link_gb_per_s: tuple[tuple[str, str, float], ...] = ()  # (type a, type b, GB/s), unordered pairs
    default_link_gb_per_s: float = DEFAULT_LINK_GB_PER_S

    def __post_init__(self) -> None:
        if not self.entries:
            raise InputError("the GPU pool is empty")
        if len(self.entries) > MAX_GPU_TYPES:
            raise InputError(f"the GPU pool has {len(self.entries):,} GPU types, above the limit of {MAX_GPU_TYPES}")
        seen: set[str] = set()
        dupes = sorted({e.name for e in self.entries if e.name in seen or seen.add(e.name)})  # linear
        if dupes:
            raise InputError(f"GPU pool lists {', '.join(dupes)} more than once")
        _check_positive("pool", default_link_gb_per_s=self.default_link_gb_per_s)
        if self.total_gpus > MAX_POOL_GPUS:
            raise InputError(f"the pool has {self.total_gpus:,} GPUs, above the limit of {MAX_POOL_GPUS:,}")

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def entry(self, name: str) -> PoolEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def link(self, a: str, b: str) -> float:
        for x, y, bw in self.link_gb_per_s:
            if (x, y) == (a, b) or (x, y) == (b, a):
                return bw
        return self.default_link_gb_per_s

    @property
    def total_gpus(self) -> int:
        return sum(e.count for e in self.entries)


@dataclass(frozen=True)
class ModelSpec:
    """A dense decoder-only transformer."""

    name: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    ffn_size: int
    gated_mlp: bool
    vocab_size: int
    bytes_per_param: float = 2.0
    tied_embeddings: bool = False
    # The seed's `layer_weight_memory_gb`: when given, it replaces the per-layer weight memory
    # computed from the architecture (the user's own figure wins, and we say so). It is the layer's
    # weights, so it also sets the bytes read per step and the FLOPs (parameters = override /
    # bytes_per_param): see perf.layer_params.
    layer_weight_gb_override: float | None = None
    # The context window (Hugging Face config.json `max_position_embeddings`): the most input + output
    # tokens one request may hold. None: not known (a model given by its dimensions), not checked.
    max_position_embeddings: int | None = None
    # Precision (see PRECISIONS and perf.apply_precision): bytes per KV-cache element (None: as the
    # weights, the seed's convention), bytes per embedding / LM-head element (None: as the weights;
    # quantised checkpoints keep them 16-bit), and whether the matmuls run on FP8 tensor cores where the
    # GPU has them.
    kv_bytes_per_element: float | None = None
    embedding_bytes_per_element: float | None = None
    fp8_compute: bool = False
    precision: str = "bf16"

    def __post_init__(self) -> None:
        _check_positive(
            f"model {self.name}",
            num_layers=self.num_layers,
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            head_dim=self.head_dim,
            ffn_size=self.ffn_size,
            vocab_size=self.vocab_size,
            bytes_per_param=self.bytes_per_param,
        )
        if self.num_layers > MAX_LAYERS:
            raise InputError(Problem(f"{self.num_layers} layers is above the limit of {MAX_LAYERS:,} layers",
                                     f"model {self.name}", column="num_layers"))
        if self.num_kv_heads > self.num_heads or self.num_heads % self.num_kv_heads:
            raise InputError(Problem(f"num_kv_heads ({self.num_kv_heads}) must divide num_heads ({self.num_heads})",
                                     f"model {self.name}", column="num_kv_heads"))
        if self.layer_weight_gb_override is not None:
            _check_positive(f"model {self.name}", layer_weight_memory_gb=self.layer_weight_gb_override)
        if self.max_position_embeddings is not None:
            _check_positive(f"model {self.name}", max_position_embeddings=self.max_position_embeddings)

    def context_problem(self, input_tokens: int, output_tokens: int) -> str | None:
        """Why requests of this shape do not fit the model's context window (None when they do)."""
        limit = self.max_position_embeddings
        if limit is None or input_tokens + output_tokens <= limit:
            return None
        return (f"input_tokens + output_tokens = {input_tokens + output_tokens:,} exceeds {self.name}'s context "
                f"window of {limit:,} tokens (max_position_embeddings); shorten the requests or pick a model with "
                "a longer context")


@dataclass(frozen=True)
class Workload:
    """What is served: request shape and how many sequences are in flight."""

    input_tokens: int
    output_tokens: int
    concurrency: int | None = None  # None: as many as memory and the engine cap allow
    token_basis: str = "total"  # what a "token" is in $/token: input+output ("total") or "output"

    def __post_init__(self) -> None:
        _check_positive("workload", input_tokens=self.input_tokens, output_tokens=self.output_tokens)
        if self.concurrency is not None:
            _check_positive("workload", concurrency=self.concurrency)
        if self.token_basis not in TOKEN_BASES:
            raise InputError(Problem(f"token_basis must be one of {TOKEN_BASES}, got {self.token_basis!r}", "workload",
                                     column="token_basis"))
        if self.input_tokens + self.output_tokens > MAX_CONTEXT_TOKENS:
            raise InputError(Problem(f"a context of {self.input_tokens + self.output_tokens:,} tokens (input + output) "
                                     f"is above the limit of {MAX_CONTEXT_TOKENS:,} tokens", "workload",
                                     column="input_tokens"))

    @property
    def context_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def basis_fraction(self) -> float:
        """Share of the processed tokens that count as billable tokens."""
        if self.token_basis == "output":
            return self.output_tokens / self.context_tokens
        return 1.0


@dataclass(frozen=True)
class GpuEfficiency:
    """An engine's kernel efficiencies on one GPU SKU or architecture (`gpu` = a SKU, or `arch:<name>`,
    e.g. `arch:ampere`): achieved / datasheet dense tensor FLOP/s and HBM bandwidth."""

    gpu: str
    compute_efficiency: float
    hbm_efficiency: float
    source: str = ""

    def __post_init__(self) -> None:
        _check_positive(f"engine efficiencies on {self.gpu}", compute_efficiency=self.compute_efficiency,
                        hbm_efficiency=self.hbm_efficiency)


LINK_KINDS = ("nvlink", "pcie", "network")


@dataclass(frozen=True)
class EngineProfile:
    """How a serving engine runs on the hardware: a few physical parameters (planner/perf.py uses them).

    * Kernel efficiency against the datasheet: per GPU or architecture in `gpu_efficiencies`
      (config/engine_gpus.csv); `compute_efficiency` / `hbm_efficiency` apply to GPUs with no row.
    * Links, each with a bandwidth efficiency (achieved / nominal) and a latency per call: NVLink and
      PCIe for the tensor-parallel all-reduce and for hand-offs inside a node, the network for hand-offs
      between nodes.
    * Host: `launch_us_per_layer`, the host's time to issue one layer's kernels in a forward step (tens of
      us in eager mode, ~0 with CUDA graphs); it overlaps GPU work (the step takes the longer of the two).
      `scheduler_ms` + `scheduler_us_per_seq` x batch: the engine's scheduling, sampling and output
      processing, paid once per engine step and not overlapped with it (the next step waits for it);
      a pipeline pays it once per microbatch step, not once per stage.
    * Memory: the share of GPU memory the engine takes, a runtime reserve (CUDA context, CUDA graphs,
      non-torch allocations; GiB), the engine's cap on sequences and its prefill chunk."""

    name: str
    compute_efficiency: float
    hbm_efficiency: float
    nvlink_efficiency: float
    nvlink_latency_us: float
    pcie_efficiency: float
    pcie_latency_us: float
    network_efficiency: float
    network_latency_us: float
    launch_us_per_layer: float
    scheduler_ms: float
    scheduler_us_per_seq: float
    memory_utilization: float  # fraction of GPU memory the engine may use
    runtime_reserve_gib: float  # CUDA context, CUDA graphs, workspace (GiB per GPU)
    max_num_seqs: int  # engine cap on sequences in flight
    prefill_chunk_tokens: int  # activation workspace is sized for this many tokens
    source: str = ""
    gpu_efficiencies: tuple[GpuEfficiency, ...] = ()
    # GPUs whose all-reduce traffic the host's PCIe root carries at full link speed: a PCIe all-reduce
    # over more GPUs than this is limited by the shared root (perf.allreduce_seconds). A property of the
    # servers the profile was fitted on.
    pcie_root_gpus: float = 8.0
    # What `memory_utilization` is a share of: "total" GPU memory (vLLM's gpu_memory_utilization, SGLang's
    # mem_fraction_static) or the memory still "free" once weights, activations and the runtime are in
    # place (TensorRT-LLM's kv_cache_free_gpu_mem_fraction, 0.9 by default).
    memory_fraction_of: str = "total"
    # How much better than a ring an all-reduce over NVLink scales with the group: the ring's time is divided
    # by (tp / 2) ** nvswitch_exponent (0: a plain ring). NVSwitch nodes reduce in the switch (NVLS on
    # Hopper), so NCCL's bus bandwidth rises with the GPU count; fitted on NCCL timings.
    nvswitch_exponent: float = 0.0
    # All-reduces larger than `allreduce_large_mb` (MB) move the bytes past it at `allreduce_large_ratio` of
    # the link's rate (perf.large_allreduce_seconds); 0 / 1: one rate for every size.
    allreduce_large_mb: float = 0.0
    allreduce_large_ratio: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.allreduce_large_ratio, (int, float)) and 0 < self.allreduce_large_ratio <= 1):
            raise InputError(f"engine {self.name}: allreduce_large_ratio must be in (0, 1], "
                             f"got {self.allreduce_large_ratio!r}")
        if not (isinstance(self.nvswitch_exponent, (int, float)) and 0 <= self.nvswitch_exponent <= 1):
            raise InputError(f"engine {self.name}: nvswitch_exponent must be between 0 and 1, "
                             f"got {self.nvswitch_exponent!r}")
        if self.memory_fraction_of not in ("total", "free"):
            raise InputError(f"engine {self.name}: memory_fraction_of must be 'total' or 'free', "
                             f"got {self.memory_fraction_of!r}")
        _check_positive(
            f"engine {self.name}",
            pcie_root_gpus=self.pcie_root_gpus,
            compute_efficiency=self.compute_efficiency,
            hbm_efficiency=self.hbm_efficiency,
            nvlink_efficiency=self.nvlink_efficiency,
            pcie_efficiency=self.pcie_efficiency,
            network_efficiency=self.network_efficiency,
            memory_utilization=self.memory_utilization,
            max_num_seqs=self.max_num_seqs,
            prefill_chunk_tokens=self.prefill_chunk_tokens,
        )
        for name in ("nvlink_latency_us", "pcie_latency_us", "network_latency_us", "launch_us_per_layer",
                     "scheduler_ms", "scheduler_us_per_seq", "runtime_reserve_gib", "allreduce_large_mb"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InputError(f"engine {self.name}: {name} must be a non-negative number, got {value!r}")

    def efficiencies(self, gpu: "GpuSpec") -> tuple[float, float, str]:
        """(compute, HBM efficiency, where they come from) on `gpu`: its SKU's row, else its
        architecture's row, else the profile's defaults."""
        by_key = {g.gpu.casefold(): g for g in self.gpu_efficiencies}
        for key in (gpu.sku.casefold(), f"arch:{gpu.arch}".casefold() if gpu.arch else None):
            hit = by_key.get(key) if key else None
            if hit is not None:
                return hit.compute_efficiency, hit.hbm_efficiency, hit.gpu
        return self.compute_efficiency, self.hbm_efficiency, "default"

    def link(self, kind: str) -> tuple[float, float]:
        """(bandwidth efficiency, latency in us per call) of a link kind: nvlink, pcie or network."""
        if kind not in LINK_KINDS:
            raise ValueError(f"link kind must be one of {LINK_KINDS}, got {kind!r}")
        return getattr(self, f"{kind}_efficiency"), getattr(self, f"{kind}_latency_us")

    def scaled(self, compute: float = 1.0, hbm: float = 1.0, link: float = 1.0,
               overhead: float = 1.0) -> "EngineProfile":
        """The same profile with its efficiency factors (every GPU's) and host times scaled (what-if on
        accuracy)."""
        from dataclasses import replace

        return replace(
            self,
            name=f"{self.name}*",
            compute_efficiency=self.compute_efficiency * compute,
            hbm_efficiency=self.hbm_efficiency * hbm,
            nvlink_efficiency=self.nvlink_efficiency * link,
            pcie_efficiency=self.pcie_efficiency * link,
            network_efficiency=self.network_efficiency * link,
            launch_us_per_layer=self.launch_us_per_layer * overhead,
            scheduler_ms=self.scheduler_ms * overhead,
            scheduler_us_per_seq=self.scheduler_us_per_seq * overhead,
            gpu_efficiencies=tuple(replace(g, compute_efficiency=g.compute_efficiency * compute,
                                           hbm_efficiency=g.hbm_efficiency * hbm) for g in self.gpu_efficiencies),
        )


# Weight / KV precisions (perf.apply_precision): bytes per weight, default bytes per KV element, whether
# the matmuls run in FP8 where the GPU has FP8 tensor cores. int4 is weight-only (AWQ/GPTQ, group 128:
# 0.5 byte plus a 16-bit scale per 128 weights); compute stays 16-bit. fp8 is W8A8 on Ada/Hopper/Blackwell;
# on GPUs without FP8 tensor cores (Ampere and older) vLLM runs FP8 checkpoints weight-only (Marlin
# kernels): weights are 1 byte, compute stays 16-bit (perf.compute_tflops).
PRECISIONS: dict[str, tuple[float, float, bool]] = {
    "bf16": (2.0, 2.0, False),
    "fp16": (2.0, 2.0, False),
    "fp8": (1.0, 1.0, True),
    "int4": (0.5 + 2 / 128, 2.0, False),
}
KV_PRECISIONS: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}


@dataclass(frozen=True)
class SearchSettings:
    """How to search: method, candidate sizes and limits."""

    method: str = "exact"
    cost_weight: float = 0.5  # weighted method: 0 = pure throughput, 1 = pure cost (the seed's convention)
    quantization: str = "coarse"
    sizes: tuple[int, ...] | None = None  # explicit segment sizes; overrides quantization
    budget_factors: tuple[float, ...] = (0.4, 0.7, 0.9, 1.0, 1.2, 1.5)
    max_stages: int = 8
    min_layers_per_stage: int = 1
    time_limit_s: float = 60.0
    mip_gap: float = 1e-4
    max_usd_per_hour: float | None = None  # hard budget cap
    target_usd_per_million_tokens: float | None = None  # competitor's price to beat
    min_tokens_per_s: float | None = None  # throughput floor (e.g. from a runtime cap)
    max_usd_per_million_tokens: float | None = None  # hard cap (e.g. from a total-cost cap)
    max_ttft_ms: float | None = None  # latency SLO: time to first token (prefill through every stage)
    max_tpot_ms: float | None = None  # latency SLO: time per output token (stages x slowest decode step)
    throughput_normalization: float | None = None
    cost_normalization: float | None = None
    threads: int = 1
    # weighted method: "normalised" spreads w over the exact Pareto frontier (cheapest plan = 0, fastest = 1);
    # "seed" divides by throughput_normalization / cost_normalization as the seed did (search.Planner.weighted)
    weight_scaling: str = "normalised"
    use_case: str | None = None  # chat | batch | custom (config/use_cases.csv); None: not stated (seed folders)

    def __post_init__(self) -> None:
        problems = []

        def bad(column: str, message: str) -> None:
            problems.append(Problem(message, "settings", column=column))

        if self.method not in METHODS:
            bad("method", f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 0.0 <= self.cost_weight <= 1.0:
            bad("cost_weight", f"cost weight must be between 0 and 1, got {self.cost_weight}")
        if self.weight_scaling not in WEIGHT_SCALINGS:
            bad("weight_scaling", f"weight scaling must be one of {', '.join(WEIGHT_SCALINGS)}, got {self.weight_scaling!r}")
        if self.use_case is not None and self.use_case not in USE_CASE_KEYS:
            bad("use_case", f"use case must be one of {', '.join(USE_CASE_KEYS)}, got {self.use_case!r}")
        if self.max_stages < 1:
            bad("max_stages", f"max pipeline stages must be >= 1, got {self.max_stages}")
        if self.min_layers_per_stage < 1:
            bad("min_layers_per_stage", f"min layers per stage must be >= 1, got {self.min_layers_per_stage}")
        if not 0 < self.time_limit_s < math.inf:
            bad("time_limit_s", f"time limit must be a positive number of seconds, got {self.time_limit_s}")
        if not 0.0 <= self.mip_gap < 1.0:
            bad("mip_gap", f"MIP gap must be in [0, 1), got {self.mip_gap}")
        factors = list(self.budget_factors)
        if not factors or any(not 0 < f < math.inf for f in factors):
            bad("budget_factors", f"budget factors must be positive numbers, got {factors}")
        elif factors != sorted(set(factors)):
            bad("budget_factors", f"budget factors must be increasing, without repeats, got {factors}")
        if self.sizes is not None and (not self.sizes or any(int(s) != s or s < 1 for s in self.sizes)):
            bad("sizes", f"segment sizes must be positive integers, got {list(self.sizes)}")
        for name in ("max_usd_per_hour", "target_usd_per_million_tokens", "min_tokens_per_s",
                     "max_usd_per_million_tokens", "throughput_normalization", "cost_normalization",
                     "max_ttft_ms", "max_tpot_ms"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                bad(name, f"{name} must be positive, got {value}")
            elif value is not None and value < MIN_MAGNITUDE:
                bad(name, f"{name} is too small to be a real value, got {value} (below {MIN_MAGNITUDE:g})")
        if problems:
            raise InputError(problems)


@dataclass(frozen=True)
class Scenario:
    """Everything a solve needs. `warnings` records what loading assumed or ignored."""

    model: ModelSpec
    workload: Workload
    pool: Pool
    engine: EngineProfile
    settings: SearchSettings = field(default_factory=SearchSettings)
    name: str = "scenario"
    warnings: tuple[str, ...] = ()
    description: str = ""  # config.csv `description`: the use case in one line
