"""Day w3d2_tensor_parallel: Megatron-style tensor parallelism.

Data parallelism copies the whole model onto every device; when the model itself no longer fits,
split each weight matrix instead. Following Megatron-LM (Shoeybi et al. 2019, "Megatron-LM:
Training Multi-Billion Parameter Language Models Using Model Parallelism"), W ranks each hold
1/W of every large matrix: the first linear layer of a pair is split by output features
(column-parallel), the second by input features (row-parallel), so a transformer block needs one
all-reduce in forward and one in backward for its attention and one of each for its MLP. You
write the two conjugate communication operators f and g, the parallel layers, attention split by
heads, the Megatron MLP, a vocabulary-parallel embedding and cross-entropy, and finally shard
transformers' GPT-2. Read docs/w3d2_tensor_parallel.md first.

Every rank runs the same code (SPMD): `dist.get_rank()` and `dist.get_world_size()` say which
shard a rank holds. Layers are built from the FULL weights (the same on every rank) and keep only
their own slice, in `nn.Linear`'s layout: weight (out_features, in_features).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn


def shard_range(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """The slice [start, end) of `size` items that rank `rank` holds: contiguous, equal blocks."""
    if size % world_size:
        raise ValueError(f"{size} is not divisible by the world size {world_size}")
    per_rank = size // world_size
    return rank * per_rank, (rank + 1) * per_rank


def my_range(size: int) -> tuple[int, int]:
    """`shard_range` for this process's rank and world size."""
    return shard_range(size, dist.get_rank(), dist.get_world_size())


# -- the conjugate operators f and g -----------------------------------------------------------


class CopyToParallelRegion(torch.autograd.Function):
    """Megatron's f: identity in forward, all-reduce (sum) of the gradient in backward.

    It sits where a replicated activation X enters a column-parallel layer. Every rank computes
    its part Y_r = X A_r from the same X, so dL/dX = sum_r dL/dY_r A_r^T: each rank only knows its
    own term and the terms must be summed over the ranks.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        raise NotImplementedError("CopyToParallelRegion.forward: see docs/w3d2_tensor_parallel.md#copytoparallelregion")

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        raise NotImplementedError("CopyToParallelRegion.backward: see docs/w3d2_tensor_parallel.md#copytoparallelregion")


class ReduceFromParallelRegion(torch.autograd.Function):
    """Megatron's g: all-reduce (sum) in forward, identity in backward.

    It ends a row-parallel layer: each rank holds a partial sum X_r B_r of the output Y = X B;
    after the all-reduce every rank holds all of Y, and dL/d(X_r B_r) = dL/dY on every rank.
    Do not modify the input in place: return a new tensor.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        raise NotImplementedError("ReduceFromParallelRegion.forward: see docs/w3d2_tensor_parallel.md#reducefromparallelregion")

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        raise NotImplementedError("ReduceFromParallelRegion.backward: see docs/w3d2_tensor_parallel.md#reducefromparallelregion")


class GatherFromParallelRegion(torch.autograd.Function):
    """All-gather along the last dimension in forward; keep this rank's slice in backward.

    Rank r holds the features [r k, (r + 1) k) of a tensor whose last dimension is W k; the
    output holds all W k of them, in rank order, on every rank.
    """

    @staticmethod
    def forward(ctx, x: Float[Tensor, "... k"]) -> Float[Tensor, "... wk"]:
        raise NotImplementedError("GatherFromParallelRegion.forward: see docs/w3d2_tensor_parallel.md#gatherfromparallelregion")

    @staticmethod
    def backward(ctx, grad: Float[Tensor, "... wk"]) -> Float[Tensor, "... k"]:
        raise NotImplementedError("GatherFromParallelRegion.backward: see docs/w3d2_tensor_parallel.md#gatherfromparallelregion")


def copy_to_parallel_region(x: Tensor) -> Tensor:
    return CopyToParallelRegion.apply(x)


def reduce_from_parallel_region(x: Tensor) -> Tensor:
    return ReduceFromParallelRegion.apply(x)


def gather_from_parallel_region(x: Tensor) -> Tensor:
    return GatherFromParallelRegion.apply(x)


# -- parallel linear layers --------------------------------------------------------------------


class ColumnParallelLinear(nn.Module):
    """Y = X A^T + b with A (out, in) split by output features: rank r holds rows A_r, b_r.

    `__init__` takes the full weight and bias (the same on every rank) and keeps this rank's
    block of `my_range(out_features)` as `self.weight` (out/W, in) and `self.bias` (out/W,) (or
    None). `forward` sends the replicated input through f and returns this rank's output
    features (..., out/W); with `gather_output=True` it all-gathers them into (..., out).
    """

    def __init__(
        self,
        weight: Float[Tensor, "out in"],
        bias: Float[Tensor, " out"] | None = None,
        gather_output: bool = False,
    ):
        super().__init__()
        self.gather_output = gather_output
        raise NotImplementedError("ColumnParallelLinear.__init__: see docs/w3d2_tensor_parallel.md#columnparallellinear")

    def forward(self, x: Float[Tensor, "... in"]) -> Float[Tensor, "... out_local"]:
        raise NotImplementedError("ColumnParallelLinear.forward: see docs/w3d2_tensor_parallel.md#columnparallellinear")


class RowParallelLinear(nn.Module):
    """Y = X B^T + b with B (out, in) split by input features: rank r holds columns B_r.

    The input arrives already split (the output of a column-parallel layer): rank r has
    X_r (..., in/W). `self.weight` is B[:, my_range(in)] (out, in/W); `self.bias` is the whole
    bias (out,), replicated. Each rank computes the partial product X_r B_r^T, g sums the
    partials, and the bias is added once, after the sum.
    """

    def __init__(self, weight: Float[Tensor, "out in"], bias: Float[Tensor, " out"] | None = None):
        super().__init__()
        raise NotImplementedError("RowParallelLinear.__init__: see docs/w3d2_tensor_parallel.md#rowparallellinear")

    def forward(self, x: Float[Tensor, "... in_local"]) -> Float[Tensor, "... out"]:
        raise NotImplementedError("RowParallelLinear.forward: see docs/w3d2_tensor_parallel.md#rowparallellinear")


# -- embedding ---------------------------------------------------------------------------------


class VocabParallelEmbedding(nn.Module):
    """An embedding table (V, d) split by vocabulary rows: rank r holds rows my_range(V).

    A token id outside this rank's rows looks up nothing here: its output row is zero. The
    rank that holds the id fills it in, so an all-reduce (g) of the partial lookups gives every
    rank the full (..., d) embeddings.
    """

    def __init__(self, weight: Float[Tensor, "vocab d"]):
        super().__init__()
        raise NotImplementedError("VocabParallelEmbedding.__init__: see docs/w3d2_tensor_parallel.md#vocabparallelembedding")

    def forward(self, ids: Int[Tensor, "*batch"]) -> Float[Tensor, "*batch d"]:
        raise NotImplementedError("VocabParallelEmbedding.forward: see docs/w3d2_tensor_parallel.md#vocabparallelembedding")


# -- attention and MLP -------------------------------------------------------------------------


def regroup_qkv(
    weight: Float[Tensor, "three_d d"],
    bias: Float[Tensor, " three_d"] | None,
    world_size: int,
) -> tuple[Float[Tensor, "three_d d"], Float[Tensor, " three_d"] | None]:
    """Reorder the rows of a fused q/k/v projection so that a contiguous split gives each rank
    its own heads' queries, keys and values.

    GPT-2's fused weight (3d, d) (in nn.Linear layout) stacks all query rows, then all key rows,
    then all value rows: [Q; K; V], each (d, d) with heads in order. Rank r must compute the q,
    k and v of its heads, the rows [r d/W, (r + 1) d/W) of each of Q, K and V. Return the rows
    reordered rank-major, [Q_0; K_0; V_0; Q_1; K_1; V_1; ...], and the bias the same way, so that
    `ColumnParallelLinear` on the result hands rank r exactly [Q_r; K_r; V_r].
    """
    raise NotImplementedError("regroup_qkv: see docs/w3d2_tensor_parallel.md#regroup_qkv")


class ParallelAttention(nn.Module):
    """Causal multi-head self-attention with the heads split over the ranks.

    Rank r computes the heads [r H/W, (r + 1) H/W): `self.c_attn` is a ColumnParallelLinear of
    the regrouped fused q/k/v weight (each rank gets its heads' 3 d/W rows), attention runs on
    the local heads only (no communication: heads are independent), and `self.c_proj` is a
    RowParallelLinear over the local heads' outputs. Weights come in nn.Linear layout:
    c_attn_weight (3d, d) as [Q; K; V], c_proj_weight (d, d). No padding mask, no KV cache, no
    dropout.
    """

    def __init__(
        self,
        c_attn_weight: Float[Tensor, "three_d d"],
        c_attn_bias: Float[Tensor, " three_d"] | None,
        c_proj_weight: Float[Tensor, "d d"],
        c_proj_bias: Float[Tensor, " d"] | None,
        n_head: int,
    ):
        super().__init__()
        raise NotImplementedError("ParallelAttention.__init__: see docs/w3d2_tensor_parallel.md#parallelattention")

    def forward(self, x: Float[Tensor, "batch seq d"]) -> Float[Tensor, "batch seq d"]:
        raise NotImplementedError("ParallelAttention.forward: see docs/w3d2_tensor_parallel.md#parallelattention")


class ParallelMLP(nn.Module):
    """Megatron's MLP: Y = act(X A^T + a) B^T + b with A column-parallel and B row-parallel.

    The activation is elementwise, so each rank applies it to its own hidden features and no
    communication is needed between the two layers: one all-reduce in forward (g, in
    `self.c_proj`) and one in backward (f, in `self.c_fc`). Weights in nn.Linear layout:
    c_fc_weight (hidden, d), c_proj_weight (d, hidden).
    """

    def __init__(
        self,
        c_fc_weight: Float[Tensor, "hidden d"],
        c_fc_bias: Float[Tensor, " hidden"] | None,
        c_proj_weight: Float[Tensor, "d hidden"],
        c_proj_bias: Float[Tensor, " d"] | None,
        act: Callable[[Tensor], Tensor] = F.gelu,
    ):
        super().__init__()
        self.act = act
        raise NotImplementedError("ParallelMLP.__init__: see docs/w3d2_tensor_parallel.md#parallelmlp")

    def forward(self, x: Float[Tensor, "... d"]) -> Float[Tensor, "... d"]:
        raise NotImplementedError("ParallelMLP.forward: see docs/w3d2_tensor_parallel.md#parallelmlp")


# -- cross-entropy over a split vocabulary ---------------------------------------------------


class VocabParallelCrossEntropy(torch.autograd.Function):
    """Per-token cross-entropy of logits split by vocabulary, without gathering them.

    Rank r holds logits z[..., my_range(V)] (..., V/W). With the global max m (an all-reduce
    with MAX), the loss is  log(sum_v exp(z_v - m)) - (z_t - m)  for target t: the sum over v is
    a local sum then an all-reduce, and z_t lives on the one rank that holds t (the others add
    zero), so an all-reduce gives it to everyone. Three all-reduces of (...)-shaped tensors, none
    of size V. Backward needs no communication: dL/dz_v = softmax(z)_v - [v == t], and each
    rank computes its own slice of that.
    """

    @staticmethod
    def forward(
        ctx, logits: Float[Tensor, "... v_local"], target: Int[Tensor, "..."]
    ) -> Float[Tensor, "..."]:
        raise NotImplementedError("VocabParallelCrossEntropy.forward: see docs/w3d2_tensor_parallel.md#vocabparallelcrossentropy")

    @staticmethod
    def backward(ctx, grad: Float[Tensor, "..."]) -> tuple[Float[Tensor, "... v_local"], None]:
        raise NotImplementedError("VocabParallelCrossEntropy.backward: see docs/w3d2_tensor_parallel.md#vocabparallelcrossentropy")


def vocab_parallel_cross_entropy(
    logits: Float[Tensor, "... v_local"], target: Int[Tensor, "..."]
) -> Float[Tensor, "..."]:
    """The cross-entropy of each token (not reduced), on every rank."""
    return VocabParallelCrossEntropy.apply(logits, target)


# -- GPT-2 -------------------------------------------------------------------------------------


class ParallelGPT2Attention(ParallelAttention):
    """ParallelAttention as transformers' GPT2Block calls it: the block passes the cache and
    masks as extra arguments (ignored here: causal attention only) and unpacks a pair."""

    def forward(self, hidden_states: Tensor, *args, **kwargs) -> tuple[Tensor, None]:
        return super().forward(hidden_states), None


def shard_gpt2(model: nn.Module) -> nn.Module:
    """Turn transformers' GPT2LMHeadModel into this rank's shard, in place; returns the model.

    Replace `transformer.wte` by a VocabParallelEmbedding, each block's `attn` by a
    ParallelGPT2Attention and `mlp` by a ParallelMLP (keeping the block's activation
    `mlp.act`), and `lm_head` by a ColumnParallelLinear whose weight IS the embedding's shard
    (GPT-2 ties them): the model then returns this rank's logits (batch, seq, V/W). Position
    embeddings and layer norms stay replicated. transformers' Conv1D stores its weight as
    (in, out): transpose it to nn.Linear's (out, in).
    """
    raise NotImplementedError("shard_gpt2: see docs/w3d2_tensor_parallel.md#shard_gpt2")
