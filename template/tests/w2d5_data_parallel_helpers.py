"""Multi-process harness for the w2d5_data_parallel graders.

`run(job, world_size, **kwargs)` starts `world_size` worker processes, each of which joins a gloo
process group (a `file://` store in a fresh temporary directory, so graders running at the same
time never collide), runs the job function `job_<job>(rank, world_size, **kwargs)` from this
module and saves what it returns in that directory. The parent waits with a deadline, kills
stragglers, and hands back one result per rank; the comparisons happen in the test process.
A worker's exception comes back with its type, message and the line of `mlab` code that raised
it: NotImplementedError is re-raised as such, anything else fails the test with that message.

Workers are forked from a fork server that has imported torch once (starting a fresh Python and
importing torch costs seconds per process; a fork costs milliseconds).
"""

from __future__ import annotations

import faulthandler
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import rank_harness
import torch
import torch.nn.functional as F
from rank_harness import ERROR_GRACE_S, WorkerFailure
from torch import Tensor, nn

PG_TIMEOUT_S = 10.0  # a recv or collective that waits longer raises inside the worker
RUN_TIMEOUT_S = 20.0  # the parent kills workers still running after this
WARMUP_TIMEOUT_S = 60.0  # the first run also starts the fork server (imports torch once)
PRELOAD = ["torch", "torch.distributed", "torch._dynamo"]  # torch.optim imports torch._dynamo
COLLECTIVES = (
    "all_reduce",
    "reduce",
    "broadcast",
    "all_gather",
    "all_gather_into_tensor",
    "reduce_scatter",
    "reduce_scatter_tensor",
    "gather",
    "scatter",
    "all_to_all",
)


def _mp_context(start: str):
    return rank_harness.mp_context(start, PRELOAD)


def prestart() -> None:
    """Start the fork server now: it imports torch while the test process goes on collecting."""
    rank_harness.prestart(PRELOAD)


# -- parent side -------------------------------------------------------------------------------

_warm = False


def run(
    job: str,
    world_size: int,
    *,
    backend: str = "gloo",
    start: str = "forkserver",
    timeout: float = RUN_TIMEOUT_S,
    **kwargs,
) -> list[dict]:
    """Run `job_<job>` on `world_size` ranks; returns what each rank's job returned, by rank.

    CUDA (backend "nccl") needs `start="spawn"`: a process forked after CUDA was touched cannot
    use it.
    """
    global _warm
    if not _warm or start != "forkserver":
        timeout = max(timeout, WARMUP_TIMEOUT_S)
    ctx = _mp_context(start)
    tmp = Path(tempfile.mkdtemp(prefix="mlab-w2d5-"))
    procs = [
        ctx.Process(
            target=_worker,
            args=(job, rank, world_size, backend, str(tmp), timeout, kwargs),
            name=f"w2d5-{job}-rank{rank}",
            daemon=True,
        )
        for rank in range(world_size)
    ]
    outcomes: dict[int, dict] = {}
    try:
        for p in procs:
            p.start()
        deadline, failed_at = time.monotonic() + timeout, None
        while len(outcomes) < world_size:
            for rank, p in enumerate(procs):
                if rank in outcomes:
                    continue
                path = tmp / f"rank{rank}.pt"
                if path.exists():
                    outcomes[rank] = torch.load(path, weights_only=True)
                elif p.exitcode is not None and not path.exists():
                    outcomes[rank] = rank_harness.death(p.exitcode, tmp / f"rank{rank}.stderr")
            if failed_at is None and any("error" in o for o in outcomes.values()):
                failed_at = time.monotonic()
            now = time.monotonic()
            if now > deadline or (failed_at is not None and now > failed_at + ERROR_GRACE_S):
                break
            time.sleep(0.01)
        _warm = _warm or start == "forkserver"
    finally:
        started = [p for p in procs if p.pid is not None]
        for p in started:
            if p.is_alive():
                p.kill()
        for p in started:
            p.join(timeout=5)
        stacks = {
            r: (tmp / f"rank{r}.stack").read_text(errors="replace")
            for r in range(world_size)
            if (tmp / f"rank{r}.stack").exists()
        }
        shutil.rmtree(tmp, ignore_errors=True)
    return _results(job, world_size, outcomes, stacks, timeout)


def _results(
    job: str, world_size: int, outcomes: dict[int, dict], stacks: dict[int, str], timeout: float
) -> list[dict]:
    errors = sorted(
        (rank_harness.rank_of_error(o), o["time"], r, o)
        for r, o in outcomes.items()
        if "error" in o
    )
    for *_, rank, o in errors:
        if o["error"] == "NotImplementedError":
            raise NotImplementedError(f"{o['message']} (raised on rank {rank} of {world_size})")
    if errors:
        *_, rank, o = errors[0]  # the cause; its peers' errors are consequences
        where = f" at {o['where']}" if o["where"] else ""
        others = [r for *_, r, _ in errors[1:]]
        also = f" Ranks {others} failed after it." if others else ""
        what = "crashed" if o["error"] == "a crash" else f"raised {o['error']}{where}"
        hint = ""
        if rank_harness.rank_of_error(o) == 2:
            hint = (
                " It waited for a message that never came (a deadlock): do the ranks agree on"
                " who sends what to whom, and does every send have its recv?"
            )
        message = rank_harness.tidy(o["message"])
        raise WorkerFailure(f"rank {rank} of {world_size} {what}: {message}{hint}{also}")
    missing = [r for r in range(world_size) if r not in outcomes]
    if missing:
        seen = {r: rank_harness.mlab_line_of_stack(stacks.get(r, "")) for r in missing}
        places = "; ".join(f"rank {r} was at {w}" for r, w in seen.items() if w)
        raise WorkerFailure(
            f"ranks {missing} of {world_size} were still running after {timeout:g} s and were killed "
            f"({places or 'not inside mlab code'}). An endless loop, or a deadlock? Every send needs "
            "a matching recv on the peer, and every rank must make the same collective calls in the "
            "same order."
        )
    return [outcomes[r]["result"] for r in range(world_size)]


# -- worker side -------------------------------------------------------------------------------


def _worker(
    job: str, rank: int, world_size: int, backend: str, tmp: str, timeout: float, kwargs: dict
) -> None:
    out = Path(tmp)
    err = os.open(out / f"rank{rank}.stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(err, 2)  # gloo's C++ errors (written before it aborts the process) go there too
    torch.set_num_threads(1)
    stack_file = open(out / f"rank{rank}.stack", "w")  # noqa: SIM115 (closed at exit)
    faulthandler.dump_traceback_later(max(timeout - 2, 1), file=stack_file)
    try:
        if backend == "nccl":
            torch.cuda.set_device(rank)
        dist = torch.distributed
        dist.init_process_group(
            backend,
            init_method=f"file://{out / 'store'}",
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=PG_TIMEOUT_S),
        )
        torch.manual_seed(1000 + rank)  # ranks differ in random state, as in real life
        report = {"result": JOBS[job](rank, world_size, **kwargs)}
    except BaseException as exc:  # noqa: BLE001 (everything goes back to the parent)
        message = str(exc).strip().splitlines()
        report = {
            "error": type(exc).__name__,
            "message": " ".join(message)[:600] or repr(exc),
            "where": rank_harness.where(exc),
            "time": time.time(),
        }
    faulthandler.cancel_dump_traceback_later()
    partial = out / f"rank{rank}.tmp"
    torch.save(report, partial)
    os.replace(partial, out / f"rank{rank}.pt")
    try:
        torch.distributed.destroy_process_group()
    except Exception:  # noqa: BLE001
        pass


# -- models and data shared by workers and the single-process references ----------------------


def make_mlp(seed: int) -> nn.Module:
    """A small classifier, initialized from `seed`: 6 features -> 4 classes."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4)
    )


def make_bn_model(seed: int) -> nn.Module:
    """A model with buffers (BatchNorm running statistics), all of them drawn from `seed`."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Linear(7, 3))
    with torch.no_grad():
        for b in model.buffers():
            if b.is_floating_point():
                b.copy_(torch.rand_like(b) + 0.5)
            else:
                b.fill_(seed)
    return model


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=0.01)


def loss_fn(outputs: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(outputs, targets)


def make_batches(steps: int, n: int, seed: int = 7) -> list[tuple[Tensor, Tensor]]:
    """`steps` global batches of `n` examples, the same on every rank."""
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, 6, generator=g), torch.randint(0, 4, (n,), generator=g))
        for _ in range(steps)
    ]


def rank_tensor(rank: int, case: int, shape: tuple[int, ...]) -> Tensor:
    """The input that rank `rank` contributes in test case `case` (reproducible in the parent)."""
    g = torch.Generator().manual_seed(10_000 * case + rank)
    return torch.randn(shape, generator=g)


def train_single_process(n: int, steps: int, seed: int = 100) -> tuple[nn.Module, list[float]]:
    """The reference: one process training rank 0's initial model on the whole batches."""
    model = make_mlp(seed)
    opt = make_optimizer(model)
    losses = []
    for x, y in make_batches(steps, n):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses


def state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


# -- instrumentation ---------------------------------------------------------------------------


def _module():
    from mlab import w2d5_data_parallel as m

    return m


def _replace(name: str, new: Callable, originals: dict) -> None:
    """Put `new` in place of torch.distributed.<name> everywhere pair code could look it up."""
    import torch.distributed.distributed_c10d as c10d

    old = getattr(torch.distributed, name)
    originals[name] = old
    for namespace in (torch.distributed, c10d, _module()):
        if getattr(namespace, name, None) is old:
            setattr(namespace, name, new)
    m = _module()
    for attr, value in list(vars(m).items()):
        if value is old:  # `from torch.distributed import isend` in pair code
            setattr(m, attr, new)


def forbid_collectives(why: str) -> None:
    """Make the built-in collectives raise: an exercise must be built from send/recv."""
    for name in COLLECTIVES:

        def refuse(*args, _name=name, **kwargs):
            raise RuntimeError(f"{why}, not dist.{_name}")

        _replace(name, refuse, {})


def count_sends() -> dict:
    """Count the elements this rank sends (dist.send and P2POp go through isend)."""
    counter = {"elements": 0, "messages": 0}
    originals: dict = {}

    def isend(tensor, *args, **kwargs):
        counter["elements"] += tensor.numel()
        counter["messages"] += 1
        return originals["isend"](tensor, *args, **kwargs)

    _replace("isend", isend, originals)
    return counter


def counting(fn: Callable) -> tuple[Callable, dict]:
    """Wrap an all-reduce so that calls and elements are counted."""
    counter = {"calls": 0, "elements": 0}

    def wrapped(tensor, *args, **kwargs):
        counter["calls"] += 1
        counter["elements"] += tensor.numel()
        return fn(tensor, *args, **kwargs)

    return wrapped, counter


# -- jobs (run on every rank; return plain data: tensors, numbers, lists, dicts) ---------------


def job_noop(rank: int, world_size: int) -> dict:
    torch.distributed.barrier()
    return {}


def job_broadcast(rank: int, world_size: int, src: int) -> dict:
    m = _module()
    model = make_bn_model(seed=100 + rank)
    params_before = [id(p) for p in model.parameters()]
    m.broadcast_parameters(model, src=src)
    same_objects = params_before == [id(p) for p in model.parameters()]
    return {"state": state(model), "same_objects": same_objects}


def _all_reduce_cases(fn_name: str, shapes: list[tuple[int, ...]]) -> dict:
    m = _module()
    rank = torch.distributed.get_rank()
    forbid_collectives(f"{fn_name} must be built from send/recv (or isend/irecv)")
    outputs, returned_input = [], []
    for case, shape in enumerate(shapes):
        x = rank_tensor(rank, case, shape)
        out = getattr(m, fn_name)(x)
        outputs.append(x.clone())
        returned_input.append(out is x)
    return {"outputs": outputs, "returned_input": returned_input}


def job_naive_all_reduce(rank: int, world_size: int, shapes: list) -> dict:
    return _all_reduce_cases("naive_all_reduce", [tuple(s) for s in shapes])


def job_ring_all_reduce(rank: int, world_size: int, shapes: list, traffic_n: int) -> dict:
    result = _all_reduce_cases("ring_all_reduce", [tuple(s) for s in shapes])
    counter = count_sends()
    x = rank_tensor(rank, 99, (traffic_n,))
    _module().ring_all_reduce(x)
    result["traffic"] = dict(counter)
    result["traffic_output"] = x
    return result


def job_ring_reduce_scatter(rank: int, world_size: int, sizes: list) -> dict:
    m = _module()
    forbid_collectives("ring_reduce_scatter must be built from send/recv (or isend/irecv)")
    outputs = []
    for case, n in enumerate(sizes):
        flat = rank_tensor(rank, case, (n,))
        m.ring_reduce_scatter(list(flat.tensor_split(world_size)))  # views into flat
        outputs.append(flat)
    return {"outputs": outputs}


def job_ring_all_gather(rank: int, world_size: int, sizes: list) -> dict:
    m = _module()
    forbid_collectives("ring_all_gather must be built from send/recv (or isend/irecv)")
    outputs = []
    for case, n in enumerate(sizes):
        full = rank_tensor(0, case, (n,))  # the complete result, the same on every rank
        flat = torch.full((n,), float("nan"))  # chunks this rank does not own yet: garbage
        chunks = list(flat.tensor_split(world_size))
        own = (rank + 1) % world_size
        chunks[own].copy_(full.tensor_split(world_size)[own])
        m.ring_all_gather(chunks)
        outputs.append(flat)
    return {"outputs": outputs}


def _grads_of_rank(model: nn.Module, rank: int) -> None:
    x, y = make_batches(1, 5, seed=500 + rank)[0]
    model.zero_grad()
    loss_fn(model(x), y).backward()


def job_all_reduce_gradients(rank: int, world_size: int) -> dict:
    m = _module()
    model = make_mlp(seed=0)
    model[2].weight.requires_grad_(False)  # a frozen parameter has no gradient
    _grads_of_rank(model, rank)
    before = [p.grad.clone() if p.grad is not None else None for p in model.parameters()]
    all_reduce, counter = counting(torch.distributed.all_reduce)
    m.all_reduce_gradients(model, all_reduce=all_reduce)
    after = [p.grad.clone() if p.grad is not None else None for p in model.parameters()]
    _grads_of_rank(model, rank)
    m.all_reduce_gradients(model)  # the default all-reduce
    default = [p.grad.clone() if p.grad is not None else None for p in model.parameters()]
    return {"before": before, "after": after, "default": default, "calls": counter["calls"]}


def job_all_reduce_buckets(rank: int, world_size: int) -> dict:
    m = _module()
    model = make_mlp(seed=0)
    params = list(model.parameters())
    buckets = [params[5:3:-1], params[3:0:-1], params[:1]]  # any grouping will do here
    _grads_of_rank(model, rank)
    before = [p.grad.clone() for p in params]
    all_reduce, counter = counting(torch.distributed.all_reduce)
    m.all_reduce_buckets(buckets, all_reduce=all_reduce)
    after = [p.grad.clone() for p in params]
    _grads_of_rank(model, rank)
    m.all_reduce_buckets(buckets)  # the default all-reduce
    default = [p.grad.clone() for p in params]
    return {
        "before": before,
        "after": after,
        "default": default,
        "calls": counter["calls"],
        "elements": counter["elements"],
        "buckets": len(buckets),
    }


def job_shard_indices(rank: int, world_size: int, sizes: list, seed: int) -> dict:
    m = _module()
    torch.manual_seed(rank)  # every rank's global random state differs
    return {
        "shuffled": [m.shard_indices(n, rank, world_size, seed=seed) for n in sizes],
        "plain": [m.shard_indices(n, rank, world_size) for n in sizes],
    }


def job_trainer(
    rank: int,
    world_size: int,
    n: int,
    steps: int,
    bucket_cap: int,
    all_reduce: str = "default",
    references: bool = False,
) -> dict:
    m = _module()
    model = make_mlp(seed=100 + rank)  # replicas start different: the trainer must broadcast
    fn = {
        "default": torch.distributed.all_reduce,
        "ring": m.ring_all_reduce,
        "naive": m.naive_all_reduce,
    }[all_reduce]
    fn, counter = counting(fn)
    trainer = m.DataParallelTrainer(
        model, make_optimizer(model), loss_fn, bucket_cap=bucket_cap, all_reduce=fn
    )
    counter["calls"] = 0
    seen: list[int] = []  # how many examples this rank's replica runs on, per forward
    model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    losses = [float(trainer.step(x, y)) for x, y in make_batches(steps, n)]
    result = {
        "state": state(model),
        "losses": losses,
        "calls_per_step": counter["calls"] / steps,
        "examples_seen": seen,
    }
    if references:
        result["ddp"] = _train_ddp(rank, world_size, n, steps)
        result["accelerate"] = _train_accelerate(rank, world_size, n, steps)
    return result


def _train_ddp(rank: int, world_size: int, n: int, steps: int) -> dict[str, Tensor]:
    """The same training with torch's DistributedDataParallel (contiguous equal shards)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = make_mlp(seed=100 + rank)
    ddp = DDP(model)  # broadcasts rank 0's parameters
    opt = make_optimizer(ddp)
    for x, y in make_batches(steps, n):
        mine = torch.arange(n).tensor_split(world_size)[rank]
        loss = loss_fn(ddp(x[mine]), y[mine])
        opt.zero_grad()
        loss.backward()  # DDP averages the gradients over the ranks during backward
        opt.step()
    return state(model)


def _train_accelerate(rank: int, world_size: int, n: int, steps: int) -> dict[str, Tensor]:
    """The same training with Hugging Face accelerate on the process group already running."""
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT="0",
        OMP_NUM_THREADS="1",
        ACCELERATE_USE_CPU="true",
    )
    import warnings

    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        accelerator = Accelerator(
            cpu=True, dataloader_config=DataLoaderConfiguration(split_batches=True)
        )
    if accelerator.num_processes != world_size:
        raise RuntimeError(
            f"accelerate sees {accelerator.num_processes} processes, not {world_size}"
        )
    model = make_mlp(seed=100 + rank)
    opt = make_optimizer(model)
    xs, ys = zip(*make_batches(steps, n), strict=True)
    data = torch.utils.data.TensorDataset(torch.cat(xs), torch.cat(ys))
    loader = torch.utils.data.DataLoader(data, batch_size=n)  # split_batches: n / W per rank
    model, opt, loader = accelerator.prepare(model, opt, loader)
    for x, y in loader:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        accelerator.backward(loss)
        opt.step()
    return state(accelerator.unwrap_model(model))


def job_benchmark(rank: int, world_size: int, sizes: list, repeats: int) -> dict:
    m = _module()
    dist = torch.distributed
    fns = {"ring": m.ring_all_reduce, "naive": m.naive_all_reduce, "gloo": dist.all_reduce}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for n in sizes:
        x = torch.randn(n)
        for name, fn in fns.items():
            fn(x.clone())  # warm up (connections, allocations)
            samples = []
            for _ in range(repeats):
                y = x.clone()
                dist.barrier()
                start = time.perf_counter()
                fn(y)
                dist.barrier()  # the slowest rank counts
                samples.append(time.perf_counter() - start)
            times[name].append(sorted(samples)[len(samples) // 2])
    return times


def job_nccl(rank: int, world_size: int, shapes: list, n: int, steps: int) -> dict:
    m = _module()
    device = torch.device("cuda", rank)
    outputs = []
    for case, shape in enumerate(shapes):
        x = rank_tensor(rank, case, tuple(shape)).to(device)
        m.ring_all_reduce(x)
        outputs.append(x.cpu())
    model = make_mlp(seed=100 + rank).to(device)
    trainer = m.DataParallelTrainer(model, make_optimizer(model), loss_fn, bucket_cap=200)
    for x, y in make_batches(steps, n):
        trainer.step(x.to(device), y.to(device))
    return {"outputs": outputs, "state": state(model)}


JOBS = {
    name.removeprefix("job_"): fn for name, fn in list(globals().items()) if name.startswith("job_")
}
