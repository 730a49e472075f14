"""Day w2d5_data_parallel: data-parallel training with torch.distributed.

Every process ("rank") holds a full copy of the model, trains on its own shard of each global
batch, and the ranks average their gradients before each optimizer step, so every replica takes
the same step that one process would take on the whole batch. You build the pieces yourself on
top of point-to-point `dist.send` / `dist.recv` (and `dist.isend` / `dist.irecv`): a broadcast of
the initial weights, a naive and a ring all-reduce, a data sharder, gradient bucketing and a
trainer that ties them together. The graders run your code in 2 and 3 processes with the gloo
backend on CPU; the same code runs with NCCL on GPUs. Read docs/w2d5_data_parallel.md first.

Every function here is called on every rank at the same time (SPMD: single program, multiple
data): `dist.get_rank()` and `dist.get_world_size()` tell a rank who it is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from jaxtyping import Float, Int
from torch import Tensor, nn

AllReduce = Callable[[Tensor], object]  # sums a tensor over all ranks, in place


# -- collectives by hand -----------------------------------------------------------------------


def broadcast_parameters(model: nn.Module, src: int = 0) -> None:
    """Copy rank `src`'s parameters and buffers into every rank's model, in place.

    Replicas must start identical: each rank initialized its model from its own random state.
    Use `dist.broadcast(tensor, src)` on each parameter and buffer (e.g. BatchNorm running stats);
    write into the existing tensors so that optimizers holding the parameters see the new values.
    """
    # BEGIN SOLUTION
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=src)
    # END SOLUTION


def naive_all_reduce(tensor: Tensor) -> Tensor:
    """Sum `tensor` over all ranks, in place, through rank 0; returns `tensor`.

    Every other rank sends its tensor to rank 0 (`dist.send`), which adds them up and sends the
    sum back to each of them. Rank 0 sends and receives (W - 1) whole tensors: its link is the
    bottleneck, and the time grows with the number of ranks.
    """
    # BEGIN SOLUTION
    rank, world_size = dist.get_rank(), dist.get_world_size()
    work = tensor.contiguous()  # send/recv need contiguous memory (no copy if it already is)
    if rank == 0:
        incoming = torch.empty_like(work)
        for src in range(1, world_size):
            dist.recv(incoming, src=src)
            work += incoming
        for dst in range(1, world_size):
            dist.send(work, dst=dst)
    else:
        dist.send(work, dst=0)
        dist.recv(work, src=0)
    if work is not tensor:
        tensor.copy_(work)
    return tensor
    # END SOLUTION


def ring_chunks(flat: Float[Tensor, " n"], world_size: int) -> list[Float[Tensor, " _"]]:
    """Split a flat tensor into `world_size` contiguous views whose sizes differ by at most one.

    The first `n % world_size` chunks get one extra element; chunks are empty when n < world_size.
    Writing into a chunk writes into `flat`.
    """
    return list(flat.tensor_split(world_size))


def _exchange(send: Tensor, dst: int, recv: Tensor, src: int) -> None:
    """Send `send` to rank `dst` while receiving into `recv` from rank `src`, without deadlock.

    Both transfers start together and we wait for both. (`isend` then a blocking `recv` works
    on gloo; NCCL needs the pair grouped, which `batch_isend_irecv` does.)
    """
    ops = [dist.P2POp(dist.isend, send, dst), dist.P2POp(dist.irecv, recv, src)]
    for request in dist.batch_isend_irecv(ops):
        request.wait()


def ring_reduce_scatter(chunks: list[Tensor]) -> None:
    """Reduce-scatter around the ring, in place: rank r ends with chunk (r + 1) % W summed.

    `chunks` holds W tensors (this rank's data, cut as by `ring_chunks`). In step s = 0 .. W-2,
    rank r sends chunk (r - s) % W to its right neighbour (r + 1) % W and receives chunk
    (r - s - 1) % W from its left neighbour (r - 1) % W, adding it into its own copy. Send and
    receive at the same time, or every rank waits for the others: `_exchange` does that.
    After W - 1 steps chunk (r + 1) % W holds the sum over all ranks; the others are partial.
    """
    # BEGIN SOLUTION
    rank, world_size = dist.get_rank(), dist.get_world_size()
    right, left = (rank + 1) % world_size, (rank - 1) % world_size
    for step in range(world_size - 1):
        send_idx, recv_idx = (rank - step) % world_size, (rank - step - 1) % world_size
        incoming = torch.empty_like(chunks[recv_idx])
        _exchange(chunks[send_idx], right, incoming, left)
        chunks[recv_idx] += incoming
    # END SOLUTION


def ring_all_gather(chunks: list[Tensor]) -> None:
    """All-gather around the ring, in place: every rank ends with every chunk complete.

    On entry rank r's chunk (r + 1) % W is complete (as `ring_reduce_scatter` leaves it). In step
    s = 0 .. W-2, rank r sends chunk (r + 1 - s) % W to the right and receives chunk (r - s) % W
    from the left, overwriting its own copy.
    """
    # BEGIN SOLUTION
    rank, world_size = dist.get_rank(), dist.get_world_size()
    right, left = (rank + 1) % world_size, (rank - 1) % world_size
    for step in range(world_size - 1):
        send_idx, recv_idx = (rank + 1 - step) % world_size, (rank - step) % world_size
        _exchange(chunks[send_idx], right, chunks[recv_idx], left)
    # END SOLUTION


def ring_all_reduce(tensor: Tensor) -> Tensor:
    """Sum `tensor` over all ranks, in place, with a ring reduce-scatter then all-gather.

    Works for any shape and any number of elements: flatten, cut with `ring_chunks`, run the
    two phases, and make sure the result lands in `tensor`. Each rank sends 2 (W - 1) / W of
    the tensor whatever W is, which is why NCCL and gloo use rings for large tensors.
    """
    # BEGIN SOLUTION
    world_size = dist.get_world_size()
    work = tensor.contiguous()
    chunks = ring_chunks(work.view(-1), world_size)  # views into work
    ring_reduce_scatter(chunks)
    ring_all_gather(chunks)
    if work is not tensor:
        tensor.copy_(work)
    return tensor
    # END SOLUTION


# -- gradients ---------------------------------------------------------------------------------


def all_reduce_gradients(model: nn.Module, all_reduce: AllReduce | None = None) -> None:
    """Replace every parameter's gradient by its average over the ranks (the naive way).

    One `all_reduce(p.grad)` per parameter (default `dist.all_reduce`, which sums), then divide
    by the world size. Parameters without a gradient are skipped (the same on every rank).
    """
    # BEGIN SOLUTION
    all_reduce = all_reduce or dist.all_reduce
    world_size = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            all_reduce(p.grad)
            p.grad /= world_size
    # END SOLUTION


def make_buckets(params: list[nn.Parameter], bucket_cap: int) -> list[list[nn.Parameter]]:
    """Group parameters into buckets of at most `bucket_cap` elements, last parameter first.

    Backward produces gradients roughly from the last layer to the first, so walk `params` in
    reverse and fill a bucket greedily: a parameter that would push the bucket past `bucket_cap`
    elements starts the next bucket. A parameter larger than the cap gets a bucket to itself.
    Every parameter lands in exactly one bucket; concatenating the buckets gives reversed(params).
    """
    # BEGIN SOLUTION
    buckets: list[list[nn.Parameter]] = []
    current: list[nn.Parameter] = []
    size = 0
    for p in reversed(params):
        if current and size + p.numel() > bucket_cap:
            buckets.append(current)
            current, size = [], 0
        current.append(p)
        size += p.numel()
    if current:
        buckets.append(current)
    return buckets
    # END SOLUTION


def all_reduce_buckets(
    buckets: list[list[nn.Parameter]], all_reduce: AllReduce | None = None
) -> None:
    """Average the gradients over the ranks with one `all_reduce` per bucket.

    For each bucket: concatenate the flattened gradients into one buffer, all-reduce it (default
    `dist.all_reduce`), divide by the world size and copy the pieces back into each `p.grad`.
    A parameter whose grad is None contributes zeros (every rank must send the same sizes) and
    gets the averaged gradient. Few large messages beat many small ones: each has a latency.
    """
    # BEGIN SOLUTION
    all_reduce = all_reduce or dist.all_reduce
    world_size = dist.get_world_size()
    for bucket in buckets:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in bucket]
        flat = torch.cat([g.reshape(-1) for g in grads])  # (sum of numels,)
        all_reduce(flat)
        flat /= world_size
        for p, piece in zip(bucket, flat.split([p.numel() for p in bucket]), strict=True):
            if p.grad is None:
                p.grad = piece.view_as(p).clone()
            else:
                p.grad.copy_(piece.view_as(p.grad))
    # END SOLUTION


# -- data --------------------------------------------------------------------------------------


def shard_indices(n: int, rank: int, world_size: int, seed: int | None = None) -> Int[Tensor, " k"]:
    """The indices of the `n` examples that rank `rank` trains on.

    The shards of ranks 0 .. W-1 partition range(n): disjoint, covering everything, sizes
    differing by at most one (earlier ranks take the extra examples). With `seed=None` rank r
    takes a contiguous block in order, so concatenating the shards in rank order gives
    0 .. n-1. With a seed, shuffle first with a `torch.Generator` seeded with it: every rank
    computes the same permutation independently (never use the global random state, which
    differs between ranks) and takes its block of it.
    """
    # BEGIN SOLUTION
    if seed is None:
        order = torch.arange(n)
    else:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order.tensor_split(world_size)[rank]
    # END SOLUTION


# -- training ----------------------------------------------------------------------------------


class DataParallelTrainer:
    """Data-parallel training of a replicated model, one global batch per `step`.

    Construct it on every rank with that rank's model and optimizer: it broadcasts rank `src`'s
    weights (`broadcast_parameters`) and groups the parameters into buckets (`make_buckets`).
    `step(inputs, targets)` gets the same global batch on every rank, trains on this rank's
    shard (`shard_indices(len(inputs), rank, world_size)`), averages the gradients with
    `all_reduce_buckets` and steps the optimizer; then every replica is what single-process
    training on the whole batch would give. `loss_fn(outputs, targets)` returns a batch mean.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        *,
        bucket_cap: int = 2**20,
        all_reduce: AllReduce | None = None,
        src: int = 0,
    ):
        # BEGIN SOLUTION
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.all_reduce = all_reduce or dist.all_reduce
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        broadcast_parameters(model, src)
        self.buckets = make_buckets([p for p in model.parameters() if p.requires_grad], bucket_cap)
        # END SOLUTION

    def step(self, inputs: Tensor, targets: Tensor) -> float:
        """One optimizer step on the global batch; returns the mean loss over the whole batch.

        Shards may differ in size by one (n not divisible by W): scale this rank's mean loss by
        n_local * W / n before backward, so that the average over the ranks of the gradients is
        the gradient of the mean over all n examples. The returned loss is the same on every
        rank: all-reduce the sum of the local losses and divide by n.
        """
        # BEGIN SOLUTION
        n = inputs.shape[0]
        idx = shard_indices(n, self.rank, self.world_size)
        local = self.loss_fn(self.model(inputs[idx]), targets[idx])  # mean over this shard
        self.optimizer.zero_grad()
        (local * (len(idx) * self.world_size / n)).backward()
        all_reduce_buckets(self.buckets, self.all_reduce)
        self.optimizer.step()
        total = (local.detach() * len(idx)).reshape(1)
        self.all_reduce(total)
        return total.item() / n
        # END SOLUTION
