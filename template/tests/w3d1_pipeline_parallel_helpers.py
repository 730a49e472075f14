"""Multi-process harness for the w3d1_pipeline_parallel graders.

`run(job, world_size, **kwargs)` starts `world_size` worker processes, each of which joins a gloo
process group (a `file://` store in a fresh temporary directory, so graders running at the same
time never collide), runs the job function `job_<job>(rank, world_size, **kwargs)` from this
module and saves what it returns in that directory. The parent waits with a deadline, kills
stragglers, and hands back one result per rank; the comparisons happen in the test process.
A worker's exception comes back with its type, message and the line of `mlab` code that raised
it: NotImplementedError is re-raised as such, anything else fails the test with that message.
A job made of independent parts (`_part`) records a stub met in one part and goes on with the
next, so each test sees the stubs of its own exercises only.

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
from rank_harness import ERROR_GRACE_S, WorkerFailure
from torch import Tensor, nn

PG_TIMEOUT_S = 8.0  # a recv or collective that waits longer raises inside the worker
RUN_TIMEOUT_S = 20.0  # the parent kills workers still running after this
WARMUP_TIMEOUT_S = 60.0  # the first run also starts the fork server (imports torch once)
PRELOAD = ["torch", "torch.distributed", "torch._dynamo"]  # torch.optim imports torch._dynamo


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
    tmp = Path(tempfile.mkdtemp(prefix="mlab-w3d1-"))
    procs = [
        ctx.Process(
            target=_worker,
            args=(job, rank, world_size, backend, str(tmp), timeout, kwargs),
            name=f"w3d1-{job}-rank{rank}",
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
    errors = {r: o for r, o in outcomes.items() if "error" in o}
    for rank, o in sorted(errors.items()):
        if o["error"] == "NotImplementedError":
            raise NotImplementedError(f"{o['message']} (raised on rank {rank} of {world_size})")
    if errors:
        todo = next((t for out in outcomes.values() for t in out.get("todo", [])), None)
        if todo is not None:  # a stub on one rank left its peers waiting: the stub is the cause
            raise NotImplementedError(f"{todo} (then the other ranks failed waiting)")
        raise WorkerFailure(describe_failure(errors, world_size))
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


def describe_failure(errors: dict[int, dict], world_size: int) -> str:
    """One message for the ranks' errors: the cause first; its peers' errors are consequences."""
    ranked = sorted((rank_harness.rank_of_error(o), o["time"], r, o) for r, o in errors.items())
    *_, rank, o = ranked[0]
    where = f" at {o['where']}" if o["where"] else ""
    others = [r for *_, r, _ in ranked[1:]]
    also = f" Ranks {others} failed after it." if others else ""
    what = "crashed" if o["error"] == "a crash" else f"raised {o['error']}{where}"
    hint = ""
    if rank_harness.rank_of_error(o) == 2:
        hint = (
            " It waited for a message that never came (a deadlock): do the neighbours agree on"
            " who sends what, in which order? A blocking dist.send waits until the peer posts"
            " its recv, and in 1F1B both neighbours send at once: send with dist.isend."
        )
    return f"rank {rank} of {world_size} {what}: {rank_harness.tidy(o['message'])}{hint}{also}"


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
        report = {**_error_report(exc), "todo": TODOS}
    faulthandler.cancel_dump_traceback_later()
    partial = out / f"rank{rank}.tmp"
    torch.save(report, partial)
    os.replace(partial, out / f"rank{rank}.pt")
    try:
        torch.distributed.destroy_process_group()
    except Exception:  # noqa: BLE001
        pass


# -- models and data shared by workers and the single-process references ----------------------

D_IN, D_MODEL, D_OUT, N_BLOCKS = 5, 8, 3, 4  # the model has N_BLOCKS + 2 = 6 layers
MODEL_SEED = 3
TODOS: list[str] = []  # NotImplementedError messages this worker met in its parts


def _module():
    from mlab import w3d1_pipeline_parallel as m

    return m


def make_model() -> nn.Sequential:
    """The day's given model (built by the day's own `make_model`), in float64."""
    return _module().make_model(D_IN, D_MODEL, D_OUT, N_BLOCKS, seed=MODEL_SEED)


def make_batch(n: int, seed: int = 11) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed + n)
    return (
        torch.randn(n, D_IN, generator=g, dtype=torch.float64),
        torch.randint(0, D_OUT, (n,), generator=g),
    )


def stage_layers(n_layers: int, n_stages: int) -> list[range]:
    """The graders' own cut (contiguous, earlier stages larger), so a bug in `split_stages`
    fails only its own test."""
    sizes = [len(p) for p in torch.arange(n_layers).tensor_split(n_stages)]
    starts = [sum(sizes[:s]) for s in range(n_stages)]
    return [range(a, a + k) for a, k in zip(starts, sizes, strict=True)]


def reference(n: int) -> dict:
    """The single-process full-batch loss and gradients, by parameter name."""
    model = make_model()
    x, y = make_batch(n)
    loss = _module().loss_fn(model(x), y)
    loss.backward()
    return {
        "loss": loss.item(),
        "grads": {k: p.grad.clone() for k, p in model.named_parameters()},
    }


def stage_of_param(name: str, n_stages: int) -> int:
    layer = int(name.split(".")[0])
    return next(s for s, r in enumerate(stage_layers(N_BLOCKS + 2, n_stages)) if layer in r)


# -- jobs (run on every rank; return plain data: tensors, numbers, lists, dicts) ---------------


def _error_report(exc: BaseException) -> dict:
    message = str(exc).strip().splitlines()
    return {
        "error": type(exc).__name__,
        "message": " ".join(message)[:600] or repr(exc),
        "where": rank_harness.where(exc),
        "time": time.time(),
    }


_FAILED: list[str] = []  # the part that failed on this rank (the process group may be broken)


def _part(name: str, fn: Callable, *args) -> dict:
    """Run one part of a job. A stub (NotImplementedError) is recorded and the next part runs; an
    error is recorded and the later parts are skipped (messages may be left in flight)."""
    if _FAILED:
        return {"skipped": _FAILED[0]}
    try:
        return {"ok": fn(*args)}
    except NotImplementedError as exc:
        TODOS.append(str(exc))
        return {"todo": str(exc)}
    except Exception as exc:  # noqa: BLE001 (goes back to the parent)
        _FAILED.append(name)
        return _error_report(exc)


def fwd_tensor(rank: int, case: int, shape: tuple[int, ...]) -> Tensor:
    g = torch.Generator().manual_seed(1000 * case + rank)
    return torch.randn(shape, generator=g, dtype=torch.float64)


def bwd_tensor(rank: int, case: int, shape: tuple[int, ...]) -> Tensor:
    return fwd_tensor(rank + 100, case, shape)


def _wait(works: list) -> None:
    for w in works:
        if w is not None:
            w.wait()


def job_comm(rank: int, world_size: int, shapes: list) -> dict:
    m = _module()
    first, last = rank == 0, rank == world_size - 1

    def forward() -> list[dict]:
        works, got = [], []
        for case, shape in enumerate(map(tuple, shapes)):
            if not last:
                out = fwd_tensor(rank, case, shape).requires_grad_()  # an output inside autograd
                works.append(m.send_forward(out * 1.0))
            if not first:
                r = m.recv_forward(shape, torch.float64)
                got.append(
                    {
                        "value": r.detach().clone(),
                        "requires_grad": bool(r.requires_grad),
                        "is_leaf": bool(r.is_leaf),
                    }
                )
        _wait(works)
        return got

    def backward() -> list[Tensor]:
        works, got = [], []
        for case, shape in enumerate(map(tuple, shapes)):
            if not first:
                works.append(m.send_backward(bwd_tensor(rank, case, shape)))
            if not last:
                got.append(m.recv_backward(shape, torch.float64).detach().clone())
        _wait(works)
        return got

    return {"forward": _part("forward", forward), "backward": _part("backward", backward)}


class Recorder:
    """Wraps a stage's forward_step / backward_step: the order they run in and the activations
    the stage holds after each."""

    def __init__(self, stage):
        self.ops: list[list] = []
        self.held: list[int] = []
        self.loss_returned: list[bool] = []
        fwd, bwd = stage.forward_step, stage.backward_step

        def forward_step(i, *args, **kwargs):
            out = fwd(i, *args, **kwargs)
            self.ops.append(["F", int(i)])
            self.held.append(len(stage.outputs))
            self.loss_returned.append(out is not None)
            return out

        def backward_step(i, *args, **kwargs):
            out = bwd(i, *args, **kwargs)
            self.ops.append(["B", int(i)])
            self.held.append(len(stage.outputs))
            return out

        stage.forward_step, stage.backward_step = forward_step, backward_step


def _stage_result(model: nn.Module, rank: int, stage, rec: Recorder | None, loss) -> dict:
    mine = set(stage_layers(len(model), stage.n_stages)[rank])
    grads = {}
    for name, p in model.named_parameters():
        if int(name.split(".")[0]) in mine:
            grads[name] = None if p.grad is None else p.grad.clone()
    result = {
        "grads": grads,
        "loss": None if loss is None else float(loss),
        "left": [len(stage.inputs), len(stage.outputs)],
    }
    if rec is not None:
        result.update(ops=rec.ops, held=rec.held, loss_returned=rec.loss_returned)
    return result


def _new_stage(rank: int, world_size: int):
    m = _module()
    model = make_model()
    layers = stage_layers(len(model), world_size)[rank]
    module = nn.Sequential(*(model[i] for i in layers))
    return model, m.PipelineStage(module, rank, world_size, D_MODEL)


def job_pipeline(rank: int, world_size: int, cases: list, steps: bool = False) -> dict:
    """`steps`: first run two micro-batches by hand (F0 F1 B0 B1) with the stage's own methods;
    then each (schedule, n, n_micro) case through `pipeline_step`."""
    m = _module()
    parts: dict = {}

    def by_hand() -> dict:
        model, stage = _new_stage(rank, world_size)
        x, y = make_batch(6)
        xs, ys = x.tensor_split(2), y.tensor_split(2)
        losses = [stage.forward_step(i, xs[i], ys[i], 0.5) for i in range(2)]
        for i in range(2):
            stage.backward_step(i)
        stage.wait_sends()
        total = None
        if stage.is_last:
            total = sum(float(t) for t in losses if t is not None)
        result = _stage_result(model, rank, stage, None, total)
        result["returned"] = [t is not None for t in losses]
        return result

    def case(schedule: str, n: int, n_micro: int) -> dict:
        model, stage = _new_stage(rank, world_size)
        rec = Recorder(stage)
        x, y = make_batch(n)
        loss = m.pipeline_step(stage, x, y, n_micro, schedule)
        return _stage_result(model, rank, stage, rec, loss)

    if steps:
        parts["steps"] = _part("steps", by_hand)
    for schedule, n, n_micro in cases:
        key = f"{schedule}:{n}:{n_micro}"
        parts[key] = _part(key, case, schedule, n, n_micro)
    return parts


JOBS = {
    name.removeprefix("job_"): fn for name, fn in list(globals().items()) if name.startswith("job_")
}


# -- the graders' own schedule checks (pure Python, in the test process) ----------------------


def random_feasible_schedules(n_stages: int, n_micro: int, seed: int) -> list[list[tuple]]:
    """Per-stage op orders of some random execution that respects the dependencies."""
    import random

    rng = random.Random(seed)
    done: set = set()
    nxt_f, nxt_b = [0] * n_stages, [0] * n_stages
    orders: list[list[tuple]] = [[] for _ in range(n_stages)]
    while len(done) < 2 * n_stages * n_micro:
        ready = []
        for s in range(n_stages):
            i = nxt_f[s]
            if i < n_micro and (s == 0 or ("F", s - 1, i) in done):
                ready.append(("F", s, i))
            j = nxt_b[s]
            if (
                j < n_micro
                and ("F", s, j) in done
                and (s == n_stages - 1 or ("B", s + 1, j) in done)
            ):
                ready.append(("B", s, j))
        kind, s, i = rng.choice(ready)
        done.add((kind, s, i))
        (nxt_f if kind == "F" else nxt_b)[s] += 1
        orders[s].append((kind, i))
    return orders
