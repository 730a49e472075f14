"""Graders for day w2d5_data_parallel: your collectives and trainer in 2 and 3 real processes.

Each distributed test starts 2 or 3 worker processes joined in a gloo process group, runs your
code on every rank and brings the results back here, where they are compared with what one
process computes (and with torch's DistributedDataParallel and Hugging Face accelerate). An
error on any rank fails the test with that rank's message and the line of your code that
raised it; a rank that hangs (a send without its recv...) is reported after a few seconds.

Run one exercise with `pytest tests/test_w2d5_data_parallel.py -k ring_all_gather`.
"""

from __future__ import annotations

import pytest
import torch
import w2d5_data_parallel_helpers as h
from checks import assert_close, assert_equal
from mlab import w2d5_data_parallel as m

points = pytest.mark.points
h.prestart()  # the worker processes' fork server imports torch in the background meanwhile

_RUNS: dict = {}


def run(job: str, world_size: int, **kwargs) -> list[dict]:
    """One multi-process run per (job, arguments), shared by the tests that check its results."""
    key = (job, world_size, repr(sorted(kwargs.items())))
    if key not in _RUNS:
        try:
            _RUNS[key] = ("ok", h.run(job, world_size, **kwargs))
        except NotImplementedError as exc:
            _RUNS[key] = ("todo", str(exc))
        except h.WorkerFailure as exc:
            _RUNS[key] = ("failed", str(exc))
    status, value = _RUNS[key]
    if status == "todo":
        raise NotImplementedError(value)
    if status == "failed":
        pytest.fail(value, pytrace=False)
    return value


def expect(condition: bool, message: str) -> None:
    """Fail with `message` alone (no dump of the objects in the condition)."""
    if not condition:
        pytest.fail(message, pytrace=False)


def reference_sum(case: int, shape: tuple[int, ...], world_size: int) -> torch.Tensor:
    return sum(h.rank_tensor(r, case, shape) for r in range(world_size))


def grads_mean(results: list[dict], key: str = "before") -> list[torch.Tensor | None]:
    per_param = zip(*(r[key] for r in results), strict=True)
    return [None if g[0] is None else torch.stack(g).mean(0) for g in per_param]


# -- collectives by hand -----------------------------------------------------------------------


@points(2)
@pytest.mark.parametrize("world_size,src", [(2, 1), (3, 1)])
def test_broadcast_parameters(world_size, src):
    results = run("broadcast", world_size, src=src)
    expected = h.state(h.make_bn_model(seed=100 + src))  # what rank src started with
    for rank, res in enumerate(results):
        for name, value in expected.items():
            assert_close(
                res["state"][name],
                value,
                atol=0,
                rtol=0,
                what=f"rank {rank} of {world_size}: {name} after broadcast_parameters(src={src})"
                " (expected rank src's value; parameters and buffers)",
            )
        expect(
            res["same_objects"],
            "broadcast_parameters must update the model's own parameters in place",
        )


NAIVE_SHAPES = [(1,), (7,), (3, 5), (1000,)]


@points(2)
@pytest.mark.parametrize("world_size", [2, 3])
def test_naive_all_reduce(world_size):
    results = run("naive_all_reduce", world_size, shapes=NAIVE_SHAPES)
    for rank, res in enumerate(results):
        for case, shape in enumerate(NAIVE_SHAPES):
            assert_close(
                res["outputs"][case],
                reference_sum(case, shape, world_size),
                what=f"rank {rank} of {world_size}: naive_all_reduce(x {shape}) vs the sum over ranks",
            )
            expect(
                res["returned_input"][case], "naive_all_reduce must return the tensor it was given"
            )


# sizes below, equal to and not divisible by the world size (empty chunks when n < W)
RING_SIZES = [1, 2, 5, 7, 12, 1001]


@points(3)
@pytest.mark.parametrize("world_size", [2, 3])
def test_ring_reduce_scatter(world_size):
    results = run("ring_reduce_scatter", world_size, sizes=RING_SIZES)
    for rank, res in enumerate(results):
        own = (rank + 1) % world_size
        for case, n in enumerate(RING_SIZES):
            got = res["outputs"][case].tensor_split(world_size)[own]
            expected = reference_sum(case, (n,), world_size).tensor_split(world_size)[own]
            assert_close(
                got,
                expected,
                what=f"rank {rank} of {world_size}, n={n}: chunk {own} = (rank + 1) % W after "
                "ring_reduce_scatter vs that chunk summed over ranks",
            )


@points(2)
@pytest.mark.parametrize("world_size", [2, 3])
def test_ring_all_gather(world_size):
    results = run("ring_all_gather", world_size, sizes=RING_SIZES)
    for rank, res in enumerate(results):
        for case, n in enumerate(RING_SIZES):
            assert_close(
                res["outputs"][case],
                h.rank_tensor(0, case, (n,)),
                what=f"rank {rank} of {world_size}, n={n}: every chunk after ring_all_gather "
                "(each rank starts owning only chunk (rank + 1) % W; NaN = never received)",
            )


RING_SHAPES = [(1,), (2,), (5,), (7,), (3, 5), (1001,)]
TRAFFIC_N = 3000


@points(3)
@pytest.mark.parametrize("world_size", [2, 3])
def test_ring_all_reduce(world_size):
    results = run("ring_all_reduce", world_size, shapes=RING_SHAPES, traffic_n=TRAFFIC_N)
    for rank, res in enumerate(results):
        for case, shape in enumerate(RING_SHAPES):
            assert_close(
                res["outputs"][case],
                reference_sum(case, shape, world_size),
                what=f"rank {rank} of {world_size}: ring_all_reduce(x {shape}) vs the sum over ranks",
            )
            expect(
                res["returned_input"][case], "ring_all_reduce must return the tensor it was given"
            )


@points(2)
@pytest.mark.parametrize("world_size", [2, 3])
def test_ring_all_reduce_traffic(world_size):
    """Each rank sends 2 (W - 1) / W of the tensor: (W - 1) chunks per phase."""
    results = run("ring_all_reduce", world_size, shapes=RING_SHAPES, traffic_n=TRAFFIC_N)
    bound = 2 * (world_size - 1) * TRAFFIC_N // world_size
    for rank, res in enumerate(results):
        assert_close(
            res["traffic_output"],
            reference_sum(99, (TRAFFIC_N,), world_size),
            what=f"rank {rank} of {world_size}: ring_all_reduce(x ({TRAFFIC_N},))",
        )
        sent = res["traffic"]["elements"]
        expect(
            sent > 0,
            "no send was seen: call torch.distributed's send/isend (or P2POp) through `dist.`",
        )
        expect(
            sent <= bound,
            f"rank {rank} of {world_size} sent {sent} elements to all-reduce {TRAFFIC_N}; a ring sends "
            f"2 (W - 1) / W of them = {bound} (one chunk of n / W per step, 2 (W - 1) steps)",
        )


# -- gradients ---------------------------------------------------------------------------------


@points(2)
@pytest.mark.parametrize("world_size", [2, 3])
def test_all_reduce_gradients(world_size):
    results = run("all_reduce_gradients", world_size)
    expected = grads_mean(results)
    names = [n for n, _ in h.make_mlp(0).named_parameters()]
    with_grad = sum(g is not None for g in expected)
    for rank, res in enumerate(results):
        for key in ("after", "default"):
            for name, got, want in zip(names, res[key], expected, strict=True):
                if want is None:
                    expect(got is None, f"{name} is frozen (no gradient): leave its grad as None")
                    continue
                how = "all_reduce=dist.all_reduce" if key == "after" else "the default all_reduce"
                assert_close(
                    got,
                    want,
                    what=f"rank {rank} of {world_size}: {name}.grad after "
                    f"all_reduce_gradients ({how}) vs the mean of the ranks' gradients",
                )
        expect(
            res["calls"] == with_grad,
            f"all_reduce_gradients called the given all_reduce {res['calls']} times; expected one call "
            f"per parameter with a gradient ({with_grad})",
        )


@points(3)
@pytest.mark.parametrize("world_size", [2, 3])
def test_all_reduce_buckets(world_size):
    results = run("all_reduce_buckets", world_size)
    expected = grads_mean(results)
    names = [n for n, _ in h.make_mlp(0).named_parameters()]
    total = sum(p.numel() for p in h.make_mlp(0).parameters())
    for rank, res in enumerate(results):
        for key in ("after", "default"):
            for name, got, want in zip(names, res[key], expected, strict=True):
                assert_close(
                    got,
                    want,
                    what=f"rank {rank} of {world_size}: {name}.grad after "
                    "all_reduce_buckets vs the mean of the ranks' gradients",
                )
        expect(
            res["calls"] == res["buckets"],
            f"all_reduce_buckets made {res['calls']} all_reduce calls for {res['buckets']} buckets: "
            "concatenate each bucket's gradients into one tensor and all-reduce it once",
        )
        expect(
            res["elements"] == total,
            f"all_reduce_buckets all-reduced {res['elements']} elements; the gradients hold {total}",
        )


def param_sizes_model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16),
        torch.nn.Linear(16, 12),
        torch.nn.Linear(12, 4),
        torch.nn.Linear(4, 30, bias=False),
    )


@points(1)
@pytest.mark.parametrize("cap", [1, 20, 184, 200, 300, 10**6])
def test_make_buckets(cap):
    params = list(param_sizes_model().parameters())
    sizes = [p.numel() for p in params]
    buckets = m.make_buckets(params, cap)
    what = f"make_buckets(parameters of sizes {sizes}, bucket_cap={cap})"
    flat = [p for b in buckets for p in b]
    expect(all(len(b) > 0 for b in buckets), f"{what}: an empty bucket")
    expect(
        len(flat) == len(params)
        and all(a is b for a, b in zip(flat, reversed(params), strict=True)),
        f"{what}: concatenating the buckets gives sizes {[p.numel() for p in flat]}; expected every "
        f"parameter once, last parameter first: {sizes[::-1]}",
    )
    totals = [sum(p.numel() for p in b) for b in buckets]
    for b, t in zip(buckets, totals, strict=True):
        expect(
            t <= cap or len(b) == 1,
            f"{what}: a bucket of sizes {[p.numel() for p in b]} exceeds the cap",
        )
    for i in range(len(buckets) - 1):
        expect(
            totals[i] + buckets[i + 1][0].numel() > cap,
            f"{what}: bucket sizes {[[p.numel() for p in b] for b in buckets]}: the first parameter of "
            f"bucket {i + 1} still fit in bucket {i} (fill each bucket greedily)",
        )


# -- data --------------------------------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("n,world_size", [(12, 3), (10, 3), (11, 4), (7, 2), (2, 3)])
def test_shard_indices(n, world_size):
    shards = [m.shard_indices(n, r, world_size) for r in range(world_size)]
    what = f"shard_indices(n={n}, rank, world_size={world_size})"
    for r, s in enumerate(shards):
        expect(
            isinstance(s, torch.Tensor) and s.dim() == 1 and not s.is_floating_point(),
            f"{what}: rank {r} got {type(s).__name__}; expected a 1-D tensor of integer indices",
        )
    sizes = [len(s) for s in shards]
    assert_equal(
        torch.cat(shards).long(),
        torch.arange(n),
        what=f"{what}: the shards of ranks 0..W-1 concatenated (disjoint, in order, covering all)",
    )
    expect(
        max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True),
        f"{what}: shard sizes {sizes}; they must differ by at most one, earlier ranks taking the extras",
    )


@points(1)
def test_shard_indices_shuffled():
    n, world_size = 50, 3
    shards = [m.shard_indices(n, r, world_size, seed=1) for r in range(world_size)]
    joined = torch.cat(shards).long()
    assert_equal(
        joined.sort().values,
        torch.arange(n),
        what="shard_indices(50, rank, 3, seed=1): all shards, sorted",
    )
    expect(not torch.equal(joined, torch.arange(n)), "with a seed the examples must be shuffled")
    again = torch.cat([m.shard_indices(n, r, world_size, seed=1) for r in range(world_size)]).long()
    assert_equal(
        again,
        joined,
        what="shard_indices twice with seed=1 (the same seed must give the same shards)",
    )
    other = torch.cat([m.shard_indices(n, r, world_size, seed=2) for r in range(world_size)]).long()
    expect(
        not torch.equal(other, joined), "seed=2 gave the same order as seed=1: is the seed used?"
    )


@points(2)
def test_shard_indices_ranks_agree():
    """Three processes whose global random states differ must still compute disjoint shards."""
    sizes = [10, 11, 50]
    results = run("shard_indices", 3, sizes=sizes, seed=5)
    for case, n in enumerate(sizes):
        joined = torch.cat([res["shuffled"][case] for res in results]).long()
        assert_equal(
            joined.sort().values,
            torch.arange(n),
            what=f"shard_indices({n}, rank, 3, seed=5) computed on each of 3 processes, all shards "
            "sorted (overlap or gaps? use a torch.Generator seeded with `seed`, not the "
            "global random state)",
        )
        plain = torch.cat([res["plain"][case] for res in results]).long()
        assert_equal(
            plain, torch.arange(n), what=f"shard_indices({n}, rank, 3) on 3 processes, concatenated"
        )


# -- training ----------------------------------------------------------------------------------

STEPS = 4
CAP = 200  # the model's parameters (sizes 96, 16, 192, 12, 48, 4) fill 3 buckets
TRAINER_RUNS = {  # (world size, global batch) -> run arguments
    (2, 8): dict(n=8, steps=STEPS, bucket_cap=CAP, references=True),
    (3, 12): dict(n=12, steps=STEPS, bucket_cap=CAP, references=True),
    (3, 10): dict(n=10, steps=STEPS, bucket_cap=CAP),  # uneven shards: 4, 3, 3
}


def trainer_run(world_size: int, n: int) -> list[dict]:
    return run("trainer", world_size, **TRAINER_RUNS[(world_size, n)])


def assert_state_close(got: dict, expected: dict, what: str, atol: float = 1e-5) -> None:
    for name, value in expected.items():
        assert_close(got[name], value, what=f"{what}: {name}", atol=atol)


@points(3)
@pytest.mark.parametrize("world_size,n", list(TRAINER_RUNS))
def test_trainer_matches_single_process(world_size, n):
    results = trainer_run(world_size, n)
    model, losses = h.train_single_process(n, STEPS)
    expected = h.state(model)
    shards = [len(s) for s in torch.arange(n).tensor_split(world_size)]
    for rank, res in enumerate(results):
        expect(
            res["examples_seen"] == [shards[rank]] * STEPS,
            f"rank {rank} of {world_size} ran its replica on {res['examples_seen']} examples in "
            f"{STEPS} steps on global batches of {n}; each step should run once on its shard of "
            f"{shards[rank]} (shard_indices)",
        )
        assert_state_close(
            res["state"],
            expected,
            f"rank {rank} of {world_size} after {STEPS} steps on global batches of {n} (shards "
            f"of {shards}) vs one process training on the whole batches",
        )
        assert_close(
            torch.tensor(res["losses"]),
            torch.tensor(losses),
            what=f"rank {rank} of {world_size}: the losses step() returned vs the whole-batch means",
        )


@points(1)
@pytest.mark.parametrize("world_size,n", list(TRAINER_RUNS))
def test_trainer_ranks_identical(world_size, n):
    results = trainer_run(world_size, n)
    for rank, res in enumerate(results[1:], start=1):
        for name, value in results[0]["state"].items():
            assert_equal(
                res["state"][name],
                value,
                what=f"rank {rank} vs rank 0 after {STEPS} steps: {name} (replicas must stay identical)",
            )


@points(2)
def test_trainer_with_ring_all_reduce():
    """Your ring all-reduce inside the trainer; with a cap above the model size, one bucket."""
    results = run("trainer", 2, n=8, steps=3, bucket_cap=10**6, all_reduce="ring")
    model, _ = h.train_single_process(8, 3)
    for rank, res in enumerate(results):
        assert_state_close(
            res["state"],
            h.state(model),
            f"rank {rank} of 2 training with "
            "all_reduce=ring_all_reduce vs one process on the whole batches",
        )
        expect(
            res["calls_per_step"] <= 2,
            f"step() made {res['calls_per_step']:g} all_reduce calls per step with bucket_cap above the "
            "model size: expected one for the single bucket of gradients (and one for the loss)",
        )


@points(2)
@pytest.mark.parametrize("world_size", [2, 3])
def test_trainer_matches_ddp(world_size):
    n = {2: 8, 3: 12}[world_size]
    results = trainer_run(world_size, n)
    for rank, res in enumerate(results):
        assert_state_close(
            res["state"],
            res["ddp"],
            f"rank {rank} of {world_size}: DataParallelTrainer vs "
            f"torch DistributedDataParallel after {STEPS} steps",
        )


@points(2)
@pytest.mark.parametrize("world_size", [2, 3])
def test_trainer_matches_accelerate(world_size):
    n = {2: 8, 3: 12}[world_size]
    results = trainer_run(world_size, n)
    for rank, res in enumerate(results):
        assert_state_close(
            res["state"],
            res["accelerate"],
            f"rank {rank} of {world_size}: DataParallelTrainer "
            f"vs accelerate (split_batches=True) after {STEPS} steps",
        )


# -- benchmark ---------------------------------------------------------------------------------

BENCH_SIZES = [2**10, 2**14, 2**18, 2**21]


@points(1)
@pytest.mark.bench
def test_benchmark_ring_vs_naive(record_benchmark):
    world_size = 3
    times = run("benchmark", world_size, sizes=BENCH_SIZES, repeats=5)[0]
    for i, n in enumerate(BENCH_SIZES):
        ring, naive, gloo = times["ring"][i], times["naive"][i], times["gloo"][i]
        mib = 4 * n / 2**20
        size = f"{mib:g} MiB" if mib >= 1 else f"{mib * 1024:g} KiB"
        record_benchmark(
            f"ring_all_reduce vs naive_all_reduce, W={world_size}",
            f"({n},) float32, {size}",
            ring,
            naive,
            note=f"gloo's own all_reduce {gloo * 1e3:.2f} ms; each rank sent "
            f"{2 * (world_size - 1) / world_size * mib / ring:.1f} MiB/s in the ring",
        )


# -- GPU ---------------------------------------------------------------------------------------


@points(2)
@pytest.mark.gpu
def test_nccl_ring_and_trainer():
    """The same code with NCCL on CUDA tensors (as many ranks as GPUs, at most 2)."""
    world_size = min(torch.cuda.device_count(), 2)
    shapes = [(7,), (3, 5), (1001,)]
    results = run("nccl", world_size, backend="nccl", start="spawn", shapes=shapes, n=8, steps=3)
    model, _ = h.train_single_process(8, 3)
    for rank, res in enumerate(results):
        for case, shape in enumerate(shapes):
            assert_close(
                res["outputs"][case],
                reference_sum(case, shape, world_size),
                atol=1e-4,
                what=f"rank {rank} of {world_size} (NCCL): ring_all_reduce(x {shape}) on cuda:{rank}",
            )
        assert_state_close(
            res["state"],
            h.state(model),
            f"rank {rank} of {world_size} (NCCL) after 3 steps",
            atol=1e-4,
        )
