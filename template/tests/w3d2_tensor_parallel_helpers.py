"""Multi-process harness for the w3d2_tensor_parallel graders.

`run(job, world_size, **kwargs)` starts `world_size` worker processes, each of which joins a
process group (a `file://` store in a fresh temporary directory, so graders running at the same
time never collide), runs `job_<job>(rank, world_size, **kwargs)` from this module and saves what
it returns in that directory. The parent waits with a deadline, kills stragglers, and hands back
one result per rank; the comparisons happen in the test process.

The process group is a *tracing* one: a `torch.distributed.ProcessGroup` written in Python that
passes every collective on to a real gloo group and writes down its kind and size first, so the
graders can count the collectives your layers make in forward and in backward.

A job is split into *sections*, one per exercise: an exception inside a section is recorded
with its type, message and the line of `mlab` code that raised it, and the next sections still
run, so one unfinished exercise does not fail the tests of the others. The parent re-raises a
NotImplementedError as such; anything else fails the test with that message.

Workers are forked from a fork server that has imported torch and transformers once (starting a
fresh Python and importing them costs seconds per process; a fork costs milliseconds).
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
import torch.distributed as dist
import torch.nn.functional as F
from rank_harness import ERROR_GRACE_S, WorkerFailure
from torch import Tensor

PG_TIMEOUT_S = 10.0  # a collective that waits longer raises inside the worker
RUN_TIMEOUT_S = 60.0  # the parent kills workers still running after this (4 ranks that each
# import transformers, when another day started the shared fork server without it, take tens of s)
WARMUP_TIMEOUT_S = 90.0  # the first run also starts the fork server (imports torch once)
PRELOAD = ["torch", "torch.distributed", "transformers.models.gpt2.modeling_gpt2"]
TRACING = "mlab_tracing"


def _mp_context(start: str):
    return rank_harness.mp_context(start, PRELOAD)


def prestart() -> None:
    """Start the fork server now: it imports torch while the test process goes on collecting."""
    rank_harness.prestart(PRELOAD)


# -- the tracing process group -----------------------------------------------------------------

# ProcessGroup method -> (name in messages, index of the argument holding the input tensors)
TRACED = {
    "allreduce": ("all_reduce", 0),
    "allreduce_coalesced": ("all_reduce", 0),
    "allgather": ("all_gather", 1),
    "_allgather_base": ("all_gather", 1),
    "allgather_into_tensor_coalesced": ("all_gather", 1),
    "reduce_scatter": ("reduce_scatter", 1),
    "_reduce_scatter_base": ("reduce_scatter", 1),
    "broadcast": ("broadcast", 0),
    "reduce": ("reduce", 0),
    "alltoall": ("all_to_all", 1),
    "alltoall_base": ("all_to_all", 1),
    "gather": ("gather", 1),
    "scatter": ("scatter", 1),
    "send": ("send", 0),
    "recv": ("recv", 0),
}


def _numel(arg) -> int:
    if isinstance(arg, Tensor):
        return arg.numel()
    if isinstance(arg, list | tuple):
        return sum(_numel(a) for a in arg)
    return 0


class TracingProcessGroup(dist.ProcessGroup):
    """A gloo process group that records (kind, elements) of every collective in `self.trace`."""

    def __init__(self, store, rank: int, size: int, timeout: timedelta):
        super().__init__(rank, size)
        self.inner = dist.ProcessGroupGloo(store, rank, size, timeout)
        self.trace: list[tuple[str, int]] = []

    def getBackendName(self) -> str:  # noqa: N802 (torch's name)
        return TRACING

    def barrier(self, *args):
        return self.inner.barrier(*args)


def _traced(method: str, kind: str, index: int) -> Callable:
    def call(self, *args):
        self.trace.append((kind, _numel(args[index]) if len(args) > index else 0))
        return getattr(self.inner, method)(*args)

    call.__name__ = method
    return call


for _method, (_kind, _index) in TRACED.items():
    setattr(TracingProcessGroup, _method, _traced(_method, _kind, _index))


def register_tracing_backend() -> None:
    if TRACING not in dist.Backend.backend_list:
        dist.Backend.register_backend(
            TRACING, lambda store, rank, size, timeout: TracingProcessGroup(store, rank, size, timeout),
            devices=["cpu"],
        )  # fmt: skip


def trace() -> list[tuple[str, int]]:
    """The collectives recorded since the last `trace().clear()` on this rank."""
    return dist.group.WORLD.trace


def traced(fn: Callable) -> tuple[object, list[tuple[str, int]]]:
    """Run `fn()` and return its result with the collectives it made."""
    trace().clear()
    out = fn()
    made = list(trace())
    trace().clear()
    return out, made


def sync_failures(failed: bool) -> int:
    """How many ranks failed the last section (through the untraced gloo group)."""
    flag = torch.tensor([float(failed)])
    dist.group.WORLD.inner.allreduce([flag]).wait()
    return int(flag.item())


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
    """Run `job_<job>` on `world_size` ranks; returns what each rank's job returned, by rank."""
    global _warm
    if not _warm or start != "forkserver":
        timeout = max(timeout, WARMUP_TIMEOUT_S)
    ctx = _mp_context(start)
    tmp = Path(tempfile.mkdtemp(prefix="mlab-w3d2-"))
    procs = [
        ctx.Process(
            target=_worker,
            args=(job, rank, world_size, backend, str(tmp), timeout, kwargs),
            name=f"w3d2-{job}-rank{rank}",
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
        dist = torch.distributed
        register_tracing_backend()
        dist.init_process_group(
            TRACING if backend == "gloo" else backend,
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


# -- data shared by the workers and the references in the test process -----------------------

D_MODEL, N_HEAD, D_HIDDEN, VOCAB = 16, 4, 64, 12  # the layer tests: divisible by 2 and 4 ranks
BATCH, SEQ = 2, 5
GPT2_CONFIG = dict(
    n_layer=2, n_embd=32, n_head=4, vocab_size=96, n_positions=16, resid_pdrop=0.0,
    embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
)  # fmt: skip
GPT2_SHAPE = (2, 8)  # (batch, seq) of the GPT-2 inputs


def randn(seed: int, *shape: int, scale: float = 1.0) -> Tensor:
    """A float64 tensor drawn from `seed`: the same in every process."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * scale


def block(size: int, rank: int, world_size: int) -> slice:
    """Rank `rank`'s contiguous block of `size` items (the layout every sharded layer uses)."""
    per_rank = size // world_size
    return slice(rank * per_rank, (rank + 1) * per_rank)


def gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


def embedding_ids() -> Tensor:
    """(2, 7) token ids hitting every row of a 12-token vocabulary, both ends of every shard."""
    return (torch.arange(14) * 5 % VOCAB).reshape(2, 7)


def ce_logits() -> tuple[Tensor, Tensor]:
    """(2, 5, 12) logits with one very large row (stability) and targets in every shard."""
    logits = randn(70, BATCH, SEQ, VOCAB, scale=3.0)
    logits[1, 2] += 1000.0
    targets = (torch.arange(BATCH * SEQ) * 7 % VOCAB).reshape(BATCH, SEQ)
    return logits, targets


def attention_weights() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    d = D_MODEL
    return (
        randn(50, 3 * d, d, scale=0.3),
        randn(51, 3 * d, scale=0.1),
        randn(52, d, d, scale=0.3),
        randn(53, d, scale=0.1),
    )


def mlp_weights() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return (
        randn(60, D_HIDDEN, D_MODEL, scale=0.3),
        randn(61, D_HIDDEN, scale=0.1),
        randn(62, D_MODEL, D_HIDDEN, scale=0.3),
        randn(63, D_MODEL, scale=0.1),
    )


def reference_attention(
    x: Tensor, w_qkv: Tensor, b_qkv: Tensor, w_o: Tensor, b_o: Tensor
) -> Tensor:
    """Causal multi-head attention with torch's scaled_dot_product_attention."""
    B, T, d = x.shape
    q, k, v = F.linear(x, w_qkv, b_qkv).split(d, dim=-1)
    q, k, v = (t.view(B, T, N_HEAD, d // N_HEAD).transpose(1, 2) for t in (q, k, v))
    z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.linear(z.transpose(1, 2).reshape(B, T, d), w_o, b_o)


def make_gpt2():
    """transformers' GPT2LMHeadModel, tiny, float64, every parameter (biases too) random."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**GPT2_CONFIG)).double().eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.05)
    return model


def gpt2_inputs() -> tuple[Tensor, Tensor, Tensor]:
    """Token ids, targets and an upstream gradient for the logits (2, 8, 96)."""
    g = torch.Generator().manual_seed(2)
    vocab = GPT2_CONFIG["vocab_size"]
    ids = torch.randint(0, vocab, GPT2_SHAPE, generator=g)
    targets = torch.randint(0, vocab, GPT2_SHAPE, generator=g)
    return ids, targets, randn(80, *GPT2_SHAPE, vocab)


CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
MEGATRON_SHARDED = (
    "wte.weight", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
    "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
)  # fmt: skip


def linear_layout(model, conv1d: bool = False) -> dict[str, tuple[Tensor, Tensor | None]]:
    """(value, grad) of each parameter; with `conv1d` (transformers' own model), the Conv1D
    weights transposed to nn.Linear's (out, in)."""
    out = {}
    for name, p in model.named_parameters():
        value, grad = p.detach().clone(), None if p.grad is None else p.grad.detach().clone()
        if conv1d and name.endswith(CONV1D):
            value, grad = value.T.contiguous(), None if grad is None else grad.T.contiguous()
        out[name] = (value, grad)
    return out


# -- jobs (run on every rank; return plain data: tensors, numbers, lists, dicts) ---------------


def _module():
    from mlab import w3d2_tensor_parallel as m

    return m


def _grad(t: Tensor) -> Tensor | None:
    return None if t.grad is None else t.grad.detach().clone()


def _params(layer) -> dict[str, tuple[Tensor, Tensor | None]]:
    return {n: (p.detach().clone(), _grad(p)) for n, p in layer.named_parameters()}


def _backward(loss_fn: Callable[[], Tensor]) -> list[tuple[str, int]]:
    return traced(lambda: loss_fn().backward())[1]


def section_copy(m, rank: int, world_size: int) -> dict:
    x = randn(1, 3, 8).requires_grad_()
    y, fwd = traced(lambda: m.copy_to_parallel_region(x))
    bwd = _backward(lambda: (y * randn(100 + rank, 3, 8)).sum())
    return {"y": y.detach().clone(), "grad": _grad(x), "fwd": fwd, "bwd": bwd}


def section_reduce(m, rank: int, world_size: int) -> dict:
    x = randn(10 + rank, 3, 8).requires_grad_()
    before = x.detach().clone()
    y, fwd = traced(lambda: m.reduce_from_parallel_region(x))
    bwd = _backward(lambda: (y * randn(100 + rank, 3, 8)).sum())
    unchanged = torch.equal(x.detach(), before)
    return {
        "y": y.detach().clone(),
        "grad": _grad(x),
        "unchanged": unchanged,
        "fwd": fwd,
        "bwd": bwd,
    }


def section_gather(m, rank: int, world_size: int) -> dict:
    x = randn(10 + rank, 3, 4).requires_grad_()
    y, fwd = traced(lambda: m.gather_from_parallel_region(x))
    bwd = _backward(lambda: (y * randn(5, 3, 4 * world_size)).sum())
    return {"y": y.detach().clone(), "grad": _grad(x), "fwd": fwd, "bwd": bwd}


def column_inputs() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Weight (12, 8), bias, input (2, 5, 8), upstream gradient (2, 5, 12)."""
    return randn(20, 12, 8), randn(21, 12), randn(22, BATCH, SEQ, 8), randn(23, BATCH, SEQ, 12)


def _column(m, rank: int, world_size: int, gather_output: bool) -> dict:
    weight, bias, x, upstream = column_inputs()
    x.requires_grad_()
    layer = m.ColumnParallelLinear(weight, bias, gather_output=gather_output)
    y, fwd = traced(lambda: layer(x))
    if not gather_output:
        upstream = upstream[..., block(12, rank, world_size)]
    bwd = _backward(lambda: (y * upstream).sum())
    return {
        "y": y.detach().clone(),
        "grad": _grad(x),
        "params": _params(layer),
        "fwd": fwd,
        "bwd": bwd,
    }


def section_column(m, rank: int, world_size: int) -> dict:
    return _column(m, rank, world_size, gather_output=False)


def section_column_gather(m, rank: int, world_size: int) -> dict:
    return _column(m, rank, world_size, gather_output=True)


def row_inputs() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Weight (8, 12), bias, full input (2, 5, 12), upstream gradient (2, 5, 8)."""
    return randn(30, 8, 12), randn(31, 8), randn(32, BATCH, SEQ, 12), randn(33, BATCH, SEQ, 8)


def section_row(m, rank: int, world_size: int) -> dict:
    weight, bias, x, upstream = row_inputs()
    layer = m.RowParallelLinear(weight, bias)
    x_local = x[..., block(12, rank, world_size)].clone().requires_grad_()
    y, fwd = traced(lambda: layer(x_local))
    bwd = _backward(lambda: (y * upstream).sum())
    return {
        "y": y.detach().clone(),
        "grad": _grad(x_local),
        "params": _params(layer),
        "fwd": fwd,
        "bwd": bwd,
    }


def section_embedding(m, rank: int, world_size: int) -> dict:
    layer = m.VocabParallelEmbedding(randn(40, VOCAB, 5))
    ids = embedding_ids()
    y, fwd = traced(lambda: layer(ids))
    bwd = _backward(lambda: (y * randn(41, 2, 7, 5)).sum())
    return {"y": y.detach().clone(), "params": _params(layer), "fwd": fwd, "bwd": bwd}


def section_attention(m, rank: int, world_size: int) -> dict:
    layer = m.ParallelAttention(*attention_weights(), n_head=N_HEAD)
    x = randn(54, BATCH, SEQ, D_MODEL).requires_grad_()
    y, fwd = traced(lambda: layer(x))
    bwd = _backward(lambda: (y * randn(55, BATCH, SEQ, D_MODEL)).sum())
    return {
        "y": y.detach().clone(),
        "grad": _grad(x),
        "params": _params(layer),
        "fwd": fwd,
        "bwd": bwd,
    }


def section_mlp(m, rank: int, world_size: int) -> dict:
    layer = m.ParallelMLP(*mlp_weights(), act=gelu_tanh)
    x = randn(64, BATCH, SEQ, D_MODEL).requires_grad_()
    y, fwd = traced(lambda: layer(x))
    bwd = _backward(lambda: (y * randn(65, BATCH, SEQ, D_MODEL)).sum())
    return {
        "y": y.detach().clone(),
        "grad": _grad(x),
        "params": _params(layer),
        "fwd": fwd,
        "bwd": bwd,
    }


def section_cross_entropy(m, rank: int, world_size: int) -> dict:
    logits, targets = ce_logits()
    local = logits[..., block(VOCAB, rank, world_size)].clone().requires_grad_()
    loss, fwd = traced(lambda: m.vocab_parallel_cross_entropy(local, targets))
    bwd = _backward(lambda: (loss * randn(71, BATCH, SEQ)).sum())
    return {"loss": loss.detach().clone(), "grad": _grad(local), "fwd": fwd, "bwd": bwd}


def _shard(m):
    model = make_gpt2()
    sharded = m.shard_gpt2(model)
    return sharded if sharded is not None else model


def section_gpt2(m, rank: int, world_size: int) -> dict:
    ids, _, upstream = gpt2_inputs()
    model = _shard(m)
    logits, fwd = traced(lambda: model(ids, use_cache=False).logits)
    vocab = GPT2_CONFIG["vocab_size"]
    bwd = _backward(lambda: (logits * upstream[..., block(vocab, rank, world_size)]).sum())
    result = {
        "logits": logits.detach().clone(),
        "params": linear_layout(model),
        "numel": sum(p.numel() for p in model.parameters()),
        "tied": model.lm_head.weight is model.transformer.wte.weight,
        "fwd": fwd,
        "bwd": bwd,
    }
    if rank == 0:
        full = make_gpt2()
        ref = full(ids, use_cache=False).logits
        (ref * upstream).sum().backward()
        result["ref_logits"], result["ref_params"] = (
            ref.detach().clone(),
            linear_layout(full, conv1d=True),
        )
    return result


def section_gpt2_loss(m, rank: int, world_size: int) -> dict:
    ids, targets, _ = gpt2_inputs()
    model = _shard(m)
    loss = m.vocab_parallel_cross_entropy(model(ids, use_cache=False).logits, targets).mean()
    loss.backward()
    result = {"loss": loss.detach().clone(), "params": linear_layout(model)}
    if rank == 0:
        full = make_gpt2()
        ref = F.cross_entropy(full(ids, use_cache=False).logits.flatten(0, 1), targets.flatten())
        ref.backward()
        result["ref_loss"], result["ref_params"] = (
            ref.detach().clone(),
            linear_layout(full, conv1d=True),
        )
    return result


SECTIONS = {
    name.removeprefix("section_"): fn
    for name, fn in list(globals().items())
    if name.startswith("section_")
}


def job_day(rank: int, world_size: int, sections: list[str]) -> dict:
    """Every section in order; a failure is recorded and the next sections still run."""
    m = _module()
    out, out_of_step = {}, None
    for name in sections:
        if out_of_step is not None:
            message = (
                f"not run: the `{out_of_step}` checks failed on some ranks but not others, so the "
                "ranks fell out of step. Fix that first."
            )
            out[name] = {"error": "Skipped", "message": message, "where": ""}
            continue
        try:
            torch.manual_seed(0)
            out[name] = {"result": SECTIONS[name](m, rank, world_size)}
            failed = False
        except Exception as exc:  # noqa: BLE001 (reported to the parent)
            message = " ".join(str(exc).strip().splitlines())[:600] or repr(exc)
            out[name] = {
                "error": type(exc).__name__,
                "message": message,
                "where": rank_harness.where(exc),
            }
            failed = True
        trace().clear()
        if 0 < sync_failures(failed) < world_size:
            out_of_step = name
    return out


JOBS = {"day": job_day}
