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
    raise NotImplementedError("broadcast_parameters: see docs/w2d5_data_parallel.md#broadcast_parameters")


def naive_all_reduce(tensor: Tensor) -> Tensor:
    """Sum `tensor` over all ranks, in place, through rank 0; returns `tensor`.

    Every other rank sends its tensor to rank 0 (`dist.send`), which adds them up and sends the
    sum back to each of them. Rank 0 sends and receives (W - 1) whole tensors: its link is the
    bottleneck, and the time grows with the number of ranks.
    """
    raise NotImplementedError("naive_all_reduce: see docs/w2d5_data_parallel.md#naive_all_reduce")


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
    raise NotImplementedError("ring_reduce_scatter: see docs/w2d5_data_parallel.md#ring_reduce_scatter")


def ring_all_gather(chunks: list[Tensor]) -> None:
    """All-gather around the ring, in place: every rank ends with every chunk complete.

    On entry rank r's chunk (r + 1) % W is complete (as `ring_reduce_scatter` leaves it). In step
    s = 0 .. W-2, rank r sends chunk (r + 1 - s) % W to the right and receives chunk (r - s) % W
    from the left, overwriting its own copy.
    """
    raise NotImplementedError("ring_all_gather: see docs/w2d5_data_parallel.md#ring_all_gather")


def ring_all_reduce(tensor: Tensor) -> Tensor:
    """Sum `tensor` over all ranks, in place, with a ring reduce-scatter then all-gather.

    Works for any shape and any number of elements: flatten, cut with `ring_chunks`, run the
    two phases, and make sure the result lands in `tensor`. Each rank sends 2 (W - 1) / W of
    the tensor whatever W is, which is why NCCL and gloo use rings for large tensors.
    """
    raise NotImplementedError("ring_all_reduce: see docs/w2d5_data_parallel.md#ring_all_reduce")


# -- gradients ---------------------------------------------------------------------------------


def all_reduce_gradients(model: nn.Module, all_reduce: AllReduce | None = None) -> None:
    """Replace every parameter's gradient by its average over the ranks (the naive way).

    One `all_reduce(p.grad)` per parameter (default `dist.all_reduce`, which sums), then divide
    by the world size. Parameters without a gradient are skipped (the same on every rank).
    """
    raise NotImplementedError("all_reduce_gradients: see docs/w2d5_data_parallel.md#all_reduce_gradients")


def make_buckets(params: list[nn.Parameter], bucket_cap: int) -> list[list[nn.Parameter]]:
    """Group parameters into buckets of at most `bucket_cap` elements, last parameter first.

    Backward produces gradients roughly from the last layer to the first, so walk `params` in
    reverse and fill a bucket greedily: a parameter that would push the bucket past `bucket_cap`
    elements starts the next bucket. A parameter larger than the cap gets a bucket to itself.
    Every parameter lands in exactly one bucket; concatenating the buckets gives reversed(params).
    """
    raise NotImplementedError("make_buckets: see docs/w2d5_data_parallel.md#make_buckets")


def all_reduce_buckets(
    buckets: list[list[nn.Parameter]], all_reduce: AllReduce | None = None
) -> None:
    """Average the gradients over the ranks with one `all_reduce` per bucket.

    For each bucket: concatenate the flattened gradients into one buffer, all-reduce it (default
    `dist.all_reduce`), divide by the world size and copy the pieces back into each `p.grad`.
    A parameter whose grad is None contributes zeros (every rank must send the same sizes) and
    gets the averaged gradient. Few large messages beat many small ones: each has a latency.
    """
    raise NotImplementedError("all_reduce_buckets: see docs/w2d5_data_parallel.md#all_reduce_buckets")


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
    raise NotImplementedError("shard_indices: see docs/w2d5_data_parallel.md#shard_indices")


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
        raise NotImplementedError("DataParallelTrainer.__init__: see docs/w2d5_data_parallel.md#dataparalleltrainer")

    def step(self, inputs: Tensor, targets: Tensor) -> float:
        """One optimizer step on the global batch; returns the mean loss over the whole batch.

        Shards may differ in size by one (n not divisible by W): scale this rank's mean loss by
        n_local * W / n before backward, so that the average over the ranks of the gradients is
        the gradient of the mean over all n examples. The returned loss is the same on every
        rank: all-reduce the sum of the local losses and divide by n.
        """
        raise NotImplementedError("DataParallelTrainer.step: see docs/w2d5_data_parallel.md#dataparalleltrainer")
